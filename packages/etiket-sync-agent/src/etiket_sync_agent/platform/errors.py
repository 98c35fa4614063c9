"""One error hierarchy for everything the eTiKeT server, an object store or the network can answer.

Every error keeps the server's ``error`` code (:attr:`EtiketError.code`) and ``detail``
(:attr:`EtiketError.detail`) and the HTTP status. Messages never contain the API token (the client
scrubs it from anything the server echoes) and presigned URLs are shown without their query string,
which holds the signature.

```
EtiketError
├── AuthError               401, or 403 with a token error code (invalid, revoked, expired)
├── PermissionDeniedError   403 (authenticated, not allowed)
├── NotFoundError           404
├── ConflictError           409
├── ValidationFailedError   422
├── ServerError             5xx, and 429 once the retries ran out
├── NetworkError            connection errors, timeouts, intermediaries (PROTOCOL §4)
│   ├── ConnectionBlockedError  an HTML page from a proxy/VPN/captive portal; server unreachable
│   └── RequestRejectedError    an HTML page from a WAF while the server itself is reachable
└── UploadError             bytes could not be stored
    ├── ChecksumMismatchError   the store or server saw other bytes than were sent
    └── FileChangedError        the source file changed while it was uploaded
```
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

from etiket_sync_agent.errors import EtiketSyncError

__all__ = [
    "TOKEN_ERROR_CODES",
    "AuthError",
    "ChecksumMismatchError",
    "ConflictError",
    "ConnectionBlockedError",
    "EtiketError",
    "FileChangedError",
    "NetworkError",
    "NotFoundError",
    "PermissionDeniedError",
    "RequestRejectedError",
    "ServerError",
    "UploadError",
    "ValidationFailedError",
    "error_for_status",
    "install_log_redaction",
    "redact_presigned",
    "redact_url",
    "scrub",
]

TOKEN_ERROR_CODES = frozenset(
    {
        "token_invalid",
        "token_revoked",
        "token_expired",
        "token_user_create_failed",
        "invalid_token",
        "invalid_grant",
    }
)
"""Server error codes that mean "this credential is not accepted" (→ :class:`AuthError`)."""

_QUERY = re.compile(r"\?[^\s'\"<>]*")
_MASK = "********"


def redact_url(url: str) -> str:
    """``url`` without its query string (presigned URLs carry their signature there)."""
    return _QUERY.sub("?…", url)


_URL_WITH_QUERY = re.compile(r"(?P<base>https?://[^\s?#'\"<>]+)\?(?P<query>[^\s#'\"<>]*)")
_SIGNATURE_KEYS = frozenset(
    {
        "sig",  # this project's local store, Azure SAS
        "signature",
        "x-amz-signature",  # S3 SigV4
        "x-amz-credential",
        "x-amz-security-token",
        "awsaccesskeyid",  # S3 SigV2
        "se",  # Azure SAS expiry (+ sig)
        "skoid",
        "key-pair-id",  # CloudFront
        "policy",
        "token",
        "access_token",
        "temp_url_sig",  # OpenStack Swift
    }
)


def _looks_presigned(query: str) -> bool:
    for pair in query.split("&"):
        key = pair.split("=", 1)[0].strip().lower()
        if key in _SIGNATURE_KEYS:
            return True
    return False


def redact_presigned(text: str) -> str:
    """``text`` with the query string of every presigned URL in it replaced by ``?…``.

    A URL counts as presigned when its query has a signature or credential parameter (S3 SigV2
    and SigV4, Azure SAS, Swift temp URLs, CloudFront, this project's local store); ordinary API
    URLs (``?dataset_uuid=...``) are left alone.
    """
    if "?" not in text or "://" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        if _looks_presigned(match.group("query")):
            return f"{match.group('base')}?…"
        return match.group(0)

    return _URL_WITH_QUERY.sub(replace, text)


_installed = threading.Lock()
_factory_installed = False


def install_log_redaction() -> None:
    """Redact presigned URLs (:func:`redact_presigned`) in every log record of this process.

    httpx logs each request line with its full URL at INFO (shown with ``-v``); for its lifetime
    a presigned URL is a credential, so records are rewritten as they are created, whichever
    logger or handler is used. Idempotent.
    """
    global _factory_installed
    with _installed:
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            try:
                message = record.getMessage()
            except Exception:  # a broken format string: leave it to the handler to report
                return record
            redacted = redact_presigned(message)
            if redacted != message:
                record.msg, record.args = redacted, ()
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of each secret (of 4+ characters) replaced by a mask."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, _MASK)
    return text


class EtiketError(EtiketSyncError):
    """An error answer of the eTiKeT server or an object store, or a failure to reach them.

    Attributes:
        status: the HTTP status (``None`` when no answer arrived).
        code: the server's snake_case ``error`` code (``None`` when it sent none).
        detail: the server's ``detail`` (a message, or FastAPI's list of field errors).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        detail: Any = None,
    ) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        super().__init__(message)

    @property
    def error(self) -> str | None:
        """The server's ``error`` code (alias of :attr:`code`, named as on the wire)."""
        return self.code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, status={self.status!r}, code={self.code!r})"


