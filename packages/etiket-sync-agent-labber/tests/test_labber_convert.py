"""Fidelity of the converted files and of the dataset record, against the generator's ground truth
and against what the source file holds."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import xarray as xr
from etiket_sync_agent_labber import LabberSync, converted_name
from etiket_sync_agent_labber import testing as lt
from etiket_sync_agent_labber.netcdf import variable_name
from etiket_sync_agent_labber.reader import decode

from etiket_sync_agent import FileType, SyncContext, SyncItem

WHEN = dt.datetime(2024, 6, 3, 14, 15, 16, tzinfo=dt.timezone.utc)


def _write(root: Path, kind: int, **kwargs: Any) -> tuple[Path, lt.LabberFileSpec]:
    spec = lt.demo_spec(kind, seed=kind + 3, creation_time=WHEN.timestamp() + kind)
    path = root / lt.labber_relpath(WHEN, f"{spec.log_name}")
    lt.write_labber_file(path, spec, **kwargs)
    return path, spec


def _open(ctx: SyncContext, name: str) -> xr.Dataset:
    return xr.open_dataset(ctx.plan.file(name).path, engine="h5netcdf").load()


def _units(spec: lt.LabberFileSpec) -> dict[str, str]:
    units = {s.name: s.unit for log in spec.logs for s in log.steps}
    units.update({c.name: c.unit for log in spec.logs for c in log.channels})
    return units


def _source_columns(path: Path, group: str) -> dict[str, np.ndarray[Any, Any]]:
    """Acquisition-ordered values of every Data/Data column, straight from the source file."""
    with h5py.File(path, "r") as f:
        g = f if group == "/" else f[group]
        data = g["Data/Data"][()]
        names = [(decode(n), decode(i)) for n, i in g["Data/Channel names"][()]]
    columns: dict[str, np.ndarray[Any, Any]] = {}
    for index, (name, info) in enumerate(names):
        flat = data[:, index, :].ravel(order="F")
        if info == "Imaginary":
            columns[name] = columns[name] + 1j * flat
        else:
            columns[name] = flat
    return columns


def _source_traces(path: Path, group: str) -> dict[str, np.ndarray[Any, Any]]:
    with h5py.File(path, "r") as f:
        g = f if group == "/" else f[group]
        traces = {}
        for name, ds in g["Traces"].items():
            if name.endswith(("_N", "_t0dt")) or name == "Time stamp":
                continue
            values = ds[:, 0, :].T
            if ds.attrs["complex"]:
                values = values + 1j * ds[:, 1, :].T
            traces[name] = values
    return traces


@pytest.mark.parametrize("kind", range(5))
def test_every_variable_equals_the_source(
    kind: int,
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
) -> None:
    path, spec = _write(labber_root, kind)
    backend = make_backend()
    item = items_of(backend)[path.relative_to(labber_root).as_posix()]
    ctx = sync_item(backend, item)
    assert not ctx.plan.errors
    units = _units(spec)
    converted = [f for f in ctx.plan.files if f.name.startswith("ds_converted")]
    assert len(converted) == len(spec.logs), "one converted file per log"
    labels = [f"Log_{index + 1}" for index in range(len(spec.logs))]
    for index in range(len(spec.logs)):
        label = f"Log_{index + 1}"
        group = "/" if index == 0 else f"/{label}"
        info = ctx.plan.file(converted_name(label, labels))
        assert info.file_type is FileType.HDF5_NETCDF
        assert info.filename == f"{info.name}.hdf5"
        ds = _open(ctx, converted_name(label, labels))
        assert ds.attrs["labber_log"] == label
        assert ds.attrs["log_name"] == spec.log_name
        truth = lt.expected_arrays(spec, index)
        log = spec.logs[index]
        # 1. the generator's ground truth, with units and labels
        for channel, expected in truth.items():
            var = ds[variable_name(channel)]
            np.testing.assert_array_equal(var.values, expected, err_msg=channel)
            assert var.attrs["units"] == units[channel], channel
            assert var.attrs["long_name"] == channel
            if np.iscomplexobj(expected):
                assert np.iscomplexobj(var.values), f"{channel} must stay complex"
        # swept channels are the dimensions, outermost first
        assert list(ds[variable_name(log.channels[0].name)].dims)[: len(log.dims)] == [
            variable_name(s.name) for s in reversed(log.swept)
        ]
        # 2. what the source file holds (acquisition order = C order of the outer-first grid)
        for channel, flat in _source_columns(path, group).items():
            if channel in {s.name for s in log.swept}:
                grid = ds[variable_name(channel)].values
                assert set(np.unique(flat[~np.isnan(flat)])) <= set(grid), channel
                continue
            values = ds[variable_name(channel)].values.reshape(-1)
            np.testing.assert_array_equal(values[: flat.size], flat, err_msg=channel)
            assert np.all(np.isnan(values[flat.size :]))
        for channel, entries in _source_traces(path, group).items():
            var = ds[variable_name(channel)]
            values = var.values.reshape(-1, entries.shape[1])
            np.testing.assert_array_equal(values[: entries.shape[0]], entries, err_msg=channel)
            axis = ds[var.dims[-1]]
            trace = next(c for c in log.channels if c.name == channel)
            np.testing.assert_allclose(axis.values, trace.dt * np.arange(trace.trace_points))
            assert axis.attrs["units"] == trace.x_unit
        # 3. nothing unexplained in the file
        known = {variable_name(c) for c in truth} | {"Time stamp", "Time stamp (steps)"}
        known |= {variable_name(c.x_name) for c in log.channels if c.trace_points}
        assert set(ds.variables) <= known, set(ds.variables) - known


def test_incomplete_log_has_the_full_grid_with_nan(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
) -> None:
    _path, spec = _write(labber_root, 1, written=13)
    backend = make_backend()
    ctx = sync_item(backend, next(iter(items_of(backend).values())))
    ds = _open(ctx, "ds_converted")
    assert ds.attrs["completed"] == 0
    truth = lt.expected_arrays(spec, 0, written=13)
    for channel, expected in truth.items():
        np.testing.assert_array_equal(ds[variable_name(channel)].values, expected)
    amplitude = ds["Digitizer - Amplitude"].values.reshape(-1)
    assert np.isfinite(amplitude[:13]).all()
    assert np.isnan(amplitude[13:]).all()
    assert ds["Digitizer - Signal"].shape == (5, 9, 16)
    assert ctx.state["completed"] is False
    assert any("synced as it is" in log.message for log in ctx.plan.logs)


def test_dataset_record_from_the_header(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
) -> None:
    _path, spec = _write(labber_root, 0)
    backend = make_backend(static_attributes={"sample": "chip-7"})
    item = next(iter(items_of(backend).values()))
    info = sync_item(backend, item).plan.dataset
    assert info is not None
    assert info.name == "Resonator sweep"
    assert info.description == "Resonator R1 transmission"
    assert info.ranking == 1
    assert info.collected == dt.datetime.fromtimestamp(spec.creation_time, tz=dt.timezone.utc)
    # The existing agent's alt_uid: <log_name>_<creation time as a Python float>.
    assert info.alt_uid == f"Resonator sweep_{float(spec.creation_time)}"
    assert info.attributes == {
        "sample": "chip-7",
        "set-up": "fridge-3",
        "project": "Resonators",
        "user": "alice",
    }
    for keyword in ("resonator", "vna", "VNA - Start frequency", "VNA - S21"):
        assert keyword in info.keywords
    # not starred, no comment, empty tag list stored as an empty float array
    path2, _ = _write(labber_root, 2)
    item2 = items_of(backend)[path2.relative_to(labber_root).as_posix()]
    info2 = sync_item(backend, item2).plan.dataset
    assert info2 is not None
    assert info2.ranking == 0
    assert info2.description is None
    assert "project" not in info2.attributes
    # As the existing agent: channel and trace names with their units, the trace's setpoint name
    # and unit, and the values of the Tags (here the user).
    assert set(info2.keywords) == {
        "AWG - Pulse amplitude",
        "V",
        "Digitizer - Population",
        "Digitizer - IQ",
        "Time",
        "s",
        "carol",
    }


def test_settings_and_instruments_documents(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
) -> None:
    _path, spec = _write(labber_root, 1)
    backend = make_backend()
    ctx = sync_item(backend, next(iter(items_of(backend).values())))
    settings = json.loads(ctx.plan.file("settings").path.read_text())
    instruments = json.loads(ctx.plan.file("instruments").path.read_text())
    # a '/' in a channel name made nested groups; the document gives the name back
    assert "Flux/Bias - Voltage" in settings["step_config"]
    items = settings["step_config"]["Flux/Bias - Voltage"]["Step items"]
    assert items[0]["n_pts"] == 5
    assert (
        settings["step_config"]["Flux/Bias - Current"]["Relation parameters"][0]["channel_name"]
        == "Flux/Bias - Voltage"
    )
    assert [row["channel_name"] for row in settings["step_list"]] == [
        s.name for s in spec.logs[0].steps
    ]
    assert settings["settings"]["Time per point"] == 0.01
    assert settings["tags"] == {"project": ["Qubits"], "tags": ["spectroscopy"], "user": ["bob"]}
    assert settings["units"]["Digitizer - Signal"] == "V"
    assert settings["logs"][0]["step_channels"] == [
        "Qubit source - Frequency",
        "Flux/Bias - Voltage",
    ]
    assert settings["logs"][0]["step_dimensions"] == [9, 5]
    config = instruments["instrument_config"]
    digitizer = next(v for k, v in config.items() if k.startswith("Digitizer - IP"))
    assert digitizer["Signal"] == 0.5
    assert digitizer["IQ reference"] == {"real": 0.25, "imag": 0.75}
    assert {row["name"] for row in instruments["instruments"]} >= {"Digitizer", "Flux/Bias"}
    # strict JSON: infinities of the channel limits are strings
    assert settings["channels"][0]["highLim"] == "Infinity"


def test_multi_log_file_gives_one_converted_file_per_log(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
) -> None:
    path, _spec = _write(labber_root, 3)
    old = WHEN.timestamp()
    os.utime(path, (old, old))  # finished long ago: read in place
    backend = make_backend()
    ctx = sync_item(backend, next(iter(items_of(backend).values())))
    names = {f.name for f in ctx.plan.files}
    # The existing agent's names: ds_converted_<i> per log when a file holds several.
    assert names == {
        "original",
        "ds_converted_0",
        "ds_converted_1",
        "ds_converted_2",
        "settings",
        "instruments",
    }
    sizes = [_open(ctx, f"ds_converted_{i}").sizes["Magnet - Field"] for i in (0, 1, 2)]
    assert sizes == [7, 5, 6]
    fields = [_open(ctx, f"ds_converted_{i}")["Magnet - Field"].values[0] for i in (0, 1, 2)]
    np.testing.assert_allclose(fields, [0.0, 0.2, 0.4])
    original = ctx.plan.file("original")
    assert original.path == path, "a file that is not changing is uploaded from the source"
    assert original.file_type is FileType.HDF5


def test_a_recently_changed_file_is_read_from_a_private_copy(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
) -> None:
    path, _ = _write(labber_root, 2)
    backend = make_backend()
    ctx = sync_item(backend, next(iter(items_of(backend).values())))
    original = ctx.plan.file("original")
    assert original.path != path
    assert ctx.work_dir in original.path.parents
    assert original.path.read_bytes() == path.read_bytes()
    assert ctx.state["signature"] == [path.stat().st_size, path.stat().st_mtime_ns]


def test_inconsistent_step_values_are_kept_as_a_variable(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
) -> None:
    # An alternating sweep: the inner channel runs backwards on every other outer step.
    path, _spec = _write(labber_root, 1)
    with h5py.File(path, "r+") as f:
        data = f["Data/Data"]
        column = data[:, 0, :]
        column[:, 1::2] = column[::-1, 1::2]
        data[:, 0, :] = column
    backend = make_backend()
    ctx = sync_item(backend, next(iter(items_of(backend).values())))
    ds = _open(ctx, "ds_converted")
    assert "Qubit source - Frequency" not in ds.variables
    full = ds["Qubit source - Frequency values"].values
    np.testing.assert_array_equal(full.reshape(-1), column.ravel(order="F"))
    assert any("does not repeat" in log.message for log in ctx.plan.logs)


def test_step_dimensions_that_do_not_fit_fall_back_to_points(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
) -> None:
    path, spec = _write(labber_root, 0)
    with h5py.File(path, "r+") as f:
        f["Data"].attrs["Step dimensions"] = np.asarray([3], dtype=np.int64)
    backend = make_backend()
    ctx = sync_item(backend, next(iter(items_of(backend).values())))
    ds = _open(ctx, "ds_converted")
    assert ds.sizes["point"] == 41
    truth = lt.expected_arrays(spec, 0)
    np.testing.assert_array_equal(ds["VNA - S21"].values, truth["VNA - S21"])
    assert any("do not fit" in log.message for log in ctx.plan.logs)


def test_a_log_just_started_has_coordinates_from_the_step_config(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
) -> None:
    _, spec = _write(labber_root, 1, written=0)
    backend = make_backend()
    ctx = sync_item(backend, next(iter(items_of(backend).values())))
    assert not ctx.plan.errors
    ds = _open(ctx, "ds_converted")
    truth = lt.expected_arrays(spec, 0, written=0)
    for channel, expected in truth.items():
        np.testing.assert_array_equal(ds[variable_name(channel)].values, expected)
    assert np.isfinite(ds["Flux_Bias - Voltage"].values).all()
    assert np.isnan(ds["Digitizer - Signal"].values).all()
    assert ds["Digitizer - Signal"].shape == (5, 9, 16)


def test_short_traces_and_time_stamps(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
) -> None:
    path, spec = _write(labber_root, 3)
    with h5py.File(path, "r+") as f:
        f["Traces/Scope - Trace_N"][2] = 5  # the third trace only has 5 of its 8 points
        stamps = f["Traces/Time stamp"][()]
    backend = make_backend()
    ctx = sync_item(backend, next(iter(items_of(backend).values())))
    ds = _open(ctx, "ds_converted_0")
    traces = ds["Scope - Trace"].values
    truth = lt.expected_arrays(spec, 0)["Scope - Trace"]
    np.testing.assert_array_equal(traces[2, :5], truth[2, :5])
    assert np.isnan(traces[2, 5:]).all()
    np.testing.assert_array_equal(traces[3], truth[3])
    np.testing.assert_array_equal(ds["Time stamp"].values, stamps)
    np.testing.assert_allclose(ds["Time"].values, 2e-6 * np.arange(8))


def test_unexpected_trace_layout_is_reported_not_fatal(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
) -> None:
    path, _ = _write(labber_root, 0)
    with h5py.File(path, "r+") as f:
        f["Traces"].create_dataset("Odd - Vector", data=np.ones((4, 3)))
    backend = make_backend()
    ctx = sync_item(backend, next(iter(items_of(backend).values())))
    assert not ctx.plan.errors
    assert any("Traces/Odd - Vector" in log.message for log in ctx.plan.logs)
    assert "Odd - Vector" not in _open(ctx, "ds_converted").variables
