"""The native backend: discovery, fingerprints, live checks, plans, and syncing over HTTP."""

from __future__ import annotations

import collections
import datetime as dt
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from etiket_sync_agent_native import Dataset, NativeConfig, NativeSync, close_stores
from etiket_sync_agent_native.store import CATALOG_NAME
from etiket_sync_agent_native.testing import make_native_dataset

from etiket_sync_agent import FileType, SyncContext, SyncItem
from etiket_sync_agent.connectors.config import parse_config
from etiket_sync_agent.errors import ConfigError, SourceError, SyncError
from etiket_sync_agent.testing import AgentHarness, fast_options


def _backend(directory: Path) -> NativeSync:
    return NativeSync(parse_config(NativeConfig, {"native_directory": str(directory)}))


def _plan(backend: NativeSync, key: str, tmp_path: Path, *, live: bool = False) -> SyncContext:
    work = tmp_path / "work"
    work.mkdir(parents=True, exist_ok=True)
    item = SyncItem(key=key)
    ctx = SyncContext(item, work, live=live)
    backend.sync_dataset(item, ctx)
    return ctx


def _state(item: Any) -> str:
    return str(getattr(item.state, "value", item.state))


# -- configuration ---------------------------------------------------------------------------------
def test_config_defaults_to_the_agent_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETIKET_SYNC_HOME", str(tmp_path / "home"))
    config = parse_config(NativeConfig, {})
    assert config.root() == tmp_path / "home" / "native"
    ds = Dataset.create("default place", "lab")
    assert [i.key for i in NativeSync(config).get_new_datasets(None)] == [ds.uuid]


def test_config_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(NativeConfig, {"native_directory": str(tmp_path / "nope")})
    assert info.value.field == "native_directory"
    assert "not an existing folder" in str(info.value)


# -- discovery -------------------------------------------------------------------------------------
def test_items_carry_cursor_scope_fingerprint_and_pinned_uuid(tmp_path: Path) -> None:
    first = make_native_dataset(tmp_path, 0, scope="lab-a")
    second = make_native_dataset(tmp_path, 1, scope="lab-b", complete=False)
    backend = _backend(tmp_path)
    items = list(backend.get_new_datasets(None))
    assert [i.key for i in items] == [first.uuid, second.uuid]
    assert [i.scope_identifier for i in items] == ["lab-a", "lab-b"]
    assert items[0].cursor is not None
    assert items[1].cursor is not None
    assert items[0].cursor < items[1].cursor
    assert items[1].priority > items[0].priority
    assert items[0].extra == {"dataset_uuid": first.uuid}
    assert list(backend.get_new_datasets(items[0])) == [items[1]]

    before = dict(backend.get_fingerprints())
    assert before == {i.key: i.fingerprint for i in items}
    second.add_file(b"more", name="more.txt")
    after = dict(backend.get_fingerprints())
    assert after[first.uuid] == before[first.uuid]
    assert after[second.uuid] != before[second.uuid]
    second.complete()
    assert backend.get_fingerprints()[second.uuid] != after[second.uuid]


def test_discovery_pages_through_many_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import etiket_sync_agent_native.sync as sync_module

    monkeypatch.setattr(sync_module, "_BATCH", 3)
    uuids = [Dataset.create(f"d{i}", "lab", directory=tmp_path).uuid for i in range(8)]
    assert [i.key for i in _backend(tmp_path).get_new_datasets(None)] == uuids


