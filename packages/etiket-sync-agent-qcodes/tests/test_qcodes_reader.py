"""Reading QCoDeS databases written in code: schema versions, odd names, WAL, busy, bad input."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import h5netcdf
import numpy as np
import pytest
from etiket_sync_agent_qcodes import QCoDeSConfig, QCoDeSSync
from etiket_sync_agent_qcodes.export import export_run
from etiket_sync_agent_qcodes.reader import QCoDeSDatabase
from etiket_sync_agent_qcodes.rundescriber import ParamSpec, parse_run_description
from etiket_sync_agent_qcodes.testing import QCoDeSWriter, description_json, sweep_1d_params

from etiket_sync_agent.connectors import SyncContext, SyncItem
from etiket_sync_agent.connectors.config import parse_config
from etiket_sync_agent.errors import ConfigError, SourceError, SyncError


def _backend(path: Path, **extra: Any) -> QCoDeSSync:
    return QCoDeSSync(QCoDeSConfig(database_path=path, set_up="test", **extra))


def _export(path: Path, guid: str, out: Path) -> dict[str, Any]:
    with QCoDeSDatabase(path) as database:
        run = database.run_by_guid(guid)
        assert run is not None
        export_run(database, run, out)
    result: dict[str, Any] = {}
    with h5netcdf.File(out, "r") as f:
        result["attrs"] = dict(f.attrs)
        for name, var in f.variables.items():
            result[name] = (tuple(var.dimensions), np.asarray(var[...]), dict(var.attrs))
    return result


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_run_description_versions_parse_alike(version: int) -> None:
    params = [
        ParamSpec("x", "numeric", "X", "V"),
        ParamSpec("y", "numeric", "Y", "V"),
        ParamSpec("z", "complex", "Z", "A", depends_on=("x", "y")),
        ParamSpec("s", "numeric", "S", "s"),
    ]
    described = parse_run_description(description_json(params, {"z": (2, 3)}, version))
    by_name = described.by_name()
    assert by_name["z"].depends_on == ("x", "y")
    assert by_name["z"].paramtype == "complex"
    assert by_name["x"].label == "X"
    assert {p.name for p in described.top_level()} == {"z", "s"}
    assert described.shapes == ({"z": (2, 3)} if version == 3 else None)


@pytest.mark.parametrize("user_version", [2, 4, 6, 8])
def test_older_schema_versions_with_guid_are_read(tmp_path: Path, user_version: int) -> None:
    path = tmp_path / "old.db"
    writer = QCoDeSWriter(path, user_version=user_version, wal=False)
    exp = writer.new_experiment("old", "s")
    run = writer.sweep_1d(exp, "old sweep", points=4)
    items = list(_backend(path).get_new_datasets(None))
    assert [i.key for i in items] == [run.guid]
    result = _export(path, run.guid, tmp_path / "out.hdf5")
    dims, values, attrs = result["current"]
    assert dims == ("gate",)
    assert np.allclose(values, np.sin(np.linspace(-1, 1, 4)))
    assert attrs["units"] == "A"
    assert attrs["long_name"] == "Current"


def test_schema_without_guid_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "v0.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE experiments (exp_id INTEGER PRIMARY KEY, name TEXT);"
        "CREATE TABLE runs (run_id INTEGER PRIMARY KEY, exp_id INTEGER, name TEXT);"
    )
    conn.close()
    with pytest.raises(SourceError, match="no guid column"):
        list(_backend(path).get_new_datasets(None))


def test_quoted_table_parameter_and_metadata_names(tmp_path: Path) -> None:
    path = tmp_path / "odd names.db"
    writer = QCoDeSWriter(path)
    exp = writer.new_experiment('exp "quoted"', "sample with space")
    params = [
        ParamSpec('gate "A"-1', "numeric", "Gate A", "mV"),
        ParamSpec("I sd (nA)", "numeric", "Current", "nA", depends_on=('gate "A"-1',)),
    ]
    run = writer.new_run(
        exp,
        "odd",
        params,
        table_name='results "odd" table-1',
        metadata={"my tag-1": "value", 'a"b': 3},
    )
    writer.add_rows(run, [{'gate "A"-1': float(v), "I sd (nA)": v * 2.0} for v in range(3)])
    writer.complete(run)
    result = _export(path, run.guid, tmp_path / "out.hdf5")
    dims, values, _ = result["I sd (nA)"]
    assert dims == ('gate "A"-1',)
    assert list(values) == [0.0, 2.0, 4.0]
    assert result["attrs"]["my tag-1"] == "value"
    assert int(result["attrs"]['a"b']) == 3
    assert result["attrs"]["exp_name"] == 'exp "quoted"'


def test_array_complex_text_and_two_dependents(tmp_path: Path) -> None:
    path = tmp_path / "kinds.db"
    writer = QCoDeSWriter(path)
    exp = writer.new_experiment("kinds")
    params = [
        ParamSpec("v", "numeric", "V", "V"),
        ParamSpec("f", "array", "Freq", "Hz"),
        ParamSpec("spec", "array", "Spectrum", "dB", depends_on=("v", "f")),
        ParamSpec("w", "numeric", "W", "s"),
        ParamSpec("iq", "complex", "IQ", "V", depends_on=("w",)),
        ParamSpec("state", "text", "State", "", depends_on=("w",)),
    ]
    run = writer.new_run(exp, "kinds", params, shapes={"spec": (2, 4)})
    freqs = np.arange(4.0)
    writer.add_rows(run, [{"v": v, "f": freqs, "spec": freqs * v} for v in (1.0, 2.0)])
    writer.add_rows(run, [{"w": w, "iq": complex(w, -w)} for w in (0.5, 1.5, 2.5)])
    writer.add_rows(run, [{"w": w, "state": f"s{w}"} for w in (0.5, 1.5, 2.5)])
    writer.complete(run)
    result = _export(path, run.guid, tmp_path / "out.hdf5")
    assert result["spec"][0] == ("v", "f")
    assert np.array_equal(result["spec"][1], np.outer([1.0, 2.0], freqs))
    assert result["iq"][0] == ("w",)
    assert np.array_equal(result["iq"][1], [0.5 - 0.5j, 1.5 - 1.5j, 2.5 - 2.5j])
    assert [s.decode() if isinstance(s, bytes) else s for s in result["state"][1]] == [
        "s0.5",
        "s1.5",
        "s2.5",
    ]
    assert list(result["w"][1]) == [0.5, 1.5, 2.5]


def test_nan_values_and_unfinished_shaped_run(tmp_path: Path) -> None:
    path = tmp_path / "nan.db"
    writer = QCoDeSWriter(path)
    exp = writer.new_experiment("nan")
    run = writer.new_run(exp, "partial", sweep_1d_params(), shapes={"current": (10,)})
    writer.add_rows(run, [{"gate": 0.0, "current": float("nan")}, {"gate": 1.0, "current": 2.0}])
    result = _export(path, run.guid, tmp_path / "out.hdf5")
    dims, values, _ = result["current"]
    assert dims == ("gate",)
    assert np.isnan(values[0])
    assert values[1] == 2.0
    assert result["attrs"]["completed_timestamp_raw"] == -1


def test_wal_content_is_seen_and_the_database_is_not_modified(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    writer = QCoDeSWriter(path)
    exp = writer.new_experiment("wal")
    run = writer.new_run(exp, "running", sweep_1d_params())
    holder = sqlite3.connect(path)  # keeps the WAL from being checkpointed away on close
    holder.execute("PRAGMA wal_autocheckpoint=0")
    holder.execute("SELECT 1").fetchone()
    try:
        holder.executemany(
            f'INSERT INTO "{run.table}" (gate, current) VALUES (?, ?)',
            [(float(i), float(i)) for i in range(7)],
        )
        holder.commit()
        assert Path(f"{path}-wal").stat().st_size > 0
        before = _md5(path)
        with QCoDeSDatabase(path) as database:
            row = database.run_by_guid(run.guid)
            assert row is not None
            assert database.results_size(row) == 7
        assert _md5(path) == before
    finally:
        holder.close()


def test_busy_writer_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    writer = QCoDeSWriter(path, wal=False)
    exp = writer.new_experiment("busy")
    run = writer.sweep_1d(exp, "busy run", points=3)
    locked = threading.Event()

    def hold_lock() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(0.6)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=hold_lock)
    thread.start()
    locked.wait(5)
    try:
        with QCoDeSDatabase(path, busy_timeout=0.05) as database:
            assert database.run_by_guid(run.guid) is not None
    finally:
        thread.join()


def _raw_config(path: Path) -> dict[str, Any]:
    return {"database_path": str(path), "set_up": "fridge"}


def test_config_validation_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(QCoDeSConfig, _raw_config(tmp_path / "missing.db"))
    assert info.value.field == "database_path"
    assert "does not exist" in str(info.value)

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError) as info:
        parse_config(QCoDeSConfig, _raw_config(garbage))
    assert info.value.field == "database_path"

    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE runs (run_id INTEGER)").connection.close()
    with pytest.raises(ConfigError) as info:
        parse_config(QCoDeSConfig, _raw_config(other))
    assert info.value.field == "database_path"
    assert "experiments" in str(info.value)

    with pytest.raises(ConfigError) as info:
        parse_config(QCoDeSConfig, _raw_config(tmp_path))
    assert info.value.field == "database_path"

    good = tmp_path / "good.db"
    QCoDeSWriter(good)
    with pytest.raises(ConfigError) as info:
        parse_config(QCoDeSConfig, {**_raw_config(good), "stale_after": -1})
    assert info.value.field == "stale_after"
    config = parse_config(QCoDeSConfig, {**_raw_config(good), "static_attributes": {"a": "b"}})
    assert config.static_attributes == {"a": "b"}


def test_truncated_database_is_a_source_error_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "trunc.db"
    writer = QCoDeSWriter(path, wal=False)
    exp = writer.new_experiment("t")
    run = writer.sweep_1d(exp, "r", points=5)
    content = path.read_bytes()
    backend = _backend(path)
    path.write_bytes(content[:100])
    with pytest.raises(SourceError):
        list(backend.get_new_datasets(None))
    path.unlink()
    with pytest.raises(SourceError, match="does not exist"):
        list(backend.get_new_datasets(None))
    item = SyncItem(key=run.guid, extra={"run_id": run.run_id})
    with pytest.raises(SyncError, match="does not exist"):
        backend.sync_dataset(item, SyncContext(item, tmp_path / "w"))
    path.write_bytes(content)
    assert [i.key for i in backend.get_new_datasets(None)] == [run.guid]


def test_missing_results_table_is_an_item_error(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    writer = QCoDeSWriter(path)
    exp = writer.new_experiment("m")
    run = writer.sweep_1d(exp, "r", points=5)
    conn = writer.connect()
    conn.execute(f'DROP TABLE "{run.table}"')
    conn.commit()
    conn.close()
    item = SyncItem(key=run.guid)
    with pytest.raises(SyncError, match="results table"):
        _backend(path).sync_dataset(item, SyncContext(item, tmp_path / "w"))


def test_run_started_after_a_newer_one_is_still_found(tmp_path: Path) -> None:
    path = tmp_path / "late.db"
    writer = QCoDeSWriter(path)
    exp = writer.new_experiment("late")
    early = writer.new_run(exp, "created first", sweep_1d_params(), start=False)
    newer = writer.sweep_1d(exp, "started first")
    backend = _backend(path)
    items = list(backend.get_new_datasets(None))
    assert [i.key for i in items] == [newer.guid]
    assert list(backend.get_new_datasets(items[-1])) == []
    writer.start(early)
    late = list(backend.get_new_datasets(items[-1]))
    assert [i.key for i in late] == [early.guid]
    assert list(backend.get_new_datasets(items[-1])) == []


def test_live_stale_and_growing_again(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    writer = QCoDeSWriter(path)
    exp = writer.new_experiment("live")
    writer.sweep_1d(exp, "done")
    run = writer.new_run(exp, "running", sweep_1d_params())
    writer.add_columns(run, {"gate": [0.0, 1.0], "current": [0.0, 1.0]})
    backend = _backend(path, stale_after=0.3)
    item = SyncItem(key=run.guid, extra={"run_id": run.run_id})
    state: dict[str, Any] = {}

    def sync(live: bool) -> dict[str, Any]:
        ctx = SyncContext(item, tmp_path / f"w{time.monotonic_ns()}", live=live, state=state)
        (backend.sync_dataset_live if live else backend.sync_dataset)(item, ctx)
        return ctx.state

    assert backend.check_live_dataset(item, state) is True
    state = sync(True)
    assert state["rows"] == 2
    assert backend.check_live_dataset(item, state) is True  # not stale yet
    writer.add_columns(run, {"gate": [2.0], "current": [4.0]})
    assert backend.check_live_dataset(item, state) is True  # grew
    state = sync(True)
    time.sleep(0.4)
    assert backend.check_live_dataset(item, state) is False  # stale: synced as it is
    stale = sync(False)
    assert stale["changed_at"] == state["changed_at"]
    writer.add_columns(run, {"gate": [3.0], "current": [9.0]})
    assert backend.check_live_dataset(item, stale) is True  # the crashed run came back
    fingerprints = dict(backend.get_fingerprints())
    writer.complete(run)
    assert backend.check_live_dataset(item, stale) is False
    assert dict(backend.get_fingerprints())[run.guid] != fingerprints[run.guid]


def test_an_unfinished_run_that_is_not_the_newest_is_not_live(tmp_path: Path) -> None:
    path = tmp_path / "crashed.db"
    writer = QCoDeSWriter(path)
    exp = writer.new_experiment("c")
    crashed = writer.new_run(exp, "crashed", sweep_1d_params())
    writer.add_columns(crashed, {"gate": [0.0], "current": [0.0]})
    writer.sweep_1d(exp, "later")
    item = SyncItem(key=crashed.guid)
    assert _backend(path).check_live_dataset(item, {}) is False


def test_fingerprint_changes_with_inspectr_tag(tmp_path: Path) -> None:
    path = tmp_path / "tag.db"
    writer = QCoDeSWriter(path)
    exp = writer.new_experiment("tag")
    run = writer.sweep_1d(exp, "r")
    backend = _backend(path)
    first = dict(backend.get_fingerprints())
    assert first == {i.key: i.fingerprint for i in backend.get_new_datasets(None)}
    writer.set_metadata(run, "inspectr_tag", "star")
    assert dict(backend.get_fingerprints())[run.guid] != first[run.guid]
