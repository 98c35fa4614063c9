"""The quantify backend: discovery, dataset records, files, bad input and live detection."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import time
from pathlib import Path
from typing import Any

import pytest
from etiket_sync_agent_quantify import DatasetReadError, QuantifySync
from etiket_sync_agent_quantify import sync as sync_module
from etiket_sync_agent_quantify import testing as qt

from etiket_sync_agent import FileType, SyncContext, SyncItem
from etiket_sync_agent.connectors.config import parse_config
from etiket_sync_agent.detect import discover_file_items
from etiket_sync_agent.errors import ConfigError
from etiket_sync_agent.testing import tree_digest

WHEN = dt.datetime(2024, 3, 4, 9, 15, 7, 456000)


def _backend(root: Path, **extra: Any) -> QuantifySync:
    raw = {"quantify_directory": str(root), "set_up": "fridge-2", **extra}
    return QuantifySync(parse_config(QuantifySync.config_class, raw))


def _item(backend: QuantifySync, tuid: str) -> SyncItem:
    items = {i.key: i for i in discover_file_items(backend)}
    return items[tuid]


def _plan(
    backend: QuantifySync,
    tuid: str,
    tmp_path: Path,
    *,
    live: bool = False,
    state: dict[str, Any] | None = None,
) -> SyncContext:
    item = _item(backend, tuid)
    work = tmp_path / f"work-{tuid}-{live}-{time.monotonic_ns()}"
    work.mkdir(parents=True)
    ctx = SyncContext(item, work, live=live, state=state)
    if live:
        backend.sync_dataset_live(item, ctx)
    else:
        backend.sync_dataset(item, ctx)
    return ctx


def _names(ctx: SyncContext) -> set[str]:
    return {f.name for f in ctx.plan.files}


# -- configuration -----------------------------------------------------------------------------
def test_config_defaults_and_validation(tmp_path: Path) -> None:
    config = _backend(tmp_path).config
    assert config.timezone is None
    assert config.settle_time == 120.0
    assert config.static_attributes == {}
    assert config.is_server_folder is False
    with pytest.raises(ConfigError) as info:
        _backend(tmp_path / "missing")
    assert info.value.field == "quantify_directory"
    with pytest.raises(ConfigError) as info:
        _backend(tmp_path, timezone="Mars/Olympus_Mons")
    assert info.value.field == "timezone"
    with pytest.raises(ConfigError) as info:
        _backend(tmp_path, settle_time=0)
    assert info.value.field == "settle_time"


# -- discovery ---------------------------------------------------------------------------------
def test_discovery_keeps_only_tuid_folders_in_day_folders(tmp_path: Path) -> None:
    tuid_a, _ = qt.write_experiment(tmp_path, WHEN, "T1 q0 (amp=0.5). try=2")
    tuid_b, _ = qt.write_experiment(tmp_path, WHEN + dt.timedelta(days=1), "", salt=1)
    (tmp_path / "20240304" / "not a tuid").mkdir()
    (tmp_path / "20240304" / "notes.txt").write_text("x")
    (tmp_path / "20240304" / ".20240304-091507-456-abcdef-hidden").mkdir()
    (tmp_path / "analysis_overview" / "20240304-091507-456-abcdef").mkdir(parents=True)
    (tmp_path / "2024-03-04" / "20240304-091507-456-abcdef").mkdir(parents=True)
    items = discover_file_items(_backend(tmp_path))
    assert sorted(i.key for i in items) == sorted([tuid_a, tuid_b])
    by_key = {i.key: i for i in items}
    assert by_key[tuid_a].path == f"20240304/{tuid_a}-T1 q0 (amp=0.5). try=2"
    assert by_key[tuid_b].priority > by_key[tuid_a].priority  # newer TUID, higher priority


def test_a_tuid_used_by_two_folders_is_synced_once(tmp_path: Path) -> None:
    tuid, folder = qt.write_experiment(tmp_path, WHEN, "first")
    (folder.parent / f"{tuid}-second").mkdir()
    items = discover_file_items(_backend(tmp_path))
    assert [i.key for i in items] == [tuid]


# -- records and files -------------------------------------------------------------------------
def test_dataset_record_from_folder_name_tuid_and_variables(tmp_path: Path) -> None:
    tuid, _ = qt.write_experiment(tmp_path, WHEN, "Rabi (amp=0.5). q0 = x", qt.spec_1d(11))
    backend = _backend(
        tmp_path, static_attributes={"sample": "chip-7"}, timezone="Europe/Amsterdam"
    )
    info = _plan(backend, tuid, tmp_path).plan.dataset
    assert info is not None
    assert info.name == "Rabi (amp=0.5). q0 = x"
    assert info.alt_uid == tuid
    assert info.collected == dt.datetime(2024, 3, 4, 8, 15, 7, 456000, tzinfo=dt.timezone.utc)
    assert info.attributes == {"sample": "chip-7", "set-up": "fridge-2", "tuid": tuid}
    # As the existing agent: per variable its long_name, else its name.
    assert info.keywords == ["Frequency", "Magnitude", "Phase"]


def test_unnamed_folder_takes_the_dataset_name(tmp_path: Path) -> None:
    tuid, folder = qt.write_experiment(tmp_path, WHEN, "")
    qt.write_dataset_file(folder / "dataset.hdf5", qt.spec_1d(5), tuid, "named inside")
    info = _plan(_backend(tmp_path), tuid, tmp_path).plan.dataset
    assert info is not None
    assert info.name == "named inside"


def test_files_of_a_grid_run_with_analysis(tmp_path: Path) -> None:
    tuid, folder = qt.write_experiment(
        tmp_path, WHEN, "chevron", qt.spec_2d(5, 4), analysis=True, metadata=True
    )
    before = tree_digest(folder)
    ctx = _plan(_backend(tmp_path), tuid, tmp_path)
    assert not ctx.plan.errors
    analysis = "analysis_Basic2DAnalysis"
    assert _names(ctx) == {
        "dataset.hdf5",
        "dataset_gridded.hdf5",
        "snapshot.json",
        "metadata.json",
        # The existing agent's names: relative path components joined by dots.
        f"{analysis}.dataset_processed.hdf5",
        f"{analysis}.quantities_of_interest.json",
        f"{analysis}.fit_results.hanger_func_complex_SI.txt",
        f"{analysis}.figs_mpl.Heatmap x0x1-y0.png",
        f"{analysis}.figs_mpl.Heatmap x0x1-y0.svg",
        f"{analysis}.figs_mpl.Heatmap x0x1-y1.png",
        f"{analysis}.figs_mpl.Heatmap x0x1-y1.svg",
        "__thumbnail_0",
        "__thumbnail_1",
    }
    original = ctx.plan.file("dataset.hdf5")
    assert original.file_type is FileType.HDF5_NETCDF
    assert Path(original.path).read_bytes() == (folder / "dataset.hdf5").read_bytes()
    assert ctx.work_dir in Path(original.path).parents  # uploaded from the private copy
    thumb = ctx.plan.file("__thumbnail_0")
    assert thumb.ranking == -1
    assert Path(thumb.path).name == "Heatmap x0x1-y0.png"
    assert ctx.plan.file("dataset_gridded.hdf5").file_type is FileType.HDF5_NETCDF
    assert ctx.state["has_nan"] is False
    assert tree_digest(folder) == before


def test_netcdf3_files_get_a_netcdf4_copy(tmp_path: Path) -> None:
    tuid, _ = qt.write_experiment(tmp_path, WHEN, "old", qt.spec_1d(9, fmt="netcdf3"))
    ctx = _plan(_backend(tmp_path), tuid, tmp_path)
    assert _names(ctx) == {"dataset.hdf5", "dataset_netcdf4.hdf5", "snapshot.json"}
    assert ctx.plan.file("dataset.hdf5").file_type is FileType.UNKNOWN
    tuid2, _ = qt.write_experiment(tmp_path, WHEN, "old grid", qt.spec_2d(fmt="netcdf3"), salt=2)
    assert "dataset_gridded.hdf5" in _names(_plan(_backend(tmp_path), tuid2, tmp_path))


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz"])
def test_compressed_snapshots_are_uploaded_and_decompressed(
    tmp_path: Path, compression: qt.Compression
) -> None:
    tuid, _folder = qt.write_experiment(tmp_path, WHEN, "s", snapshot=compression)
    ctx = _plan(_backend(tmp_path), tuid, tmp_path)
    assert _names(ctx) == {"dataset.hdf5", f"snapshot.json.{compression}", "snapshot.json"}
    plain = ctx.plan.file("snapshot.json")
    assert plain.file_type is FileType.JSON
    assert b'"instruments"' in Path(plain.path).read_bytes()


def test_a_corrupt_compressed_snapshot_is_an_item_error_naming_it(tmp_path: Path) -> None:
    tuid, folder = qt.write_experiment(tmp_path, WHEN, "s", snapshot=None)
    (folder / "snapshot.json.gz").write_bytes(gzip.compress(b"{}")[:10])
    ctx = _plan(_backend(tmp_path), tuid, tmp_path)
    assert any("snapshot.json.gz cannot be decompressed" in e for e in ctx.plan.errors)
    assert "snapshot.json.gz" in _names(ctx)
    assert "dataset.hdf5" in _names(ctx)


# -- bad input ---------------------------------------------------------------------------------
def test_truncated_hdf5_is_an_item_error_and_other_files_still_go(tmp_path: Path) -> None:
    tuid, folder = qt.write_experiment(tmp_path, WHEN, "cut", metadata=True)
    data = (folder / "dataset.hdf5").read_bytes()
    (folder / "dataset.hdf5").write_bytes(data[:1000])
    old = time.time() - 600
    os.utime(folder / "dataset.hdf5", (old, old))
    ctx = _plan(_backend(tmp_path), tuid, tmp_path)
    assert len(ctx.plan.errors) == 1
    assert (
        "dataset.hdf5 cannot be read as HDF5/netCDF4 (truncated or corrupt?)"
        in (ctx.plan.errors[0])
    )
    assert {"snapshot.json", "metadata.json"} <= _names(ctx)
    assert ctx.plan.file("dataset.hdf5").file_type is FileType.UNKNOWN  # the bytes, kept as is


def test_a_text_file_named_dataset_hdf5_is_an_item_error(tmp_path: Path) -> None:
    tuid, folder = qt.write_experiment(tmp_path, WHEN, "csv", dataset=False)
    (folder / "dataset.hdf5").write_text("x0,y0\n1,2\n")
    old = time.time() - 600
    os.utime(folder / "dataset.hdf5", (old, old))
    ctx = _plan(_backend(tmp_path), tuid, tmp_path)
    assert ctx.plan.errors == [
        f"{tuid}-csv/dataset.hdf5 is neither HDF5 nor netCDF3 (it starts with b'x0,y0\\n1,'); "
        "not a Quantify dataset file"
    ]
    assert "snapshot.json" in _names(ctx)


def test_a_snapshot_only_folder_is_a_dataset_of_its_files(
    tmp_path: Path,
) -> None:
    tuid, _ = qt.write_experiment(tmp_path, WHEN, "no data", dataset=False, analysis=True)
    ctx = _plan(_backend(tmp_path), tuid, tmp_path)
    assert ctx.plan.errors == []
    assert any("no dataset.hdf5" in log.message for log in ctx.plan.logs)
    assert "snapshot.json" in _names(ctx)
    assert "__thumbnail_0" in _names(ctx)
    assert ctx.plan.dataset is not None
    assert ctx.plan.dataset.name == "no data"
    live = _plan(_backend(tmp_path), tuid, tmp_path, live=True)
    assert not live.plan.errors  # while live, the writer may not have written it yet


def test_unreadable_files_are_item_errors_naming_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tuid, folder = qt.write_experiment(tmp_path, WHEN, "locked", metadata=True)
    locked = {str(folder / "metadata.json"), str(folder / "dataset.hdf5")}
    real_access = os.access

    def access(path: Any, mode: int) -> bool:
        return str(path) not in locked and real_access(path, mode)

    monkeypatch.setattr(os, "access", access)
    ctx = _plan(_backend(tmp_path), tuid, tmp_path)
    assert sorted(ctx.plan.errors) == [
        "permission denied reading dataset.hdf5; it was not uploaded",
        "permission denied reading metadata.json; it was not uploaded",
    ]
    assert _names(ctx) == {"snapshot.json"}


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads everything")
def test_a_file_without_read_permission_is_an_item_error(tmp_path: Path) -> None:
    tuid, folder = qt.write_experiment(tmp_path, WHEN, "locked")
    (folder / "dataset.hdf5").chmod(0)
    try:
        ctx = _plan(_backend(tmp_path), tuid, tmp_path)
    finally:
        (folder / "dataset.hdf5").chmod(0o644)
    assert ctx.plan.errors == ["permission denied reading dataset.hdf5; it was not uploaded"]


def test_a_vanished_folder_is_a_clear_error(tmp_path: Path) -> None:
    tuid, folder = qt.write_experiment(tmp_path, WHEN, "gone")
    backend = _backend(tmp_path)
    item = _item(backend, tuid)
    folder.joinpath("dataset.hdf5").unlink()
    folder.joinpath("snapshot.json").unlink()
    folder.rmdir()
    work = tmp_path / "w"
    work.mkdir()
    with pytest.raises(Exception, match="no longer exists"):
        backend.sync_dataset(item, SyncContext(item, work))


# -- live detection ----------------------------------------------------------------------------
def test_live_while_changing_with_nan_then_finished(tmp_path: Path) -> None:
    backend = _backend(tmp_path, settle_time=60)
    run = qt.LiveRun(tmp_path, WHEN, "sweep", qt.spec_1d(30))
    run.advance(10)
    item = _item(backend, run.tuid)
    assert backend.check_live_dataset(item, {})  # never read: live
    ctx = _plan(backend, run.tuid, tmp_path, live=True)
    assert ctx.state["has_nan"] is True
    state = dict(ctx.state)
    assert backend.check_live_dataset(item, state)  # unchanged but NaN, within the settle time
    run.advance(10)
    assert backend.check_live_dataset(item, state)  # rewritten
    run.finish()
    ctx = _plan(backend, run.tuid, tmp_path, live=True, state=state)
    assert ctx.state["has_nan"] is False
    assert not backend.check_live_dataset(item, dict(ctx.state))  # complete and unchanged


def test_a_run_that_stopped_changing_for_the_settle_time_is_finished(tmp_path: Path) -> None:
    backend = _backend(tmp_path, settle_time=30)
    run = qt.LiveRun(tmp_path, WHEN, "interrupted", qt.spec_1d(30))
    run.advance(3)
    item = _item(backend, run.tuid)
    ctx = _plan(backend, run.tuid, tmp_path, live=True)
    state = dict(ctx.state)
    assert backend.check_live_dataset(item, state)
    old = time.time() - 31
    os.utime(run.path, (old, old))
    assert not backend.check_live_dataset(item, state)  # mtime older than the settle time
    # A clock-skewed share: the mtime looks recent, but we have seen these bytes for too long.
    os.utime(run.path, None)
    ctx = _plan(backend, run.tuid, tmp_path, live=True, state=state)
    skewed = {**ctx.state, "signature_seen_at": time.time() - 31}
    assert not backend.check_live_dataset(item, skewed)
    final = _plan(backend, run.tuid, tmp_path, state=skewed)
    assert not final.plan.errors
    assert "dataset.hdf5" in _names(final)


def test_a_young_folder_without_dataset_is_live_an_old_one_is_not(tmp_path: Path) -> None:
    backend = _backend(tmp_path, settle_time=30)
    tuid, folder = qt.write_experiment(tmp_path, WHEN, "starting", dataset=False, snapshot=None)
    item = _item(backend, tuid)
    assert backend.check_live_dataset(item, {})
    old = time.time() - 31
    os.utime(folder, (old, old))
    assert not backend.check_live_dataset(item, {})


def test_live_sync_of_a_torn_file_is_a_warning_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(QuantifySync, "copy_attempts", 2)
    monkeypatch.setattr(QuantifySync, "copy_retry_delay", 0.0)
    backend = _backend(tmp_path)
    run = qt.LiveRun(tmp_path, WHEN, "sweep", qt.spec_1d(30))
    run.path.write_bytes(run.path.read_bytes()[:300])  # caught mid-write
    ctx = _plan(backend, run.tuid, tmp_path, live=True)
    assert not ctx.plan.errors
    assert any("will try again" in log.message for log in ctx.plan.logs)
    assert "dataset.hdf5" not in _names(ctx)
    assert "snapshot.json" in _names(ctx)


def test_a_torn_copy_is_never_uploaded_as_the_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tuid, _ = qt.write_experiment(tmp_path, WHEN, "busy")

    def torn(src: Path, dst: Path, **_: Any) -> Any:
        dst.write_bytes(src.read_bytes()[:-7] + b"garbage")  # same size, other bytes
        raise DatasetReadError("busy/dataset.hdf5 kept changing while it was read (5 attempts)")

    monkeypatch.setattr(sync_module, "private_copy", torn)
    ctx = _plan(_backend(tmp_path), tuid, tmp_path)
    assert ctx.plan.errors == ["busy/dataset.hdf5 kept changing while it was read (5 attempts)"]
    assert _names(ctx) == {"snapshot.json"}
