"""Writers of zarr stores (v2 and v3) and CSV files for tests and the demo (no zarr package needed).

The zarr writers lay out store files by hand (JSON metadata plus raw or compressed chunks), the way
the zarr format specifications describe them, so the reader can be tested against stores whose
exact bytes are known.
"""

from __future__ import annotations

import bz2
import gzip
import itertools
import json
import lzma
import math
import struct
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "make_demo_zarr",
    "write_v2_array",
    "write_v2_group",
    "write_v3_array",
    "write_v3_group",
]

_V3_NAMES = {
    "b": {1: "bool"},
    "i": {1: "int8", 2: "int16", 4: "int32", 8: "int64"},
    "u": {1: "uint8", 2: "uint16", 4: "uint32", 8: "uint64"},
    "f": {2: "float16", 4: "float32", 8: "float64"},
    "c": {8: "complex64", 16: "complex128"},
}


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as zarr v3's ``crc32c`` codec stores it (for hand-written stores)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _json_fill(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, np.generic):
        return _json_fill(value.item())
    return value


def _compress(codec: str | None, data: bytes) -> bytes:
    if codec is None:
        return data
    if codec == "zlib":
        return zlib.compress(data, 5)
    if codec == "gzip":
        return gzip.compress(data, 5, mtime=0)
    if codec == "bz2":
        return bz2.compress(data)
    if codec == "lzma":
        return lzma.compress(data)
    return data  # an unsupported id is written as given, for error tests


def _chunks_of(
    values: np.ndarray[Any, Any], chunks: Sequence[int], fill: Any
) -> Iterable[tuple[tuple[int, ...], np.ndarray[Any, Any]]]:
    counts = [math.ceil(s / c) for s, c in zip(values.shape, chunks, strict=True)]
    for index in itertools.product(*(range(n) for n in counts)):
        region = tuple(
            slice(i * c, min((i + 1) * c, s))
            for i, c, s in zip(index, chunks, values.shape, strict=True)
        )
        block = np.full(tuple(chunks), fill, dtype=values.dtype)
        block[tuple(slice(0, r.stop - r.start) for r in region)] = values[region]
        yield index, block


def _vlen_utf8(block: np.ndarray[Any, Any], order: Literal["C", "F"]) -> bytes:
    items = [str(v).encode("utf-8") for v in block.ravel(order=order)]
    return struct.pack("<i", len(items)) + b"".join(
        struct.pack("<i", len(item)) + item for item in items
    )


def _compressor_config(compressor: str | None) -> dict[str, Any] | None:
    """The ``.zarray`` compressor entry numcodecs expects for a codec id."""
    if compressor is None:
        return None
    if compressor == "lzma":
        return {"id": "lzma", "format": 1, "check": -1, "preset": None, "filters": None}
    return {"id": compressor, "level": 5}


def write_v2_group(folder: Path, attributes: dict[str, Any] | None = None) -> Path:
    """A zarr v2 group folder (``.zgroup`` and optional ``.zattrs``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    if attributes:
        (folder / ".zattrs").write_text(json.dumps(attributes))
    return folder


def write_v2_array(
    folder: Path,
    values: np.ndarray[Any, Any],
    *,
    chunks: Sequence[int] | None = None,
    compressor: str | None = "zlib",
    order: Literal["C", "F"] = "C",
    separator: str = ".",
    fill_value: Any = None,
    dims: Sequence[str] | None = None,
    attributes: dict[str, Any] | None = None,
    skip_chunks: Iterable[tuple[int, ...]] = (),
) -> Path:
    """A zarr v2 array folder; chunks in ``skip_chunks`` are not written (read as fill_value)."""
    folder.mkdir(parents=True, exist_ok=True)
    values = np.asarray(values)
    chunks = tuple(chunks if chunks is not None else values.shape)
    strings = values.dtype.kind == "O"
    meta = {
        "zarr_format": 2,
        "shape": list(values.shape),
        "chunks": list(chunks),
        "dtype": "|O" if strings else values.dtype.str,
        "compressor": _compressor_config(compressor),
        "fill_value": _json_fill(fill_value),
        "order": order,
        "filters": [{"id": "vlen-utf8"}] if strings else None,
        "dimension_separator": separator,
    }
    (folder / ".zarray").write_text(json.dumps(meta))
    attrs = dict(attributes or {})
    if dims is not None:
        attrs["_ARRAY_DIMENSIONS"] = list(dims)
    if attrs:
        (folder / ".zattrs").write_text(json.dumps(attrs))
    skipped = set(skip_chunks)
    pad = "" if strings else (0 if fill_value is None else fill_value)
    for index, block in _chunks_of(values, chunks, pad):
        if index in skipped:
            continue
        raw = _vlen_utf8(block, order) if strings else block.tobytes(order=order)
        key = separator.join(str(i) for i in index) if index else "0"
        path = folder.joinpath(*key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_compress(compressor, raw))
    return folder


def write_v3_group(folder: Path, attributes: dict[str, Any] | None = None) -> Path:
    """A zarr v3 group folder (``zarr.json``)."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"zarr_format": 3, "node_type": "group", "attributes": attributes or {}}
    (folder / "zarr.json").write_text(json.dumps(meta))
    return folder


