"""End to end over HTTP (slow): 200 Labber files, and a log written while the agent runs."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import xarray as xr
from etiket_sync_agent_labber import LabberSync, natural_key
from etiket_sync_agent_labber import testing as lt

from etiket_sync_agent.testing import AgentHarness, fast_options, tree_digest

pytestmark = pytest.mark.slow

START = dt.datetime(2023, 11, 28, 8, 0, tzinfo=dt.timezone.utc)


def _state(item: object) -> str:
    state = getattr(item, "state", None)
    return str(getattr(state, "value", state))


def _source(root: Path, count: int) -> dict[str, str]:
    """``count`` logs of every kind spread over days and months; key → relative path."""
    lt.write_database_file(root)
    keys = {}
    for i in range(count):
        when = START + dt.timedelta(hours=7 * i, minutes=i)
        spec = lt.demo_spec(i, seed=i, creation_time=when.timestamp())
        rel = lt.labber_relpath(when, f"{spec.log_name} #{i}")
        lt.write_labber_file(root / rel, spec)
        keys[natural_key(rel, spec.creation_time)] = rel
    return keys


def test_two_hundred_files_sync_completely(tmp_path: Path) -> None:
    root = tmp_path / "Labber"
    keys = _source(root, 200)
    before = tree_digest(root)
    harness = AgentHarness(tmp_path / "harness", options=fast_options())
    harness.register_backend(LabberSync)
    harness.add_source("lab", LabberSync, {"labber_directory": str(root), "set_up": "fridge"})
    try:
        started = time.perf_counter()
        iterations = harness.run_until_idle(600)
        elapsed = time.perf_counter() - started
        items = harness.items("lab")
        assert {i.natural_key for i in items} == set(keys)
        assert {_state(i) for i in items} == {"synced"}, [i.last_error for i in items][:3]
        assert len(harness.datasets()) == 200
        uploaded = sum(r.files_uploaded for r in harness.reports)
        # kinds 0, 1, 2, 4: 4 files; kind 3: 6 files (two appended logs)
        assert uploaded == 40 * 4 * 4 + 40 * 6
        for item in items[::40]:
            files = harness.server_files(item.dataset_uuid)
            assert all(f.md5_declared == f.md5_stored for f in files)
        print(f"200 Labber files synced in {elapsed:.1f} s ({iterations} iterations)")
    finally:
        harness.close()
    assert tree_digest(root) == before, "the source tree changed"


def test_log_written_while_the_agent_runs_is_live_synced(tmp_path: Path) -> None:
    root = tmp_path / "Labber"
    _source(root, 10)
    spec = lt.demo_spec(1, seed=99, creation_time=(START + dt.timedelta(days=30)).timestamp())
    rel = lt.labber_relpath(START + dt.timedelta(days=30), "running two-tone")
    path = root / rel
    lt.write_labber_file(path, spec, written=3)
    key = natural_key(rel, spec.creation_time)
    others_before = {k: v for k, v in tree_digest(root).items() if k != rel}

    harness = AgentHarness(tmp_path / "harness", options=fast_options(live_interval=0.05))
    harness.register_backend(LabberSync)
    harness.add_source("lab", LabberSync, {"labber_directory": str(root), "set_up": "fridge"})
    failure: list[BaseException] = []

    def agent() -> None:
        try:
            harness.run_until_idle(100_000)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=agent, name="agent")

    def converted_versions() -> list[Any]:
        named = [d for d in harness.datasets() if d.name == spec.log_name]
        if not named:
            return []
        record = harness.dataset(str(named[0].uuid))
        return [f for f in record.files if f.name == "ds_converted" and _secured(f)]

    def wait_for(versions: int) -> None:
        deadline = time.monotonic() + 120
        while len(converted_versions()) < versions:
            assert not failure, failure
            assert time.monotonic() < deadline, f"no version {versions} of the live log"
            time.sleep(0.05)

    thread.start()
    try:
        wait_for(1)
        # Another process grows the log in place (as Labber does) while the agent syncs it live.
        for step, written in enumerate((10, 18, 27, 36), start=2):
            _writer(path, spec, written)
            wait_for(step)
        _writer(path, spec, None)
        thread.join(timeout=300)
        assert not thread.is_alive(), "the agent did not become idle"
        assert not failure, failure
        item = {i.natural_key: i for i in harness.items("lab")}[key]
        assert _state(item) == "synced"
        live_reports = sum(r.live for r in harness.reports)
        assert live_reports >= 4, "the log was not synced live while it grew"
        versions = converted_versions()
        assert len(versions) >= 6
        newest = max(versions, key=lambda f: f.version_id)
        final = tmp_path / "final.hdf5"
        final.write_bytes(httpx.get(newest.S3_link, timeout=60).content)
        ds = xr.open_dataset(final, engine="h5netcdf").load()
        assert ds.attrs["completed"] == 1
        for channel, expected in lt.expected_arrays(spec, 0).items():
            np.testing.assert_array_equal(ds[channel.replace("/", "_")].values, expected)
        original = [f for f in harness.server_files(item.dataset_uuid) if f.name == path.name]
        newest_original = max(original, key=lambda f: f.version_id)
        assert newest_original.size == path.stat().st_size
    finally:
        if thread.is_alive():
            thread.join(timeout=60)
        harness.close()
    assert {k: v for k, v in tree_digest(root).items() if k != rel} == others_before


def _writer(path: Path, spec: lt.LabberFileSpec, written: int | None) -> None:
    """Grow (or finish) the log from another process with HDF5's default file locking, like
    Labber: it fails if the agent holds a lock on the file."""
    action = f"lt.append_points(path, spec, {written})" if written else "lt.finish_log(path, spec)"
    script = (
        "import sys; from pathlib import Path; from etiket_sync_agent_labber import testing as lt; "
        f"spec = lt.demo_spec(1, seed=99, creation_time={spec.creation_time!r}); "
        f"path = Path(sys.argv[1]); {action}"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=120)


def _secured(f: Any) -> bool:
    status = getattr(f.status, "value", f.status)
    return str(status) == "secured"
