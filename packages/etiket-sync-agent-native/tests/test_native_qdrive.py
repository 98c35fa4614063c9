"""The native backend syncs qdrive's own datasets from qdrive's local cache (etiket_api.md §10)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from etiket_sync_agent_native import NativeSync
from etiket_sync_agent_native.qdrive import (
    QdriveCache,
    QdriveCacheError,
    default_qdrive_directory,
    qdrive_items,
)
from etiket_sync_agent_native.qdrive_testing import ALEMBIC_HEAD, QdriveCacheWriter

from etiket_sync_agent.connectors import SyncContext, SyncItem
from etiket_sync_agent.connectors.config import parse_config
from etiket_sync_agent.errors import ConfigError
from etiket_sync_agent.testing import AgentHarness, fast_options, tree_digest


def _config(tmp_path: Path, qdrive: Path) -> dict[str, Any]:
    native = tmp_path / "native"
    native.mkdir(exist_ok=True)
    return {"native_directory": str(native), "qdrive_directory": str(qdrive), "sync_qdrive": True}


def test_default_location_per_platform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_qdrive_directory() == tmp_path / "quantum_machines" / "etiket"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert default_qdrive_directory() == tmp_path / "local" / "quantum_machines" / "etiket"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert default_qdrive_directory() == (
        Path.home() / "Library" / "Application Support" / "quantum_machines" / "etiket"
    )


def test_fixture_writer_is_schema_faithful(tmp_path: Path) -> None:
    writer = QdriveCacheWriter(tmp_path / "q")
    ds = writer.dataset("fts check", "lab", keywords=["alpha"], attributes={"sample": "chip7"})
    writer.close()
    conn = sqlite3.connect(tmp_path / "q" / "sql" / "etiket_db.sql")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == ALEMBIC_HEAD
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {
        "datasets",
        "files",
        "scopes",
        "dataset_attr",
        "ds_attr_link",
        "user_settings",
    } <= tables
    hit = conn.execute(
        "SELECT d.uuid FROM datasets_fts JOIN datasets d ON d.id = datasets_fts.rowid "
        "WHERE datasets_fts MATCH 'chip7*'"
    ).fetchall()
    assert hit == [(ds,)]
    conn.close()


def test_reader_discovery_rules_and_metadata(tmp_path: Path) -> None:
    w = QdriveCacheWriter(tmp_path / "q")
    a = w.dataset(
        "sweep A",
        "lab",
        alt_uid="guid-a",
        description="d",
        notes="n",
        keywords=["k1", "k2"],
        attributes={"sample": "chip7", "fridge": "F1"},
        ranking=1,
        collected=dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.timezone.utc),
    )
    w.file(a, "measurement", b"v1", filename="m.txt")
    cache_uuid, cache_v = w.file(a, "live_cache", b"cache", file_type="HDF5_CACHE")
    w.file(a, "writing", b"partial", status="writing")
    downloaded = w.dataset("downloaded", "lab", synchronized=True)
    w.file(downloaded, "x", b"x", synchronized=True)
    w.close()
    cache = QdriveCache(tmp_path / "q")
    pending = cache.pending()
    assert [p[0] for p in pending] == [a]
    ds = cache.get(a)
    assert ds is not None
    assert (ds.name, ds.alt_uid, ds.description, ds.notes, ds.ranking) == (
        "sweep A",
        "guid-a",
        "d",
        "n",
        1,
    )
    assert ds.keywords == ["k1", "k2"]
    assert ds.attributes == {"fridge": "F1", "sample": "chip7"}
    assert ds.collected == dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
    assert [f.name for f in ds.uploadable()] == ["measurement"]
    items, mark = qdrive_items(cache, None)
    assert [i.key for i in items] == [a]
    assert items[0].scope_identifier == ds.scope_uuid
    assert items[0].extra == {"dataset_uuid": a, "origin": "qdrive"}
    assert qdrive_items(cache, mark)[0] == []  # nothing modified since
    assert cache.get("no-such-uuid") is None
    with pytest.raises(QdriveCacheError, match="does not exist"):
        QdriveCache(tmp_path / "nowhere").pending()
    del cache_uuid, cache_v


def test_reader_is_read_only_and_does_not_block_a_writer(tmp_path: Path) -> None:
    w = QdriveCacheWriter(tmp_path / "q")
    a = w.dataset("concurrent", "lab")
    w.file(a, "m", b"1")
    cache = QdriveCache(tmp_path / "q")
    with cache._connect() as conn:
        with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only|query_only"):
            conn.execute("UPDATE datasets SET name = 'x'")
        conn.rollback()
        conn.execute("BEGIN")
        conn.execute("SELECT COUNT(*) FROM datasets").fetchone()  # an open read transaction
        done = threading.Event()

        def write() -> None:
            w2 = QdriveCacheWriter(tmp_path / "q")
            w2.dataset("written while a reader is open", "lab")
            w2.close()
            done.set()

        t = threading.Thread(target=write)
        t.start()
        t.join(5)
        assert done.is_set(), "the writer was blocked by our reader"
    w.close()
    assert len(cache.pending()) == 2


def test_config_and_sync_context(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(NativeSync.config_class, _config(tmp_path, tmp_path / "nothing"))
    assert info.value.field == "qdrive_directory"
    w = QdriveCacheWriter(tmp_path / "q")
    a = w.dataset("ctx", "lab", attributes={"k": "v"})
    fu, v1 = w.file(a, "data/trace", b"one", filename="trace.csv", file_type="TEXT")
    _, v2 = w.file(a, "data/trace", b"two", filename="trace.csv", file_type="TEXT")
    w.close()
    backend = NativeSync(parse_config(NativeSync.config_class, _config(tmp_path, tmp_path / "q")))
    items = list(backend.get_new_datasets(None))
    assert [i.key for i in items] == [a]
    assert backend.check_live_dataset(items[0], {}) is False
    item = SyncItem(key=a, dataset_uuid=a, extra=items[0].extra)
    (tmp_path / "work").mkdir()
    ctx = SyncContext(item, tmp_path / "work")
    backend.sync_dataset(item, ctx)
    assert ctx.plan.dataset is not None
    assert ctx.plan.dataset.uuid == a
    (planned,) = ctx.plan.files
    assert (planned.name, planned.uuid, planned.version_id) == ("data/trace", fu, v2)
    assert planned.path.read_bytes() == b"two"
    assert any("older unsynchronized" in log.message for log in ctx.plan.logs)
    assert v1 < v2
    assert a in backend.get_fingerprints()


def test_end_to_end_qdrive_datasets_reach_the_server_with_their_own_ids(tmp_path: Path) -> None:
    harness = AgentHarness(tmp_path / "harness", options=fast_options())
    try:
        qroot = tmp_path / "q"
        w = QdriveCacheWriter(qroot)
        scope = w.scope("harness-scope", harness.scope_uuid)
        a = w.dataset(
            "qdrive sweep", scope, alt_uid="guid-1", keywords=["q"], attributes={"s": "c"}
        )
        fa, va = w.file(a, "measurement", b"hello qdrive\n", filename="m.txt")
        b = w.dataset("qdrive second", scope)
        _fb, vb = w.file(b, "notes", b'{"x": 1}', filename="notes.json", file_type="JSON")
        fw, vw = w.file(b, "growing", b"partial", status="writing")
        before = tree_digest(qroot / "data")
        db_before = (qroot / "sql" / "etiket_db.sql").read_bytes()
        harness.register_backend(NativeSync)
        harness.add_source("QH datasets", NativeSync, _config(tmp_path, qroot))
        harness.run_until_idle(40)
        items = {i.natural_key: i for i in harness.items("QH datasets")}
        assert set(items) == {a, b}
        assert all(i.state.value == "synced" for i in items.values()), [
            i.last_error for i in items.values()
        ]
        remote = harness.dataset(a)
        assert str(remote.uuid) == a
        assert remote.alt_uid == "guid-1"
        assert remote.name == "qdrive sweep"
        assert str(remote.scope.uuid) == harness.scope_uuid
        (f,) = [x for x in remote.files if x.name == "measurement"]
        assert (str(f.uuid), f.version_id) == (fa, va)
        files_b = {x.name: x for x in harness.server_files(b)}
        assert set(files_b) == {"notes"}  # the version still being written waits
        assert files_b["notes"].version_id == vb
        # the file completes: synced as its own version on the next pass
        w.set_file_status(fw, vw, "complete")
        harness.run_until_idle(40)
        files_b = {x.name: x for x in harness.server_files(b)}
        assert files_b["growing"].version_id == vw
        assert files_b["growing"].md5_declared == files_b["growing"].md5_stored
        # a second pass uploads nothing new
        count = len(harness.server_files(a)) + len(harness.server_files(b))
        harness.run(2)
        assert len(harness.server_files(a)) + len(harness.server_files(b)) == count
        w.close()
        assert tree_digest(qroot / "data") == before
        conn = sqlite3.connect(qroot / "sql" / "etiket_db.sql")
        flags = conn.execute("SELECT synchronized FROM datasets").fetchall()
        conn.close()
        assert flags == [(0,), (0,)]  # qdrive's tables are never written
        assert db_before  # read-only checked through the flags above
    finally:
        harness.close()


def test_gui_flow_through_the_control_api(tmp_path: Path) -> None:
    """As the GUI does: create the source through the API, let the agent run, read the state."""
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from etiket_sync_agent.control_api import create_app

    harness = AgentHarness(tmp_path / "harness", options=fast_options())
    try:
        w = QdriveCacheWriter(tmp_path / "q")
        scope = w.scope("harness-scope", harness.scope_uuid)
        a = w.dataset("from qdrive", scope)
        w.file(a, "m", b"content\n", filename="m.txt")
        w.close()
        api = TestClient(create_app(harness.store))
        forms = {c["identifier"]: c for c in api.get("/api/v1/sync/sources/connectors").json()}
        fields = {f["name"] for f in forms["etiket_sync_agent_native"]["config_data"]}
        assert {"native_directory", "sync_qdrive", "qdrive_directory"} <= fields
        created = api.post(
            "/api/v1/sync/sources",
            json={
                "name": "QH datasets",
                "connector": "etiket_sync_agent_native",
                "config_data": _config(tmp_path, tmp_path / "q"),
            },
        )
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        harness.run_until_idle(40)
        source = api.get(f"/api/v1/sync/sources/{sid}").json()
        assert (source["items_total"], source["items_synchronized"]) == (1, 1)
        items = api.get("/api/v1/sync/items", params={"source_id": sid}).json()
        assert [(i["data_identifier"], i["dataset_uuid"], i["status"]) for i in items] == [
            (a, a, "synchronized")
        ]
        detail = api.get(f"/api/v1/sync/items/{items[0]['id']}").json()
        assert [f["name"] for f in detail["sync_record"]["files"]] == ["m"]
    finally:
        harness.close()
