"""The converters as the folderbase backend uses them (by entry-point name from the info file)."""

from __future__ import annotations

from pathlib import Path

import h5netcdf
import numpy as np
import pytest
from etiket_sync_agent_converters.testing import make_demo_zarr

from etiket_sync_agent import SyncContext, SyncItem
from etiket_sync_agent.connectors.config import parse_config

folderbase = pytest.importorskip("etiket_sync_agent_folderbase")
fb_testing = pytest.importorskip("etiket_sync_agent_folderbase.testing")


def _plan(root: Path, key: str, tmp_path: Path) -> SyncContext:
    backend = folderbase.FolderBaseSync(
        parse_config(folderbase.FolderBaseSync.config_class, {"root_directory": str(root)})
    )
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    ctx = SyncContext(SyncItem(key=key, path=key), work)
    backend.sync_dataset(SyncItem(key=key, path=key), ctx)
    return ctx


def test_csv_and_zarr_are_converted_and_originals_kept(tmp_path: Path) -> None:
    root = tmp_path / "root"
    folder = fb_testing.make_dataset(
        root,
        "run",
        info="converters: [csv-to-netcdf, zarr-to-netcdf, zarr-to-zip]\n",
        files={"data.csv": b"v (V),i [A]\n1,2\n3,4\n"},
    )
    expected = make_demo_zarr(folder / "scan.zarr", 2)
    ctx = _plan(root, "run", tmp_path)
    assert not ctx.plan.errors
    names = {f.name for f in ctx.plan.files}
    # As the existing agent names converted files: the input's suffix replaced.
    assert {"data.csv", "data.nc", "scan.nc", "scan.zip"} <= names
    with h5netcdf.File(ctx.plan.file("data.nc").path, "r") as nc:
        np.testing.assert_array_equal(nc["v"][...], [1, 3])
        assert nc["i"].attrs["units"] == "A"
    with h5netcdf.File(ctx.plan.file("scan.nc").path, "r") as nc:
        np.testing.assert_array_equal(nc["signal"][...], expected["signal"])


def test_a_failing_converter_is_an_item_error_naming_converter_and_file(tmp_path: Path) -> None:
    root = tmp_path / "root"
    fb_testing.make_dataset(
        root,
        "run",
        info="converters: [csv-to-netcdf]\n",
        files={"ragged.csv": b"a,b\n1,2\n3\n"},
    )
    ctx = _plan(root, "run", tmp_path)
    assert len(ctx.plan.errors) == 1
    message = ctx.plan.errors[0]
    assert "csv-to-netcdf" in message
    assert "ragged.csv" in message
    assert "line 3" in message
    assert "ragged.csv" in {f.name for f in ctx.plan.files}, "the original must still be uploaded"
