"""Users with passwords and the OAuth2 token endpoint (PROTOCOL §3.1, §3.4, §3.5).

- Passwords are hashed with argon2id (``argon2-cffi``); only the PHC hash string is stored and a
  password is never logged.
- ``POST /api/v3/token`` (form-encoded) answers the ``password`` and ``refresh_token`` grants with
  standard OAuth2 token JSON. Access tokens expire (default 1 hour); refresh tokens last 30 days
  and are single-use (each refresh answers a new pair and spends the old refresh token).
- ``POST /api/v3/token/revoke`` spends a refresh token (or ends an access token) and always
  answers 200 (RFC 7009).
- API tokens keep working beside these tokens (they are looked up first).
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from etiket_local_server.catalog import (
    AccessToken,
    ApiToken,
    Catalog,
    ScopeMember,
    User,
    UserPassword,
    hash_token,
    utcnow,
)
from etiket_local_server.context import get_context
from etiket_local_server.errors import ApiError

__all__ = [
    "DEFAULT_ACCESS_TOKEN_TTL",
    "DEFAULT_REFRESH_TOKEN_TTL",
    "MIN_PASSWORD_LENGTH",
    "UserSummary",
    "add_user",
    "list_users",
    "remove_user",
    "routes",
    "verify_password",
]

DEFAULT_ACCESS_TOKEN_TTL = 3600.0
"""Seconds an access token from ``POST /api/v3/token`` is valid."""
DEFAULT_REFRESH_TOKEN_TTL = 30 * 24 * 3600.0
"""Seconds a refresh token is valid (it is also spent by its first use)."""
MIN_PASSWORD_LENGTH = 6
"""Shortest accepted password (the platform's user model asks for at least 6 characters)."""

_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verifying against this keeps "no such user" as slow as "wrong password"."""
    return _HASHER.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class UserSummary:
    """One user as ``user list`` shows it."""

    sub: str
    role: str
    is_enabled: bool
    has_password: bool
    api_tokens: int
    created: datetime


def add_user(
    catalog: Catalog,
    sub: str,
    password: str,
    *,
    role: str = "user",
    email: str | None = None,
    replace: bool = False,
) -> None:
    """Create user ``sub`` with ``password`` (or, with ``replace``, set a new password).

    Raises ``ValueError`` when the password is too short or the user exists with a password and
    ``replace`` is false.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    if not sub or len(sub) > 200:
        raise ValueError("a user name has 1 to 200 characters")
    catalog.ensure_user(sub, role=role, email=email)
    digest = _HASHER.hash(password)
    with catalog.session() as session:
        row = session.get(UserPassword, sub)
        if row is not None and not replace:
            raise ValueError(f"user {sub!r} already has a password (use --replace to change it)")
        if row is None:
            session.add(UserPassword(sub=sub, password_hash=digest))
        else:
            row.password_hash = digest
            row.modified = utcnow()
            # a new password ends every session opened with the old one
            session.execute(delete(AccessToken).where(AccessToken.sub == sub))


def verify_password(catalog: Catalog, sub: str, password: str) -> bool:
    """Whether ``password`` is the password of the enabled user ``sub``."""
    with catalog.session() as session:
        row = session.get(UserPassword, sub)
        user = session.get(User, sub)
        stored = row.password_hash if row is not None else _dummy_hash()
        try:
            ok: bool = _HASHER.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if not ok or row is None or user is None or not user.is_enabled:
            return False
        if _HASHER.check_needs_rehash(stored):
            row.password_hash = _HASHER.hash(password)
        return True


def list_users(catalog: Catalog) -> list[UserSummary]:
    """Every user, by name."""
    with catalog.session() as session:
        users = list(session.scalars(select(User).order_by(User.sub)))
        with_password = set(session.scalars(select(UserPassword.sub)))
        token_owners = list(session.scalars(select(ApiToken.owner)))
        return [
            UserSummary(
                sub=user.sub,
                role=user.role,
                is_enabled=user.is_enabled,
                has_password=user.sub in with_password,
                api_tokens=token_owners.count(user.sub),
                created=user.created,
            )
            for user in users
        ]


def remove_user(catalog: Catalog, sub: str) -> None:
    """Remove user ``sub``: its password, API tokens, sessions and scope memberships.

    Datasets and files the user created stay. Raises ``ValueError`` for an unknown user.
    """
    with catalog.session() as session:
        if session.get(User, sub) is None:
            raise ValueError(f"no user named {sub!r}")
        session.execute(delete(UserPassword).where(UserPassword.sub == sub))
        session.execute(delete(AccessToken).where(AccessToken.sub == sub))
        session.execute(delete(ApiToken).where(ApiToken.owner == sub))
        session.execute(delete(ScopeMember).where(ScopeMember.user_sub == sub))
        session.execute(delete(User).where(User.sub == sub))
    catalog.known_members = {key for key in catalog.known_members if key[1] != sub}


def _oauth_error(status: int, error: str, description: str) -> ApiError:
    failure = ApiError(status, error, description)
    failure.extra = {"error_description": description}
    return failure


async def _form(request: Request) -> dict[str, str]:
    raw = (await request.body()).decode("utf-8", errors="replace")
    return {key: values[0] for key, values in parse_qs(raw, keep_blank_values=True).items()}


def _issue(request: Request, sub: str) -> Response:
    ctx = get_context(request)
    access, refresh = "eat_" + secrets.token_urlsafe(32), "ert_" + secrets.token_urlsafe(32)
    now = utcnow()
    with ctx.catalog.session() as session:
        session.add_all(
            [
                AccessToken(
                    token_hash=hash_token(access),
                    kind="access",
                    sub=sub,
                    expires=now + timedelta(seconds=ctx.access_token_ttl),
                ),
                AccessToken(
                    token_hash=hash_token(refresh),
                    kind="refresh",
                    sub=sub,
                    expires=now + timedelta(seconds=ctx.refresh_token_ttl),
                ),
            ]
        )
    return JSONResponse(
        {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": int(ctx.access_token_ttl),
            "refresh_token": refresh,
            # no "scope": oauthlib raises "Scope has changed" when an answer names a scope the
            # request did not ask for, and the platform's client asks for none
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


async def token(request: Request) -> Response:
    """``POST /api/v3/token``: the OAuth2 ``password`` and ``refresh_token`` grants."""
    form = await _form(request)
    grant = form.get("grant_type", "")
    ctx = get_context(request)
    if grant == "password":
        sub, password = form.get("username", ""), form.get("password", "")
        if not sub or not password:
            raise _oauth_error(400, "invalid_request", "username and password are required")
        if not await ctx.run(verify_password, ctx.catalog, sub, password):
            raise _oauth_error(400, "invalid_grant", "invalid user name or password")
        return _issue(request, sub)
    if grant == "refresh_token":
        presented = form.get("refresh_token", "")
        if not presented:
            raise _oauth_error(400, "invalid_request", "refresh_token is required")
        with ctx.catalog.session() as session:
            row = session.get(AccessToken, hash_token(presented))
            if row is None or row.kind != "refresh" or row.used or utcnow() >= row.expires:
                raise _oauth_error(
                    400, "invalid_grant", "the refresh token is invalid, expired or already used"
                )
            user = session.get(User, row.sub)
            if user is None or not user.is_enabled:
                raise _oauth_error(400, "invalid_grant", "the token's user is disabled")
            row.used = True
            sub = row.sub
        return _issue(request, sub)
    raise _oauth_error(
        400, "unsupported_grant_type", f"grant_type {grant!r}: use password or refresh_token"
    )


async def revoke(request: Request) -> Response:
    """``POST /api/v3/token/revoke``: end a refresh or access token; always 200 (RFC 7009)."""
    form = await _form(request)
    presented = form.get("token", "")
    if presented:
        with get_context(request).catalog.session() as session:
            row = session.get(AccessToken, hash_token(presented))
            if row is not None:
                row.used = True
                row.expires = min(row.expires, utcnow())
        get_context(request).token_cache.pop(hash_token(presented), None)
    return Response(status_code=200)


def routes() -> list[Route]:
    """The routes of this module."""
    return [
        Route("/api/v3/token", token, methods=["POST"]),
        Route("/api/v3/token/revoke", revoke, methods=["POST"]),
    ]
