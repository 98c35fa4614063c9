"""Read-only access to zarr stores on disk (format v2 and v3) through the ``zarr`` library.

The stores are opened with `zarr <https://zarr.readthedocs.io>`_ (v3 on Python >= 3.11, which reads
formats 2 and 3; 2.18 on Python 3.10, which reads format 2) and decoded with ``numcodecs``, so every
codec they support works: ``zstd``, ``blosc``, ``gzip``, ``zlib``, ``lz4``, ``bz2``, ``lzma``,
``crc32c``, ``transpose``, sharding, ``vlen-utf8`` strings, …. This module only adapts what the
library gives to the small model :mod:`etiket_sync_agent_converters.zarr` writes from:

- groups and arrays are found by walking the store's folders (sorted by name), each child opened on
  its own, so a child the library cannot open is named in the error;
- dimension names: zarr v3 ``dimension_names``, else xarray's ``_ARRAY_DIMENSIONS`` attribute
  (which is then not copied as an attribute);
- datetime64/timedelta64 arrays are read as int64 plus a ``units`` attribute (``seconds since
  1970-01-01``), variable-length strings as Python ``str`` objects;
- a missing chunk reads as the array's fill value (the library's rule).

Errors (not a store, unreadable metadata, an unknown codec, a corrupt chunk) raise
:class:`~etiket_sync_agent_converters.errors.ConversionError` naming the array.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from etiket_sync_agent_converters.errors import ConversionError

__all__ = ["ZarrArray", "ZarrGroup", "open_zarr_store"]

_TIME_UNITS = {
    "ns": "nanoseconds",
    "us": "microseconds",
    "ms": "milliseconds",
    "s": "seconds",
    "m": "minutes",
    "h": "hours",
    "D": "days",
}
_METADATA_FILES = ("zarr.json", ".zarray", ".zgroup")
_ZARR_MAJOR = int(str(zarr.__version__).split(".")[0])


@dataclass
class ZarrArray:
    """One array of a store: metadata plus a block reader (blocks of ``chunks``)."""

    store: Path
    path: Path
    name: str
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype[Any]
    fill_value: Any
    attributes: dict[str, Any]
    dimensions: tuple[str, ...] | None
    zarr_format: int
    handle: Any = None
    object_strings: bool = False
    #: Extra attributes the reader adds (e.g. ``units`` of datetime64 data read as int64).
    extra_attributes: dict[str, Any] = field(default_factory=dict)
    time_dtype: np.dtype[Any] | None = None

    @property
    def where(self) -> str:
        """The array's path inside the store, for messages."""
        rel = self.path.relative_to(self.store).as_posix()
        return "/" if rel == "." else rel

    def _fail(self, problem: str) -> ConversionError:
        return ConversionError(self.store, f"array {self.where}: {problem}")

    def chunk_grid(self) -> Iterator[tuple[int, ...]]:
        """Every block index."""
        counts = [
            math.ceil(s / c) if c else 0 for s, c in zip(self.shape, self.chunks, strict=True)
        ]
        return itertools.product(*(range(n) for n in counts))

    def chunk_region(self, index: tuple[int, ...]) -> tuple[slice, ...]:
        """Where block ``index`` lands in the array (clipped at the edges)."""
        return tuple(
            slice(i * c, min((i + 1) * c, s))
            for i, c, s in zip(index, self.chunks, self.shape, strict=True)
        )

    def read_chunk(self, index: tuple[int, ...]) -> np.ndarray[Any, Any]:
        """The block's values, decoded by zarr (missing chunks read as the fill value)."""
        region = self.chunk_region(index)
        try:
            values = np.asarray(self.handle[region] if region else self.handle[()])
        except ConversionError:
            raise
        except Exception as exc:
            raise self._fail(
                f"cannot read block {list(index)}: {type(exc).__name__}: {exc}"
            ) from None
        if self.time_dtype is not None:
            return values.view(self.dtype)
        if self.object_strings:
            return values.astype(object)
        return values

    def read(self) -> np.ndarray[Any, Any]:
        """The whole array in memory."""
        out = np.empty(self.shape, dtype=object if self.object_strings else self.dtype)
        for index in self.chunk_grid():
            out[self.chunk_region(index)] = self.read_chunk(index)
        return out


@dataclass
class ZarrGroup:
    """A group: attributes, arrays and sub-groups (sorted by name)."""

    path: Path
    name: str
    attributes: dict[str, Any]
    arrays: list[ZarrArray] = field(default_factory=list)
    groups: list[ZarrGroup] = field(default_factory=list)


def _zarr_format(node: Any) -> int:
    metadata = getattr(node, "metadata", None)
    value = getattr(metadata, "zarr_format", None)
    return int(value) if value is not None else 2


def _plain(value: Any) -> Any:
    """JSON-like attribute values (zarr may hand out numpy scalars or tuples)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _dimension_names(dims: Any, shape: tuple[int, ...], fail: Any) -> tuple[str, ...] | None:
    if dims is None:
        return None
    dims = list(dims)
    if len(dims) != len(shape):
        raise fail(f"dimension names {dims!r} do not match shape {list(shape)}")
    if any(d is None for d in dims):
        return None
    if not all(isinstance(d, str) and d for d in dims):
        raise fail(f"dimension names {dims!r} must be non-empty strings")
    return tuple(dims)


def _block_shape(node: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Read granularity: the shard shape of a sharded array, else the chunk shape."""
    shards = getattr(node, "shards", None)
    chunks = shards if shards is not None else node.chunks
    blocks = tuple(int(c) for c in chunks)
    if len(blocks) != len(shape):
        return tuple(max(s, 1) for s in shape)
    return tuple(max(c, 1) for c in blocks)


