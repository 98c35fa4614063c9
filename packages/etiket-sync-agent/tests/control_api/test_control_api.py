"""The local control API: every route, its shapes and its error envelope (etiket_api.md §11)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
from starlette.testclient import TestClient

from etiket_sync_agent.control_api import config_form, create_app
from etiket_sync_agent.store import TrackingStore
from etiket_sync_agent.store.repository import ItemSpec

P = "/api/v1"
SOURCE_KEYS = {
    "id",
    "name",
    "connector_identifier",
    "status",
    "owner",
    "has_owner",
    "items_total",
    "items_synchronized",
    "items_failed",
    "items_unmapped_scope_count",
    "scope_requirement",
    "supports_scope_mapping",
    "autoassign_scope_mapping",
    "last_update",
    "config_data",
    "default_scope",
    "scope_mappings",
}
ITEM_KEYS = {
    "id",
    "data_identifier",
    "dataset_uuid",
    "sync_priority",
    "has_priority",
    "owner",
    "attempts",
    "status",
    "last_update",
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TrackingStore]:
    s = TrackingStore(f"sqlite:///{tmp_path / 'sync.db'}")
    yield s
    s.close()


async def _scopes() -> list[tuple[str, str]]:
    return [("11111111-1111-1111-1111-111111111111", "Chip7"), ("2222", "other")]


@pytest.fixture
def client(store: TrackingStore, tmp_path: Path) -> TestClient:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "agent.log").write_text("one\ntwo\nthree\n", encoding="utf-8")
    app = create_app(store, state_path=tmp_path / "state.json", log_dir=logs, scope_lister=_scopes)
    return TestClient(app)


def _native(client: TestClient, tmp_path: Path, name: str = "QH datasets") -> dict[str, Any]:
    folder = tmp_path / "native"
    folder.mkdir(exist_ok=True)
    r = client.post(
        f"{P}/sync/sources",
        json={
            "name": name,
            "connector": "etiket_sync_agent_native",
            "config_data": {"native_directory": str(folder)},
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def _items(store: TrackingStore, source_id: int) -> None:
    store.upsert_items(
        source_id,
        [
            ItemSpec("run-a", "aaaaaaaa-0000-0000-0000-000000000001", cursor=1, priority=1.0),
            ItemSpec(
                "run-b",
                "aaaaaaaa-0000-0000-0000-000000000002",
                cursor=2,
                priority=2.0,
                scope_identifier="chip7",
            ),
            ItemSpec("other-c", "aaaaaaaa-0000-0000-0000-000000000003", cursor=3, priority=3.0),
        ],
    )


def _fail(store: TrackingStore, source_id: int, key: str, message: str) -> int:
    item = store.get_item_by_key(source_id, key)
    assert item is not None
    if item.state.value == "failed":
        store.reset_item(item.id)  # past its backoff: claimable again
    claimed = store.claim_items("w1", 10, 60.0, source_ids=[source_id])
    assert any(c.id == item.id for c in claimed)
    store.mark_failed(item.id, "w1", message, None)
    for other in claimed:
        if other.id != item.id:
            store.release_lease(other.id, "w1")
    return item.id


def test_connectors_describe_config_forms(client: TestClient) -> None:
    r = client.get(f"{P}/sync/sources/connectors")
    assert r.status_code == 200
    by_id = {c["identifier"]: c for c in r.json()}
    native = by_id["etiket_sync_agent_native"]
    assert set(native) == {
        "name",
        "identifier",
        "scope_requirement",
        "supports_scope_mapping",
        "config_data",
    }
    assert native["scope_requirement"] == "DISABLED"
    assert native["supports_scope_mapping"] is True
    field = native["config_data"][0]
    assert field["name"] == "native_directory"
    assert field["type"] == "dir_path"
    assert field["is_required"] is False
    assert "store folder" in (field["description"] or "")
    qcodes = by_id["etiket_sync_agent_qcodes"]
    assert qcodes["scope_requirement"] == "REQUIRED"


def test_config_form_types_and_required() -> None:
    @dataclasses.dataclass
    class Config:
        database_path: Path
        data_directory: Path
        where: Path
        count: int = 3
        ratio: float = 0.5
        flag: bool = False
        tags: list[str] = dataclasses.field(default_factory=list)
        attrs: dict[str, str] = dataclasses.field(
            default_factory=dict, metadata={"description": "static attributes"}
        )
        label: str | None = None

    form = {f["name"]: f for f in config_form(Config)}
    assert form["database_path"]["type"] == "file_path"
    assert form["data_directory"]["type"] == "dir_path"
    assert form["where"]["type"] == "path"
    assert form["database_path"]["is_required"] is True
    assert (form["count"]["type"], form["count"]["default"], form["count"]["is_required"]) == (
        "integer",
        3,
        False,
    )
    assert form["ratio"]["type"] == "float"
    assert form["flag"]["type"] == "boolean"
    assert form["tags"]["type"] == "list"
    assert form["attrs"]["type"] == "dict"
    assert form["attrs"]["description"] == "static attributes"
    assert form["label"]["is_required"] is False


def test_source_crud(client: TestClient, store: TrackingStore, tmp_path: Path) -> None:
    created = _native(client, tmp_path)
    assert set(created) >= SOURCE_KEYS
    assert created["connector_identifier"] == "etiket_sync_agent_native"
    assert created["status"] == "scanning"
    sid = created["id"]
    assert client.get(f"{P}/sync/sources").json()[0]["id"] == sid
    assert client.get(f"{P}/sync/sources/{sid}").json()["name"] == "QH datasets"
    assert client.get(f"{P}/sync/sources/name/QH datasets").json()["id"] == sid
    # connector_identifier is accepted as well as connector; duplicate names are refused
    dup = client.post(
        f"{P}/sync/sources",
        json={
            "name": "QH datasets",
            "connector_identifier": "native",
            "config_data": {"native_directory": str(tmp_path / "native")},
        },
    )
    assert dup.status_code == 409
    assert dup.json() == {
        "error": "sync_source_name_already_exists",
        "detail": "a source named 'QH datasets' already exists",
    }
    bad = client.post(
        f"{P}/sync/sources",
        json={"name": "x", "connector": "native", "config_data": {"native_directory": "/nope/x"}},
    )
    assert bad.status_code == 422
    assert bad.json()["error"] == "sync_source_config_data_validation_error"
    assert "native_directory" in bad.json()["detail"]
    unknown = client.post(f"{P}/sync/sources", json={"name": "x", "connector": "nope"})
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "sync_source_connector_not_found"
    required = client.post(
        f"{P}/sync/sources",
        json={"name": "q", "connector": "etiket_sync_agent_qcodes", "config_data": {}},
    )
    assert required.json()["error"] == "sync_source_default_scope_required"

    patched = client.patch(
        f"{P}/sync/sources/{sid}",
        json={"name": "renamed", "default_scope": "Chip7", "autoassign_scope_mapping": True},
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["name"], body["default_scope"], body["autoassign_scope_mapping"]) == (
        "renamed",
        "Chip7",
        True,
    )
    other = tmp_path / "other"
    other.mkdir()
    patched = client.patch(
        f"{P}/sync/sources/{sid}", json={"config_data": {"native_directory": str(other)}}
    )
    assert patched.json()["config_data"]["native_directory"] == str(other)
    assert client.patch(
        f"{P}/sync/sources/{sid}", json={"config_data": {"native_directory": "/nope"}}
    ).json()["error"] == ("sync_source_config_data_validation_error")

    assert client.post(f"{P}/sync/sources/{sid}/stop").json()["status"] == "stopped"
    assert client.post(f"{P}/sync/sources/{sid}/start").json()["status"] == "scanning"
    own = client.post(f"{P}/sync/sources/{sid}/take-ownership")
    assert own.status_code == 400
    assert own.json()["error"] == "sync_source_ownership_not_supported"
    assert client.post(f"{P}/sync/sources/{sid}/release-ownership").status_code == 400

    assert client.delete(f"{P}/sync/sources/{sid}").status_code == 204
    gone = client.get(f"{P}/sync/sources/{sid}")
    assert gone.status_code == 404
    assert gone.json() == {
        "error": "sync_source_not_found",
        "detail": f"sync source {sid} not found",
    }
    assert client.get(f"{P}/sync/sources/name/renamed").status_code == 404


def test_items_filters_order_reset_prioritize(
    client: TestClient, store: TrackingStore, tmp_path: Path
) -> None:
    sid = _native(client, tmp_path)["id"]
    _items(store, sid)
    listed = client.get(f"{P}/sync/items", params={"source_id": sid}).json()
    assert [i["data_identifier"] for i in listed] == ["run-a", "run-b", "other-c"]
    assert set(listed[0]) >= ITEM_KEYS
    assert listed[0]["status"] == "pending"
    q = client.get(
        f"{P}/sync/items",
        params={"query": "ru", "order_by": "syncpriority", "order_direction": "desc"},
    ).json()
    assert [i["data_identifier"] for i in q] == ["run-b", "run-a"]
    scoped = client.get(f"{P}/sync/items", params={"scope_identifier": "chip7"}).json()
    assert [i["data_identifier"] for i in scoped] == ["run-b"]
    page = client.get(f"{P}/sync/items", params={"offset": 1, "limit": 1}).json()
    assert [i["data_identifier"] for i in page] == ["run-b"]
    assert client.get(f"{P}/sync/items", params={"limit": 5000}).json()["error"] == (
        "validation_error"
    )
    assert client.get(f"{P}/sync/items", params={"order_by": "x"}).status_code == 422

    first = listed[0]["id"]
    assert client.patch(f"{P}/sync/items/{first}/prioritize").status_code == 204
    top = client.get(
        f"{P}/sync/items", params={"order_by": "syncpriority", "order_direction": "desc"}
    ).json()[0]
    assert top["id"] == first
    assert top["has_priority"] is True
    prio = client.get(f"{P}/sync/items", params={"has_priority": "true"}).json()
    assert [i["id"] for i in prio] == [first]

    failed = _fail(store, sid, "run-b", "boom")
    detail = client.get(f"{P}/sync/items/{failed}").json()
    assert detail["status"] == "error"
    assert detail["attempts"] == 1
    assert detail["sync_record"]["last_error"] == "boom"
    unsynced = client.get(f"{P}/sync/items", params={"is_synchronized": "false"}).json()
    assert len(unsynced) == 3
    assert client.patch(f"{P}/sync/items/{failed}/reset").status_code == 204
    assert client.get(f"{P}/sync/items/{failed}").json()["status"] == "pending"
    assert client.get(f"{P}/sync/items/999").json()["error"] == "sync_item_not_found"

    assert client.post(f"{P}/sync/items/{failed}/report-error").status_code == 202
    report = client.get(f"{P}/sync/items/{failed}/error-report").json()
    assert report["item"]["data_identifier"] == "run-b"

    _fail(store, sid, "run-b", "again")
    assert client.post(f"{P}/sync/sources/{sid}/reset-sync-items").json() == 1
    assert (
        client.post(
            f"{P}/sync/sources/{sid}/reset-sync-items", params={"include_successful": "true"}
        ).json()
        == 0
    )


def test_errors_viewed_flags(client: TestClient, store: TrackingStore, tmp_path: Path) -> None:
    sid = _native(client, tmp_path)["id"]
    _items(store, sid)
    a = _fail(store, sid, "run-a", "first problem")
    _fail(store, sid, "run-b", "second problem")
    errors = client.get(f"{P}/sync/agent/errors").json()
    assert {e["log_exception"] for e in errors} == {"first problem", "second problem"}
    assert all(e["viewed"] is False for e in errors)
    r = client.patch(f"{P}/sync/agent/errors/{a}", json={"viewed": True})
    assert r.status_code == 200
    assert r.json()["viewed"] is True
    assert [e["id"] for e in client.get(f"{P}/sync/agent/errors?viewed=true").json()] == [a]
    assert len(client.get(f"{P}/sync/agent/errors?viewed=false").json()) == 1
    assert client.get(f"{P}/sync/agent/errors?limit=1&skip=1").json()[0]["id"] in (a, a + 1)
    assert client.post(f"{P}/sync/agent/errors/mark-all-viewed").json() == 1
    assert client.post(f"{P}/sync/agent/errors/mark-all-viewed").json() == 0
    # a new error on the same item is unviewed again
    _fail(store, sid, "run-a", "new problem")
    unviewed = client.get(f"{P}/sync/sources/{sid}/errors?viewed=false").json()
    assert [e["log_exception"] for e in unviewed] == ["new problem"]
    r = client.patch(f"{P}/sync/sources/{sid}/errors/{a}", json={"viewed": True})
    assert r.json()["viewed"] is True
    assert client.patch(f"{P}/sync/sources/{sid}/errors/{a}", json={}).status_code == 422
    assert client.patch(f"{P}/sync/agent/errors/9999", json={"viewed": True}).status_code == 404
    assert client.post(f"{P}/sync/sources/{sid}/errors/mark-all-viewed").json() == 0
    assert client.post(f"{P}/sync/sources/{sid}/report-error").status_code == 202
    assert client.get(f"{P}/sync/sources/{sid}/error-report").json()["sources"][0]["id"] == sid
    saved = client.post(f"{P}/sync/agent/report-error")
    assert saved.status_code == 202
    assert Path(saved.json()["path"]).is_file()
    assert len(client.get(f"{P}/sync/agent/error-report").json()["errors"]) == 2


def test_scope_mappings(client: TestClient, store: TrackingStore, tmp_path: Path) -> None:
    sid = _native(client, tmp_path)["id"]
    _items(store, sid)
    item = store.get_item_by_key(sid, "run-b")
    assert item is not None
    claimed = store.claim_items("w1", 10, 60.0, source_ids=[sid])
    store.mark_waiting(item.id, "scope 'chip7' is not mapped")
    for other in claimed:
        if other.id != item.id:
            store.release_lease(other.id, "w1")
    assert client.get(f"{P}/sync/sources/{sid}/scope-mappings/unmapped").json() == ["chip7"]
    assert client.get(f"{P}/sync/sources/{sid}").json()["items_unmapped_scope_count"] == 1
    assert client.post(f"{P}/sync/sources/{sid}/scope-mappings/autoassign").json() == 1
    source = client.get(f"{P}/sync/sources/{sid}").json()
    assert source["scope_mappings"] == [
        {
            "sync_source_id": sid,
            "scope_identifier": "chip7",
            "scope_uuid": "11111111-1111-1111-1111-111111111111",
        }
    ]
    assert source["items_unmapped_scope_count"] == 0
    r = client.post(
        f"{P}/sync/sources/{sid}/scope-mappings",
        json={"scope_identifier": "proj", "scope_uuid": "2222"},
    )
    assert r.status_code == 201
    again = client.post(
        f"{P}/sync/sources/{sid}/scope-mappings",
        json={"scope_identifier": "proj", "scope_uuid": "2222"},
    )
    assert again.status_code == 409
    r = client.patch(f"{P}/sync/sources/{sid}/scope-mappings/proj", json={"scope_uuid": "3333"})
    assert r.json()["scope_uuid"] == "3333"
    assert client.delete(f"{P}/sync/sources/{sid}/scope-mappings/proj").status_code == 204
    missing = client.delete(f"{P}/sync/sources/{sid}/scope-mappings/proj")
    assert missing.status_code == 404
    assert missing.json()["error"] == "scope_mapping_not_found"
    assert (
        client.patch(
            f"{P}/sync/sources/{sid}/scope-mappings/proj", json={"scope_uuid": "x"}
        ).status_code
        == 404
    )


def test_agent_status_start_stop(client: TestClient, store: TrackingStore, tmp_path: Path) -> None:
    status = client.get(f"{P}/sync/agent/status").json()
    assert status["sync_api_service"] == "running"
    assert status["sync_agent_service"] == "not_running"
    assert status["sync_agent_status"] == "unavailable"
    store.heartbeat("running")
    store.bump_iteration()
    status = client.get(f"{P}/sync/agent/status").json()
    assert (status["sync_agent_service"], status["sync_agent_status"]) == ("running", "running")
    assert status["sync_iteration_count"] == 1
    sid = _native(client, tmp_path)["id"]
    paused = _native(client, tmp_path, "paused one")["id"]
    client.post(f"{P}/sync/sources/{paused}/stop")
    assert client.post(f"{P}/sync/agent/stop").status_code == 200
    assert client.get(f"{P}/sync/agent/status").json()["sync_agent_status"] == "stopped"
    assert client.get(f"{P}/sync/sources/{sid}").json()["status"] == "stopped"
    assert client.post(f"{P}/sync/agent/start").status_code == 200
    assert client.get(f"{P}/sync/sources/{sid}").json()["status"] == "scanning"
    # a source the user stopped stays stopped
    assert client.get(f"{P}/sync/sources/{paused}").json()["status"] == "stopped"


def test_packages_logs_and_envelope(client: TestClient) -> None:
    connectors = client.get(f"{P}/sync/connectors").json()
    assert "etiket_sync_agent_native" in {c["identifier"] for c in connectors}
    assert isinstance(client.get(f"{P}/sync/converters").json(), list)
    for kind in ("connectors", "converters"):
        for path in ("install/pypi", "install/local", "update/pypi", "update/local"):
            r = client.post(f"{P}/sync/{kind}/{path}", json={"package": "x"})
            assert r.status_code == 501
            assert r.json()["error"] == "package_management_not_supported"
            assert "pip" in r.json()["detail"]
        assert client.delete(f"{P}/sync/{kind}/x").status_code == 501
    assert client.get(f"{P}/admin/logs/sync_agent?n=2").json() == ["two", "three"]
    assert client.get(f"{P}/admin/logs/api").json() == []
    assert client.get(f"{P}/admin/logs/other").json()["error"] == "log_not_found"
    missing = client.get(f"{P}/nope")
    assert missing.status_code == 404
    assert set(missing.json()) == {"error", "detail"}
    assert client.put(f"{P}/sync/sources").status_code == 405


def test_secret_and_host_checks(store: TrackingStore, tmp_path: Path) -> None:
    client = TestClient(create_app(store, secret="s3cret"))
    assert client.get(f"{P}/sync/sources").status_code == 200  # reads need no secret
    denied = client.post(f"{P}/sync/agent/stop")
    assert denied.status_code == 401
    assert denied.json()["error"] == "local_secret_required"
    assert (
        client.post(f"{P}/sync/agent/stop", headers={"X-Etiket-Sync-Secret": "no"}).status_code
        == 401
    )
    ok = client.post(f"{P}/sync/agent/stop", headers={"X-Etiket-Sync-Secret": "s3cret"})
    assert ok.status_code == 200
    ok = client.post(f"{P}/sync/agent/start", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    rebinding = client.get(f"{P}/sync/sources", headers={"Host": "evil.example:10410"})
    assert rebinding.status_code == 403
    assert rebinding.json()["error"] == "host_not_allowed"
    assert client.get(f"{P}/sync/sources", headers={"Host": "127.0.0.1:10410"}).status_code == 200
    assert client.get(f"{P}/sync/sources", headers={"Host": "[::1]:10410"}).status_code == 200


def test_local_api_tokens_against_a_server(store: TrackingStore, tmp_path: Path) -> None:
    from etiket_local_server.testing import start_server

    server = start_server(tmp_path / "server")
    try:
        token = server.create_token("agent-login")
        client = TestClient(create_app(store, credentials=lambda: (server.url, token)))
        created = client.post(f"{P}/auth/local/api-tokens", json={"name": "from the GUI"})
        assert created.status_code == 201, created.text
        body = created.json()
        assert set(body) == {"uid", "name", "api_token", "server_url"}
        assert body["name"] == "from the GUI"
        assert body["server_url"] == server.url
        listed = client.get(f"{P}/auth/local/api-tokens").json()
        assert len(listed) == 1
        assert set(listed[0]) == {
            "user_sub",
            "user_name",
            "api_key_name",
            "api_key_uid",
            "server_url",
        }
        assert listed[0]["user_sub"]
        check = client.get(f"{P}/auth/local/api-tokens/{body['uid']}/check")
        assert check.json() == {"valid": True}
        assert client.delete(f"{P}/auth/local/api-tokens/{body['uid']}").status_code == 204
        assert client.get(f"{P}/auth/local/api-tokens/{body['uid']}/check").json() == {
            "valid": False
        }
        short = client.post(f"{P}/auth/local/api-tokens", json={"name": "x"})
        assert short.status_code == 422
        logged_out = TestClient(create_app(store, credentials=lambda: None))
        r = logged_out.get(f"{P}/auth/local/api-tokens")
        assert r.status_code == 401
        assert r.json() == {
            "error": "not_logged_in",
            "detail": "the agent is not logged in (etiket-sync login)",
        }
    finally:
        server.stop()
