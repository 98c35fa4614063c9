"""The error envelope, as the platform's client reads it (PROTOCOL §4 and §0.6).

Every error answer is JSON with a ``detail`` message. Only the codes the platform's client knows
(:data:`PLATFORM_ERROR_CODES`, PROTOCOL §4) are sent as ``error``: that client maps ``error`` to a
typed exception and any code it does not know to a generic failure, so an ``error`` key on, say,
a 404 "dataset not found" would turn "not found" into an error there. Our own, more precise codes
(``dataset_not_found``, ``checksum_mismatch``, ``upload_busy``, ...) travel as ``reason``, which
that client ignores and ours reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = [
    "PLATFORM_ERROR_CODES",
    "ApiError",
    "error_response",
    "exception_handlers",
    "validation_detail",
]

PLATFORM_ERROR_CODES = frozenset(
    {
        # OAuth2
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "access_denied",
        "unsupported_response_type",
        "temporarily_unavailable",
        # token auth
        "token_invalid",
        "token_revoked",
        "token_user_create_failed",
        # API tokens
        "api_token_not_found",
        "api_token_access_denied",
        "api_token_name_already_exists",
        # scopes
        "scope_not_found",
        "scope_access_denied",
        "scope_uid_in_use",
        # users
        "user_sub_already_exists",
        "user_mail_already_exists",
        "user_not_found",
        "users_not_found",
        "user_is_disabled",
        "user_cannot_self_delete",
        # user groups
        "usergroup_not_found",
        "usergroup_name_already_exists",
        "usergroup_uid_already_exists",
        "usergroup_cannot_modify_external",
        # permissions, bug reports, general
        "permissions_insufficient",
        "bug_report_send_failed",
        "attachment_too_large",
        "invalid_attachment",
        "server_error",
    }
)
"""The error codes of PROTOCOL §4: the only ones sent under the ``error`` key."""


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
    """A JSON error envelope response: ``error`` for the codes of :data:`PLATFORM_ERROR_CODES`,
    ``reason`` for every other code."""
    key = "error" if error in PLATFORM_ERROR_CODES else "reason"
    body: dict[str, Any] = {key: error, "detail": detail}
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
