"""TUIDs, format sniffing, reading HDF5 and netCDF3 datasets, private copies and conversions."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import h5netcdf
import numpy as np
import pytest
import xarray as xr
from etiket_sync_agent_quantify import (
    DatasetFormat,
    DatasetReadError,
    GridError,
    is_valid_tuid,
    parse_folder_name,
    private_copy,
    read_dataset,
    sniff_format,
    tuid_time,
    write_flat,
    write_gridded,
)
from etiket_sync_agent_quantify import testing as qt
from etiket_sync_agent_quantify.convert import grid_layout

WHEN = dt.datetime(2024, 3, 4, 9, 15, 7, 456000)


# -- TUIDs -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("20240304-091507-456-a1b2c3", True),
        ("20240304-091507-456-A1b2C3", True),
        ("20241304-091507-456-a1b2c3", False),  # month 13
        ("20240304-251507-456-a1b2c3", False),  # hour 25
        ("20240304_091507-456-a1b2c3", False),
        ("20240304-091507-456-a1b2c", False),
        ("20240304-091507-456-a1b2-3", False),
        ("not a tuid at all, no way", False),
    ],
)
def test_tuid_validation(text: str, valid: bool) -> None:
    assert is_valid_tuid(text) is valid


@pytest.mark.parametrize(
    ("folder", "tuid", "name"),
    [
        ("20240304-091507-456-a1b2c3", "20240304-091507-456-a1b2c3", ""),
        ("20240304-091507-456-a1b2c3-T1 q0", "20240304-091507-456-a1b2c3", "T1 q0"),
        (
            "20240304-091507-456-a1b2c3-Rabi (amp=0.5). x-y",
            "20240304-091507-456-a1b2c3",
            "Rabi (amp=0.5). x-y",
        ),
        # quantify-core opens these too (get_tuids_containing: name[:26] is a valid TUID;
        # load_dataset: the day folder's entry containing the TUID).
        ("20240304-091507-456-a1b2c3 T1 q0", "20240304-091507-456-a1b2c3", "T1 q0"),
        ("20240304-091507-456-a1b2c3_chevron", "20240304-091507-456-a1b2c3", "chevron"),
        ("20240304-091507-456-a1b2c3x", "20240304-091507-456-a1b2c3", "x"),
        ("copy of 20240304-091507-456-a1b2c3-T1", "20240304-091507-456-a1b2c3", "copy of T1"),
    ],
)
def test_folder_names_split_into_tuid_and_name(folder: str, tuid: str, name: str) -> None:
    parsed = parse_folder_name(folder, "20240304")
    assert parsed is not None
    assert (parsed.tuid, parsed.name) == (tuid, name)


@pytest.mark.parametrize(
    "folder",
    [
        "notes",
        "2024-03-04 scans",
        "20240304-251507-456-a1b2c3-bad hour",
        "copy of 20240305-091507-456-a1b2c3",  # a TUID of another day: load_dataset misses it
    ],
)
def test_non_tuid_folders_are_not_experiments(folder: str) -> None:
    assert parse_folder_name(folder, "20240304") is None


def test_a_tuid_inside_the_name_needs_the_day() -> None:
    assert parse_folder_name("copy of 20240304-091507-456-a1b2c3") is None


def test_tuid_time_keeps_milliseconds_and_uses_the_configured_timezone() -> None:
    tuid = qt.make_tuid(WHEN)
    amsterdam = tuid_time(tuid, "Europe/Amsterdam")
    assert amsterdam.replace(tzinfo=None) == WHEN
    assert amsterdam.utcoffset() == dt.timedelta(hours=1)  # CET in March before the switch
    local = tuid_time(tuid)
    assert local.tzinfo is not None
    assert local.replace(tzinfo=None) == WHEN


# -- sniffing and reading ----------------------------------------------------------------------
def _write(tmp_path: Path, spec: qt.RunSpec, measured: int | None = None) -> Path:
    path = tmp_path / f"{spec.fmt}-{len(spec.axes)}-{measured}.hdf5"
    qt.write_dataset_file(path, spec, qt.make_tuid(WHEN), "a run", measured=measured)
    return path


def test_hdf5_dataset_is_read_with_quantify_layout(tmp_path: Path) -> None:
    ds = read_dataset(_write(tmp_path, qt.spec_1d(11)))
    assert ds.format is DatasetFormat.HDF5
    assert ds.settables == ["x0"]
    assert ds.gettables == ["y0", "y1"]
    assert ds.dims == {"dim_0": 11}
    assert ds.variables["x0"].attrs == {
        "name": "frequency",
        "long_name": "Frequency",
        "units": "Hz",
        "batched": False,
    }
    assert ds.attrs["tuid"] == qt.make_tuid(WHEN)
    assert ds.attrs["grid_2d"] is False
    assert not ds.is_grid
    assert not ds.has_nan
    assert ds.keywords == ["Frequency", "Magnitude", "Phase"]


def test_netcdf3_dataset_is_read_like_the_hdf5_one(tmp_path: Path) -> None:
    hdf5 = read_dataset(_write(tmp_path, qt.spec_2d(5, 3)))
    nc3_path = _write(tmp_path, qt.spec_2d(5, 3, fmt="netcdf3"))
    assert nc3_path.read_bytes()[:4] == b"CDF\x02"
    nc3 = read_dataset(nc3_path)
    assert nc3.format is DatasetFormat.NETCDF3
    assert nc3.is_grid
    assert hdf5.is_grid
    assert nc3.settables == hdf5.settables
    assert nc3.gettables == hdf5.gettables
    for name in hdf5.variables:
        np.testing.assert_array_equal(nc3.variables[name].data, hdf5.variables[name].data)
        assert nc3.variables[name].label == hdf5.variables[name].label
        assert nc3.variables[name].units == hdf5.variables[name].units
    assert nc3.attrs["xlen"] == 5
    assert nc3.attrs["ylen"] == 3


def test_versioned_dataset_attributes_are_json_decoded_and_complex_kept(tmp_path: Path) -> None:
    path = _write(tmp_path, qt.spec_complex(16))
    with h5netcdf.File(path, "r") as f:  # on disk the attributes really are JSON text
        assert f.attrs["quantify_dataset_version"] == '"2.0.0"'
        assert f.variables["y0"].attrs["units"] == '"V"'
    ds = read_dataset(path)
    assert ds.json_attrs
    assert ds.attrs["quantify_dataset_version"] == "2.0.0"
    assert ds.variables["y0"].attrs["units"] == "V"
    assert ds.variables["x0"].attrs["is_main_coord"] is True
    assert ds.variables["y0"].data.dtype == np.complex128
    assert "IQ signal" in ds.keywords


def test_in_progress_dataset_has_nan(tmp_path: Path) -> None:
    ds = read_dataset(_write(tmp_path, qt.spec_1d(20), measured=7))
    assert ds.has_nan
    assert np.isnan(ds.variables["y0"].data[7:]).all()
    assert not np.isnan(ds.variables["y0"].data[:7]).any()
    complex_ds = read_dataset(_write(tmp_path, qt.spec_complex(8), measured=3))
    assert complex_ds.has_nan


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"col1,col2\n1,2\n", "neither HDF5 nor netCDF3"),
        (b"CDF\x05" + b"\x00" * 64, "CDF-5"),
    ],
)
def test_sniffing_rejects_what_is_not_a_dataset(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "dataset.hdf5"
    path.write_bytes(content)
    with pytest.raises(DatasetReadError, match=message):
        sniff_format(path)


def test_truncated_files_are_clear_errors(tmp_path: Path) -> None:
    for spec in (qt.spec_1d(), qt.spec_1d(fmt="netcdf3")):
        path = _write(tmp_path, spec)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(DatasetReadError, match="truncated or corrupt"):
            read_dataset(path, "x/dataset.hdf5")


# -- private copies ----------------------------------------------------------------------------
def test_private_copy_retries_a_torn_read(tmp_path: Path) -> None:
    spec = qt.spec_1d(30)
    src = _write(tmp_path, spec)
    full = src.read_bytes()
    src.write_bytes(full[:100])  # the writer is half-way through its rewrite
    sleeps: list[float] = []

    def writer_finishes(seconds: float) -> None:
        sleeps.append(seconds)
        src.write_bytes(full)

    copied = private_copy(src, tmp_path / "copy.hdf5", label="d", delay=0.01, sleep=writer_finishes)
    assert copied.attempts == 2
    assert len(sleeps) == 1
    assert (tmp_path / "copy.hdf5").read_bytes() == full
    assert copied.signature.size == len(full)


def test_private_copy_reports_a_stable_corrupt_file_at_once(tmp_path: Path) -> None:
    src = tmp_path / "dataset.hdf5"
    src.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 50)
    os.utime(src, (time.time() - 60, time.time() - 60))  # nobody has written it for a minute
    sleeps: list[float] = []
    with pytest.raises(DatasetReadError, match="truncated or corrupt"):
        private_copy(src, tmp_path / "copy.hdf5", label="d", delay=0.0, sleep=sleeps.append)
    assert len(sleeps) == 1  # one retry, then the same bytes failing twice is corruption


def test_private_copy_of_a_just_written_corrupt_file_retries_then_names_the_problem(
    tmp_path: Path,
) -> None:
    src = tmp_path / "dataset.hdf5"
    src.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 50)
    sleeps: list[float] = []
    with pytest.raises(DatasetReadError, match="truncated or corrupt"):
        private_copy(src, tmp_path / "copy.hdf5", label="d", attempts=3, sleep=sleeps.append)
    assert len(sleeps) == 2  # a writer might still have been busy: all attempts used


def test_private_copy_under_a_writer_rewriting_the_file(tmp_path: Path) -> None:
    run = qt.LiveRun(tmp_path, WHEN, "busy", qt.spec_1d(2000))
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            while not stop.is_set():
                run.advance(1)
                stop.wait(0.2)  # Quantify rewrites every 0.5 s
                if run.done:
                    run.measured = 0
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    retried = 0
    try:
        for i in range(12):
            copied = private_copy(run.path, tmp_path / f"c{i}.hdf5", label="d", delay=0.05)
            retried += copied.attempts > 1
            y0 = copied.dataset.variables["y0"].data
            measured = int((~np.isnan(y0)).sum())
            assert not np.isnan(y0[:measured]).any()  # a consistent prefix, never torn
            time.sleep(0.07)
    finally:
        stop.set()
        thread.join()
    assert not errors, errors


# -- conversions -------------------------------------------------------------------------------
def _assert_grid_faithful(source: Any, gridded_path: Path) -> None:
    """Every gettable value sits at the cell of its settable values; labels and units kept."""
    with xr.open_dataset(gridded_path, engine="h5netcdf") as grid:
        grid.load()
    settables = source.settables
    assert list(grid.dims) == settables
    for name in settables:
        expected = np.unique(source.variables[name].data[~np.isnan(source.variables[name].data)])
        np.testing.assert_array_equal(grid[name].values, expected)
        assert grid[name].attrs["units"] == source.variables[name].units
        assert grid[name].attrs["long_name"] == source.variables[name].label
    n = source.variables[settables[0]].data.size
    for name in source.gettables:
        var = grid[name]
        assert var.dims == tuple(settables)
        assert var.attrs["units"] == source.variables[name].units
        assert var.attrs["long_name"] == source.variables[name].label
        flat = source.variables[name].data
        for i in range(n):
            selector = {s: source.variables[s].data[i] for s in settables}
            value = var.sel(selector).values
            np.testing.assert_array_equal(value, flat[i])  # NaN-aware
    assert grid.attrs["tuid"] == source.attrs["tuid"]


@pytest.mark.parametrize("fmt", ["hdf5", "netcdf3"])
def test_gridded_file_equals_the_source(tmp_path: Path, fmt: qt.Format) -> None:
    source = read_dataset(_write(tmp_path, qt.spec_2d(7, 4, fmt=fmt)))
    out = tmp_path / "gridded.hdf5"
    layout = write_gridded(source, out, "dataset.hdf5")
    assert layout.shape == (7, 4)
    assert not layout.warnings
    _assert_grid_faithful(source, out)
    # x0 varies fastest in Quantify's grid: the gridded y0 is the flat y0 reshaped (F order).
    with xr.open_dataset(out, engine="h5netcdf") as grid:
        expected = source.variables["y0"].data.reshape((7, 4), order="F")
        np.testing.assert_array_equal(grid["y0"].values, expected)
        assert grid.attrs["grid_2d"] == 0


def test_gridded_file_of_an_unfinished_grid_has_nan_where_not_measured(tmp_path: Path) -> None:
    source = read_dataset(_write(tmp_path, qt.spec_2d(6, 5), measured=13))
    out = tmp_path / "gridded.hdf5"
    write_gridded(source, out, "dataset.hdf5")
    _assert_grid_faithful(source, out)
    with xr.open_dataset(out, engine="h5netcdf") as grid:
        assert int(np.isnan(grid["y0"].values).sum()) == 30 - 13


def test_gridded_complex_values_stay_complex(tmp_path: Path) -> None:
    spec = qt.spec_2d(4, 3)
    spec.gettables = [qt.Param("iq", "IQ", "V", is_complex=True)]
    source = read_dataset(_write(tmp_path, spec))
    out = tmp_path / "gridded.hdf5"
    write_gridded(source, out, "dataset.hdf5")
    with h5netcdf.File(out, "r") as f:
        assert f.variables["y0"].dtype == np.complex128
    _assert_grid_faithful(source, out)


def test_gridded_file_is_reproducible(tmp_path: Path) -> None:
    source = read_dataset(_write(tmp_path, qt.spec_2d(5, 5)))
    write_gridded(source, tmp_path / "a.hdf5", "dataset.hdf5")
    write_gridded(source, tmp_path / "b.hdf5", "dataset.hdf5")
    assert (tmp_path / "a.hdf5").read_bytes() == (tmp_path / "b.hdf5").read_bytes()


def test_settables_that_do_not_form_a_grid_are_refused(tmp_path: Path) -> None:
    spec = qt.spec_2d(5, 5)
    spec.grid = False  # zipped axes: 5 points on a 5x5 "grid"
    spec.axes = [np.linspace(0, 1, 40), np.random.default_rng(1).random(40)]
    source = read_dataset(_write(tmp_path, spec))
    with pytest.raises(GridError, match="not a grid"):
        grid_layout(source)


def test_flat_netcdf4_copy_of_a_netcdf3_file_equals_the_source(tmp_path: Path) -> None:
    source = read_dataset(_write(tmp_path, qt.spec_1d(17, fmt="netcdf3"), measured=9))
    out = tmp_path / "flat.hdf5"
    write_flat(source, out, "dataset.hdf5")
    with xr.open_dataset(out, engine="h5netcdf") as copy:
        copy.load()
    for name, var in source.variables.items():
        np.testing.assert_array_equal(copy[name].values, var.data)
        assert copy[name].attrs["units"] == var.units
        assert copy[name].attrs["long_name"] == var.label
    assert json.loads(json.dumps(copy.attrs["name"])) == "a run"
