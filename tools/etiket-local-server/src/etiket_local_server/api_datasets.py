"""Dataset endpoints (``/api/v2/dataset/...`` and ``/api/v2/datasets/search/``)."""

from __future__ import annotations

import uuid as uuid_module
from typing import Any

from sqlalchemy import String, cast, delete, exists, or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import ColumnElement
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from etiket_local_server.catalog import (
    Dataset,
    DatasetAttribute,
    FileVersion,
    ScopeMember,
    User,
    utcnow,
)
from etiket_local_server.context import (
    ServerContext,
    authenticated,
    current_user,
    get_context,
    parse_body,
    query_int,
    query_str,
    query_uuid,
    require_member,
    require_scope,
)
from etiket_local_server.errors import ApiError
from etiket_local_server.schemas import (
    DatasetCreate,
    DatasetSearch,
    DatasetUpdate,
    dataset_read,
    to_utc_naive,
)

__all__ = ["dataset_payload", "routes"]

_SEARCH_LIMIT_MAX = 1000


def dataset_payload(ctx: ServerContext, request: Request, dataset: Dataset) -> dict[str, Any]:
    """``DatasetRead`` including every file version with its download link."""
    return dataset_read(dataset, [ctx.file_payload(request, file) for file in dataset.files])


def _alt_uid_error(alt_uid: str) -> ApiError:
    error = ApiError(
        422, "validation_error", f"alt_uid: must differ from the dataset uuid ({alt_uid})"
    )
    error.extra = {"fields": ["alt_uid"]}
    return error


def _alt_uid_taken(session: Session, scope_uuid: str, alt_uid: str, dataset_uuid: str) -> bool:
    other = session.scalar(
        select(Dataset.uuid).where(
            Dataset.scope_uuid == scope_uuid,
            Dataset.alt_uid == alt_uid,
            Dataset.uuid != dataset_uuid,
        )
    )
    return other is not None


def _set_attributes(dataset: Dataset, attributes: dict[str, str]) -> None:
    dataset.attributes = dict(attributes)
    dataset.attribute_rows = [
        DatasetAttribute(dataset_uuid=dataset.uuid, key=key, value=value)
        for key, value in attributes.items()
    ]


def _differences(dataset: Dataset, body: DatasetCreate) -> list[str]:
    wanted: dict[str, Any] = {
        "alt_uid": body.alt_uid,
        "collected": to_utc_naive(body.collected),
        "name": body.name,
        "description": body.description or "",
        "notes": body.notes or "",
        "keywords": list(body.keywords),
        "ranking": body.ranking,
        "attributes": dict(body.attributes),
    }
    stored: dict[str, Any] = {
        "alt_uid": dataset.alt_uid,
        "collected": dataset.collected,
        "name": dataset.name,
        "description": dataset.description or "",
        "notes": dataset.notes or "",
        "keywords": list(dataset.keywords or []),
        "ranking": dataset.ranking,
        "attributes": dict(dataset.attributes or {}),
    }
    return [key for key in wanted if wanted[key] != stored[key]]


async def create_dataset(request: Request) -> Response:
    """Create a dataset; the same uuid with identical content is an idempotent success (200)."""
    body = await parse_body(request, DatasetCreate)
    dataset_uuid = str(body.uuid)
    scope_uuid = str(body.scope_uuid)
    if body.alt_uid is not None and body.alt_uid == dataset_uuid:
        raise _alt_uid_error(body.alt_uid)
    ctx = get_context(request)
    with ctx.catalog.session() as session:
        user = current_user(request)
        require_scope(session, user, scope_uuid)
        existing = session.get(Dataset, dataset_uuid)
        if existing is not None:
            if existing.scope_uuid != scope_uuid:
                # which scope is not said: it may be one the caller has no access to
                raise ApiError(
                    409,
                    "dataset_already_exists",
                    f"dataset {dataset_uuid} already exists in another scope",
                )
            differences = _differences(existing, body)
            if differences:
                raise ApiError(
                    409,
                    "dataset_already_exists",
                    f"dataset {dataset_uuid} already exists with a different "
                    f"{', '.join(differences)}",
                )
            return JSONResponse(dataset_payload(ctx, request, existing), status_code=200)
        if body.alt_uid is not None and _alt_uid_taken(
            session, scope_uuid, body.alt_uid, dataset_uuid
        ):
            raise ApiError(
                409,
                "dataset_alt_uid_already_exists",
                f"alt_uid {body.alt_uid!r} is already used by another dataset in scope "
                f"{scope_uuid}",
            )
        now = utcnow()
        dataset = Dataset(
            uuid=dataset_uuid,
            scope_uuid=scope_uuid,
            alt_uid=body.alt_uid,
            collected=to_utc_naive(body.collected),
            name=body.name,
            creator=user.sub,  # who is authenticated, whatever the body claims
            description=body.description,
            notes=body.notes,
            keywords=list(body.keywords),
            ranking=body.ranking,
            created=now,
            modified=now,
        )
        _set_attributes(dataset, body.attributes)
        session.add(dataset)
        session.flush()
        session.refresh(dataset)
        return JSONResponse(dataset_payload(ctx, request, dataset), status_code=201)


