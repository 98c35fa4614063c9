"""The error envelope: every error answer is ``{"error": "<code>", "detail": "<message>"}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["ApiError", "error_response", "exception_handlers", "validation_detail"]


class ApiError(Exception):
    """An error answered to the client with a status code, a snake_case code and a message."""

    def __init__(
        self, status_code: int, error: str, detail: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status_code} {error}: {detail}")
        self.status_code = status_code
        self.error = error
        self.detail = detail
        self.headers = headers
        self.extra: dict[str, Any] = {}


def error_response(
    status_code: int,
    error: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """A JSON error envelope response."""
    body: dict[str, Any] = {"error": error, "detail": detail}
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status_code, headers=headers)


def validation_detail(exc: ValidationError) -> tuple[str, list[str]]:
    """A readable message naming every invalid field, and the list of those field names."""
    fields: list[str] = []
    messages: list[str] = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"]) or "body"
        fields.append(loc)
        messages.append(f"{loc}: {err['msg']}")
    return "; ".join(messages), fields


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(
        exc.status_code, exc.error, exc.detail, headers=exc.headers, extra=exc.extra
    )


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    detail, fields = validation_detail(exc)
    return error_response(422, "validation_error", detail, extra={"fields": fields})


_HTTP_CODES = {
    400: "bad_request",
    401: "token_invalid",
    403: "permissions_insufficient",
    404: "not_found",
    405: "method_not_allowed",
    413: "content_too_large",
}


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = exc.detail
    if exc.status_code in (404, 405):
        detail = f"{detail}: {request.method} {request.url.path}"
    return error_response(exc.status_code, code, detail, headers=exc.headers)


exception_handlers: dict[Any, Any] = {
    ApiError: _api_error,
    ValidationError: _validation_error,
    HTTPException: _http_exception,
}
"""Starlette exception handlers that turn errors into the JSON envelope."""
