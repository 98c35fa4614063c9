"""zarr → netCDF (v2 and v3 stores written by hand) and zarr → deterministic zip."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import h5netcdf
import numpy as np
import pytest
import xarray as xr
import zarr
from etiket_sync_agent_converters import ConversionError, ZarrToNetCDF, ZarrToZip
from etiket_sync_agent_converters.testing import (
    crc32c,
    make_demo_zarr,
    write_v2_array,
    write_v2_group,
    write_v3_array,
    write_v3_group,
)
from etiket_sync_agent_converters.zarr_store import open_zarr_store

from etiket_sync_agent.converters import converters_for, load_converter
from etiket_sync_agent.testing import tree_digest


def _convert(tmp_path: Path, store: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir(parents=True, exist_ok=True)
    return ZarrToNetCDF().convert(store, out)


_ZARR3 = int(zarr.__version__.split(".")[0]) >= 3
#: zarr 2.18 (Python 3.10) reads format 2 only; zarr 3 reads and writes both.
needs_zarr3 = pytest.mark.skipif(not _ZARR3, reason="needs zarr 3 (Python >= 3.11)")


def _values(nc: Any, name: str) -> np.ndarray[Any, Any]:
    return np.asarray(nc[name][...])


@pytest.mark.parametrize("version", [2, 3])
def test_demo_store_round_trips(tmp_path: Path, version: int) -> None:
    if version == 3 and not _ZARR3:
        pytest.skip("format 3 needs zarr 3 (Python >= 3.11)")
    store = tmp_path / "scan.zarr"
    expected = make_demo_zarr(store, version)
    before = tree_digest(store)
    output = _convert(tmp_path, store)
    assert tree_digest(store) == before, "the store was modified"
    assert output.name == "scan.nc"
    with h5netcdf.File(output, "r") as nc:
        for name, values in expected.items():
            np.testing.assert_array_equal(_values(nc, name), values)  # NaN-aware
        assert nc["signal"].dimensions == ("x", "y")
        assert nc["signal"].attrs["units"] == "A"
        assert nc["x"].attrs["units"] == "V"
        assert nc.attrs["title"] == "demo"
        assert nc.attrs["cooldown"] == 3
        assert nc["analysis"].attrs["model"] == "linear"
        assert nc["analysis/fit"].dimensions == ("p",)
        assert "_ARRAY_DIMENSIONS" not in nc["signal"].attrs
    with xr.open_dataset(output, engine="h5netcdf") as ds:
        np.testing.assert_array_equal(ds["signal"].values, expected["signal"])
        np.testing.assert_array_equal(ds["y"].values, expected["y"])  # 0 is data, not missing
        assert ds["signal"].attrs["long_name"] == "current"


@pytest.mark.parametrize("compressor", [None, "zlib", "gzip", "bz2", "lzma"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_v2_compressors_orders_and_edge_chunks(
    tmp_path: Path, compressor: str | None, order: str
) -> None:
    values = np.arange(7 * 5 * 3, dtype="<i4").reshape(7, 5, 3) - 50
    store = write_v2_group(tmp_path / "s.zarr")
    write_v2_array(
        store / "a",
        values,
        chunks=(3, 2, 2),
        compressor=compressor,
        order=order,  # type: ignore[arg-type]
        dims=["i", "j", "k"],
    )
    with h5netcdf.File(_convert(tmp_path, store), "r") as nc:
        np.testing.assert_array_equal(_values(nc, "a"), values)


def test_v2_slash_separator_missing_chunks_and_fill_value(tmp_path: Path) -> None:
    values = np.arange(16, dtype="<f8").reshape(4, 4)
    store = write_v2_group(tmp_path / "s.zarr")
    write_v2_array(
        store / "m",
        values,
        chunks=(2, 2),
        separator="/",
        fill_value=-1.0,
        skip_chunks=[(1, 0)],
    )
    assert (store / "m" / "0" / "1").is_file()
    expected = values.copy()
    expected[2:, :2] = -1.0
    with h5netcdf.File(_convert(tmp_path, store), "r") as nc:
        np.testing.assert_array_equal(_values(nc, "m"), expected)
        assert nc["m"].dimensions == ("m_dim_0", "m_dim_1")
        assert float(nc["m"].attrs["_FillValue"]) == -1.0


def test_v2_nan_fill_for_unwritten_chunks(tmp_path: Path) -> None:
    store = write_v2_group(tmp_path / "s.zarr")
    write_v2_array(
        store / "v", np.ones(6), chunks=(2,), fill_value=float("nan"), skip_chunks=[(2,)]
    )
    with h5netcdf.File(_convert(tmp_path, store), "r") as nc:
        np.testing.assert_array_equal(_values(nc, "v"), [1, 1, 1, 1, np.nan, np.nan])


def test_v2_strings_bytes_bools_scalars_and_times(tmp_path: Path) -> None:
    store = write_v2_group(tmp_path / "s.zarr", {"nested": {"a": [1, "b"]}, "flag": True})
    words = np.array(["alpha", "", "\u03b3-ray", "delta"], dtype=object)
    write_v2_array(store / "words", words, chunks=(3,), dims=["w"])
    write_v2_array(store / "fixed", np.array(["ab", "c"], dtype="<U2"), dims=["f"])
    write_v2_array(store / "raw", np.array([b"xy", b"z"], dtype="|S2"), dims=["f"])
    write_v2_array(store / "mask", np.array([True, False, True]), chunks=(2,))
    write_v2_array(store / "scalar", np.array(4.25))
    times = np.array(["2024-05-01T10:00", "2024-05-01T11:30"], dtype="datetime64[ns]")
    write_v2_array(store / "time", times, dims=["t"])
    with h5netcdf.File(_convert(tmp_path, store), "r") as nc:
        got = [v.decode() if isinstance(v, bytes) else v for v in _values(nc, "words")]
        assert got == list(words)
        fixed = [v.decode() if isinstance(v, bytes) else v for v in _values(nc, "fixed")]
        assert fixed == ["ab", "c"]
        assert list(_values(nc, "raw")) == [b"xy", b"z"]
        np.testing.assert_array_equal(_values(nc, "mask"), [1, 0, 1])
        assert nc["mask"].attrs["dtype"] == "bool"  # xarray's netCDF convention for booleans
        assert float(nc["scalar"][()]) == 4.25
        assert nc["time"].attrs["units"] == "nanoseconds since 1970-01-01"
        np.testing.assert_array_equal(_values(nc, "time"), times.astype("int64"))
        assert json.loads(nc.attrs["nested"]) == {"a": [1, "b"]}
        assert nc.attrs["flag"] == 1
    with xr.open_dataset(tmp_path / "out" / "s.nc", engine="h5netcdf") as ds:
        assert ds["mask"].dtype == bool
        assert ds["time"].values[1] == np.datetime64(dt.datetime(2024, 5, 1, 11, 30), "ns")


def test_store_whose_root_is_an_array(tmp_path: Path) -> None:
    values = np.linspace(0, 1, 5, dtype="<f4")
    store = write_v2_array(tmp_path / "trace.zarr", values, chunks=(2,), dims=["t"])
    with h5netcdf.File(_convert(tmp_path, store), "r") as nc:
        np.testing.assert_array_equal(_values(nc, "trace"), values)


@needs_zarr3
@pytest.mark.parametrize("key_encoding", ["default", "v2"])
@pytest.mark.parametrize("endian", ["little", "big"])
def test_v3_key_encodings_endianness_and_missing_chunks(
    tmp_path: Path, key_encoding: str, endian: str
) -> None:
    values = np.arange(30, dtype="<i8").reshape(5, 6)
    store = write_v3_group(tmp_path / "s.zarr")
    write_v3_array(
        store / "a",
        values,
        chunks=(2, 4),
        key_encoding=key_encoding,
        endian=endian,
        fill_value=7,
        skip_chunks=[(0, 1)],
    )
    expected = values.copy()
    expected[0:2, 4:6] = 7
    with h5netcdf.File(_convert(tmp_path, store), "r") as nc:
        np.testing.assert_array_equal(_values(nc, "a"), expected)
        assert "_FillValue" not in nc["a"].attrs, "a v3 fill value of real data is not a mask"


@needs_zarr3
def test_v3_scalar_and_crc32c(tmp_path: Path) -> None:
    store = write_v3_group(tmp_path / "s.zarr")
    write_v3_array(store / "s", np.array(2.5), codecs=("bytes", "crc32c"))
    assert (store / "s" / "c").is_file()
    with h5netcdf.File(_convert(tmp_path, store), "r") as nc:
        assert float(nc["s"][()]) == 2.5


def test_crc32c_known_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283


@needs_zarr3
def test_v3_transpose_codec(tmp_path: Path) -> None:
    values = np.arange(6, dtype="<f8").reshape(2, 3)
    store = write_v3_group(tmp_path / "s.zarr")
    write_v3_array(store / "t", values, codecs=("bytes",))
    meta = json.loads((store / "t" / "zarr.json").read_text())
    meta["codecs"].insert(0, {"name": "transpose", "configuration": {"order": [1, 0]}})
    (store / "t" / "zarr.json").write_text(json.dumps(meta))
    (store / "t" / "c" / "0" / "0").write_bytes(values.T.astype("<f8").tobytes())
    with h5netcdf.File(_convert(tmp_path, store), "r") as nc:
        np.testing.assert_array_equal(_values(nc, "t"), values)


def test_v2_unknown_compressor_is_named(tmp_path: Path) -> None:
    store = write_v2_group(tmp_path / "s.zarr")
    write_v2_array(store / "a", np.ones(4))
    meta = json.loads((store / "a" / ".zarray").read_text())
    meta["compressor"] = {"id": "no-such-codec"}
    (store / "a" / ".zarray").write_text(json.dumps(meta))
    with pytest.raises(ConversionError) as info:
        _convert(tmp_path, store)
    assert "no-such-codec" in str(info.value)
    assert "array a" in str(info.value)
    assert str(store) in str(info.value)
    assert not list((tmp_path / "out").iterdir())


@needs_zarr3
def test_v3_unknown_codec_is_named(tmp_path: Path) -> None:
    store = write_v3_group(tmp_path / "s.zarr")
    write_v3_array(store / "a", np.ones(4), codecs=("bytes", "no-such-codec"))
    with pytest.raises(ConversionError, match=r"array a cannot be opened.*no-such-codec"):
        _convert(tmp_path, store)


def test_v2_unknown_filter_is_named(tmp_path: Path) -> None:
    store = write_v2_group(tmp_path / "s.zarr")
    write_v2_array(store / "a", np.ones(4))
    meta = json.loads((store / "a" / ".zarray").read_text())
    meta["filters"] = [{"id": "no-such-filter"}]
    (store / "a" / ".zarray").write_text(json.dumps(meta))
    with pytest.raises(ConversionError, match=r"array a.*no-such-filter"):
        _convert(tmp_path, store)


def test_corrupt_chunk_crc_and_metadata_are_clear_errors(tmp_path: Path) -> None:
    store = write_v2_group(tmp_path / "a.zarr")
    write_v2_array(store / "x", np.ones(4), chunks=(2,))
    (store / "x" / "1").write_bytes(b"not zlib")
    with pytest.raises(ConversionError, match=r"array x: cannot read block \[1\]"):
        _convert(tmp_path, store)

    store3 = write_v3_group(tmp_path / "b.zarr")
    write_v3_array(store3 / "y", np.ones(4), codecs=("bytes", "crc32c"))
    chunk = store3 / "y" / "c" / "0"
    chunk.write_bytes(b"\xff" + chunk.read_bytes()[1:])
    if _ZARR3:
        with pytest.raises(
            ConversionError, match=r"array y: cannot read block \[0\].*(?i:checksum)"
        ):
            _convert(tmp_path, store3)
    else:
        with pytest.raises(ConversionError, match="needs zarr 3"):
            _convert(tmp_path, store3)

    bad = write_v2_group(tmp_path / "c.zarr")
    (bad / "z").mkdir()
    (bad / "z" / ".zarray").write_text("{not json")
    with pytest.raises(ConversionError, match=r"array z cannot be opened"):
        _convert(tmp_path, bad)

    short = write_v2_group(tmp_path / "d.zarr")
    write_v2_array(short / "s", np.ones(4), chunks=(4,), compressor=None)
    (short / "s" / "0").write_bytes(b"\x00" * 5)
    with pytest.raises(ConversionError, match=r"array s: cannot read block \[0\]"):
        _convert(tmp_path, short)


def test_not_a_store_and_conflicting_dimensions(tmp_path: Path) -> None:
    empty = tmp_path / "empty.zarr"
    empty.mkdir()
    with pytest.raises(ConversionError, match="is not a zarr store"):
        _convert(tmp_path, empty)
    plain = tmp_path / "plain.zarr"
    plain.write_bytes(b"x")
    with pytest.raises(ConversionError, match="is not a folder"):
        _convert(tmp_path, plain)
    store = write_v2_group(tmp_path / "dims.zarr")
    write_v2_array(store / "a", np.ones(3), dims=["x"])
    write_v2_array(store / "b", np.ones(4), dims=["x"])
    with pytest.raises(ConversionError, match="dimension 'x' has length 3 in array a but 4"):
        _convert(tmp_path, store)


def test_reader_lists_groups_and_arrays_sorted(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    make_demo_zarr(store, 2)
    root = open_zarr_store(store)
    assert [a.name for a in root.arrays] == ["signal", "x", "y"]
    assert [g.name for g in root.groups] == ["analysis"]


# -- zip -----------------------------------------------------------------------------------------
def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_zip_is_deterministic_and_complete(tmp_path: Path) -> None:
    store = tmp_path / "a" / "scan.zarr"
    make_demo_zarr(store, 2)
    out1, out2 = tmp_path / "o1", tmp_path / "o2"
    out1.mkdir()
    out2.mkdir()
    first = ZarrToZip().convert(store, out1)
    assert first.name == "scan.zarr.zip"
    # A copy elsewhere, with other timestamps and creation order, gives the same bytes.
    copy = tmp_path / "b" / "scan.zarr"
    shutil.copytree(store, copy)
    for path in copy.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    second = ZarrToZip().convert(copy, out2)
    assert _md5(first) == _md5(second)
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert ".zgroup" in names
        assert "signal/.zarray" in names
        assert "analysis/fit/0" in names
        for info in archive.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            rel = info.filename
            assert archive.read(rel) == (store / rel).read_bytes()
        assert len(names) == len([p for p in store.rglob("*") if p.is_file()])
    # A changed chunk changes the zip.
    (copy / "x" / "0").write_bytes(b"changed")
    third = ZarrToZip().convert(copy, tmp_path / "a")
    assert _md5(third) != _md5(first)


def test_zip_of_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.zarr"
    path.write_bytes(b"x")
    with pytest.raises(ConversionError, match="is not a folder"):
        ZarrToZip().convert(path, tmp_path)


def test_zarr_converters_are_registered() -> None:
    assert load_converter("zarr-to-netcdf") is ZarrToNetCDF
    assert load_converter("zarr-to-zip") is ZarrToZip
    names = {name for name, _ in converters_for("zarr")}
    assert {"zarr-to-netcdf", "zarr-to-zip"} <= names


def test_zarr_converters_accept_zarr_folders_only(tmp_path: Path) -> None:
    folder = tmp_path / "scan.ZARR"
    folder.mkdir()
    plain = tmp_path / "file.zarr"
    plain.write_bytes(b"x")
    for converter in (ZarrToNetCDF(), ZarrToZip()):
        assert converter.accepts(folder)
        assert not converter.accepts(plain)
        assert not converter.accepts(tmp_path)


@needs_zarr3
def test_complex_values_are_kept(tmp_path: Path) -> None:
    values = np.array([1 + 2j, -0.5j, 3.0], dtype="<c16")
    store = write_v3_group(tmp_path / "s.zarr")
    write_v3_array(store / "z", values, chunks=(2,), fill_value=[0.0, 0.0])
    with h5netcdf.File(_convert(tmp_path, store), "r") as nc:
        np.testing.assert_array_equal(_values(nc, "z"), values)


def test_netcdf_output_is_deterministic(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    make_demo_zarr(store, 2)
    first = _md5(_convert(tmp_path, store))
    (tmp_path / "out" / "s.nc").unlink()
    assert _md5(_convert(tmp_path, store)) == first


def test_reserved_attribute_names_are_renamed(tmp_path: Path) -> None:
    store = write_v2_group(tmp_path / "s.zarr", {"_NCProperties": "x"})
    write_v2_array(store / "a", np.ones(2), dims=["n"], attributes={"CLASS": "mine", "ok": 1})
    with h5netcdf.File(_convert(tmp_path, store), "r") as nc:
        assert nc["a"].attrs["zarr_CLASS"] == "mine"
        assert nc["a"].attrs["ok"] == 1
        assert nc.attrs["zarr__NCProperties"] == "x"


def test_an_array_named_like_another_arrays_dimension(tmp_path: Path) -> None:
    store = write_v2_group(tmp_path / "s.zarr")
    write_v2_array(store / "x", np.arange(3.0), dims=["n"])
    write_v2_array(store / "y", np.ones(2), dims=["x"])
    with h5netcdf.File(_convert(tmp_path, store), "r") as nc:
        np.testing.assert_array_equal(_values(nc, "x"), np.arange(3.0))
        assert nc["x"].dimensions == ("n",)
        assert nc["y"].dimensions == ("x",)
        assert nc.dimensions["x"].size == 2


# -- stores written by the real zarr library (zarr 3 defaults: zstd for format 3, blosc for 2) ------


def _real_store(
    tmp_path: Path, zarr_format: int, **array_kwargs: Any
) -> tuple[Path, dict[str, Any]]:
    """A store written by zarr itself: a group with attributes, a sub-group, several dtypes."""
    store = tmp_path / f"real_v{zarr_format}.zarr"
    rng = np.random.default_rng(7)
    expected: dict[str, Any] = {
        "signal": rng.normal(size=(30, 17)),
        "counts": np.arange(50, dtype="i4"),
        "sub/flags": rng.integers(0, 2, size=25).astype(bool),
        "sub/iq": (rng.normal(size=12) + 1j * rng.normal(size=12)).astype("c16"),
    }
    root = zarr.open_group(store, mode="w", zarr_format=zarr_format)
    root.attrs.update({"sample": "chip7", "temperature": 0.012})
    for name, values in expected.items():
        chunks = tuple(max(1, s // 3) for s in values.shape)
        array = root.create_array(
            name, shape=values.shape, dtype=values.dtype, chunks=chunks, **array_kwargs
        )
        array[...] = values
        array.attrs["units"] = "V"
    return store, expected


@pytest.mark.parametrize("zarr_format", [2, 3])
@needs_zarr3
def test_store_written_by_zarr_with_defaults(tmp_path: Path, zarr_format: int) -> None:
    store, expected = _real_store(tmp_path, zarr_format)
    meta = (store / "signal" / ("zarr.json" if zarr_format == 3 else ".zarray")).read_text()
    # The defaults are what broke the old reader: zstd (format 3) and blosc (format 2).
    assert ("zstd" if zarr_format == 3 else "blosc") in meta
    out = _convert(tmp_path, store)
    with h5netcdf.File(out, "r") as nc:
        assert nc.attrs["sample"] == "chip7"
        for name, values in expected.items():
            group, _, leaf = name.rpartition("/")
            node = nc.groups[group] if group else nc
            got = node.variables[leaf][...]
            if values.dtype == bool:
                got = np.asarray(got).astype(bool)
            np.testing.assert_array_equal(got, values)
            assert node.variables[leaf].attrs["units"] == "V"
    again = _convert(tmp_path / "again", store)
    assert _md5(out) == _md5(again), "same store, different netCDF bytes"


@needs_zarr3
@pytest.mark.parametrize(
    ("zarr_format", "compressor"),
    [
        (3, "blosc"),
        (3, "gzip"),
        (2, "zstd"),
        (2, "lz4"),
        (2, "zlib"),
    ],
)
def test_store_written_by_zarr_with_other_codecs(
    tmp_path: Path, zarr_format: int, compressor: str
) -> None:
    import numcodecs

    if zarr_format == 3:
        codecs = {
            "blosc": zarr.codecs.BloscCodec(cname="lz4", clevel=5),
            "gzip": zarr.codecs.GzipCodec(level=3),
        }
        kwargs: dict[str, Any] = {"compressors": codecs[compressor]}
    else:
        kwargs = {"compressors": numcodecs.get_codec({"id": compressor})}
    store, expected = _real_store(tmp_path, zarr_format, **kwargs)
    meta = (store / "signal" / ("zarr.json" if zarr_format == 3 else ".zarray")).read_text()
    assert compressor in meta
    with h5netcdf.File(_convert(tmp_path, store), "r") as nc:
        np.testing.assert_array_equal(nc.variables["signal"][...], expected["signal"])


@needs_zarr3
def test_sharded_store_written_by_zarr(tmp_path: Path) -> None:
    store = tmp_path / "sharded.zarr"
    values = np.arange(24 * 10, dtype="f4").reshape(24, 10)
    root = zarr.open_group(store, mode="w", zarr_format=3)
    array = root.create_array(
        "x", shape=values.shape, dtype=values.dtype, chunks=(4, 5), shards=(8, 10)
    )
    array[...] = values
    with h5netcdf.File(_convert(tmp_path, store), "r") as nc:
        np.testing.assert_array_equal(nc.variables["x"][...], values)


@needs_zarr3
def test_xarray_store_dimensions_strings_and_times(tmp_path: Path) -> None:
    times = np.array(["2024-05-01T10:00", "2024-05-01T10:01", "2024-05-01T10:02"], dtype="M8[s]")
    ds = xr.Dataset(
        {
            "current": (("time", "gate"), np.arange(6.0).reshape(3, 2)),
            "label": ("gate", np.array(["plunger", "barrier"], dtype=object)),
        },
        coords={"time": times, "gate": [1, 2]},
    )
    for zarr_format in (2, 3):
        store = tmp_path / f"xr{zarr_format}.zarr"
        ds.to_zarr(store, zarr_format=zarr_format, consolidated=False)
        out = _convert(tmp_path / f"o{zarr_format}", store)
        with xr.open_dataset(out, engine="h5netcdf") as back:
            assert back["current"].dims == ("time", "gate")
            np.testing.assert_array_equal(back["current"].values, ds["current"].values)
            assert list(back["label"].values) == ["plunger", "barrier"]
            np.testing.assert_array_equal(back["time"].values, times.astype("M8[ns]"))
