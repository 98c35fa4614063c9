"""Live sync: which logs are live, aborted runs, and live/aborted logs through the engine."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from etiket_sync_agent_labber import LabberSync, natural_key
from etiket_sync_agent_labber import testing as lt

from etiket_sync_agent import SyncContext, SyncItem
from etiket_sync_agent.testing import AgentHarness, fast_options, tree_digest

WHEN = dt.datetime(2024, 7, 8, 9, 10, tzinfo=dt.timezone.utc)


def _live_file(root: Path, written: int) -> tuple[Path, lt.LabberFileSpec, str]:
    spec = lt.demo_spec(1, seed=5, creation_time=WHEN.timestamp())
    rel = lt.labber_relpath(WHEN, "running")
    lt.write_labber_file(root / rel, spec, written=written)
    return root / rel, spec, natural_key(rel, spec.creation_time)


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_which_logs_are_live(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
) -> None:
    path, spec, _key = _live_file(labber_root, written=10)
    backend = make_backend(stale_after=120)
    item = next(iter(items_of(backend).values()))
    # not completed and just written: live
    assert backend.check_live_dataset(item, {}) is True
    ctx = sync_item(backend, item, live=True)
    state = dict(ctx.state)
    assert state["completed"] is False
    assert not any("synced as it is" in log.message for log in ctx.plan.logs)
    # unchanged since the last sync, which was just now: still live
    assert backend.check_live_dataset(item, state) is True
    # unchanged for longer than stale_after: an aborted run, synced as it is
    aborted = {**state, "changed_at": time.time() - 121}
    assert backend.check_live_dataset(item, aborted) is False
    # ... until it grows again
    lt.append_points(path, spec, 20)
    assert backend.check_live_dataset(item, aborted) is True
    # a file last written long ago and never synced is not live
    _age(path, 3600)
    assert backend.check_live_dataset(item, {}) is False
    # completed: never live
    lt.finish_log(path, spec)
    assert backend.check_live_dataset(item, state) is False


def test_unreadable_header_counts_as_live_only_while_changing(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
) -> None:
    path, _, _key = _live_file(labber_root, written=3)
    backend = make_backend()
    item = next(iter(items_of(backend).values()))
    path.write_bytes(path.read_bytes()[:200])
    assert backend.check_live_dataset(item, {}) is True
    _age(path, 3600)
    assert backend.check_live_dataset(item, {}) is False


def _state(item: object) -> str:
    state = getattr(item, "state", None)
    return str(getattr(state, "value", state))


def test_aborted_run_is_synced_as_it_is_and_bad_files_fail_alone(
    tmp_path: Path, labber_root: Path
) -> None:
    folder = labber_root / lt.labber_relpath(WHEN, "x").rsplit("/", 1)[0]
    path, spec, key = _live_file(labber_root, written=12)
    _age(path, 3600)  # stopped growing long ago, never completed
    good = lt.demo_spec(3, creation_time=WHEN.timestamp() - 100)
    good_rel = lt.labber_relpath(WHEN, "good")
    lt.write_labber_file(labber_root / good_rel, good)
    lt.write_not_hdf5(folder / "not labber.hdf5")
    lt.write_truncated(folder / "cut.hdf5", good)
    _age(folder / "cut.hdf5", 3600)
    before = tree_digest(labber_root)
    harness = AgentHarness(tmp_path / "harness", options=fast_options())
    harness.register_backend(LabberSync)
    harness.add_source(
        "lab", LabberSync, {"labber_directory": str(labber_root), "set_up": "fridge"}
    )
    try:
        harness.run_until_idle(40)
        items = {i.natural_key: i for i in harness.items("lab")}
        assert _state(items[key]) == "synced", items[key].last_error
        assert _state(items[natural_key(good_rel, good.creation_time)]) == "synced"
        not_labber = items[f"{folder.relative_to(labber_root).as_posix()}/not labber.hdf5"]
        cut = items[f"{folder.relative_to(labber_root).as_posix()}/cut.hdf5"]
        assert _state(not_labber) == "failed"
        assert "is not an HDF5 file" in (not_labber.last_error or "")
        assert _state(cut) == "failed"
        assert "truncated or damaged" in (cut.last_error or "")
        files = {f.name: f for f in harness.server_files(items[key].dataset_uuid)}
        assert set(files) == {"original", "ds_converted", "settings", "instruments"}
        good_files = {
            f.name
            for f in harness.server_files(
                items[natural_key(good_rel, good.creation_time)].dataset_uuid
            )
        }
        assert {"ds_converted_1", "ds_converted_2"} <= good_files
        record = harness.dataset(items[key].dataset_uuid)
        assert record.name == spec.log_name
    finally:
        harness.close()
    assert tree_digest(labber_root) == before, "the source was modified"


@pytest.mark.slow  # covered quickly by the conformance kit's live test; this checks the final data
def test_live_log_through_the_engine_ends_with_final_data(
    tmp_path: Path, labber_root: Path
) -> None:
    path, spec, key = _live_file(labber_root, written=4)
    harness = AgentHarness(tmp_path / "harness", options=fast_options())
    harness.register_backend(LabberSync)
    harness.add_source(
        "lab", LabberSync, {"labber_directory": str(labber_root), "set_up": "fridge"}
    )
    try:
        harness.run(2)
        item = {i.natural_key: i for i in harness.items("lab")}[key]
        assert _state(item) == "live"
        for written in (15, 30):
            lt.append_points(path, spec, written)
            harness.run(2)
            assert _state({i.natural_key: i for i in harness.items("lab")}[key]) == "live"
        lt.finish_log(path, spec)
        harness.run_until_idle(40)
        item = {i.natural_key: i for i in harness.items("lab")}[key]
        assert _state(item) == "synced"
        versions = [f for f in harness.server_files(item.dataset_uuid) if f.name == "ds_converted"]
        assert len(versions) >= 4, "every growth uploaded a new version"
        newest = max(versions, key=lambda f: f.version_id)
        client_path = tmp_path / "final.hdf5"
        record = harness.dataset(item.dataset_uuid)
        link = next(
            f.S3_link
            for f in record.files
            if f.name == "ds_converted" and f.version_id == newest.version_id
        )
        import httpx

        client_path.write_bytes(httpx.get(link, timeout=30).content)
        ds = xr.open_dataset(client_path, engine="h5netcdf").load()
        assert ds.attrs["completed"] == 1
        truth = lt.expected_arrays(spec, 0)
        np.testing.assert_array_equal(ds["Digitizer - Signal"].values, truth["Digitizer - Signal"])
        np.testing.assert_array_equal(
            ds["Digitizer - Amplitude"].values, truth["Digitizer - Amplitude"]
        )
    finally:
        harness.close()


def test_the_copy_made_by_the_live_check_is_reused_by_the_sync(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from etiket_sync_agent_labber import sync as labber_sync

    path, spec, _ = _live_file(labber_root, written=6)
    copies: list[Path] = []
    real = labber_sync.private_copy

    def counting(source: Path, target: Path, **kwargs: Any) -> os.stat_result:
        copies.append(source)
        return real(source, target, **kwargs)

    monkeypatch.setattr(labber_sync, "private_copy", counting)
    backend = make_backend()
    item = next(iter(items_of(backend).values()))
    assert backend.check_live_dataset(item, {}) is True
    assert copies == [path], "a file being written is checked on a private copy"
    ctx = sync_item(backend, item, live=True)
    assert copies == [path], "the sync reused the verified copy"
    assert ctx.plan.file("original").path.read_bytes() == path.read_bytes()
    # the file grew after the check: the sync takes a fresh copy
    assert backend.check_live_dataset(item, ctx.state) is True
    lt.append_points(path, spec, 12)
    ctx = sync_item(backend, item, live=True)
    assert len(copies) == 3
    ds = xr.open_dataset(ctx.plan.file("ds_converted").path, engine="h5netcdf").load()
    amplitude = ds["Digitizer - Amplitude"].values.reshape(-1)
    assert np.isfinite(amplitude[:12]).all()
    assert np.isnan(amplitude[12:]).all()
    backend.close()


def test_a_torn_copy_is_taken_again(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from etiket_sync_agent_labber import sync as labber_sync

    path, spec, _ = _live_file(labber_root, written=20)
    copies: list[int] = []
    real = labber_sync.private_copy

    def torn_first(source: Path, target: Path, **kwargs: Any) -> os.stat_result:
        st = real(source, target, **kwargs)
        copies.append(1)
        if len(copies) == 1:  # the writer was half-way through a flush
            target.write_bytes(target.read_bytes()[: st.st_size // 2])
        return st

    monkeypatch.setattr(labber_sync, "private_copy", torn_first)
    backend = make_backend()
    item = next(iter(items_of(backend).values()))
    ctx = sync_item(backend, item, live=True)
    assert len(copies) == 2
    assert not ctx.plan.errors
    assert ctx.plan.file("original").path.read_bytes() == path.read_bytes()
    ds = xr.open_dataset(ctx.plan.file("ds_converted").path, engine="h5netcdf").load()
    np.testing.assert_array_equal(
        ds["Digitizer - Amplitude"].values,
        lt.expected_arrays(spec, 0, written=20)["Digitizer - Amplitude"],
    )


def test_the_writer_never_fails_while_the_backend_reads(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
) -> None:
    import subprocess
    import sys

    from etiket_sync_agent_labber.reader import open_labber

    path, spec, _ = _live_file(labber_root, written=5)
    script = (
        "import sys; from pathlib import Path; from etiket_sync_agent_labber import testing as lt; "
        f"spec = lt.demo_spec(1, seed=5, creation_time={spec.creation_time!r}); "
        "lt.append_points(Path(sys.argv[1]), spec, 25)"
    )
    # The writer (another process, HDF5's default file locking, like Labber) appends while the
    # backend holds the file open: the backend takes no lock, so the writer is not refused.
    with open_labber(path) as handle:
        assert "Data" in handle
        done = subprocess.run(
            [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, done.stderr
    backend = make_backend()
    item = next(iter(items_of(backend).values()))
    assert backend.check_live_dataset(item, {}) is True