def _load_dataset(session: Session, user: User, dataset_uuid: str) -> Dataset:
    dataset = session.get(Dataset, dataset_uuid)
    if dataset is None:
        raise ApiError(404, "dataset_not_found", f"dataset {dataset_uuid} does not exist")
    require_member(session, user, dataset.scope_uuid)
    return dataset


async def read_dataset(request: Request) -> Response:
    """``GET /dataset/?dataset_uuid&scope_uuid?``."""
    dataset_uuid = query_uuid(request, "dataset_uuid")
    scope_uuid = query_uuid(request, "scope_uuid", required=False)
    assert dataset_uuid is not None
    ctx = get_context(request)
    with ctx.catalog.session() as session:
        user = current_user(request)
        dataset = _load_dataset(session, user, dataset_uuid)
        if scope_uuid is not None and dataset.scope_uuid != scope_uuid:
            raise ApiError(
                404,
                "dataset_not_found",
                f"dataset {dataset_uuid} does not exist in scope {scope_uuid}",
            )
        return JSONResponse(dataset_payload(ctx, request, dataset))


async def read_dataset_by_alt_uid(request: Request) -> Response:
    """``GET /dataset/by_alt_uid/?dataset_alt_uid&scope_uuid``."""
    alt_uid = query_str(request, "dataset_alt_uid")
    scope_uuid = query_uuid(request, "scope_uuid")
    assert alt_uid is not None
    assert scope_uuid is not None
    ctx = get_context(request)
    with ctx.catalog.session() as session:
        user = current_user(request)
        require_scope(session, user, scope_uuid)
        dataset = session.scalar(
            select(Dataset).where(Dataset.scope_uuid == scope_uuid, Dataset.alt_uid == alt_uid)
        )
        if dataset is None:
            raise ApiError(
                404,
                "dataset_not_found",
                f"no dataset with alt_uid {alt_uid!r} in scope {scope_uuid}",
            )
        return JSONResponse(dataset_payload(ctx, request, dataset))


def _member_scopes(user: User) -> Any:
    return select(ScopeMember.scope_uuid).where(ScopeMember.user_sub == user.sub)


async def read_dataset_by_uuid_or_alt_uid(request: Request) -> Response:
    """``GET /dataset/by_uuid_or_alt_uid/``: 404 none, 406 when the alt_uid is in several scopes."""
    identifier = query_str(request, "dataset_uuid_or_uid")
    scope_uuid = query_uuid(request, "scope_uuid", required=False)
    assert identifier is not None
    ctx = get_context(request)
    with ctx.catalog.session() as session:
        user = current_user(request)
        if scope_uuid is not None:
            require_scope(session, user, scope_uuid)
        try:
            as_uuid: str | None = str(uuid_module.UUID(identifier))
        except ValueError:
            as_uuid = None
        if as_uuid is not None:
            dataset = session.get(Dataset, as_uuid)
            if dataset is not None and (scope_uuid is None or dataset.scope_uuid == scope_uuid):
                require_member(session, user, dataset.scope_uuid)
                return JSONResponse(dataset_payload(ctx, request, dataset))
        query = select(Dataset).where(Dataset.alt_uid == identifier)
        if scope_uuid is not None:
            query = query.where(Dataset.scope_uuid == scope_uuid)
        else:
            query = query.where(Dataset.scope_uuid.in_(_member_scopes(user)))
        matches = list(session.scalars(query.limit(3)))
        if not matches:
            where = f" in scope {scope_uuid}" if scope_uuid else ""
            raise ApiError(
                404, "dataset_not_found", f"no dataset with uuid or alt_uid {identifier!r}{where}"
            )
        if len(matches) > 1:
            raise ApiError(
                406,
                "dataset_ambiguous",
                f"{identifier!r} is the alt_uid of datasets in several scopes; pass scope_uuid",
            )
        return JSONResponse(dataset_payload(ctx, request, matches[0]))


