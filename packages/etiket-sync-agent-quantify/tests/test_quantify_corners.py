"""Folder names and legacy files that quantify-core accepts and real data directories hold."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import xarray as xr
from etiket_sync_agent_quantify import QuantifySync
from etiket_sync_agent_quantify import testing as qt

from etiket_sync_agent.connectors.config import parse_config
from etiket_sync_agent.detect import discover_file_items
from etiket_sync_agent.testing import AgentHarness, fast_options

WHEN = dt.datetime(2024, 3, 4, 9, 15, 7, 456000)


def _backend(root: Path) -> QuantifySync:
    raw = {"quantify_directory": str(root), "set_up": "fridge-2"}
    return QuantifySync(parse_config(QuantifySync.config_class, raw))


def _state(item: Any) -> str:
    return str(getattr(item.state, "value", item.state))


def _rename(folder: Path, name: str) -> Path:
    target = folder.parent / name
    folder.rename(target)
    return target


def test_space_and_underscore_folders_are_experiments(tmp_path: Path) -> None:
    tuid1, f1 = qt.write_experiment(tmp_path, WHEN, "x", salt=1)
    tuid2, f2 = qt.write_experiment(tmp_path, WHEN + dt.timedelta(seconds=1), "x", salt=2)
    _rename(f1, f"{tuid1} T1 q0")
    _rename(f2, f"{tuid2}_chevron")
    items = {i.key: i for i in discover_file_items(_backend(tmp_path))}
    assert set(items) == {tuid1, tuid2}
    assert items[tuid1].path == f"{tuid1[:8]}/{tuid1} T1 q0"


def test_skipped_folders_of_a_day_folder_are_logged_once_with_the_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tuid, _ = qt.write_experiment(tmp_path, WHEN, "ok")
    day = tmp_path / tuid[:8]
    (day / "notes").mkdir()
    (day / "20240304-251507-456-a1b2c3-bad").mkdir()
    (tmp_path / "not a day").mkdir()
    (tmp_path / "not a day" / "sub").mkdir()
    backend = _backend(tmp_path)
    with caplog.at_level(logging.INFO, logger="etiket_sync_agent_quantify"):
        for _ in range(3):
            assert [i.key for i in discover_file_items(backend)] == [tuid]
    skipped = sorted(r.getMessage() for r in caplog.records if "skipped" in r.getMessage())
    assert skipped == [
        f"quantify: {tuid[:8]}/20240304-251507-456-a1b2c3-bad skipped: "
        "'20240304-251507-456-a1b2c3' is not a valid TUID (YYYYmmDD-HHMMSS-sss-xxxxxx)",
        f"quantify: {tuid[:8]}/notes skipped: "
        "its name holds no TUID of this day (YYYYmmDD-HHMMSS-sss-xxxxxx)",
    ]


def _to_legacy_grid(path: Path) -> None:
    """Older quantify-core flagged grids with ``2D-grid`` instead of ``grid_2d``."""
    with h5py.File(path, "r+") as f:
        del f.attrs["grid_2d"]
        del f.attrs["grid_2d_uniformly_spaced"]
        f.attrs["2D-grid"] = True


def test_legacy_2d_grid_attribute_gets_the_gridded_copy(tmp_path: Path) -> None:
    tuid, folder = qt.write_experiment(tmp_path, WHEN, "legacy grid", qt.spec_2d(5, 3))
    _to_legacy_grid(folder / "dataset.hdf5")
    harness = AgentHarness(tmp_path / "harness", options=fast_options())
    harness.register_backend(QuantifySync)
    harness.add_source("q", QuantifySync, {"quantify_directory": str(tmp_path), "set_up": "fridge"})
    try:
        harness.run_until_idle(30)
        item = next(i for i in harness.items("q") if i.natural_key == tuid)
        assert _state(item) == "synced", item.last_error
        names = {f.name for f in harness.server_files(item.dataset_uuid)}
        assert "dataset_gridded.hdf5" in names
        record = harness.dataset(item.dataset_uuid)
        link = max(
            (f for f in record.files if f.name == "dataset_gridded.hdf5"),
            key=lambda f: f.version_id,
        ).S3_link
        target = tmp_path / "gridded.h5"
        target.write_bytes(harness._downloads().get(link).content)
        with (
            xr.open_dataset(target, engine="h5netcdf") as gridded,
            xr.open_dataset(folder / "dataset.hdf5", engine="h5netcdf") as flat,
        ):
            assert gridded["y0"].shape == (5, 3)
            assert np.isclose(
                np.sort(gridded["y0"].values.ravel()), np.sort(flat["y0"].values)
            ).all()
    finally:
        harness.close()


def test_snapshot_only_folder_syncs_and_run_until_idle_succeeds(tmp_path: Path) -> None:
    good, _ = qt.write_experiment(tmp_path, WHEN, "sweep")
    snap, snap_folder = qt.write_experiment(
        tmp_path, WHEN - dt.timedelta(minutes=5), "snapshot only", dataset=False, metadata=True
    )
    harness = AgentHarness(tmp_path / "harness", options=fast_options())
    harness.register_backend(QuantifySync)
    harness.add_source("q", QuantifySync, {"quantify_directory": str(tmp_path), "set_up": "fridge"})
    try:
        harness.run_agent(until_idle=True)  # `etiket-sync run --until-idle` exits 1 on failures
        assert not harness.store.count_by_state().get("failed"), harness.store.count_by_state()
        items = {i.natural_key: i for i in harness.items("q")}
        assert _state(items[snap]) == "synced", items[snap].last_error
        assert _state(items[good]) == "synced"
        names = {f.name for f in harness.server_files(items[snap].dataset_uuid)}
        assert names == {"snapshot.json", "metadata.json"}
        assert harness.dataset(items[snap].dataset_uuid).name == "snapshot only"
    finally:
        harness.close()
    assert not (snap_folder / "dataset.hdf5").exists()


def test_discovery_accepts_every_folder_quantify_core_opens(tmp_path: Path) -> None:
    """tests/data/folder_names.json: quantify-core's load_dataset on the same folder styles."""
    import json

    reference = json.loads((Path(__file__).parent / "data" / "folder_names.json").read_text())
    tuids = qt.write_folder_name_cases(tmp_path, WHEN)
    assert set(tuids) == set(reference["load_dataset_opens"])
    found = {i.key for i in discover_file_items(_backend(tmp_path))}
    for style, opened in reference["load_dataset_opens"].items():
        if opened:
            assert tuids[style] in found, f"quantify-core opens the {style!r} folder, we skip it"
