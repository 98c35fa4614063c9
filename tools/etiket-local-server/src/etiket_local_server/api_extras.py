"""Endpoints the platform's client calls besides datasets and files (PROTOCOL §0.3-0.5).

- ``GET /api/v2/schemas/`` and ``GET /api/v2/schema/``: this server keeps no schemas (they are
  advisory on the platform too, §6.3), so the list is empty and a schema read is a 404.
- ``GET /api/v3/scopes/{uuid}/bucket``: every scope lives in this server's own object store.
- ``POST /api/v2/datasets/attributes/``: per attribute key, the values present in a selection.
"""

from __future__ import annotations

import uuid as uuid_module
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from etiket_local_server.catalog import Dataset, DatasetAttribute, ScopeMember
from etiket_local_server.context import (
    authenticated,
    base_url,
    current_user,
    get_context,
    parse_body,
    query_int,
    query_str,
    query_uuid,
    require_scope,
)
from etiket_local_server.errors import ApiError
from etiket_local_server.schemas import DatasetSelection

__all__ = ["BUCKET_NAME", "RESOURCE_TYPE", "routes"]

BUCKET_NAME = "etiket-local-server"
"""The name of the one bucket every scope of this server uses."""
RESOURCE_TYPE = "AWS"
"""The object-store type reported for the local store: it behaves like S3 (presigned PUT and GET,
``ETag`` = hex MD5)."""

_NAMESPACE = uuid_module.UUID("6f0b7c1e-3d1e-4a8e-9c55-0d3c1f3b2a10")


async def list_schemas(request: Request) -> Response:
    """``GET /api/v2/schemas/?name&offset&limit``: always ``[]`` (no schemas are kept)."""
    query_str(request, "name", required=False)
    query_int(request, "offset", default=0, minimum=0)
    query_int(request, "limit", default=100, minimum=0)
    return JSONResponse([])


async def read_schema(request: Request) -> Response:
    """``GET /api/v2/schema/?schema_uuid``: 404 (``{"detail"}`` only, no error code)."""
    schema_uuid = query_uuid(request, "schema_uuid")
    raise ApiError(404, "schema_not_found", f"schema {schema_uuid} does not exist")


def _bucket_uuid(request: Request) -> str:
    return str(uuid_module.uuid5(_NAMESPACE, str(get_context(request).catalog.data_dir)))


async def scope_bucket(request: Request) -> Response:
    """``GET /api/v3/scopes/{uuid}/bucket``: the bucket record of a scope the caller may see."""
    raw = request.path_params["scope_uuid"]
    try:
        scope_uuid = str(uuid_module.UUID(raw))
    except ValueError as exc:
        raise ApiError(422, "validation_error", f"scope_uuid: {raw!r} is not a UUID") from exc
    ctx = get_context(request)
    with ctx.catalog.session() as session:
        scope = require_scope(session, current_user(request), scope_uuid)
        bucket_uuid = scope.bucket_uuid or _bucket_uuid(request)
    resource_uuid = str(uuid_module.uuid5(_NAMESPACE, f"resource:{ctx.catalog.data_dir}"))
    return JSONResponse(
        {
            "name": BUCKET_NAME,
            "bucket_uuid": bucket_uuid,
            "resource": {
                "name": "local object store",
                "type": RESOURCE_TYPE,
                "resource_uuid": resource_uuid,
                "endpoint": f"{base_url(request)}/_store",
                "region": None,
            },
        }
    )


async def dataset_attributes(request: Request) -> Response:
    """``POST /api/v2/datasets/attributes/``: ``[{key: [values, sorted]}]`` for the selection."""
    body = await parse_body(request, DatasetSelection)
    with get_context(request).catalog.session() as session:
        user = current_user(request)
        if body.scope_uuids is None:
            scopes: Any = select(ScopeMember.scope_uuid).where(ScopeMember.user_sub == user.sub)
        else:
            scopes = [str(item) for item in body.scope_uuids]
            for scope_uuid in scopes:
                require_scope(session, user, scope_uuid)
        selected = select(Dataset.uuid).where(Dataset.scope_uuid.in_(scopes))
        for key, values in body.attributes.items():
            if not values:
                continue
            selected = selected.where(
                Dataset.uuid.in_(
                    select(DatasetAttribute.dataset_uuid).where(
                        DatasetAttribute.key == key, DatasetAttribute.value.in_(values)
                    )
                )
            )
        rows = session.execute(
            select(DatasetAttribute.key, DatasetAttribute.value)
            .where(DatasetAttribute.dataset_uuid.in_(selected))
            .distinct()
            .order_by(DatasetAttribute.key, DatasetAttribute.value)
        ).all()
    facets: dict[str, list[str]] = {}
    for key, value in rows:
        facets.setdefault(key, []).append(value)
    return JSONResponse([facets])


def routes() -> list[Route]:
    """The routes of this module."""
    return [
        Route("/api/v2/schemas/", authenticated(list_schemas), methods=["GET"]),
        Route("/api/v2/schema/", authenticated(read_schema), methods=["GET"]),
        Route("/api/v3/scopes/{scope_uuid}/bucket", authenticated(scope_bucket), methods=["GET"]),
        Route("/api/v2/datasets/attributes/", authenticated(dataset_attributes), methods=["POST"]),
    ]
