"""A small read-only HTML view: scopes → datasets → files (with download links).

When the server is bound to a loopback address the pages need no login and show every scope.
Otherwise they need an API token — as HTTP Basic password (any user name; browsers prompt for it)
or as a bearer token — and show only the scopes of the token's user.
"""

from __future__ import annotations

import base64
import html
import uuid as uuid_module
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from etiket_local_server import __version__
from etiket_local_server.catalog import (
    ApiToken,
    Dataset,
    FileVersion,
    Scope,
    ScopeMember,
    User,
    hash_token,
)
from etiket_local_server.context import get_context
from etiket_local_server.schemas import iso

__all__ = ["routes"]

_PAGE_SIZE = 100
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin-top:1em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f2f2f2} code{font-size:.9em} .muted{color:#777}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _size(num: int | None) -> str:
    if num is None:
        return ""
    value = float(num)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{num} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{num} B"


def _page(title: str, body: str, crumbs: Iterable[tuple[str, str]] = ()) -> HTMLResponse:
    trail = " / ".join(f'<a href="{_e(href)}">{_e(label)}</a>' for href, label in crumbs)
    return HTMLResponse(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<p class='muted'>etiket-local-server {_e(__version__)} {trail}</p>"
        f"<h1>{_e(title)}</h1>{body}</body></html>"
    )


def _table(headers: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "<p class='muted'>(none)</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _viewer(request: Request, session: Session) -> User | Response | None:
    """None = may see everything (loopback); a User = sees their scopes; Response = 401."""
    ctx = get_context(request)
    if not ctx.ui_requires_auth:
        return None
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    token = ""
    if scheme.lower() == "bearer":
        token = value.strip()
    elif scheme.lower() == "basic":
        try:
            token = base64.b64decode(value.strip()).decode("utf-8").partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            token = ""
    row = (
        session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
        if token
        else None
    )
    user = session.get(User, row.owner) if row is not None else None
    if user is None:
        return Response(
            "An API token is required: enter it as the password (any user name).",
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="etiket-local-server"'},
            media_type="text/plain",
        )
    return user


def _visible(session: Session, viewer: User | None, scope_uuid: str) -> bool:
    if viewer is None:
        return session.get(Scope, scope_uuid) is not None
    return session.get(ScopeMember, (scope_uuid, viewer.sub)) is not None


def _not_found(what: str) -> HTMLResponse:
    response = _page("Not found", f"<p>{_e(what)}</p>", [("/", "scopes")])
    response.status_code = 404
    return response


async def scopes_page(request: Request) -> Response:
    """Every visible scope with its dataset count."""
    with get_context(request).catalog.session() as session:
        viewer = _viewer(request, session)
        if isinstance(viewer, Response):
            return viewer
        counts = dict(
            session.execute(
                select(Dataset.scope_uuid, func.count()).group_by(Dataset.scope_uuid)
            ).all()
        )
        query = select(Scope).order_by(Scope.name)
        if viewer is not None:
            query = query.join(ScopeMember, ScopeMember.scope_uuid == Scope.uuid).where(
                ScopeMember.user_sub == viewer.sub
            )
        rows = [
            [
                f'<a href="/ui/scopes/{_e(scope.uuid)}">{_e(scope.name)}</a>',
                f"<code>{_e(scope.uuid)}</code>",
                _e(counts.get(scope.uuid, 0)),
                _e(scope.description),
            ]
            for scope in session.scalars(query)
        ]
    return _page("Scopes", _table(["name", "uuid", "datasets", "description"], rows))


async def scope_page(request: Request) -> Response:
    """The datasets of one scope, newest first, 100 per page."""
    try:
        scope_uuid = str(uuid_module.UUID(request.path_params["scope_uuid"]))
        offset = max(0, int(request.query_params.get("offset", "0")))
    except ValueError:
        return _not_found("malformed scope uuid or offset")
    with get_context(request).catalog.session() as session:
        viewer = _viewer(request, session)
        if isinstance(viewer, Response):
            return viewer
        scope = session.get(Scope, scope_uuid)
        if scope is None or not _visible(session, viewer, scope_uuid):
            return _not_found(f"scope {scope_uuid} does not exist")
        datasets = list(
            session.scalars(
                select(Dataset)
                .where(Dataset.scope_uuid == scope_uuid)
                .order_by(Dataset.collected.desc(), Dataset.uuid)
                .offset(offset)
                .limit(_PAGE_SIZE + 1)
            )
        )
        rows = []
        for dataset in datasets[:_PAGE_SIZE]:
            latest = _latest_versions(dataset.files)
            rows.append(
                [
                    f'<a href="/ui/datasets/{_e(dataset.uuid)}">{_e(dataset.name)}</a>',
                    _e(iso(dataset.collected)),
                    _e(dataset.alt_uid),
                    _e(len(latest)),
                    _e(_size(sum(f.size for f in latest))),
                    _e(dataset.ranking),
                ]
            )
        more = ""
        if len(datasets) > _PAGE_SIZE:
            more = f'<p><a href="?offset={offset + _PAGE_SIZE}">next {_PAGE_SIZE}</a></p>'
        title = f"Scope {scope.name}"
        table = _table(["name", "collected", "alt_uid", "files", "size", "ranking"], rows)
    return _page(title, table + more, [("/", "scopes")])


def _latest_versions(files: list[FileVersion]) -> list[FileVersion]:
    latest: dict[str, FileVersion] = {}
    for file in files:
        if file.uuid not in latest or file.version_id > latest[file.uuid].version_id:
            latest[file.uuid] = file
    return list(latest.values())


async def dataset_page(request: Request) -> Response:
    """One dataset: its metadata and every file version with a download link."""
    ctx = get_context(request)
    try:
        dataset_uuid = str(uuid_module.UUID(request.path_params["dataset_uuid"]))
    except ValueError:
        return _not_found("malformed dataset uuid")
    with ctx.catalog.session() as session:
        viewer = _viewer(request, session)
        if isinstance(viewer, Response):
            return viewer
        dataset = session.get(Dataset, dataset_uuid)
        if dataset is None or not _visible(session, viewer, dataset.scope_uuid):
            return _not_found(f"dataset {dataset_uuid} does not exist")
        meta = _table(
            ["field", "value"],
            [
                ["uuid", f"<code>{_e(dataset.uuid)}</code>"],
                ["alt_uid", _e(dataset.alt_uid)],
                ["collected", _e(iso(dataset.collected))],
                ["creator", _e(dataset.creator)],
                ["description", _e(dataset.description)],
                ["notes", _e(dataset.notes)],
                ["keywords", _e(", ".join(dataset.keywords or []))],
                ["ranking", _e(dataset.ranking)],
                [
                    "attributes",
                    "<br>".join(
                        f"{_e(k)} = {_e(v)}" for k, v in (dataset.attributes or {}).items()
                    ),
                ],
                ["modified", _e(iso(dataset.modified))],
            ],
        )
        rows = []
        for file in dataset.files:
            link = ctx.download_link(request, file)
            download = f'<a href="{_e(link[0])}">download</a>' if link else ""
            rows.append(
                [
                    _e(file.name),
                    _e(file.filename),
                    _e(file.version_id),
                    _e(file.type),
                    _e(_size(file.size)),
                    _e(file.status),
                    f"<code>{_e(file.md5_checksum)}</code>",
                    "immutable" if file.immutable else "mutable",
                    download,
                ]
            )
        files = _table(
            ["name", "filename", "version", "type", "size", "status", "md5", "", "bytes"], rows
        )
        crumbs = [("/", "scopes"), (f"/ui/scopes/{dataset.scope_uuid}", dataset.scope.name)]
        title = f"Dataset {dataset.name}"
    return _page(title, meta + "<h2>Files</h2>" + files, crumbs)


def routes() -> list[Route]:
    """The routes of this module."""
    return [
        Route("/", scopes_page, methods=["GET"]),
        Route("/ui/", scopes_page, methods=["GET"]),
        Route("/ui/scopes/{scope_uuid}", scope_page, methods=["GET"]),
        Route("/ui/datasets/{dataset_uuid}", dataset_page, methods=["GET"]),
    ]