def write_v3_array(
    folder: Path,
    values: np.ndarray[Any, Any],
    *,
    chunks: Sequence[int] | None = None,
    codecs: Sequence[str] = ("bytes", "gzip"),
    endian: str = "little",
    key_encoding: str = "default",
    separator: str | None = None,
    fill_value: Any = 0,
    dims: Sequence[str] | None = None,
    attributes: dict[str, Any] | None = None,
    skip_chunks: Iterable[tuple[int, ...]] = (),
) -> Path:
    """A zarr v3 array folder; ``codecs`` names from bytes, gzip, crc32c (or others, for errors)."""
    folder.mkdir(parents=True, exist_ok=True)
    values = np.asarray(values)
    chunks = tuple(chunks if chunks is not None else values.shape)
    sep = separator or ("/" if key_encoding == "default" else ".")
    codec_meta: list[dict[str, Any]] = []
    for name in codecs:
        if name == "bytes":
            codec_meta.append({"name": "bytes", "configuration": {"endian": endian}})
        elif name == "gzip":
            codec_meta.append({"name": "gzip", "configuration": {"level": 5}})
        else:
            codec_meta.append({"name": name, "configuration": {}})
    meta: dict[str, Any] = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(values.shape),
        "data_type": _V3_NAMES[values.dtype.kind][values.dtype.itemsize],
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunks)}},
        "chunk_key_encoding": {"name": key_encoding, "configuration": {"separator": sep}},
        "fill_value": _json_fill(fill_value),
        "codecs": codec_meta,
        "attributes": attributes or {},
    }
    if dims is not None:
        meta["dimension_names"] = list(dims)
    (folder / "zarr.json").write_text(json.dumps(meta))
    skipped = set(skip_chunks)
    dtype = values.dtype.newbyteorder("<" if endian == "little" else ">")
    for index, block in _chunks_of(values, chunks, fill_value):
        if index in skipped:
            continue
        data = block.astype(dtype).tobytes()
        for name in codecs:
            if name == "gzip":
                data = gzip.compress(data, 5, mtime=0)
            elif name == "crc32c":
                data += struct.pack("<I", crc32c(data))
        parts = [str(i) for i in index]
        if key_encoding == "default":
            key = sep.join(["c", *parts])
        else:
            key = sep.join(parts) if parts else "0"
        path = folder.joinpath(*key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def make_demo_zarr(folder: Path, version: int = 2) -> dict[str, np.ndarray[Any, Any]]:
    """An xarray-like store (``x``, ``y`` coordinates and a 2-D ``signal``, a nested group).

    Returns the expected values by netCDF path (``signal``, ``analysis/fit``).
    """
    x = np.linspace(0.0, 1.0, 7)
    y = np.arange(5, dtype=np.int32)
    signal = np.sin(x[:, None] * 3 + y[None, :]).astype(np.float64)
    signal[2, 3] = np.nan
    fit = np.array([1.5, -2.25, 3.0])
    if version == 2:
        write_v2_group(folder, {"title": "demo", "cooldown": 3})
        write_v2_array(folder / "x", x, chunks=(3,), dims=["x"], attributes={"units": "V"})
        write_v2_array(folder / "y", y, chunks=(2,), dims=["y"], compressor="gzip")
        write_v2_array(
            folder / "signal",
            signal,
            chunks=(3, 2),
            fill_value=float("nan"),
            dims=["x", "y"],
            attributes={"units": "A", "long_name": "current"},
        )
        write_v2_group(folder / "analysis", {"model": "linear"})
        write_v2_array(folder / "analysis" / "fit", fit, dims=["p"], compressor=None)
    else:
        write_v3_group(folder, {"title": "demo", "cooldown": 3})
        write_v3_array(folder / "x", x, chunks=(3,), dims=["x"], attributes={"units": "V"})
        write_v3_array(folder / "y", y, chunks=(2,), dims=["y"], codecs=("bytes",))
        write_v3_array(
            folder / "signal",
            signal,
            chunks=(3, 2),
            fill_value=float("nan"),
            dims=["x", "y"],
            attributes={"units": "A", "long_name": "current"},
        )
        write_v3_group(folder / "analysis", {"model": "linear"})
        write_v3_array(folder / "analysis" / "fit", fit, dims=["p"], codecs=("bytes", "crc32c"))
    return {"x": x, "y": y, "signal": signal, "analysis/fit": fit}