class AuthError(EtiketError):
    """The token is missing, invalid, expired or revoked (401, or 403 with a token error code)."""


class PermissionDeniedError(EtiketError):
    """403: authenticated, but not allowed (e.g. a scope the user is not a member of)."""


class NotFoundError(EtiketError):
    """404: the scope, dataset, file version or upload does not exist."""


class ConflictError(EtiketError):
    """409: the record exists with other content, or an immutable version was touched."""


class ValidationFailedError(EtiketError):
    """422: the request was rejected as malformed; the detail names the field."""


class ServerError(EtiketError):
    """5xx, or 429 (rate limited) once the retries ran out."""


class NetworkError(EtiketError):
    """The server could not be reached: connection refused or reset, timeout, DNS, TLS, or an
    intermediary answered instead of the server. Callers treat it as "offline, retry later"."""


class ConnectionBlockedError(NetworkError):
    """An HTML page from a proxy, VPN or captive portal answered and the server is unreachable."""


class RequestRejectedError(NetworkError):
    """A web application firewall rejected this request's content (the server is reachable)."""


class UploadError(EtiketError):
    """File bytes could not be uploaded after the retries."""


class ChecksumMismatchError(UploadError):
    """What the store or server received differs from what was sent."""


class FileChangedError(UploadError):
    """The source file changed while it was uploaded; the version was not marked done."""


def _status_class(status: int, code: str | None) -> type[EtiketError]:
    if status == 401 or (status == 403 and code in TOKEN_ERROR_CODES):
        return AuthError
    if status == 403:
        return PermissionDeniedError
    if status == 404:
        return NotFoundError
    if status == 409:
        return ConflictError
    if status == 422:
        return ValidationFailedError
    if status >= 500 or status == 429:
        return ServerError
    return EtiketError


def error_for_status(
    status: int,
    body: Any,
    method: str,
    url: str,
    *,
    secrets: Iterable[str | None] = (),
) -> EtiketError:
    """Map an error answer to the hierarchy, keeping the server's code and detail.

    The class follows the HTTP status, as with the platform's client: a 404 without an
    ``error`` key is a :class:`NotFoundError` (a dataset read then answers "none"), and a code
    this client does not know never changes the class (it is kept in ``code``).

    ``body`` is the parsed JSON (or the raw text); ``secrets`` are scrubbed from the message and
    the detail, and ``url`` is shown without its query string.
    """
    secret_list = list(secrets)
    code: str | None = None
    detail: Any = None
    if isinstance(body, dict):
        # ``error``: the platform's codes (§4); ``reason``: the local server's own, finer codes
        raw_code = body.get("error")
        if not isinstance(raw_code, str):
            raw_code = body.get("reason")
        code = raw_code if isinstance(raw_code, str) else None
        detail = body.get("detail")
    elif isinstance(body, str):
        detail = body[:500]
    if isinstance(detail, str):
        detail = scrub(detail, secret_list)
    text = detail if isinstance(detail, str) else ("" if detail is None else str(detail))
    message = f"{method} {redact_url(url)} → {status}"
    text = redact_presigned(text)
    if code:
        message += f" {code}"
    if text:
        message += f": {text}"
    cls = _status_class(status, code)
    return cls(scrub(message, secret_list), status=status, code=code, detail=detail)
