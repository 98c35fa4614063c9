"""Identity, scopes, API tokens and version endpoints (``/api/v3`` and ``/api/v2/version``)."""

from __future__ import annotations

import secrets
import uuid as uuid_module

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from etiket_local_server import __version__
from etiket_local_server.catalog import ApiToken, Scope, ScopeMember, hash_token
from etiket_local_server.context import (
    authenticate,
    authenticated,
    current_user,
    get_context,
    parse_body,
    query_str,
    require_scope,
)
from etiket_local_server.errors import ApiError
from etiket_local_server.schemas import (
    ApiTokenCreate,
    ScopeCreate,
    iso,
    scope_read,
    user_read,
)

__all__ = ["API_VERSION", "routes"]

API_VERSION = "2.0.0"
"""What ``GET /api/v2/version/API/`` answers."""


async def api_root(_request: Request) -> Response:
    """Reachability probe: any JSON answer proves the server is reached."""
    return JSONResponse(
        {"service": "etiket-local-server", "version": __version__, "api_version": API_VERSION}
    )


async def api_version(_request: Request) -> Response:
    """The API version as a bare JSON string."""
    return JSONResponse(API_VERSION)


async def userinfo(request: Request) -> Response:
    """OpenID-style userinfo of whoever's token was presented."""
    with get_context(request).catalog.session() as session:
        user = authenticate(request, session, mark_validated=True)
        return JSONResponse(
            {
                "sub": user.sub,
                "email": user.email,
                "given_name": user.firstname,
                "family_name": user.lastname,
            }
        )


async def me(request: Request) -> Response:
    """``UserRead`` of the caller."""
    return JSONResponse(user_read(current_user(request)))


async def list_scopes(request: Request) -> Response:
    """Scopes the caller belongs to, optionally only the one named ``name`` (exact match)."""
    name = query_str(request, "name", required=False)
    with get_context(request).catalog.session() as session:
        user = current_user(request)
        query = (
            select(Scope)
            .join(ScopeMember, ScopeMember.scope_uuid == Scope.uuid)
            .where(ScopeMember.user_sub == user.sub)
            .order_by(Scope.name)
        )
        if name is not None:
            query = query.where(Scope.name == name)
        return JSONResponse([scope_read(scope) for scope in session.scalars(query)])


async def read_scope(request: Request) -> Response:
    """One scope by uuid (404 unknown, 403 not a member)."""
    raw = request.path_params["scope_uuid"]
    try:
        scope_uuid = str(uuid_module.UUID(raw))
    except ValueError as exc:
        raise ApiError(422, "validation_error", f"scope_uuid: {raw!r} is not a UUID") from exc
    with get_context(request).catalog.session() as session:
        user = current_user(request)
        return JSONResponse(scope_read(require_scope(session, user, scope_uuid)))


async def create_scope(request: Request) -> Response:
    """Create a scope; the caller becomes its member."""
    body = await parse_body(request, ScopeCreate)
    with get_context(request).catalog.session() as session:
        user = current_user(request)
        new_uuid = str(body.uid) if body.uid else str(uuid_module.uuid4())
        if session.get(Scope, new_uuid) is not None:
            raise ApiError(409, "scope_uid_in_use", f"a scope with uuid {new_uuid} already exists")
        if session.scalar(select(Scope.uuid).where(Scope.name == body.name)) is not None:
            raise ApiError(409, "scope_name_in_use", f"a scope named {body.name!r} already exists")
        scope = Scope(
            uuid=new_uuid,
            name=body.name,
            description=body.description,
            is_restricted=body.is_restricted,
            is_archived=body.is_archived,
            bucket_uuid=str(body.bucket_uuid) if body.bucket_uuid else None,
        )
        session.add(scope)
        session.flush()
        session.add(ScopeMember(scope_uuid=new_uuid, user_sub=user.sub))
        return JSONResponse(scope_read(scope), status_code=201)


async def create_api_token(request: Request) -> Response:
    """Create an API token for the caller; the secret is shown only in this answer."""
    body = await parse_body(request, ApiTokenCreate)
    with get_context(request).catalog.session() as session:
        user = current_user(request)
        clash = session.scalar(
            select(ApiToken.uid).where(ApiToken.owner == user.sub, ApiToken.name == body.name)
        )
        if clash is not None:
            raise ApiError(
                409,
                "api_token_name_already_exists",
                f"user {user.sub!r} already has an API token named {body.name!r}",
            )
        secret = "elt_" + secrets.token_urlsafe(32)
        uid = str(uuid_module.uuid4())
        session.add(
            ApiToken(uid=uid, name=body.name, owner=user.sub, token_hash=hash_token(secret))
        )
        return JSONResponse(
            {"uid": uid, "name": body.name, "api_token": secret, "owner": user.sub},
            status_code=201,
        )


async def list_api_tokens(request: Request) -> Response:
    """The caller's API tokens (or user ``sub``'s, for admins)."""
    sub = query_str(request, "sub", required=False)
    with get_context(request).catalog.session() as session:
        user = current_user(request)
        owner = sub or user.sub
        if owner != user.sub and user.role not in ("admin", "superuser"):
            raise ApiError(
                403,
                "api_token_access_denied",
                f"user {user.sub!r} may not list the API tokens of {owner!r}",
            )
        rows = session.scalars(
            select(ApiToken).where(ApiToken.owner == owner).order_by(ApiToken.created)
        )
        return JSONResponse(
            [
                {
                    "uid": row.uid,
                    "name": row.name,
                    "owner": row.owner,
                    "created": iso(row.created),
                    "last_validated": iso(row.last_validated),
                }
                for row in rows
            ]
        )


async def delete_api_token(request: Request) -> Response:
    """Revoke one of the caller's API tokens."""
    uid = request.path_params["uid"]
    with get_context(request).catalog.session() as session:
        user = current_user(request)
        row = session.get(ApiToken, uid)
        if row is None:
            raise ApiError(404, "api_token_not_found", f"API token {uid} does not exist")
        if row.owner != user.sub and user.role not in ("admin", "superuser"):
            raise ApiError(
                403, "api_token_access_denied", f"API token {uid} belongs to another user"
            )
        session.delete(row)
    get_context(request).token_cache.clear()
    return Response(status_code=204)


def routes() -> list[Route]:
    """The routes of this module."""
    return [
        Route("/api/v3/", api_root, methods=["GET"]),
        Route("/api/v3/token/userinfo", userinfo, methods=["GET"]),
        Route("/api/v3/me", authenticated(me), methods=["GET"]),
        Route("/api/v3/scopes", authenticated(list_scopes), methods=["GET"]),
        Route("/api/v3/scopes", authenticated(create_scope), methods=["POST"]),
        Route("/api/v3/scopes/{scope_uuid}", authenticated(read_scope), methods=["GET"]),
        Route("/api/v3/api-tokens", authenticated(create_api_token), methods=["POST"]),
        Route("/api/v3/api-tokens", authenticated(list_api_tokens), methods=["GET"]),
        Route("/api/v3/api-tokens/{uid}", authenticated(delete_api_token), methods=["DELETE"]),
        Route("/api/v2/version/API/", api_version, methods=["GET"]),
    ]
