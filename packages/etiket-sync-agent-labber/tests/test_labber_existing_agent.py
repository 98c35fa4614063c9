"""Labber datasets as the existing agent records them: alt_uid, file names, types, generators."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from etiket_sync_agent_labber import LabberSync, alt_uid_of, converted_name
from etiket_sync_agent_labber import testing as lt

from etiket_sync_agent import FileType, SyncContext, SyncItem

WHEN = dt.datetime(2024, 6, 3, 14, 15, 16, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    "epoch", [1717424116.0, 1717424116.5, 1717424116.1234567, 1.5e9 + 1e-7, 1717424116.999_999_7]
)
def test_alt_uid_is_the_existing_agents_formula(epoch: float) -> None:
    # The existing agent: f"{log_name}_{datetime.fromtimestamp(t).timestamp()}" (local time there,
    # the same float here: the round trip only rounds to microseconds).
    expected = f"Scan A_{dt.datetime.fromtimestamp(epoch).timestamp()}"
    assert alt_uid_of("Scan A", epoch) == expected


def test_alt_uid_examples() -> None:
    assert alt_uid_of("Rabi", 1717424116.0) == "Rabi_1717424116.0"
    assert alt_uid_of("Rabi", 1717424116.1234567) == "Rabi_1717424116.123457"


def test_converted_names() -> None:
    assert converted_name("Log_1", ["Log_1"]) == "ds_converted"
    labels = ["Log_1", "Log_2", "Log_5"]
    assert [converted_name(label, labels) for label in labels] == [
        "ds_converted_0",
        "ds_converted_1",
        "ds_converted_2",
    ]


def test_files_types_and_generators(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
) -> None:
    spec = lt.demo_spec(0, seed=3, creation_time=WHEN.timestamp() + 0.25)
    spec = dataclasses.replace(spec, log_name="Resonator sweep")
    path = labber_root / lt.labber_relpath(WHEN, spec.log_name)
    lt.write_labber_file(path, spec)
    backend = make_backend()
    ctx = sync_item(backend, items_of(backend)[path.relative_to(labber_root).as_posix()])
    assert not ctx.plan.errors
    record = ctx.plan.dataset
    assert record is not None
    assert record.alt_uid == f"Resonator sweep_{WHEN.timestamp() + 0.25}"
    assert record.attributes["set-up"] == "fridge-3"
    expected = {
        "original": ("original.hdf5", FileType.HDF5),
        "ds_converted": ("ds_converted.hdf5", FileType.HDF5_NETCDF),
        "settings": ("settings.json", FileType.JSON),
        "instruments": ("instruments.json", FileType.JSON),
    }
    files = {f.name: f for f in ctx.plan.files}
    assert set(files) == set(expected)
    for name, (filename, file_type) in expected.items():
        assert (files[name].filename, files[name].file_type) == (filename, file_type), name
        assert files[name].generator == "Labber", name
    assert files["original"].path.read_bytes() == path.read_bytes()


def test_every_file_is_dated_with_the_logs_mtime(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
) -> None:
    spec = lt.demo_spec(3, seed=4, creation_time=WHEN.timestamp())
    path = labber_root / lt.labber_relpath(WHEN, spec.log_name)
    lt.write_labber_file(path, spec)
    mtime = WHEN.timestamp() + 3600
    os.utime(path, (mtime, mtime))
    backend = make_backend()
    ctx = sync_item(backend, next(iter(items_of(backend).values())))
    assert len(ctx.plan.files) == 6
    expected = dt.datetime.fromtimestamp(mtime, tz=dt.timezone.utc)
    assert {f.collected for f in ctx.plan.files} == {expected}
