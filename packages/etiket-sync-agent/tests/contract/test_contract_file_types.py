"""File types by suffix and, for HDF5 suffixes, by content (as the existing agent types them)."""

from __future__ import annotations

import subprocess
import sys
import time
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


_HOLDER = """
import sys, time
from pathlib import Path
import h5netcdf
path, ready = sys.argv[1], Path(sys.argv[2])
with h5netcdf.File(path, "a") as nc:  # a writer holding the file (and its HDF5 lock)
    ready.write_text("open")
    time.sleep(30)
"""


def test_sniffing_ignores_the_hdf5_lock_of_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "growing.h5"
    with h5netcdf.File(path, "w") as nc:
        nc.dimensions = {"t": 2}
        nc.create_variable("t", ("t",), float)[:] = [0.0, 1.0]
    ready = tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), str(ready)])
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert holder.poll() is None, "the writer process ended early"
            assert time.monotonic() < deadline, "the writer process did not open the file"
            time.sleep(0.05)
        # With a lock request this open would fail ("unable to lock file") and say HDF5.
        assert sniff_file_type(path) == FileType.HDF5_NETCDF
    finally:
        holder.kill()
        holder.wait()
