"""Quantify directories synced through the engine to the local eTiKeT server over HTTP."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from etiket_sync_agent_quantify import QuantifySync
from etiket_sync_agent_quantify import testing as qt

from etiket_sync_agent.testing import AgentHarness, fast_options, tree_digest

START = dt.datetime(2024, 2, 1, 8, 0, 0, 0)


def _state(item: Any) -> str:
    return str(getattr(item.state, "value", item.state))


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _latest(files: list[Any], name: str) -> Any:
    versions = [f for f in files if f.name == name]
    assert versions, f"{name} never reached the server"
    return max(versions, key=lambda f: f.version_id)


class _Writer(threading.Thread):
    """Acquires a run like MeasurementControl: rewrite the whole file after every few points."""

    def __init__(self, run: qt.LiveRun, step: int, pause: float) -> None:
        super().__init__(daemon=True)
        self.run_ = run
        self.step = step
        self.pause = pause
        self.errors: list[BaseException] = []
        self.writes = 0

    def run(self) -> None:
        try:
            while not self.run_.done:
                time.sleep(self.pause)
                self.run_.advance(self.step)
                self.writes += 1
        except BaseException as exc:  # a writer failing because of the agent is a bug
            self.errors.append(exc)


def _sync_while_writing(harness: AgentHarness, writer: _Writer) -> None:
    writer.start()
    while writer.is_alive():
        harness.run(2)
        time.sleep(0.05)
    writer.join()
    harness.run_until_idle(200)


def _check_live_run(harness: AgentHarness, source: str, run: qt.LiveRun, writer: _Writer) -> None:
    assert not writer.errors, writer.errors
    assert run.done
    items = {i.natural_key: i for i in harness.items(source)}
    item = items[run.tuid]
    assert _state(item) == "synced", item.last_error
    assert sum(r.live for r in harness.reports) >= 1, "the run was never synced live"
    files = harness.server_files(item.dataset_uuid)
    final = _latest(files, "dataset.hdf5")
    assert final.md5_bytes == _md5(run.path), "the server does not hold the final data"
    for f in files:
        assert f.md5_declared == f.md5_stored


def test_a_run_written_while_the_agent_runs_ends_with_its_final_data(tmp_path: Path) -> None:
    root = tmp_path / "quantify-data"
    for i in range(3):
        qt.write_experiment(root, START + dt.timedelta(minutes=i), f"done {i}", salt=i)
    done_digest = tree_digest(root)
    run = qt.LiveRun(root, START + dt.timedelta(hours=1), "chevron live", qt.spec_2d(8, 6))
    run.advance(6)  # already acquiring when the agent starts
    harness = AgentHarness(tmp_path / "harness", options=fast_options())
    harness.register_backend(QuantifySync)
    harness.add_source("lab", QuantifySync, {"quantify_directory": str(root), "set_up": "f1"})
    try:
        writer = _Writer(run, step=6, pause=0.15)
        _sync_while_writing(harness, writer)
        _check_live_run(harness, "lab", run, writer)
        item = {i.natural_key: i for i in harness.items("lab")}[run.tuid]
        gridded = _latest(harness.server_files(item.dataset_uuid), "dataset_gridded.hdf5")
        assert gridded.version_id >= 1
        assert {_state(i) for i in harness.items("lab")} == {"synced"}
    finally:
        harness.close()
    after = tree_digest(root)
    assert {k: v for k, v in after.items() if k in done_digest} == done_digest
    assert set(after) - set(done_digest) == {
        p.relative_to(root).as_posix() for p in run.folder.iterdir()
    }


@pytest.mark.slow
@pytest.mark.timeout(1800)  # ~4-5 min on a busy machine; the local server dominates
def test_five_hundred_folders_and_a_live_run_sync_completely(tmp_path: Path) -> None:
    root = tmp_path / "quantify-data"
    specs: list[tuple[qt.RunSpec, dict[str, Any]]] = [
        (qt.spec_1d(51), {}),
        (qt.spec_2d(10, 6), {"analysis": True}),
        (qt.spec_complex(32), {"snapshot": "gz"}),
        (qt.spec_1d(31, fmt="netcdf3"), {"snapshot": "bz2"}),
        (qt.spec_2d(6, 4, fmt="netcdf3"), {"metadata": True}),
    ]
    t0 = time.perf_counter()
    for i in range(500):
        spec, options = specs[i % len(specs)]
        qt.write_experiment(
            root,
            START + dt.timedelta(minutes=7 * i, milliseconds=i),
            f"run {i} (q{i % 5}, amp=0.{i % 10})",
            spec,
            salt=i,
            seed=i,
            **options,
        )
    generated = time.perf_counter() - t0
    before = tree_digest(root)
    harness = AgentHarness(tmp_path / "harness", options=fast_options())
    harness.register_backend(QuantifySync)
    harness.add_source("bulk", QuantifySync, {"quantify_directory": str(root), "set_up": "f2"})
    try:
        t1 = time.perf_counter()
        harness.run_until_idle(1000)
        bulk = time.perf_counter() - t1
        items = harness.items("bulk")
        assert len(items) == 500
        assert {_state(i) for i in items} == {"synced"}, {i.last_error for i in items}
        assert len(harness.datasets()) == 500
        expected = [
            {"dataset.hdf5", "snapshot.json"},
            {"dataset.hdf5", "dataset_gridded.hdf5", "__thumbnail_0", "__thumbnail_1"},
            {"dataset.hdf5", "snapshot.json.gz", "snapshot.json"},
            {"dataset.hdf5", "dataset_netcdf4.hdf5", "snapshot.json.bz2", "snapshot.json"},
            {"dataset.hdf5", "dataset_gridded.hdf5", "metadata.json", "snapshot.json"},
        ]
        by_key = {i.natural_key: i for i in items}
        for index, key in enumerate(sorted(by_key)):
            if index % 47:
                continue
            names = {f.name for f in harness.server_files(by_key[key].dataset_uuid)}
            assert expected[index % len(specs)] <= names, (index, sorted(names))
            if index % len(specs) == 1:
                assert "analysis_Basic2DAnalysis.figs_mpl.Heatmap x0x1-y0.png" in names
        assert tree_digest(root) == before
        # Then a run is acquired while the agent keeps running.
        run = qt.LiveRun(root, START + dt.timedelta(days=30), "live T1", qt.spec_1d(120))
        run.advance(10)
        writer = _Writer(run, step=10, pause=0.2)
        _sync_while_writing(harness, writer)
        _check_live_run(harness, "bulk", run, writer)
        assert len(harness.datasets()) == 501
    finally:
        harness.close()
    after = tree_digest(root)
    assert {k: v for k, v in after.items() if k in before} == before
    print(f"generated 500 folders in {generated:.1f} s; synced them in {bulk:.1f} s")
