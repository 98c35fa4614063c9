"""A small, read-only reader of zarr stores on disk (format v2 and v3), without the zarr package.

Supported:

- **v2**: ``.zgroup``, ``.zarray``, ``.zattrs`` (xarray's ``_ARRAY_DIMENSIONS`` gives dimension
  names), chunk keys with ``dimension_separator`` ``.`` or ``/``, missing chunks filled with
  ``fill_value`` (``"NaN"``, ``"Infinity"``, ``"-Infinity"`` and base64 byte strings understood),
  ``order`` ``C`` and ``F``, compressors none, ``zlib``, ``gzip``, ``bz2`` and ``lzma`` (standard
  library), the ``vlen-utf8`` filter (object arrays of strings), numeric, bool, fixed-length byte
  (``S``) and unicode (``U``) dtypes, datetime64/timedelta64 (read as int64 plus a ``units`` attribute).
- **v3**: ``zarr.json`` groups and arrays, regular chunk grids, chunk key encodings ``default``
  (``c/0/1``) and ``v2`` (``0.1``), codecs ``bytes`` (endianness), ``transpose``, ``gzip`` and
  ``crc32c`` (checked), ``dimension_names``, numeric and bool data types.

Anything else (``blosc``, ``zstd``, ``lz4`` compressors, other filters, sharding, structured dtypes)
raises :class:`~etiket_sync_agent_converters.errors.ConversionError` naming the array and the
unsupported codec. Consolidated metadata (``.zmetadata``) is not needed and ignored.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import itertools
import json
import lzma
import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from etiket_sync_agent_converters.errors import ConversionError

__all__ = ["ZarrArray", "ZarrGroup", "crc32c", "open_zarr_store"]

_V3_TYPES: dict[str, str] = {
    "bool": "|b1",
    "int8": "|i1",
    "int16": "<i2",
    "int32": "<i4",
    "int64": "<i8",
    "uint8": "|u1",
    "uint16": "<u2",
    "uint32": "<u4",
    "uint64": "<u8",
    "float16": "<f2",
    "float32": "<f4",
    "float64": "<f8",
    "complex64": "<c8",
    "complex128": "<c16",
}
_TIME_UNITS = {
    "ns": "nanoseconds",
    "us": "microseconds",
    "ms": "milliseconds",
    "s": "seconds",
    "m": "minutes",
    "h": "hours",
    "D": "days",
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
    """CRC-32C (Castagnoli), as zarr v3's ``crc32c`` codec stores it."""
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _read_json(path: Path, store: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConversionError(store, f"cannot read {path.relative_to(store)}: {exc}") from None
    except ValueError as exc:
        raise ConversionError(
            store, f"{path.relative_to(store)} is not valid JSON: {exc}"
        ) from None
    if not isinstance(value, dict):
        raise ConversionError(store, f"{path.relative_to(store)} must hold a JSON object")
    return value


@dataclass
class ZarrArray:
    """One array of a store: metadata plus a chunk reader."""

    store: Path
    path: Path
    name: str
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype[Any]
    fill_value: Any
    order: str
    attributes: dict[str, Any]
    dimensions: tuple[str, ...] | None
    zarr_format: int
    #: v2: compressor id or None; v3: the codec list.
    codecs: list[dict[str, Any]] = field(default_factory=list)
    separator: str = "."
    key_prefix: str = ""
    object_strings: bool = False
    #: Extra attributes the reader adds (e.g. ``units`` of datetime64 data read as int64).
    extra_attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        """The array's path inside the store, for messages."""
        rel = self.path.relative_to(self.store).as_posix()
        return "/" if rel == "." else rel

    def _fail(self, problem: str) -> ConversionError:
        return ConversionError(self.store, f"array {self.where}: {problem}")

    def chunk_grid(self) -> Iterator[tuple[int, ...]]:
        """Every chunk index."""
        counts = [
            math.ceil(s / c) if c else 0 for s, c in zip(self.shape, self.chunks, strict=True)
        ]
        return itertools.product(*(range(n) for n in counts))

    def chunk_key(self, index: tuple[int, ...]) -> str:
        if self.zarr_format == 3 and self.key_prefix:
            return self.separator.join([self.key_prefix, *(str(i) for i in index)])
        if not index:
            return "0"
        return self.separator.join(str(i) for i in index)

    def chunk_region(self, index: tuple[int, ...]) -> tuple[slice, ...]:
        """Where chunk ``index`` lands in the array (clipped at the edges)."""
        return tuple(
            slice(i * c, min((i + 1) * c, s))
            for i, c, s in zip(index, self.chunks, self.shape, strict=True)
        )

    def _fill_chunk(self) -> np.ndarray[Any, Any]:
        if self.object_strings:
            return np.full(self.chunks, self.fill_value or "", dtype=object)
        fill = 0 if self.fill_value is None else self.fill_value
        return np.full(self.chunks, fill, dtype=self.dtype)

    def read_chunk(self, index: tuple[int, ...]) -> np.ndarray[Any, Any]:
        """The chunk's values clipped to the array (a missing chunk is all ``fill_value``)."""
        key = self.chunk_key(index)
        chunk_path = self.path.joinpath(*key.split("/"))
        try:
            raw = chunk_path.read_bytes()
        except FileNotFoundError:
            full = self._fill_chunk()
        except IsADirectoryError:
            raise self._fail(f"chunk {key} is a folder (wrong dimension_separator?)") from None
        else:
            full = self._decode(raw, key)
        region = tuple(slice(0, r.stop - r.start) for r in self.chunk_region(index))
        return full[region]

    def read(self) -> np.ndarray[Any, Any]:
        """The whole array in memory."""
        out = np.empty(self.shape, dtype=object if self.object_strings else self.dtype)
        for index in self.chunk_grid():
            out[self.chunk_region(index)] = self.read_chunk(index)
        return out

    # -- decoding ---------------------------------------------------------------------------------
    def _decode(self, raw: bytes, key: str) -> np.ndarray[Any, Any]:
        if self.zarr_format == 2:
            return self._decode_v2(raw, key)
        return self._decode_v3(raw, key)

    def _decompress(self, codec: str, raw: bytes, key: str) -> bytes:
        try:
            if codec == "zlib":
                return zlib.decompress(raw)
            if codec == "gzip":
                return gzip.decompress(raw)
            if codec == "bz2":
                return bz2.decompress(raw)
            if codec == "lzma":
                return lzma.decompress(raw)
        except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as exc:
            raise self._fail(f"chunk {key} is corrupt ({codec}: {exc})") from None
        raise self._fail(_unsupported(codec))

    def _decode_v2(self, raw: bytes, key: str) -> np.ndarray[Any, Any]:
        data = raw
        for codec in self.codecs:
            data = self._decompress(str(codec["id"]), data, key)
        if self.object_strings:
            return self._vlen_utf8(data, key)
        expected = int(np.prod(self.chunks)) * self.dtype.itemsize
        if len(data) != expected:
            raise self._fail(f"chunk {key} holds {len(data)} bytes, expected {expected}")
        values: np.ndarray[Any, Any] = np.frombuffer(data, dtype=self.dtype)
        return values.reshape(self.chunks, order="F" if self.order == "F" else "C")

    def _vlen_utf8(self, data: bytes, key: str) -> np.ndarray[Any, Any]:
        count = int(np.prod(self.chunks))
        try:
            (n,) = struct.unpack_from("<i", data, 0)
            if n != count:
                raise ValueError(f"{n} items, expected {count}")
            offset = 4
            items: list[str] = []
            for _ in range(n):
                (length,) = struct.unpack_from("<i", data, offset)
                offset += 4
                if length < 0 or offset + length > len(data):
                    raise ValueError("item length beyond the chunk")
                items.append(data[offset : offset + length].decode("utf-8"))
                offset += length
        except (struct.error, ValueError, UnicodeDecodeError) as exc:
            raise self._fail(f"chunk {key} is not valid vlen-utf8 data: {exc}") from None
        return np.array(items, dtype=object).reshape(
            self.chunks, order="F" if self.order == "F" else "C"
        )

    def _decode_v3(self, raw: bytes, key: str) -> np.ndarray[Any, Any]:
        data = raw
        array_codec: dict[str, Any] | None = None
        transpose: list[int] | None = None
        # Decode bytes→bytes codecs from the end of the list back to the array→bytes codec.
        index = len(self.codecs) - 1
        while index >= 0:
            codec = self.codecs[index]
            name = str(codec.get("name"))
            config = codec.get("configuration") or {}
            if name == "bytes":
                array_codec = config
                index -= 1
                break
            if name == "gzip":
                data = self._decompress("gzip", data, key)
            elif name == "crc32c":
                if len(data) < 4:
                    raise self._fail(f"chunk {key} is too short for its crc32c checksum")
                body, stored = data[:-4], struct.unpack("<I", data[-4:])[0]
                if crc32c(body) != stored:
                    raise self._fail(f"chunk {key} fails its crc32c checksum (corrupt)")
                data = body
            else:
                raise self._fail(_unsupported(name))
            index -= 1
        if array_codec is None:
            raise self._fail("no 'bytes' codec: cannot decode the chunks")
        for codec in self.codecs[: index + 1]:
            name = str(codec.get("name"))
            if name != "transpose":
                raise self._fail(_unsupported(name))
            order = (codec.get("configuration") or {}).get("order")
            if order in ("C", None):
                continue
            if order == "F":
                order = list(range(len(self.shape)))[::-1]
            transpose = [int(o) for o in order]
        endian = array_codec.get("endian", "little")
        dtype = self.dtype.newbyteorder("<" if endian == "little" else ">")
        if self.dtype.itemsize == 1:
            dtype = self.dtype
        stored_shape = (
            self.chunks if transpose is None else tuple(self.chunks[i] for i in transpose)
        )
        expected = int(np.prod(stored_shape)) * dtype.itemsize
        if len(data) != expected:
            raise self._fail(f"chunk {key} holds {len(data)} bytes, expected {expected}")
        values = np.frombuffer(data, dtype=dtype).reshape(stored_shape)
        if transpose is not None:
            values = values.transpose(np.argsort(transpose))
        return values.astype(self.dtype.newbyteorder("="), copy=False)


def _unsupported(codec: str) -> str:
    return (
        f"compressor/codec {codec!r} is not supported (supported: none, zlib, gzip, bz2, lzma for "
        "zarr v2; bytes, transpose, gzip, crc32c for zarr v3); re-save the store with one of "
        "these or upload it zipped (zarr-to-zip)"
    )


@dataclass
class ZarrGroup:
    """A group: attributes, arrays and sub-groups (sorted by name)."""

    path: Path
    name: str
    attributes: dict[str, Any]
    arrays: list[ZarrArray] = field(default_factory=list)
    groups: list[ZarrGroup] = field(default_factory=list)


def _fill_value_v2(value: Any, dtype: np.dtype[Any], where: str, store: Path) -> Any:
    if value is None:
        return None
    if dtype.kind in "fc":
        special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
        if isinstance(value, str):
            if value not in special:
                raise ConversionError(store, f"array {where}: invalid fill_value {value!r}")
            return special[value]
        return value
    if dtype.kind == "S" and isinstance(value, str):
        return base64.standard_b64decode(value)
    if dtype.kind == "b":
        return bool(value)
    return value


def _fill_value_v3(value: Any, dtype: np.dtype[Any], where: str, store: Path) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
        if value in special:
            return special[value]
        if value.startswith("0x") and dtype.kind == "f":
            raw = int(value, 16).to_bytes(dtype.itemsize, "big")
            return np.frombuffer(raw, dtype=dtype.newbyteorder(">"))[0]
        raise ConversionError(store, f"array {where}: invalid fill_value {value!r}")
    if isinstance(value, list) and dtype.kind == "c" and len(value) == 2:
        real = _fill_value_v3(value[0], np.dtype("f8"), where, store)
        imag = _fill_value_v3(value[1], np.dtype("f8"), where, store)
        return complex(real, imag)
    return value


def _array_v2(store: Path, folder: Path, meta: dict[str, Any], attrs: dict[str, Any]) -> ZarrArray:
    rel = folder.relative_to(store).as_posix()
    where = "/" if rel == "." else rel

    def fail(problem: str) -> ConversionError:
        return ConversionError(store, f"array {where}: {problem}")

    try:
        shape = tuple(int(s) for s in meta["shape"])
        chunks = tuple(int(c) for c in meta["chunks"])
        raw_dtype = meta["dtype"]
    except (KeyError, TypeError, ValueError) as exc:
        raise fail(f".zarray is missing or has a bad {exc} entry") from None
    if len(chunks) != len(shape) or any(c <= 0 for c in chunks):
        raise fail(f"chunks {list(chunks)} do not match shape {list(shape)}")
    if not isinstance(raw_dtype, str):
        raise fail(f"structured dtype {raw_dtype!r} is not supported")
    try:
        dtype = np.dtype(raw_dtype)
    except TypeError:
        raise fail(f"unknown dtype {raw_dtype!r}") from None
    order = str(meta.get("order", "C"))
    if order not in ("C", "F"):
        raise fail(f"order must be 'C' or 'F', not {order!r}")
    compressor = meta.get("compressor")
    codecs: list[dict[str, Any]] = []
    if compressor is not None:
        if not isinstance(compressor, dict) or "id" not in compressor:
            raise fail(f"invalid compressor {compressor!r}")
        if compressor["id"] not in ("zlib", "gzip", "bz2", "lzma"):
            raise fail(_unsupported(str(compressor["id"])))
        codecs.append(compressor)
    object_strings = False
    for entry in meta.get("filters") or []:
        name = entry.get("id") if isinstance(entry, dict) else entry
        if name == "vlen-utf8" and dtype.kind == "O":
            object_strings = True
        else:
            raise fail(f"filter {name!r} is not supported (only vlen-utf8)")
    if dtype.kind == "O" and not object_strings:
        raise fail("object dtype without the vlen-utf8 filter is not supported")
    extra: dict[str, Any] = {}
    if dtype.kind in "Mm":
        unit = np.datetime_data(dtype)[0]
        label = _TIME_UNITS.get(unit, unit)
        extra["units"] = f"{label} since 1970-01-01" if dtype.kind == "M" else label
        dtype = np.dtype(dtype.byteorder.replace("|", "<") + "i8")
    separator = str(meta.get("dimension_separator") or ".")
    if separator not in (".", "/"):
        raise fail(f"dimension_separator must be '.' or '/', not {separator!r}")
    fill = _fill_value_v2(meta.get("fill_value"), dtype, where, store)
    if extra and fill is not None:
        fill = None if isinstance(fill, str) else fill  # NaT etc.
    dims = attrs.get("_ARRAY_DIMENSIONS")
    return ZarrArray(
        store=store,
        path=folder,
        name=folder.name if rel != "." else (store.stem or "data"),
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        fill_value=fill,
        order=order,
        attributes={k: v for k, v in attrs.items() if k != "_ARRAY_DIMENSIONS"},
        dimensions=_dimension_names(dims, shape, fail),
        zarr_format=2,
        codecs=codecs,
        separator=separator,
        object_strings=object_strings,
        extra_attributes=extra,
    )


def _dimension_names(dims: Any, shape: tuple[int, ...], fail: Any) -> tuple[str, ...] | None:
    if dims is None:
        return None
    if not isinstance(dims, list) or len(dims) != len(shape):
        raise fail(f"dimension names {dims!r} do not match shape {list(shape)}")
    if any(d is None for d in dims):
        return None
    if not all(isinstance(d, str) and d for d in dims):
        raise fail(f"dimension names {dims!r} must be non-empty strings")
    return tuple(dims)


def _array_v3(store: Path, folder: Path, meta: dict[str, Any]) -> ZarrArray:
    rel = folder.relative_to(store).as_posix()
    where = "/" if rel == "." else rel

    def fail(problem: str) -> ConversionError:
        return ConversionError(store, f"array {where}: {problem}")

    try:
        shape = tuple(int(s) for s in meta["shape"])
        data_type = meta["data_type"]
        grid = meta["chunk_grid"]
        codecs = list(meta["codecs"])
    except (KeyError, TypeError, ValueError) as exc:
        raise fail(f"zarr.json is missing or has a bad {exc} entry") from None
    if not isinstance(data_type, str) or data_type not in _V3_TYPES:
        raise fail(f"data type {data_type!r} is not supported")
    dtype = np.dtype(_V3_TYPES[data_type])
    if not isinstance(grid, dict) or grid.get("name") != "regular":
        raise fail(f"chunk grid {grid!r} is not supported (only 'regular')")
    chunks = tuple(int(c) for c in (grid.get("configuration") or {}).get("chunk_shape", []))
    if len(chunks) != len(shape) or any(c <= 0 for c in chunks):
        raise fail(f"chunk shape {list(chunks)} does not match shape {list(shape)}")
    for codec in codecs:
        name = codec.get("name") if isinstance(codec, dict) else codec
        if name not in ("bytes", "transpose", "gzip", "crc32c"):
            raise fail(_unsupported(str(name)))
    encoding = meta.get("chunk_key_encoding") or {"name": "default"}
    config = encoding.get("configuration") or {}
    if encoding.get("name") == "default":
        separator, prefix = str(config.get("separator", "/")), "c"
    elif encoding.get("name") == "v2":
        separator, prefix = str(config.get("separator", ".")), ""
    else:
        raise fail(f"chunk key encoding {encoding!r} is not supported")
    if separator not in (".", "/"):
        raise fail(f"chunk key separator must be '.' or '/', not {separator!r}")
    attrs = dict(meta.get("attributes") or {})
    dims = meta.get("dimension_names")
    if dims is None:
        dims = attrs.get("_ARRAY_DIMENSIONS")
    return ZarrArray(
        store=store,
        path=folder,
        name=folder.name if rel != "." else (store.stem or "data"),
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        fill_value=_fill_value_v3(meta.get("fill_value"), dtype, where, store),
        order="C",
        attributes={k: v for k, v in attrs.items() if k != "_ARRAY_DIMENSIONS"},
        dimensions=_dimension_names(dims, shape, fail),
        zarr_format=3,
        codecs=[c if isinstance(c, dict) else {"name": c} for c in codecs],
        separator=separator,
        key_prefix=prefix,
    )


def _children(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )


def _group_v2(store: Path, folder: Path, attrs: dict[str, Any]) -> ZarrGroup:
    group = ZarrGroup(path=folder, name=folder.name, attributes=attrs)
    for child in _children(folder):
        child_attrs = _read_json(child / ".zattrs", store) if (child / ".zattrs").is_file() else {}
        if (child / ".zarray").is_file():
            group.arrays.append(
                _array_v2(store, child, _read_json(child / ".zarray", store), child_attrs)
            )
        elif (child / ".zgroup").is_file():
            group.groups.append(_group_v2(store, child, child_attrs))
    return group


def _group_v3(store: Path, folder: Path, meta: dict[str, Any]) -> ZarrGroup:
    group = ZarrGroup(path=folder, name=folder.name, attributes=dict(meta.get("attributes") or {}))
    for child in _children(folder):
        if not (child / "zarr.json").is_file():
            continue
        child_meta = _read_json(child / "zarr.json", store)
        kind = child_meta.get("node_type")
        if kind == "array":
            group.arrays.append(_array_v3(store, child, child_meta))
        elif kind == "group":
            group.groups.append(_group_v3(store, child, child_meta))
        else:
            rel = child.relative_to(store).as_posix()
            raise ConversionError(store, f"{rel}/zarr.json: unknown node_type {kind!r}")
    return group


def open_zarr_store(store: Path) -> ZarrGroup:
    """Read a store's metadata (no chunk is read yet).

    A store whose root is an array reads as a group holding that one array.
    """
    store = Path(store)
    if not store.is_dir():
        raise ConversionError(store, "is not a folder (a zarr store is a folder such as x.zarr)")
    if (store / "zarr.json").is_file():
        meta = _read_json(store / "zarr.json", store)
        if meta.get("zarr_format") != 3:
            raise ConversionError(
                store, f"zarr.json has zarr_format {meta.get('zarr_format')!r}, expected 3"
            )
        if meta.get("node_type") == "array":
            return ZarrGroup(
                path=store, name="", attributes={}, arrays=[_array_v3(store, store, meta)]
            )
        return _group_v3(store, store, meta)
    attrs = _read_json(store / ".zattrs", store) if (store / ".zattrs").is_file() else {}
    if (store / ".zarray").is_file():
        meta = _read_json(store / ".zarray", store)
        _check_v2(meta, store, ".zarray")
        return ZarrGroup(
            path=store, name="", attributes={}, arrays=[_array_v2(store, store, meta, attrs)]
        )
    if (store / ".zgroup").is_file():
        _check_v2(_read_json(store / ".zgroup", store), store, ".zgroup")
        return _group_v2(store, store, attrs)
    raise ConversionError(
        store, "is not a zarr store: no .zgroup, .zarray (zarr v2) or zarr.json (zarr v3) found"
    )


def _check_v2(meta: dict[str, Any], store: Path, name: str) -> None:
    if meta.get("zarr_format") != 2:
        raise ConversionError(
            store, f"{name} has zarr_format {meta.get('zarr_format')!r}, expected 2"
        )
