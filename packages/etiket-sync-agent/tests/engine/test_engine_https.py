"""The agent end to end over HTTPS (self-signed certificate trusted through a CA bundle), with a
netCDF file validated by its content hash: a regenerated file with the same content is not a new
version, changed content is (issue 11 items 1, 7 and 8)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from etiket_sync_agent import (
    DatasetInfo,
    FileInfo,
    FileType,
    ScopePolicy,
    SyncContext,
    SyncItem,
    SyncSourceFileBase,
)
from etiket_sync_agent.netcdf import md5_netcdf4
from etiket_sync_agent.testing import AgentHarness

pytest.importorskip("h5netcdf")


@dataclasses.dataclass
class NcConfig:
    root_directory: Path


class NetCDFFolders(SyncSourceFileBase):
    """Every folder is a dataset; ``*.nc`` files are netCDF, the rest plain files."""

    name = "test-https-netcdf"
    config_class = NcConfig
    scope_policy = ScopePolicy.REQUIRED
    level = 1

    def root_path(self) -> Path:
        return Path(self.config.root_directory)

    def sync_dataset(self, item: SyncItem, ctx: SyncContext) -> None:
        folder = self.root_path() / str(item.path)
        ctx.set_dataset(
            DatasetInfo(
                name=folder.name,
                alt_uid=item.key,
                collected=dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc),
            )
        )
        for path in sorted(p for p in folder.iterdir() if p.is_file()):
            kind = FileType.HDF5_NETCDF if path.suffix == ".nc" else None
            ctx.upload_file(FileInfo(name=path.name, path=path, file_type=kind))


def _write(path: Path, values: list[float], *, compressed: bool) -> None:
    import h5netcdf.legacyapi as nc

    with nc.Dataset(path, "w") as ds:
        ds.createDimension("t", len(values))
        options: dict[str, Any] = {"zlib": True, "chunksizes": (2,)} if compressed else {}
        var = ds.createVariable("current", "f8", ("t",), **options)
        var[:] = np.array(values)
        var.units = "A"
        names = ds.createVariable("gate", str, ("t",))
        names[:] = np.array([f"g{i}" for i in range(len(values))], dtype=object)
        ds.sample = "S7"


def _versions(harness: AgentHarness, name: str) -> list[Any]:
    (dataset,) = harness.datasets()
    record = harness.dataset(dataset.uuid)
    return [f for f in record.files if f.name == name]


def test_agent_syncs_over_https_and_dedups_regenerated_netcdf(tmp_path: Path) -> None:
    root = tmp_path / "source"
    folder = root / "run-001"
    folder.mkdir(parents=True)
    nc_path = folder / "measurement.nc"
    _write(nc_path, [1.0, 2.0, 3.0], compressed=False)
    (folder / "notes.txt").write_text("cooldown 3")

    harness = AgentHarness(tmp_path / "h", tls=True)
    try:
        assert harness.server.url.startswith("https://")
        harness.register_backend(NetCDFFolders)
        harness.add_source("nc", NetCDFFolders, {"root_directory": str(root)})
        harness.run_until_idle()

        (dataset,) = harness.datasets()
        stored = {f.name: f for f in harness.server_files(dataset.uuid)}
        assert set(stored) == {"measurement.nc", "notes.txt"}
        assert stored["measurement.nc"].md5_declared == md5_netcdf4(nc_path)
        assert stored["measurement.nc"].md5_stored == md5_netcdf4(nc_path)
        assert stored["measurement.nc"].md5_bytes == hashlib.md5(nc_path.read_bytes()).hexdigest()
        assert stored["notes.txt"].md5_declared == stored["notes.txt"].md5_stored

        # regenerated with another HDF5 layout, same content: not a new version
        before = nc_path.read_bytes()
        _write(nc_path, [1.0, 2.0, 3.0], compressed=True)
        assert nc_path.read_bytes() != before
        harness.run_until_idle()
        assert len(_versions(harness, "measurement.nc")) == 1

        # changed content: a new version, validated by its content hash
        _write(nc_path, [1.0, 2.0, 4.0], compressed=True)
        harness.run_until_idle()
        versions = _versions(harness, "measurement.nc")
        assert len(versions) == 2
        assert {v.md5_checksum for v in versions} >= {md5_netcdf4(nc_path)}
        assert all(v.status.value == "secured" for v in versions)
    finally:
        harness.close()
