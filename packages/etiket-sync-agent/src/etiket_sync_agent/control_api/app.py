"""The local control API (routes, shapes and error envelope of the existing agent's ``etiket_api``).

Served under ``/api/v1`` on ``127.0.0.1:10410`` by ``etiket-sync api``. Every answer that is not a
success carries ``{"error": <snake_case code>, "detail": <message or null>}``.

Security (better than the existing API, which binds every interface without authentication):
the server binds the loopback interface only; requests whose ``Host`` header is not a loopback
name are refused (DNS-rebinding defence); and when a local secret is configured, every request
that changes something (POST, PATCH, DELETE) must present it as ``X-Etiket-Sync-Secret`` or
``Authorization: Bearer <secret>``. The GUI's protocol sends no credentials, so the secret is
opt-in (``etiket-sync api --require-secret``); read-only requests never need it.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from etiket_sync_agent import __version__
from etiket_sync_agent.connectors.base import ScopePolicy, SyncSourceBase
from etiket_sync_agent.connectors.config import config_to_storage, mask_config, parse_config
from etiket_sync_agent.connectors.registry import backend_registry
from etiket_sync_agent.control_api import queries
from etiket_sync_agent.control_api.forms import config_form
from etiket_sync_agent.errors import ConfigError, EtiketSyncError
from etiket_sync_agent.store.models import ItemState
from etiket_sync_agent.store.repository import (
    DuplicateSourceError,
    ItemRecord,
    SourceRecord,
    TrackingStore,
)

__all__ = ["ApiError", "ControlState", "connector_identifier", "create_app"]

PREFIX = "/api/v1"
SECRET_HEADER = "X-Etiket-Sync-Secret"
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]", "testserver"}
_HEARTBEAT_STALE = dt.timedelta(seconds=60)
ScopeLister = Callable[[], Awaitable[list[tuple[str, str]]]]
#: ``(server_url, token)`` of the agent's login, or None when not logged in.
CredentialsLoader = Callable[[], "tuple[str, str] | None"]


class ApiError(Exception):
    """An error answered with the envelope ``{"error": code, "detail": detail}``."""

    def __init__(self, status: int, code: str, detail: str | None = None) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail


class ControlState:
    """What the control API keeps beside the tracking store (a small JSON file).

    Viewed flags of errors (an error is "viewed" for the message it had when marked: a new error on
    the same item shows up unviewed again), prioritised items, the sources the API stopped when the
    whole agent was stopped, and the ``autoassign_scope_mapping`` flag of each source.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.data: dict[str, Any] = {
            "viewed": {},
            "priority": [],
            "agent_stopped": False,
            "stopped_sources": [],
            "autoassign": {},
        }
        if path is not None and path.exists():
            try:
                self.data.update(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                pass  # a damaged state file only loses viewed flags and priorities

    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True), encoding="utf-8")
            tmp.replace(self.path)

    def is_viewed(self, item: ItemRecord) -> bool:
        return bool(self.data["viewed"].get(str(item.id)) == (item.last_error or ""))

    def set_viewed(self, item: ItemRecord, viewed: bool) -> None:
        if viewed:
            self.data["viewed"][str(item.id)] = item.last_error or ""
        else:
            self.data["viewed"].pop(str(item.id), None)

    @property
    def priority_ids(self) -> set[int]:
        return {int(i) for i in self.data["priority"]}


