"""``md5_netcdf4`` against the PROTOCOL §7.4 definition, written out by hand here."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np
import pytest

h5netcdf = pytest.importorskip("h5netcdf")

from etiket_sync_agent.netcdf import Md5NetCDF4, NetCDFChecksumError, md5_netcdf4  # noqa: E402


def _write(
    path: Path, *, compression: str | None = None, chunks: tuple[int, ...] | None = None
) -> None:
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"x": 4, "y": 2}
        x = f.create_variable("x", ("x",), float, data=np.arange(4.0))
        x.attrs["units"] = "V"
        z = f.create_variable(
            "z",
            ("x", "y"),
            complex,
            data=np.arange(8).reshape(4, 2) * (1 + 2j),
            compression=compression,
            chunks=chunks,
        )
        z.attrs["long_name"] = "Z"
        z.attrs["limits"] = np.array([1.5, 2.5])
        f.create_variable(
            "label", ("y",), h5py.string_dtype(), data=np.array(["a", "bé"], dtype=object)
        )
        f.create_variable("scalar", (), float, data=3.0)
        f.attrs["zeta"] = "first"
        f.attrs["alpha"] = 2


def _by_hand() -> str:
    md5 = hashlib.md5()
    # variables sorted by name: label, scalar, x, z
    md5.update(b"label")
    md5.update(str(["a", "bé"]).encode())
    md5.update(b"scalar")  # scalar: no data; no attributes
    md5.update(b"x")
    md5.update(np.arange(4.0).tobytes())
    md5.update(b"units" + b"V")
    md5.update(b"z")
    md5.update((np.arange(8).reshape(4, 2) * (1 + 2j)).tobytes())
    md5.update(b"limits" + np.array([1.5, 2.5]).tobytes())
    md5.update(b"long_name" + b"Z")
    # global attributes in file order
    md5.update(b"zeta" + b"first")
    md5.update(b"alpha" + b"2")
    return md5.hexdigest()


def test_matches_the_definition(tmp_path: Path) -> None:
    path = tmp_path / "a.nc"
    _write(path)
    assert md5_netcdf4(path) == _by_hand()


def test_layout_and_compression_do_not_change_it(tmp_path: Path) -> None:
    plain, packed = tmp_path / "plain.nc", tmp_path / "packed.nc"
    _write(plain)
    _write(packed, compression="gzip", chunks=(2, 1))
    assert plain.read_bytes() != packed.read_bytes()
    assert md5_netcdf4(plain) == md5_netcdf4(packed)


def test_incremental_form_agrees_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.nc"
    _write(path)
    h = Md5NetCDF4()
    h.variable("label", np.array(["a", "bé"], dtype=object), {})
    h.variable("scalar", None, {}, scalar=True)
    h.variable("x", np.arange(4.0), {"units": "V"})
    z = np.arange(8).reshape(4, 2) * (1 + 2j)
    h.variable("z", [z[:1], z[1:]], {"long_name": "Z", "limits": np.array([1.5, 2.5])})
    h.global_attributes({"zeta": "first", "alpha": np.int64(2)})
    assert h.hexdigest() == md5_netcdf4(path)


def test_skips_nch_attributes_and_hashes_global_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a.nc", tmp_path / "b.nc"
    for path, order in ((a, ("p", "q")), (b, ("q", "p"))):
        with h5netcdf.File(path, "w") as f:
            for key in order:
                f.attrs[key] = key
    assert md5_netcdf4(a) != md5_netcdf4(b)
    h = Md5NetCDF4()
    h.global_attributes({"__NCH_internal": "x", "p": "p", "q": "q"})
    assert h.hexdigest() == md5_netcdf4(a)


def test_not_netcdf_raises(tmp_path: Path) -> None:
    path = tmp_path / "x.nc"
    path.write_bytes(b"not hdf5 at all")
    with pytest.raises(NetCDFChecksumError, match=r"x\.nc"):
        md5_netcdf4(path)