async def update_dataset(request: Request) -> Response:
    """``PATCH /dataset/?dataset_uuid``: fields sent as ``null`` stay unchanged."""
    dataset_uuid = query_uuid(request, "dataset_uuid")
    assert dataset_uuid is not None
    body = await parse_body(request, DatasetUpdate)
    ctx = get_context(request)
    with ctx.catalog.session() as session:
        user = current_user(request)
        dataset = _load_dataset(session, user, dataset_uuid)
        if body.alt_uid is not None and body.alt_uid != dataset.alt_uid:
            if body.alt_uid == dataset_uuid:
                raise _alt_uid_error(body.alt_uid)
            if _alt_uid_taken(session, dataset.scope_uuid, body.alt_uid, dataset_uuid):
                raise ApiError(
                    409,
                    "dataset_alt_uid_already_exists",
                    f"alt_uid {body.alt_uid!r} is already used in scope {dataset.scope_uuid}",
                )
            dataset.alt_uid = body.alt_uid
        for field in ("name", "description", "notes", "ranking"):
            value = getattr(body, field)
            if value is not None:
                setattr(dataset, field, value)
        if body.keywords is not None:
            dataset.keywords = list(body.keywords)
        if body.attributes is not None:
            session.execute(
                delete(DatasetAttribute).where(DatasetAttribute.dataset_uuid == dataset_uuid)
            )
            dataset.attributes = dict(body.attributes)
            session.add_all(
                DatasetAttribute(dataset_uuid=dataset_uuid, key=key, value=value)
                for key, value in body.attributes.items()
            )
        dataset.modified = utcnow()
        session.flush()
        return JSONResponse(dataset_payload(ctx, request, dataset))


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _text_match(term: str) -> ColumnElement[bool]:
    pattern = _like(term)
    clauses: list[ColumnElement[bool]] = [
        Dataset.name.ilike(pattern, escape="\\"),
        Dataset.description.ilike(pattern, escape="\\"),
        Dataset.notes.ilike(pattern, escape="\\"),
        Dataset.alt_uid.ilike(pattern, escape="\\"),
        cast(Dataset.keywords, String).ilike(pattern, escape="\\"),
        cast(Dataset.attributes, String).ilike(pattern, escape="\\"),
    ]
    try:
        as_uuid = str(uuid_module.UUID(term))
    except ValueError:
        pass
    else:
        clauses.append(Dataset.uuid == as_uuid)
        clauses.append(
            exists(
                select(FileVersion.id).where(
                    FileVersion.uuid == as_uuid, FileVersion.ds_uuid == Dataset.uuid
                )
            )
        )
    return or_(*clauses)


async def search_datasets(request: Request) -> Response:
    """``POST /datasets/search/?offset&limit``, newest ``collected`` first."""
    offset = query_int(request, "offset", default=0, minimum=0)
    limit = query_int(request, "limit", default=100, minimum=0, maximum=_SEARCH_LIMIT_MAX)
    body = await parse_body(request, DatasetSearch)
    ctx = get_context(request)
    with ctx.catalog.session() as session:
        user = current_user(request)
        if body.scope_uuids is None:
            query = select(Dataset).where(Dataset.scope_uuid.in_(_member_scopes(user)))
        else:
            wanted = [str(item) for item in body.scope_uuids]
            for scope_uuid in wanted:
                require_scope(session, user, scope_uuid)
            query = select(Dataset).where(Dataset.scope_uuid.in_(wanted))
        query = query.where(Dataset.ranking >= body.ranking)
        if body.has_notes:
            query = query.where(Dataset.notes.is_not(None), Dataset.notes != "")
        if body.start_date is not None:
            query = query.where(Dataset.collected >= to_utc_naive(body.start_date))
        if body.end_date is not None:
            query = query.where(Dataset.collected <= to_utc_naive(body.end_date))
        for key, values in body.attributes.items():
            if not values:
                continue
            query = query.where(
                exists(
                    select(DatasetAttribute.key).where(
                        DatasetAttribute.dataset_uuid == Dataset.uuid,
                        DatasetAttribute.key == key,
                        DatasetAttribute.value.in_(values),
                    )
                )
            )
        for term in (body.search_query or "").split():
            query = query.where(_text_match(term))
        query = (
            query.options(selectinload(Dataset.files))
            .order_by(Dataset.collected.desc(), Dataset.uuid)
            .offset(offset)
            .limit(limit)
        )
        return JSONResponse(
            [dataset_payload(ctx, request, dataset) for dataset in session.scalars(query)]
        )


def routes() -> list[Route]:
    """The routes of this module."""
    return [
        Route("/api/v2/dataset/", authenticated(create_dataset), methods=["POST"]),
        Route("/api/v2/dataset/", authenticated(read_dataset), methods=["GET"]),
        Route("/api/v2/dataset/", authenticated(update_dataset), methods=["PATCH"]),
        Route(
            "/api/v2/dataset/by_alt_uid/", authenticated(read_dataset_by_alt_uid), methods=["GET"]
        ),
        Route(
            "/api/v2/dataset/by_uuid_or_alt_uid/",
            read_dataset_by_uuid_or_alt_uid,
            methods=["GET"],
        ),
        Route("/api/v2/datasets/search/", authenticated(search_datasets), methods=["POST"]),
    ]