def connector_identifier(cls: type[SyncSourceBase]) -> str:
    """The identifier the GUI stores for a connector: the backend's top-level package name
    (``etiket_sync_agent_qcodes``), as the existing agent's registry keys them."""
    return cls.__module__.split(".", 1)[0]


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _bool_param(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ApiError(422, "validation_error", f"query parameter {name!r} must be true or false")


def _int_param(
    request: Request, name: str, default: int, lo: int = 0, hi: int | None = None
) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(
            422, "validation_error", f"query parameter {name!r} must be an integer"
        ) from None
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise ApiError(422, "validation_error", f"query parameter {name!r} must be {bound}")
    return value


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(422, "validation_error", "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(422, "validation_error", "the request body must be a JSON object")
    return body


class ControlApi:
    """Route handlers bound to one tracking store."""

    def __init__(
        self,
        store: TrackingStore,
        state: ControlState,
        *,
        secret: str | None,
        log_dir: Path | None,
        scope_lister: ScopeLister | None,
        credentials: CredentialsLoader | None = None,
    ) -> None:
        self.credentials = credentials
        self.store = store
        self.state = state
        self.secret = secret
        self.log_dir = log_dir
        self.scope_lister = scope_lister

    # -- helpers ---------------------------------------------------------------------------------
    def _backend(self, identifier: str) -> type[SyncSourceBase] | None:
        registry = backend_registry()
        for info in registry.infos():
            if info.cls is not None and identifier in (
                info.name,
                connector_identifier(info.cls),
            ):
                return info.cls
        try:
            return registry.get(identifier)
        except EtiketSyncError:
            return None

    def _source(self, request: Request) -> SourceRecord:
        raw = request.path_params["source_id"]
        record = self.store.get_source_by_id(int(raw))
        if record is None:
            raise ApiError(404, "sync_source_not_found", f"sync source {raw} not found")
        return record

    def _item(self, request: Request) -> ItemRecord:
        raw = request.path_params["item_id"]
        record = self.store.get_item(int(raw))
        if record is None:
            raise ApiError(404, "sync_item_not_found", f"sync item {raw} not found")
        return record

    def _item_status(self, item: ItemRecord, source: SourceRecord | None) -> str:
        if item.state is ItemState.SYNCED:
            return "synchronized"
        if item.state is ItemState.WAITING:
            return "no_mapping"
        if item.attempts > 0 or item.state is ItemState.FAILED:
            return "error"
        return "pending"

    def _source_model(self, record: SourceRecord) -> dict[str, Any]:
        cls = self._backend(record.backend)
        counts = queries.count_items(self.store, record.id)
        active = counts.get("new", 0) + counts.get("syncing", 0) + counts.get("live", 0)
        if record.status == "paused":
            status = "stopped"
        elif record.status == "error":
            status = "error"
        else:
            status = "syncing" if active else "scanning"
        policy = getattr(cls, "scope_policy", None)
        return {
            "id": record.id,
            "name": record.name,
            "connector_identifier": connector_identifier(cls) if cls else record.backend,
            "status": status,
            "owner": None,
            "has_owner": False,
            "items_total": counts["total"] - counts.get("gone", 0),
            "items_synchronized": counts.get("synced", 0),
            "items_failed": counts.get("failed", 0),
            "items_unmapped_scope_count": counts.get("waiting", 0),
            "scope_requirement": _scope_requirement(policy),
            "supports_scope_mapping": policy is ScopePolicy.DISABLED,
            "autoassign_scope_mapping": bool(
                self.state.data["autoassign"].get(str(record.id), False)
            ),
            "last_update": _iso(record.last_sync_at or record.created),
            "config_data": mask_config(cls.config_class if cls else None, record.config),
            "default_scope": record.scope,
            "scope_mappings": [
                {"sync_source_id": record.id, "scope_identifier": k, "scope_uuid": v}
                for k, v in sorted(record.scope_mapping.items())
            ],
            "last_error": record.last_error,
        }

    def _item_summary(self, item: ItemRecord) -> dict[str, Any]:
        return {
            "id": item.id,
            "sync_source_id": item.source_id,
            "data_identifier": item.natural_key,
            "dataset_uuid": item.dataset_uuid,
            "scope_identifier": item.scope_identifier,
            "sync_priority": item.priority,
            "has_priority": item.id in self.state.priority_ids,
            "owner": None,
            "attempts": item.attempts,
            "status": self._item_status(item, None),
            "last_update": _iso(item.last_synced_at or item.next_attempt_at),
        }

    def _error_model(self, item: ItemRecord) -> dict[str, Any]:
        return {
            "id": item.id,
            "sync_source_id": item.source_id,
            "sync_item_id": item.id,
            "data_identifier": item.natural_key,
            "sync_iteration": None,
            "log_exception": item.last_error,
            "log_context": item.natural_key,
            "log_traceback": item.last_traceback,
            "log_timestamp": _iso(item.last_synced_at or item.next_attempt_at),
            "viewed": self.state.is_viewed(item),
        }

    def _errors(self, request: Request, source_id: int | None) -> list[dict[str, Any]]:
        limit = _int_param(request, "limit", 10, 1, 1000)
        skip = _int_param(request, "skip", 0)
        viewed = _bool_param(request, "viewed")
        rows = self.store.list_errors(source_id, limit=100_000)
        if viewed is not None:
            rows = [r for r in rows if self.state.is_viewed(r) is viewed]
        return [self._error_model(r) for r in rows[skip : skip + limit]]

    def _mark_error(self, request: Request, source_id: int | None) -> ItemRecord:
        raw = request.path_params["error_id"]
        item = self.store.get_item(int(raw))
        if item is None or (source_id is not None and item.source_id != source_id):
            raise ApiError(404, "error_not_found", f"error {raw} not found")
        return item

    # -- local API tokens (the agent's server login) -----------------------------------------------
    async def _server_call(self, method: str, path: str, json_body: Any = None) -> tuple[str, Any]:
        from etiket_sync_agent.platform import EtiketClient
        from etiket_sync_agent.platform.errors import EtiketError, NetworkError

        creds = self.credentials() if self.credentials is not None else None
        if creds is None:
            raise ApiError(401, "not_logged_in", "the agent is not logged in (etiket-sync login)")
        url, token = creds
        try:
            async with EtiketClient(url, token) as client:
                return url, await client.request(method, path, json=json_body)
        except NetworkError as exc:
            raise ApiError(503, "no_connection", str(exc)) from None
        except EtiketError as exc:
            status = exc.status if exc.status and exc.status >= 400 else 502
            raise ApiError(status, exc.code or "server_error", str(exc)) from None

    async def tokens_create(self, request: Request) -> Response:
        body = await _json_body(request)
        name = body.get("name")
        if name is None:
            import getpass
            import platform
            import socket

            name = f"{getpass.getuser()}@{socket.gethostname()} ({platform.system()})"
        if not isinstance(name, str) or len(name.strip()) < 3:
            raise ApiError(422, "validation_error", "'name' must have at least 3 characters")
        url, created = await self._server_call("POST", "/api/v3/api-tokens", {"name": name})
        return JSONResponse(
            {
                "uid": created["uid"],
                "name": created["name"],
                "api_token": created["api_token"],
                "server_url": url,
            },
            status_code=201,
        )

    async def tokens_list(self, request: Request) -> Response:
        url, info = await self._server_call("GET", "/api/v3/token/userinfo")
        _, tokens = await self._server_call("GET", "/api/v3/api-tokens")
        names = " ".join(p for p in (info.get("given_name"), info.get("family_name")) if p)
        # As upstream: the token's uid/name are only known when the user has exactly one token.
        only = tokens[0] if isinstance(tokens, list) and len(tokens) == 1 else None
        return JSONResponse(
            [
                {
                    "user_sub": info.get("sub"),
                    "user_name": names or info.get("email") or info.get("sub"),
                    "api_key_name": only.get("name") if only else None,
                    "api_key_uid": only.get("uid") if only else None,
                    "server_url": url,
                }
            ]
        )

    async def tokens_delete(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        await self._server_call("DELETE", f"/api/v3/api-tokens/{uid}")
        return Response(status_code=204)

    async def tokens_check(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        _, tokens = await self._server_call("GET", "/api/v3/api-tokens")
        valid = any(isinstance(t, dict) and t.get("uid") == uid for t in tokens or [])
        return JSONResponse({"valid": valid})

    # -- agent -----------------------------------------------------------------------------------
    async def agent_status(self, request: Request) -> Response:
        agent = self.store.agent_status()
        now = dt.datetime.now(dt.timezone.utc)
        alive = agent.heartbeat is not None and now - agent.heartbeat < _HEARTBEAT_STALE
        if self.state.data["agent_stopped"]:
            status = "stopped"
        elif not alive:
            status = "unavailable"
        elif agent.state in ("error",):
            status = "error"
        elif agent.state in ("offline", "no_connection"):
            status = "no_connection"
        elif agent.state in ("not_logged_in",):
            status = "not_logged_in"
        elif agent.state == "stopped":
            status = "stopped"
        else:
            status = "running"
        return JSONResponse(
            {
                "sync_api_service": "running",
                "sync_agent_service": "running" if alive else "not_running",
                "sync_agent_status": status,
                "sync_iteration_count": agent.iteration,
                "last_update": _iso(agent.heartbeat),
                "agent_version": __version__,
            }
        )

    async def agent_start(self, request: Request) -> Response:
        for name in self.state.data["stopped_sources"]:
            if self.store.get_source(name) is not None:
                self.store.set_source_status(name, "active")
        self.state.data.update(agent_stopped=False, stopped_sources=[])
        self.state.save()
        return JSONResponse(None)

    async def agent_stop(self, request: Request) -> Response:
        stopped = list(self.state.data["stopped_sources"])
        for record in self.store.list_sources():
            if record.status != "paused":
                self.store.set_source_status(record.name, "paused")
                stopped.append(record.name)
        self.state.data.update(agent_stopped=True, stopped_sources=stopped)
        self.state.save()
        return JSONResponse(None)

    async def agent_errors(self, request: Request) -> Response:
        return JSONResponse(self._errors(request, None))

    async def agent_error_patch(self, request: Request) -> Response:
        item = self._mark_error(request, None)
        body = await _json_body(request)
        viewed = body.get("viewed")
        if not isinstance(viewed, bool):
            raise ApiError(422, "validation_error", "'viewed' must be true or false")
        self.state.set_viewed(item, viewed)
        self.state.save()
        return JSONResponse(self._error_model(self.store.get_item(item.id) or item))

    async def _mark_all(self, source_id: int | None) -> Response:
        count = 0
        for item in self.store.list_errors(source_id, limit=100_000):
            if not self.state.is_viewed(item):
                self.state.set_viewed(item, True)
                count += 1
        self.state.save()
        return JSONResponse(count)

    async def agent_mark_all(self, request: Request) -> Response:
        return await self._mark_all(None)

    def _report(self, source: SourceRecord | None, item: ItemRecord | None) -> dict[str, Any]:
        agent = self.store.agent_status()
        report: dict[str, Any] = {
            "created": dt.datetime.now(dt.timezone.utc).isoformat(),
            "agent_version": __version__,
            "agent": {**asdict(agent), "heartbeat": _iso(agent.heartbeat)},
        }
        if item is not None:
            report["item"] = {
                **self._item_summary(item),
                "last_error": item.last_error,
                "traceback": item.last_traceback,
                "logs": [
                    {"created": _iso(r.created), "level": r.level, "message": r.message}
                    for r in self.store.item_logs(item.id, limit=200)
                ],
            }
        sources = [source] if source is not None else self.store.list_sources()
        report["sources"] = [self._source_model(s) for s in sources if s is not None]
        report["errors"] = [
            self._error_model(r)
            for r in self.store.list_errors(source.id if source else None, limit=100)
        ]
        return report

    def _save_report(self, report: dict[str, Any], label: str) -> Response:
        if self.log_dir is None:
            raise ApiError(503, "report_not_saved", "the API has no log folder to save reports in")
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.log_dir / f"error-report-{label}-{stamp}.json"
        path.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
        return JSONResponse(
            {
                "detail": "error report saved locally (this agent does not send reports to the "
                "server); attach the file when asking for help",
                "path": str(path),
            },
            status_code=202,
        )

    async def agent_report_error(self, request: Request) -> Response:
        return self._save_report(self._report(None, None), "agent")

    async def agent_error_report(self, request: Request) -> Response:
        return JSONResponse(self._report(None, None))

    # -- sources ---------------------------------------------------------------------------------
    async def sources_list(self, request: Request) -> Response:
        return JSONResponse([self._source_model(r) for r in self.store.list_sources()])

    async def source_create(self, request: Request) -> Response:
        body = await _json_body(request)
        name = body.get("name")
        identifier = body.get("connector") or body.get("connector_identifier")
        raw_config = body.get("config_data", {})
        scope = body.get("default_scope")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(422, "validation_error", "'name' must be a non-empty string")
        if not isinstance(identifier, str) or not identifier:
            raise ApiError(
                422, "validation_error", "'connector' (or 'connector_identifier') is required"
            )
        if not isinstance(raw_config, dict):
            raise ApiError(422, "validation_error", "'config_data' must be an object")
        if scope is not None and not isinstance(scope, str):
            raise ApiError(422, "validation_error", "'default_scope' must be a string or null")
        cls = self._backend(identifier)
        if cls is None:
            raise ApiError(
                404,
                "sync_source_connector_not_found",
                f"Sync source connector '{identifier}' not found.",
            )
        if cls.scope_policy is ScopePolicy.REQUIRED and not scope:
            raise ApiError(
                422,
                "sync_source_default_scope_required",
                f"connector {identifier!r} requires a default_scope",
            )
        config = self._validated(cls, raw_config)
        try:
            record = self.store.add_source(name.strip(), cls.name, config, scope=scope)
        except DuplicateSourceError as exc:
            raise ApiError(409, "sync_source_name_already_exists", str(exc)) from None
        self.state.data["autoassign"][str(record.id)] = bool(
            body.get("autoassign_scope_mapping", False)
        )
        self.state.save()
        return JSONResponse(self._source_model(record), status_code=201)

    def _validated(self, cls: type[SyncSourceBase], raw: dict[str, Any]) -> dict[str, Any]:
        try:
            return config_to_storage(parse_config(cls.config_class, raw))
        except ConfigError as exc:
            raise ApiError(422, "sync_source_config_data_validation_error", str(exc)) from None

    async def source_get(self, request: Request) -> Response:
        return JSONResponse(self._source_model(self._source(request)))

    async def source_by_name(self, request: Request) -> Response:
        name = request.path_params["name"]
        record = self.store.get_source(name)
        if record is None:
            raise ApiError(404, "sync_source_not_found", f"sync source {name!r} not found")
        return JSONResponse(self._source_model(record))

    async def source_patch(self, request: Request) -> Response:
        record = self._source(request)
        body = await _json_body(request)
        name = body.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ApiError(422, "validation_error", "'name' must be a non-empty string")
        config: dict[str, Any] | None = None
        if body.get("config_data") is not None:
            if not isinstance(body["config_data"], dict):
                raise ApiError(422, "validation_error", "'config_data' must be an object")
            cls = self._backend(record.backend)
            if cls is None:
                raise ApiError(
                    404,
                    "sync_source_connector_not_found",
                    f"Sync source connector '{record.backend}' not found.",
                )
            config = self._validated(cls, {**record.config, **body["config_data"]})
        set_scope = "default_scope" in body and body["default_scope"] is not None
        try:
            updated = queries.update_source(
                self.store,
                record.id,
                name=name.strip() if isinstance(name, str) else None,
                scope=body.get("default_scope"),
                set_scope=set_scope,
                config=config,
            )
        except DuplicateSourceError as exc:
            raise ApiError(409, "sync_source_name_already_exists", str(exc)) from None
        if body.get("autoassign_scope_mapping") is not None:
            self.state.data["autoassign"][str(record.id)] = bool(body["autoassign_scope_mapping"])
            self.state.save()
        return JSONResponse(self._source_model(updated))

    async def source_delete(self, request: Request) -> Response:
        record = self._source(request)
        self.store.remove_source(record.name)
        self.state.data["autoassign"].pop(str(record.id), None)
        self.state.save()
        return Response(status_code=204)

    async def source_start(self, request: Request) -> Response:
        record = self._source(request)
        self.store.set_source_status(record.name, "active")
        return JSONResponse(self._source_model(self.store.get_source_by_id(record.id) or record))

    async def source_stop(self, request: Request) -> Response:
        record = self._source(request)
        self.store.set_source_status(record.name, "paused")
        return JSONResponse(self._source_model(self.store.get_source_by_id(record.id) or record))

    async def source_ownership(self, request: Request) -> Response:
        self._source(request)
        raise ApiError(
            400,
            "sync_source_ownership_not_supported",
            "this agent uploads with the credentials of `etiket-sync login`; sources have no "
            "owner to take or release",
        )

    async def source_reset(self, request: Request) -> Response:
        record = self._source(request)
        include = _bool_param(request, "include_successful") or False
        return JSONResponse(queries.reset_source_items(self.store, record.id, include))

    async def source_errors(self, request: Request) -> Response:
        record = self._source(request)
        return JSONResponse(self._errors(request, record.id))

    async def source_error_patch(self, request: Request) -> Response:
        record = self._source(request)
        item = self._mark_error(request, record.id)
        body = await _json_body(request)
        if not isinstance(body.get("viewed"), bool):
            raise ApiError(422, "validation_error", "'viewed' must be true or false")
        self.state.set_viewed(item, body["viewed"])
        self.state.save()
        return JSONResponse(self._error_model(item))

    async def source_mark_all(self, request: Request) -> Response:
        return await self._mark_all(self._source(request).id)

    async def source_report_error(self, request: Request) -> Response:
        record = self._source(request)
        return self._save_report(self._report(record, None), f"source{record.id}")

    async def source_error_report(self, request: Request) -> Response:
        return JSONResponse(self._report(self._source(request), None))

    async def connectors_forms(self, request: Request) -> Response:
        out = []
        for info in backend_registry().infos():
            cls = info.cls
            if cls is None or not info.usable:
                continue
            out.append(
                {
                    "name": getattr(cls, "display_name", None) or cls.name,
                    "identifier": connector_identifier(cls),
                    "scope_requirement": _scope_requirement(cls.scope_policy),
                    "supports_scope_mapping": cls.scope_policy is ScopePolicy.DISABLED,
                    "config_data": config_form(cls.config_class),
                }
            )
        return JSONResponse(out)

    # -- scope mappings --------------------------------------------------------------------------
    async def mapping_create(self, request: Request) -> Response:
        record = self._source(request)
        body = await _json_body(request)
        identifier, scope = body.get("scope_identifier"), body.get("scope_uuid")
        if not isinstance(identifier, str) or not identifier or not isinstance(scope, str):
            raise ApiError(
                422, "validation_error", "'scope_identifier' and 'scope_uuid' must be strings"
            )
        if identifier in record.scope_mapping:
            raise ApiError(
                409,
                "scope_mapping_already_exists",
                f"scope identifier {identifier!r} is already mapped",
            )
        self.store.set_scope_mapping(record.name, identifier, scope)
        model = {"sync_source_id": record.id, "scope_identifier": identifier, "scope_uuid": scope}
        return JSONResponse(model, status_code=201)

    async def mapping_patch(self, request: Request) -> Response:
        record = self._source(request)
        identifier = request.path_params["scope_identifier"]
        body = await _json_body(request)
        scope = body.get("scope_uuid")
        if identifier not in record.scope_mapping:
            raise ApiError(
                404, "scope_mapping_not_found", f"scope identifier {identifier!r} is not mapped"
            )
        if not isinstance(scope, str):
            raise ApiError(422, "validation_error", "'scope_uuid' must be a string")
        self.store.set_scope_mapping(record.name, identifier, scope)
        return JSONResponse(
            {"sync_source_id": record.id, "scope_identifier": identifier, "scope_uuid": scope}
        )

    async def mapping_delete(self, request: Request) -> Response:
        record = self._source(request)
        identifier = request.path_params["scope_identifier"]
        if not queries.remove_scope_mapping(self.store, record.id, identifier):
            raise ApiError(
                404, "scope_mapping_not_found", f"scope identifier {identifier!r} is not mapped"
            )
        return Response(status_code=204)

    def _unmapped(self, record: SourceRecord) -> list[str]:
        found = {
            item.scope_identifier
            for item in self.store.list_items(record.id, ItemState.WAITING, limit=100_000)
            if item.scope_identifier
        }
        return sorted(found - set(record.scope_mapping))

    async def mapping_unmapped(self, request: Request) -> Response:
        return JSONResponse(self._unmapped(self._source(request)))

    async def mapping_autoassign(self, request: Request) -> Response:
        record = self._source(request)
        if self.scope_lister is None:
            raise ApiError(
                503, "no_connection", "the API has no server connection (run `etiket-sync login`)"
            )
        try:
            scopes = await self.scope_lister()
        except Exception as exc:
            raise ApiError(
                503, "no_connection", f"could not list the server's scopes: {exc}"
            ) from None
        by_name: dict[str, list[str]] = {}
        for scope_uuid, scope_name in scopes:
            by_name.setdefault(scope_name.lower(), []).append(scope_uuid)
        assigned = 0
        for identifier in self._unmapped(record):
            matches = by_name.get(identifier.lower(), [])
            if len(matches) == 1:
                self.store.set_scope_mapping(record.name, identifier, matches[0])
                assigned += 1
        return JSONResponse(assigned)

    # -- items -----------------------------------------------------------------------------------
    async def items_list(self, request: Request) -> Response:
        order_by = request.query_params.get("order_by", "id")
        if order_by not in queries.ORDER_COLUMNS:
            raise ApiError(
                422,
                "validation_error",
                f"order_by must be one of {', '.join(queries.ORDER_COLUMNS)}",
            )
        direction = request.query_params.get("order_direction", "asc").lower()
        if direction not in ("asc", "desc"):
            raise ApiError(422, "validation_error", "order_direction must be asc or desc")
        source_raw = request.query_params.get("source_id")
        source_id = _int_param(request, "source_id", 0) if source_raw else None
        items = queries.list_items(
            self.store,
            source_id=source_id,
            query=request.query_params.get("query") or None,
            is_synchronized=_bool_param(request, "is_synchronized"),
            priority_ids=self.state.priority_ids,
            has_priority=_bool_param(request, "has_priority"),
            scope_identifier=request.query_params.get("scope_identifier"),
            order_by=order_by,
            descending=direction == "desc",
            offset=_int_param(request, "offset", 0),
            limit=_int_param(request, "limit", 100, 1, 1000),
        )
        return JSONResponse([self._item_summary(i) for i in items])

    async def item_get(self, request: Request) -> Response:
        item = self._item(request)
        model = self._item_summary(item)
        model["sync_record"] = {
            "state": item.state.value,
            "last_error": item.last_error,
            "traceback": item.last_traceback,
            "path": item.path,
            "files": [
                {
                    "name": f.name,
                    "filename": f.filename,
                    "file_uuid": f.file_uuid,
                    "version_id": f.version_id,
                    "size": f.size,
                    "md5": f.md5,
                    "status": f.status,
                }
                for f in self.store.list_files(item.id)
            ],
            "logs": [
                {"date": _iso(r.created), "level": r.level, "message": r.message}
                for r in self.store.item_logs(item.id, limit=200)
            ],
        }
        return JSONResponse(model)

    async def item_reset(self, request: Request) -> Response:
        item = self._item(request)
        self.store.reset_item(item.id)
        return Response(status_code=204)

    async def item_prioritize(self, request: Request) -> Response:
        item = self._item(request)
        queries.bump_priority(self.store, item.id)
        if item.id not in self.state.priority_ids:
            self.state.data["priority"].append(item.id)
            self.state.save()
        return Response(status_code=204)

    async def item_report_error(self, request: Request) -> Response:
        item = self._item(request)
        return self._save_report(self._report(None, item), f"item{item.id}")

    async def item_error_report(self, request: Request) -> Response:
        return JSONResponse(self._report(None, self._item(request)))

    # -- packages and logs -----------------------------------------------------------------------
    async def packages_list(self, request: Request) -> Response:
        registry = backend_registry()
        out = [
            {
                "identifier": connector_identifier(i.cls) if i.cls else i.name,
                "name": i.name,
                "package_name": i.distribution,
                "package_version": i.version,
                "status": i.status.value,
                "error": i.error,
            }
            for i in registry.infos()
        ]
        return JSONResponse(out)

    async def converters_list(self, request: Request) -> Response:
        from etiket_sync_agent.converters.registry import converter_registry

        out = [
            {
                "identifier": i.value,
                "name": i.name,
                "package_name": i.distribution,
                "package_version": i.version,
                "status": i.status.value,
                "error": i.error,
            }
            for i in converter_registry().infos()
        ]
        return JSONResponse(out)

    async def packages_install(self, request: Request) -> Response:
        raise ApiError(
            501,
            "package_management_not_supported",
            "installing, updating or removing connectors and converters through the API is not "
            "supported: install them with pip (or uv) into the agent's environment, then restart "
            "the agent",
        )

    async def logs(self, request: Request) -> Response:
        which = request.path_params["which"]
        if which not in ("api", "sync_agent"):
            raise ApiError(404, "log_not_found", "log must be 'api' or 'sync_agent'")
        n = _int_param(request, "n", 500, 1, 100_000)
        if self.log_dir is None:
            return JSONResponse([])
        path = self.log_dir / ("api.log" if which == "api" else "agent.log")
        if not path.exists():
            return JSONResponse([])
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
        return JSONResponse(lines[-n:])


def _scope_requirement(policy: ScopePolicy | None) -> str:
    # The existing agent knows REQUIRED and DISABLED only; OPTIONAL sources may name a scope.
    return (
        "REQUIRED"
        if policy is ScopePolicy.REQUIRED
        else ("OPTIONAL" if policy is ScopePolicy.OPTIONAL else "DISABLED")
    )


def create_app(
    store: TrackingStore,
    *,
    secret: str | None = None,
    state_path: Path | None = None,
    log_dir: Path | None = None,
    scope_lister: ScopeLister | None = None,
    credentials: CredentialsLoader | None = None,
) -> Starlette:
    """The control API as an ASGI app bound to ``store``.

    ``secret``: when set, POST/PATCH/DELETE requests must present it. ``state_path``: JSON file for
    viewed flags and priorities (in memory when None). ``log_dir``: where ``/admin/logs`` reads
    ``api.log``/``agent.log`` and error reports are saved. ``scope_lister``: async callable listing
    the server's scopes as ``(uuid, name)`` pairs, for scope-mapping autoassignment.
    ``credentials``: returns ``(server_url, token)`` of the agent's login (API-token routes).
    """
    api = ControlApi(
        store,
        ControlState(state_path),
        secret=secret,
        log_dir=log_dir,
        scope_lister=scope_lister,
        credentials=credentials,
    )
    s = "{source_id:int}"

    def r(path: str, endpoint: Callable[[Request], Awaitable[Response]], *methods: str) -> Route:
        return Route(PREFIX + path, _guard(api, endpoint), methods=list(methods))

    routes = [
        r("/auth/local/api-tokens", api.tokens_create, "POST"),
        r("/auth/local/api-tokens", api.tokens_list, "GET"),
        r("/auth/local/api-tokens/{uid}", api.tokens_delete, "DELETE"),
        r("/auth/local/api-tokens/{uid}/check", api.tokens_check, "GET"),
        r("/sync/agent/status", api.agent_status, "GET"),
        r("/sync/agent/start", api.agent_start, "POST"),
        r("/sync/agent/stop", api.agent_stop, "POST"),
        r("/sync/agent/errors", api.agent_errors, "GET"),
        r("/sync/agent/errors/mark-all-viewed", api.agent_mark_all, "POST"),
        r("/sync/agent/errors/{error_id:int}", api.agent_error_patch, "PATCH"),
        r("/sync/agent/report-error", api.agent_report_error, "POST"),
        r("/sync/agent/error-report", api.agent_error_report, "GET"),
        r("/sync/sources", api.sources_list, "GET"),
        r("/sync/sources", api.source_create, "POST"),
        r("/sync/sources/connectors", api.connectors_forms, "GET"),
        r("/sync/sources/name/{name:path}", api.source_by_name, "GET"),
        r(f"/sync/sources/{s}", api.source_get, "GET"),
        r(f"/sync/sources/{s}", api.source_patch, "PATCH"),
        r(f"/sync/sources/{s}", api.source_delete, "DELETE"),
        r(f"/sync/sources/{s}/start", api.source_start, "POST"),
        r(f"/sync/sources/{s}/stop", api.source_stop, "POST"),
        r(f"/sync/sources/{s}/take-ownership", api.source_ownership, "POST"),
        r(f"/sync/sources/{s}/release-ownership", api.source_ownership, "POST"),
        r(f"/sync/sources/{s}/reset-sync-items", api.source_reset, "POST"),
        r(f"/sync/sources/{s}/errors", api.source_errors, "GET"),
        r(f"/sync/sources/{s}/errors/mark-all-viewed", api.source_mark_all, "POST"),
        r(f"/sync/sources/{s}/errors/{{error_id:int}}", api.source_error_patch, "PATCH"),
        r(f"/sync/sources/{s}/report-error", api.source_report_error, "POST"),
        r(f"/sync/sources/{s}/error-report", api.source_error_report, "GET"),
        r(f"/sync/sources/{s}/scope-mappings", api.mapping_create, "POST"),
        r(f"/sync/sources/{s}/scope-mappings/unmapped", api.mapping_unmapped, "GET"),
        r(f"/sync/sources/{s}/scope-mappings/autoassign", api.mapping_autoassign, "POST"),
        r(
            f"/sync/sources/{s}/scope-mappings/{{scope_identifier:path}}",
            api.mapping_patch,
            "PATCH",
        ),
        r(
            f"/sync/sources/{s}/scope-mappings/{{scope_identifier:path}}",
            api.mapping_delete,
            "DELETE",
        ),
        r("/sync/items", api.items_list, "GET"),
        r("/sync/items/{item_id:int}", api.item_get, "GET"),
        r("/sync/items/{item_id:int}/reset", api.item_reset, "PATCH"),
        r("/sync/items/{item_id:int}/prioritize", api.item_prioritize, "PATCH"),
        r("/sync/items/{item_id:int}/report-error", api.item_report_error, "POST"),
        r("/sync/items/{item_id:int}/error-report", api.item_error_report, "GET"),
        r("/sync/connectors", api.packages_list, "GET"),
        r("/sync/converters", api.converters_list, "GET"),
        r("/admin/logs/{which}", api.logs, "GET"),
    ]
    for kind in ("connectors", "converters"):
        for path in ("/install/pypi", "/install/local", "/update/pypi", "/update/local"):
            routes.append(r(f"/sync/{kind}{path}", api.packages_install, "POST"))
        routes.append(r(f"/sync/{kind}/{{package}}", api.packages_install, "DELETE"))

    async def not_found(request: Request, exc: Exception) -> Response:
        return _envelope(404, "not_found", f"no route {request.method} {request.url.path}")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _envelope(405, "method_not_allowed", f"{request.method} is not allowed here")

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})


def _envelope(status: int, code: str, detail: str | None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


def _host_name(header: str) -> str:
    """The host part of a Host header (``[::1]:10410`` → ``[::1]``)."""
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _guard(
    api: ControlApi, endpoint: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        host = _host_name(request.headers.get("host") or "")
        if host and host.lower() not in _LOOPBACK_HOSTS:
            return _envelope(
                403, "host_not_allowed", "the control API answers loopback host names only"
            )
        if api.secret and request.method in ("POST", "PATCH", "PUT", "DELETE"):
            given = request.headers.get(SECRET_HEADER)
            auth = request.headers.get("authorization", "")
            if not given and auth.lower().startswith("bearer "):
                given = auth[7:].strip()
            if not given or not hmac.compare_digest(given.encode(), api.secret.encode()):
                return _envelope(
                    401,
                    "local_secret_required",
                    f"changes need the local secret in the {SECRET_HEADER} header "
                    "(see `etiket-sync api --help`)",
                )
        try:
            return await endpoint(request)
        except ApiError as exc:
            return _envelope(exc.status, exc.code, exc.detail)
        except EtiketSyncError as exc:
            return _envelope(400, "agent_error", str(exc))

    return handler
