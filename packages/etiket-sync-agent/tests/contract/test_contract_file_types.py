"""File types by suffix and, for HDF5 suffixes, by content (as the existing agent types them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from etiket_sync_agent.connectors.dataset import FileInfo, FileType, sniff_file_type

h5py = pytest.importorskip("h5py")
h5netcdf = pytest.importorskip("h5netcdf")


def test_hdf5_files_are_netcdf_only_when_they_read_as_netcdf(tmp_path: Path) -> None:
    netcdf = tmp_path / "a.hdf5"
    with h5netcdf.File(netcdf, "w") as nc:
        nc.dimensions = {"t": 2}
        nc.create_variable("t", ("t",), float)[:] = [0.0, 1.0]
    plain = tmp_path / "b.H5"
    with h5py.File(plain, "w") as f:
        f["x"] = [1, 2, 3]
    garbage = tmp_path / "c.nc"
    garbage.write_bytes(b"CDF\x01 not really")
    assert sniff_file_type(netcdf) == FileType.HDF5_NETCDF
    assert sniff_file_type(plain) == FileType.HDF5
    assert sniff_file_type(garbage) == FileType.HDF5
    assert sniff_file_type(tmp_path / "missing.h5") == FileType.HDF5


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.json", FileType.JSON), ("a.TXT", FileType.TEXT), ("a.bin", FileType.UNKNOWN)],
)
def test_other_files_by_suffix(tmp_path: Path, name: str, expected: FileType) -> None:
    assert sniff_file_type(tmp_path / name) == expected
    assert FileInfo(name=name, path=tmp_path / name).file_type == expected
