"""Through the engine to the local eTiKeT server: a live run, a crashed run, 1,000 runs."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pytest
from etiket_sync_agent_qcodes import QCoDeSSync
from etiket_sync_agent_qcodes.testing import QCoDeSWriter, make_demo_source, sweep_1d_params

from etiket_sync_agent.testing import AgentHarness, fast_options


def _state(item: object) -> str:
    state = getattr(item, "state", None)
    return str(getattr(state, "value", state))


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_live_run_then_its_final_state_and_a_crashed_run(tmp_path: Path) -> None:
    path = tmp_path / "source" / "experiments.db"
    writer = QCoDeSWriter(path)
    exp = writer.new_experiment("e2e", "chip-3")
    writer.sweep_1d(exp, "earlier", metadata={"inspectr_tag": "star"})
    crashed = writer.new_run(exp, "crashed", sweep_1d_params())
    writer.add_columns(crashed, {"gate": [0.0, 1.0], "current": [0.0, 1.0]})
    running = writer.new_run(exp, "running", sweep_1d_params(), shapes={"current": (10,)})
    writer.add_columns(running, {"gate": [0.0, 1.0], "current": [0.0, 1.0]})
    harness = AgentHarness(tmp_path / "harness", options=fast_options())
    harness.register_backend(QCoDeSSync)
    harness.add_source(
        "qc", QCoDeSSync, {"database_path": str(path), "set_up": "fridge", "stale_after": 60}
    )
    try:
        harness.run(2)
        items = {i.natural_key: i for i in harness.items("qc")}
        assert _state(items[running.guid]) == "live"
        assert _state(items[crashed.guid]) == "synced"  # not the newest: synced as it is
        first = harness.server_files(items[running.guid].dataset_uuid)
        writer.add_columns(running, {"gate": [2.0, 3.0], "current": [4.0, 9.0]})
        harness.run(2)
        grown = harness.server_files(items[running.guid].dataset_uuid)
        assert len(grown) > len(first)
        writer.add_columns(running, {"gate": np.arange(4.0, 10.0), "current": np.arange(6.0)})
        writer.complete(running)
        harness.run_until_idle(30)
        items = {i.natural_key: i for i in harness.items("qc")}
        assert {_state(i) for i in items.values()} == {"synced"}
        assert len(harness.server_files(items[running.guid].dataset_uuid)) > len(grown)
        starred = [d for d in harness.datasets() if d.name == "earlier"]
        assert [d.ranking for d in starred] == [1]
        # The crashed run grows again (someone resumed it): it is synced again.
        before = len(harness.server_files(items[crashed.guid].dataset_uuid))
        writer.add_columns(crashed, {"gate": [2.0], "current": [4.0]})
        harness.run_until_idle(30)
        assert len(harness.server_files(items[crashed.guid].dataset_uuid)) > before
    finally:
        harness.close()


def test_demo_source_syncs_completely(tmp_path: Path) -> None:
    config = make_demo_source(tmp_path / "demo")
    before = _md5(Path(config["database_path"]))
    harness = AgentHarness(tmp_path / "harness", options=fast_options())
    harness.register_backend(QCoDeSSync)
    harness.add_source("demo-qcodes", QCoDeSSync, config)
    try:
        harness.run_until_idle(40)
        items = harness.items("demo-qcodes")
        assert len(items) == 5
        assert {_state(i) for i in items} == {"synced"}, [i.last_error for i in items]
        names = {d.name: d for d in harness.datasets()}
        assert set(names) == {
            "1D gate sweep",
            "charge stability P1 P2",
            "resonator vs field",
            "IQ trace",
            "readout and bias",
        }
        assert names["1D gate sweep"].ranking == 1
        for item in items:
            files = {f.name for f in harness.server_files(item.dataset_uuid)}
            assert files == {"measurement", "snapshot.json"}
    finally:
        harness.close()
    assert _md5(Path(config["database_path"])) == before


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_thousand_runs_sync_completely_and_the_database_is_untouched(tmp_path: Path) -> None:
    path = tmp_path / "source" / "experiments.db"
    writer = QCoDeSWriter(path)
    exp = writer.new_experiment("bulk", "chip")
    t0 = time.perf_counter()
    for i in range(1000):
        writer.sweep_1d(exp, f"bulk run {i}", points=5 + i % 20)
    print(f"1000 runs written in {time.perf_counter() - t0:.1f} s")
    before = _md5(path)
    harness = AgentHarness(tmp_path / "harness", options=fast_options(concurrency=8))
    harness.register_backend(QCoDeSSync)
    harness.add_source("bulk", QCoDeSSync, {"database_path": str(path), "set_up": "fridge"})
    try:
        t0 = time.perf_counter()
        harness.run_until_idle(2000)
        elapsed = time.perf_counter() - t0
        items = harness.items("bulk")
        assert len(items) == 1000
        assert {_state(i) for i in items} == {"synced"}
        assert len(harness.datasets()) == 1000
        print(f"1000 QCoDeS runs synced in {elapsed:.1f} s")
    finally:
        harness.close()
    assert _md5(path) == before


def _h5_values(data: bytes | Path) -> dict[str, object]:
    """Every dataset of an HDF5 file (by path) with its values and attributes."""
    import io

    import h5py

    out: dict[str, object] = {}
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    with h5py.File(source, "r") as handle:

        def visit(name: str, node: object) -> None:
            if isinstance(node, h5py.Dataset):
                attrs = {
                    k: v
                    for k, v in node.attrs.items()
                    if k not in ("DIMENSION_LIST", "REFERENCE_LIST")
                }
                out[name] = (node[()], sorted(attrs))

        handle.visititems(visit)
    return out


def test_runs_read_with_the_helper_process_sync_the_values_of_the_simple_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside the engine (worker threads, a live server), every completed run is read in id
    ranges with the helper process, as large runs are; the uploaded files hold the values the
    one-query path exports."""
    from etiket_sync_agent_qcodes import reader
    from etiket_sync_agent_qcodes.export import export_run

    monkeypatch.setattr(reader, "PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(reader, "RANGE_IDS", 3)
    monkeypatch.setattr(reader, "_usable_cpus", lambda: 2)
    started: list[object] = []
    original = reader._Helper.start.__func__  # type: ignore[attr-defined]

    def counting_start(cls: type, uri: str, busy_timeout: float) -> object:
        helper = original(cls, uri, busy_timeout)
        started.append(helper)
        return helper

    monkeypatch.setattr(reader._Helper, "start", classmethod(counting_start))
    config = make_demo_source(tmp_path / "demo")
    harness = AgentHarness(tmp_path / "harness", options=fast_options())
    harness.register_backend(QCoDeSSync)
    harness.add_source("demo-qcodes", QCoDeSSync, config)
    try:
        harness.run_until_idle(40)
        items = harness.items("demo-qcodes")
        assert {_state(i) for i in items} == {"synced"}, [i.last_error for i in items]
        assert any(helper is not None for helper in started), "no run was read with the helper"
        with reader.QCoDeSDatabase(Path(config["database_path"]), parallel=False) as database:
            for item in items:
                record = harness.dataset(item.dataset_uuid)
                (stored,) = [f for f in record.files if f.name == "measurement"]
                body = harness._downloads().get(stored.S3_link).content
                run = database.run_by_guid(item.natural_key)
                assert run is not None
                expected_path = tmp_path / f"{item.natural_key}.hdf5"
                export_run(database, run, expected_path)
                got, expected = _h5_values(body), _h5_values(expected_path)
                assert sorted(got) == sorted(expected), item.natural_key
                for name, (values, attrs) in expected.items():  # type: ignore[misc]
                    got_values, got_attrs = got[name]  # type: ignore[misc]
                    np.testing.assert_array_equal(got_values, values, err_msg=name)
                    assert got_attrs == attrs, name
    finally:
        harness.close()
