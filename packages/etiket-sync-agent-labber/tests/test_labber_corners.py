"""Corners real Labber files showed: per-log creation times, Data/Time stamp, tags holding ['']."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import xarray as xr
from etiket_sync_agent_labber import LabberSync
from etiket_sync_agent_labber import testing as lt

from etiket_sync_agent import SyncContext, SyncItem

WHEN = dt.datetime(2024, 5, 1, 10, 30, 0)
Items = Callable[[LabberSync], dict[str, SyncItem]]


def _open(ctx: SyncContext, name: str) -> xr.Dataset:
    return xr.open_dataset(ctx.plan.file(name).path, engine="h5netcdf").load()


def _appended_spec() -> lt.LabberFileSpec:
    spec = lt.demo_spec(3, seed=5, creation_time=WHEN.timestamp())
    logs = [
        log if i == 0 else dataclasses.replace(log, creation_time=WHEN.timestamp() + 600.0 * i)
        for i, log in enumerate(spec.logs)
    ]
    assert len(logs) >= 2
    return dataclasses.replace(spec, logs=logs)


def test_appended_logs_carry_their_own_creation_time(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Items,
    sync_item: Callable[..., SyncContext],
) -> None:
    spec = _appended_spec()
    path = labber_root / lt.labber_relpath(WHEN, spec.log_name)
    lt.write_labber_file(path, spec)
    backend = make_backend()
    ctx = sync_item(backend, next(iter(items_of(backend).values())))
    root = _open(ctx, "ds_converted_0")
    assert root.attrs["creation_time"] == WHEN.timestamp()
    for index in range(1, len(spec.logs)):
        ds = _open(ctx, f"ds_converted_{index}")
        own = WHEN.timestamp() + 600.0 * index
        assert ds.attrs["creation_time"] == own
        assert ds.attrs["creation_time_utc"] == (
            dt.datetime.fromtimestamp(own, tz=dt.timezone.utc).isoformat()
        )


def test_an_appended_log_without_its_own_time_keeps_the_files(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Items,
    sync_item: Callable[..., SyncContext],
) -> None:
    spec = lt.demo_spec(3, seed=5, creation_time=WHEN.timestamp())
    lt.write_labber_file(labber_root / lt.labber_relpath(WHEN, spec.log_name), spec)
    backend = make_backend()
    ctx = sync_item(backend, next(iter(items_of(backend).values())))
    assert _open(ctx, "ds_converted_1").attrs["creation_time"] == WHEN.timestamp()


def test_data_time_stamp_is_converted_per_outer_step(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Items,
    sync_item: Callable[..., SyncContext],
) -> None:
    spec = lt.demo_spec(1, seed=3, creation_time=WHEN.timestamp())
    path = labber_root / lt.labber_relpath(WHEN, spec.log_name)
    lt.write_labber_file(path, spec)
    with h5py.File(path, "r") as f:
        stamps = f["Data/Time stamp"][()]
        blocks = f["Data/Data"].shape[2]
    assert stamps.shape == (blocks,)  # one per outer step
    backend = make_backend()
    ctx = sync_item(backend, next(iter(items_of(backend).values())))
    ds = _open(ctx, "ds_converted")
    name = "Time stamp (steps)" if "Time stamp (steps)" in ds.variables else "Time stamp"
    var = ds[name]
    assert var.attrs["labber_path"] == "Data/Time stamp"
    assert var.attrs["units"] == "s"
    dims = spec.logs[0].dims
    assert var.shape == tuple(reversed(dims[1:]))
    np.testing.assert_array_equal(var.values.reshape(-1)[: stamps.size], stamps)
    # The outer dimensions are the data's own (outermost first).
    data_var = next(v for v in ds.data_vars.values() if v.attrs.get("labber_kind") == "log")
    assert var.dims == data_var.dims[: len(var.dims)]


def test_data_time_stamp_of_an_unfinished_log_is_padded(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Items,
    sync_item: Callable[..., SyncContext],
) -> None:
    spec = lt.demo_spec(1, seed=3, creation_time=WHEN.timestamp())
    dims = spec.logs[0].dims
    assert len(dims) >= 2
    written = dims[0] * 2 + 1  # two full blocks and one point of the third
    lt.write_labber_file(
        labber_root / lt.labber_relpath(WHEN, spec.log_name), spec, written=written
    )
    backend = make_backend(stale_after=0)
    ctx = sync_item(backend, next(iter(items_of(backend).values())))
    ds = _open(ctx, "ds_converted")
    name = "Time stamp (steps)" if "Time stamp (steps)" in ds.variables else "Time stamp"
    flat = ds[name].values.reshape(-1)
    assert np.isfinite(flat[:3]).all()
    assert np.isnan(flat[3:]).all()


def test_tags_holding_an_empty_string_keep_it(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Items,
    sync_item: Callable[..., SyncContext],
) -> None:
    spec = dataclasses.replace(
        lt.demo_spec(1, seed=2, creation_time=WHEN.timestamp()), project=[""], user=[""], tags=[]
    )
    lt.write_labber_file(labber_root / lt.labber_relpath(WHEN, spec.log_name), spec)
    backend = make_backend()
    ctx = sync_item(backend, next(iter(items_of(backend).values())))
    settings = json.loads(ctx.plan.file("settings").path.read_text(encoding="utf-8"))
    assert settings["tags"] == {"project": [""], "tags": [], "user": [""]}
