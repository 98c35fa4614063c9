"""Shared server state and the helpers every route uses (auth, scope checks, parameters)."""

from __future__ import annotations

import asyncio
import functools
import time
import uuid as uuid_module
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from etiket_local_server.catalog import (
    AccessToken,
    ApiToken,
    Catalog,
    FileVersion,
    Scope,
    User,
    hash_token,
    utcnow,
)
from etiket_local_server.errors import ApiError
from etiket_local_server.faults import FaultInjector
from etiket_local_server.objects import ObjectStore, WholeFileHasher
from etiket_local_server.schemas import file_read
from etiket_local_server.signing import UrlSigner

__all__ = [
    "ServerContext",
    "authenticate",
    "authenticated",
    "base_url",
    "current_user",
    "get_context",
    "parse_body",
    "query_int",
    "query_str",
    "query_uuid",
    "require_member",
    "require_scope",
]

M = TypeVar("M", bound=BaseModel)

_LAST_VALIDATED_EVERY = timedelta(seconds=60)
_TOKEN_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class _CachedToken:
    checked: float
    name: str
    created: datetime
    user: User
    expires: datetime | None = None


@dataclass
class ServerContext:
    """Everything a request handler needs; one per app (``request.app.state.ctx``)."""

    catalog: Catalog
    store: ObjectStore
    signer: UrlSigner
    injector: FaultInjector
    executor: ThreadPoolExecutor
    ui_requires_auth: bool
    access_token_ttl: float = 3600.0
    refresh_token_ttl: float = 30 * 24 * 3600.0
    hashers: dict[str, WholeFileHasher] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    completing: set[str] = field(default_factory=set)
    token_cache: dict[str, _CachedToken] = field(default_factory=dict)
    _locks: weakref.WeakValueDictionary[str, asyncio.Lock] = field(
        default_factory=weakref.WeakValueDictionary
    )

    def version_lock(self, file_uuid: str, version_id: int) -> asyncio.Lock:
        """The lock serialising validation and aborts of one file version."""
        key = f"{file_uuid}:{version_id}"
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    async def run(self, func: Any, *args: Any) -> Any:
        """Run blocking file work in the server's worker threads."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, func, *args)

    def download_link(self, request: Request, file: FileVersion) -> tuple[str, float] | None:
        """Presigned download URL and expiry of a secured version (None before that)."""
        if file.status != "secured":
            return None
        path = f"/_store/get/{file.uuid}/{file.version_id}"
        signed, expires = self.signer.sign("GET", path, {"filename": file.filename})
        return f"{base_url(request)}{signed}", expires

    def file_payload(self, request: Request, file: FileVersion) -> dict[str, Any]:
        """``FileRead`` of a version, with its download link."""
        return file_read(file, self.download_link(request, file))


def get_context(request: Request) -> ServerContext:
    """The :class:`ServerContext` of the app serving ``request``."""
    ctx: ServerContext = request.app.state.ctx
    return ctx


def base_url(request: Request) -> str:
    """Scheme, host and port as the client addressed the server, without a trailing slash."""
    return str(request.base_url).rstrip("/")


_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401,
            "token_invalid",
            "missing bearer token: send 'Authorization: Bearer <API token>'",
            headers=_CHALLENGE,
        )
    return token


def _refuse_expired(ctx: ServerContext, name: str, created: datetime) -> None:
    if ctx.injector.token_expired((utcnow() - created).total_seconds()):
        raise ApiError(
            401,
            "token_invalid",
            f"the API token {name!r} expired (token lifetime "
            f"{ctx.injector.config.token_ttl_seconds} s)",
            headers=_CHALLENGE,
        )


def _refuse_expired_access(expires: datetime) -> None:
    if utcnow() >= expires:
        raise ApiError(
            401,
            "token_invalid",
            "the access token expired: refresh it (POST /api/v3/token, grant_type=refresh_token)",
            headers=_CHALLENGE,
        )


def _authenticate_access_token(ctx: ServerContext, session: Session, digest: str) -> User:
    access = session.get(AccessToken, digest)
    if access is None or access.kind != "access":
        raise ApiError(
            401, "token_invalid", "the bearer token is not a valid token", headers=_CHALLENGE
        )
    _refuse_expired_access(access.expires)
    user = session.get(User, access.sub)
    if user is None or not user.is_enabled:
        raise ApiError(401, "token_invalid", "the token's user does not exist or is disabled")
    ctx.token_cache[digest] = _CachedToken(
        time.monotonic(), "access token", access.created, user, access.expires
    )
    return user


def authenticate(request: Request, session: Session, *, mark_validated: bool = False) -> User:
    """The user owning the request's bearer token (an API token or an access token issued by
    ``POST /api/v3/token``), or a 401 ``token_invalid``."""
    digest = hash_token(_bearer_token(request))
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if row is None:
        return _authenticate_access_token(get_context(request), session, digest)
    ctx = get_context(request)
    _refuse_expired(ctx, row.name, row.created)
    user = session.get(User, row.owner)
    if user is None or not user.is_enabled:
        raise ApiError(401, "token_invalid", "the token's user does not exist or is disabled")
    now = utcnow()
    if (
        mark_validated
        or row.last_validated is None
        or now - row.last_validated > (_LAST_VALIDATED_EVERY)
    ):
        row.last_validated = now
    ctx.token_cache[digest] = _CachedToken(time.monotonic(), row.name, row.created, user)
    return user


def current_user(request: Request) -> User:
    """The authenticated user of ``request``.

    Tokens seen in the last few seconds are answered from memory (revoking a token through the
    API clears that memory), so most requests need no catalog query for authentication.
    """
    user: User | None = getattr(request.state, "user", None)
    if user is not None:
        return user
    ctx = get_context(request)
    cached = ctx.token_cache.get(hash_token(_bearer_token(request)))
    if cached is not None and time.monotonic() - cached.checked < _TOKEN_CACHE_SECONDS:
        if cached.expires is not None:
            _refuse_expired_access(cached.expires)
        else:
            _refuse_expired(ctx, cached.name, cached.created)
        user = cached.user
    else:
        with ctx.catalog.session() as session:
            user = authenticate(request, session)
    request.state.user = user
    return user


Handler = Callable[[Request], Awaitable[Response]]


def authenticated(handler: Handler) -> Handler:
    """Wrap a route handler so that the bearer token is checked before anything else (401 first,
    as with FastAPI's security dependencies, then parameter and body validation)."""

    @functools.wraps(handler)
    async def wrapper(request: Request) -> Response:
        current_user(request)
        return await handler(request)

    return wrapper


def require_scope(session: Session, user: User, scope_uuid: str) -> Scope:
    """The scope, if it exists (404 ``scope_not_found``) and ``user`` is a member (403)."""
    scope = session.get(Scope, scope_uuid)
    if scope is None:
        raise ApiError(404, "scope_not_found", f"scope {scope_uuid} does not exist")
    require_member(session, user, scope_uuid)
    return scope


def require_member(session: Session, user: User, scope_uuid: str) -> None:
    """403 ``scope_access_denied`` unless ``user`` belongs to the scope."""
    catalog: Catalog = session.info["catalog"]
    if not catalog.is_member(session, scope_uuid, user.sub):
        raise ApiError(
            403,
            "scope_access_denied",
            f"user {user.sub!r} has no access to scope {scope_uuid}",
        )


def _invalid(name: str, message: str) -> ApiError:
    error = ApiError(422, "validation_error", f"{name}: {message}")
    error.extra = {"fields": [name]}
    return error


def query_str(request: Request, name: str, *, required: bool = True) -> str | None:
    """A query parameter (422 naming it when required and missing)."""
    value = request.query_params.get(name)
    if value is None or value == "":
        if required:
            raise _invalid(name, "query parameter is required")
        return None
    return value


def query_uuid(request: Request, name: str, *, required: bool = True) -> str | None:
    """A query parameter that must be a UUID, normalised to its canonical form."""
    value = query_str(request, name, required=required)
    if value is None:
        return None
    try:
        return str(uuid_module.UUID(value))
    except ValueError as exc:
        raise _invalid(name, f"{value!r} is not a valid UUID") from exc


def query_int(
    request: Request,
    name: str,
    *,
    required: bool = True,
    default: int | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    """A query parameter that must be an integer within bounds."""
    value = query_str(request, name, required=required and default is None)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise _invalid(name, f"{value!r} is not an integer") from exc
    if minimum is not None and number < minimum:
        raise _invalid(name, f"must be >= {minimum}")
    if maximum is not None and number > maximum:
        raise _invalid(name, f"must be <= {maximum}")
    return number


async def parse_body(request: Request, model: type[M]) -> M:
    """The JSON body validated as ``model`` (422 ``validation_error`` naming the fields)."""
    raw = await request.body()
    return model.model_validate_json(raw or b"null")