def test_a_recreated_catalog_is_listed_again(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for i in range(3):
        make_native_dataset(store, i)
    backend = _backend(store)
    last = list(backend.get_new_datasets(None))[-1]
    close_stores()
    shutil.rmtree(store)
    fresh = make_native_dataset(store, 9)
    assert [i.key for i in backend.get_new_datasets(last)] == [fresh.uuid]


def test_a_vanished_store_is_a_source_error(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    backend = _backend(store)
    store.rmdir()
    with pytest.raises(SourceError, match="does not exist"):
        list(backend.get_new_datasets(None))
    with pytest.raises(SourceError):
        backend.get_fingerprints()


def test_a_corrupt_catalog_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / CATALOG_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SourceError, match="catalog"):
        list(_backend(tmp_path).get_new_datasets(None))


# -- live ------------------------------------------------------------------------------------------
def test_live_while_incomplete_and_fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = Dataset.create("running", "lab", directory=tmp_path)
    backend = _backend(tmp_path)
    item = SyncItem(key=ds.uuid)
    assert backend.check_live_dataset(item, {}) is True
    with monkeypatch.context() as patch:
        patch.setattr(backend, "stale_after", 0.0)  # "no change for stale_after s": not live
        assert backend.check_live_dataset(item, {}) is False
    assert backend.check_live_dataset(item, {}) is True
    ds.complete()
    assert backend.check_live_dataset(item, {}) is False
    assert backend.check_live_dataset(SyncItem(key=str(uuid.uuid4())), {}) is False


# -- plans -----------------------------------------------------------------------------------------
def test_plan_describes_dataset_and_files(tmp_path: Path) -> None:
    ds = make_native_dataset(tmp_path, 4, scope="lab", extra_files={"raw/x.bin": b"\x00\x01"})
    ctx = _plan(_backend(tmp_path), ds.uuid, tmp_path / "w")
    info = ctx.plan.dataset
    assert info is not None
    assert info.name == "native measurement 4"
    assert info.attributes == {"sample": "chip-4", "index": "4", "cooldown": "3"}
    assert info.keywords == ["native", "batch 0"]
    assert info.description == "generated native dataset number 4"
    assert info.collected == dt.datetime(2024, 5, 1, 10, 4, tzinfo=dt.timezone.utc)
    # The native uuid is the server's: the core looks it up (and adopts it) before creating.
    assert info.uuid == ds.uuid
    assert info.alt_uid is None
    assert [f.name for f in ctx.plan.files] == ["trace.csv", "analysis/fit.json", "raw/x.bin"]
    fit = ctx.plan.file("analysis/fit.json")
    assert fit.filename == "fit.json"
    assert fit.path.read_bytes() == ds.path_of("analysis/fit.json").read_bytes()
    assert fit.generator == "etiket-sync-agent-native"
    assert fit.file_type == FileType.JSON
    assert ctx.plan.file("trace.csv").file_type == FileType.TEXT
    assert ctx.plan.file("raw/x.bin").file_type == FileType.UNKNOWN
    assert ctx.state == {"revision": ds.refresh()._record.revision, "complete": True}
    assert not ctx.plan.errors


def test_missing_store_file_is_an_item_error_after_the_others(tmp_path: Path) -> None:
    ds = make_native_dataset(tmp_path, 0)
    ds.path_of("trace.csv").unlink()
    ctx = _plan(_backend(tmp_path), ds.uuid, tmp_path / "w")
    assert [f.name for f in ctx.plan.files] == ["analysis/fit.json"]
    assert len(ctx.plan.errors) == 1
    assert "'trace.csv'" in ctx.plan.errors[0]
    assert ds.uuid in ctx.plan.errors[0]


def test_unknown_dataset_and_corrupt_row_are_sync_errors(tmp_path: Path) -> None:
    ds = make_native_dataset(tmp_path, 0)
    backend = _backend(tmp_path)
    with pytest.raises(SyncError, match="no longer in the catalog"):
        _plan(backend, str(uuid.uuid4()), tmp_path / "w")
    with sqlite3.connect(tmp_path / CATALOG_NAME) as conn:
        conn.execute("UPDATE datasets SET attributes = 'not json' WHERE uuid = ?", (ds.uuid,))
    with pytest.raises(SyncError, match="corrupt"):
        _plan(backend, ds.uuid, tmp_path / "w")


# -- over HTTP -------------------------------------------------------------------------------------
@pytest.fixture
def harness(tmp_path: Path) -> Iterator[AgentHarness]:
    h = AgentHarness(tmp_path / "harness", options=fast_options())
    h.register_backend(NativeSync)
    yield h
    h.close()


def _items(harness: AgentHarness) -> dict[str, Any]:
    return {i.natural_key: i for i in harness.items("native")}


def test_scopes_by_name_uuid_mapping_and_unknown(tmp_path: Path, harness: AgentHarness) -> None:
    store = tmp_path / "store"
    by_name = make_native_dataset(store, 0, scope=harness.scope_name)
    by_uuid = make_native_dataset(store, 1, scope=harness.scope_uuid)
    mapped = make_native_dataset(store, 2, scope="lab-a")
    unknown = make_native_dataset(store, 3, scope="no-such-scope")
    harness.add_source(
        "native",
        NativeSync,
        {"native_directory": str(store)},
        scope_mapping={"lab-a": harness.scope_uuid},
    )
    harness.run_until_idle(40)
    items = _items(harness)
    for ds in (by_name, by_uuid, mapped):
        assert _state(items[ds.uuid]) == "synced", items[ds.uuid].last_error
        assert items[ds.uuid].dataset_uuid == ds.uuid, "the server uuid is the local uuid"
        record = harness.dataset(ds.uuid)
        assert record is not None
        assert record.scope is not None
        assert str(record.scope.uuid) == harness.scope_uuid
        assert record.name == ds.name
        assert record.attributes["sample"] == ds.attributes["sample"]
    assert _state(items[unknown.uuid]) == "waiting"
    assert "no-such-scope" in (items[unknown.uuid].last_error or "")


def test_changes_after_sync_upload_only_what_changed(tmp_path: Path, harness: AgentHarness) -> None:
    store = tmp_path / "store"
    older = make_native_dataset(store, 0, scope=harness.scope_name, complete=False)
    newest = make_native_dataset(store, 1, scope=harness.scope_name)
    harness.add_source("native", NativeSync, {"native_directory": str(store)})
    harness.run_until_idle(40)
    items = _items(harness)
    assert _state(items[older.uuid]) == "synced", "an older incomplete dataset is not live"
    assert {f.name for f in harness.server_files(older.uuid)} == {"trace.csv", "analysis/fit.json"}

    # A file added later, a new content for an existing name and new metadata.
    older.add_file(b"late data\n", name="late.txt")
    older.add_file(b"time (s),signal (V)\n0,1\n", name="trace.csv")
    older.update(attributes={"sample": "chip-99"}, keywords=["late"])
    older.complete()
    harness.run_until_idle(40)
    files = harness.server_files(older.uuid)
    versions = collections.Counter(f.name for f in files)
    assert versions == {"trace.csv": 2, "analysis/fit.json": 1, "late.txt": 1}
    for f in files:
        assert f.md5_declared == f.md5_stored
    record = harness.dataset(older.uuid)
    assert record is not None
    assert record.attributes["sample"] == "chip-99"
    assert "late" in record.keywords
    assert len(harness.server_files(newest.uuid)) == 2
    # Nothing changed: nothing new.
    harness.run(3)
    assert len(harness.server_files(older.uuid)) == len(files)
    assert len(harness.datasets()) == 2


def test_hdf5_files_are_typed_by_content(tmp_path: Path) -> None:
    h5netcdf = pytest.importorskip("h5netcdf")
    h5py = pytest.importorskip("h5py")
    netcdf, plain = tmp_path / "nc.hdf5", tmp_path / "plain.hdf5"
    with h5netcdf.File(netcdf, "w") as nc:
        nc.dimensions = {"t": 2}
        nc.create_variable("t", ("t",), float)[:] = [0.0, 1.0]
    with h5py.File(plain, "w") as f:
        f["x"] = [1, 2]
    ds = Dataset.create("typed", scope="lab", directory=tmp_path / "store")
    ds.add_file(netcdf)
    ds.add_file(plain)
    ds.complete()
    ctx = _plan(_backend(tmp_path / "store"), ds.uuid, tmp_path / "w")
    assert ctx.plan.file("nc.hdf5").file_type == FileType.HDF5_NETCDF
    assert ctx.plan.file("plain.hdf5").file_type == FileType.HDF5