def _fill_value(node: Any, zarr_format: int) -> Any:
    if zarr_format == 2:
        metadata = getattr(node, "metadata", None)
        value = getattr(metadata, "fill_value", node.fill_value) if metadata else node.fill_value
    else:
        value = node.fill_value
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode_fill_attribute(value: Any, dtype: np.dtype[Any]) -> Any:
    """xarray stores a numeric ``_FillValue`` of a zarr v3 array as base64 of its bytes."""
    if not isinstance(value, str) or dtype.kind not in "iufcb":
        return value
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value
    if len(raw) != dtype.itemsize:
        return value
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<"))[0].item()


def _array(store: Path, folder: Path, node: Any) -> ZarrArray:
    rel = folder.relative_to(store).as_posix()
    where = "/" if rel == "." else rel

    def fail(problem: str) -> ConversionError:
        return ConversionError(store, f"array {where}: {problem}")

    shape = tuple(int(s) for s in node.shape)
    dtype = np.dtype(node.dtype) if not isinstance(node.dtype, np.dtype) else node.dtype
    fmt = _zarr_format(node)
    attrs = {str(k): _plain(v) for k, v in dict(node.attrs).items()}
    dims: Any = None
    if fmt == 3:
        dims = getattr(node.metadata, "dimension_names", None)
    if dims is None:
        dims = attrs.get("_ARRAY_DIMENSIONS")
    fill = _fill_value(node, fmt)
    if "_FillValue" in attrs:
        attrs["_FillValue"] = _decode_fill_attribute(attrs["_FillValue"], dtype)
    extra: dict[str, Any] = {}
    time_dtype: np.dtype[Any] | None = None
    object_strings = False
    if dtype.kind in "Mm":
        unit = np.datetime_data(dtype)[0]
        label = _TIME_UNITS.get(unit, unit)
        extra["units"] = f"{label} since 1970-01-01" if dtype.kind == "M" else label
        time_dtype = dtype
        dtype = np.dtype("<i8")
        fill = None
    elif dtype.kind in "OT":
        object_strings = True
        dtype = np.dtype(object)
    elif dtype.kind == "V" or dtype.fields is not None:
        raise fail(f"structured dtype {dtype} is not supported")
    return ZarrArray(
        store=store,
        path=folder,
        name=folder.name if rel != "." else (store.stem or "data"),
        shape=shape,
        chunks=_block_shape(node, shape),
        dtype=dtype,
        fill_value=fill,
        attributes={k: v for k, v in attrs.items() if k != "_ARRAY_DIMENSIONS"},
        dimensions=_dimension_names(dims, shape, fail),
        zarr_format=fmt,
        handle=node,
        object_strings=object_strings,
        extra_attributes=extra,
        time_dtype=time_dtype,
    )


def _is_node(folder: Path) -> bool:
    return any((folder / name).is_file() for name in _METADATA_FILES)


def _open(store: Path, folder: Path) -> Any:
    rel = folder.relative_to(store).as_posix()
    where = "/" if rel == "." else rel
    try:
        return zarr.open(store=str(folder), mode="r")
    except Exception as exc:
        kind = "array" if (folder / ".zarray").is_file() else "node"
        if (folder / "zarr.json").is_file() and '"array"' in _peek(folder / "zarr.json"):
            kind = "array"
        raise ConversionError(
            store, f"{kind} {where} cannot be opened: {type(exc).__name__}: {exc}"
        ) from None


def _peek(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return ""


def _is_array(node: Any) -> bool:
    return hasattr(node, "shape") and hasattr(node, "dtype") and not hasattr(node, "group_keys")


def _group(store: Path, folder: Path, node: Any) -> ZarrGroup:
    attrs = {str(k): _plain(v) for k, v in dict(node.attrs).items()}
    group = ZarrGroup(path=folder, name=folder.name, attributes=attrs)
    children = sorted(
        (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    for child in children:
        if not _is_node(child):
            continue
        opened = _open(store, child)
        if _is_array(opened):
            group.arrays.append(_array(store, child, opened))
        else:
            group.groups.append(_group(store, child, opened))
    return group


def open_zarr_store(store: Path) -> ZarrGroup:
    """Open a store (no chunk is read yet).

    A store whose root is an array reads as a group holding that one array.
    """
    store = Path(store)
    if not store.is_dir():
        raise ConversionError(store, "is not a folder (a zarr store is a folder such as x.zarr)")
    if not _is_node(store):
        raise ConversionError(
            store, "is not a zarr store: no .zgroup, .zarray (zarr v2) or zarr.json (zarr v3) found"
        )
    if (store / "zarr.json").is_file() and _ZARR_MAJOR < 3:
        raise ConversionError(
            store,
            f"is a zarr format 3 store, which needs zarr 3 (Python >= 3.11); zarr "
            f"{zarr.__version__} is installed",
        )
    root = _open(store, store)
    if _is_array(root):
        return ZarrGroup(path=store, name="", attributes={}, arrays=[_array(store, store, root)])
    return _group(store, store, root)
