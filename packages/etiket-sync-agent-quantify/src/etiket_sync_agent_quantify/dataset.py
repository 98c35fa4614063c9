"""Reading Quantify's ``dataset.hdf5`` without disturbing the writer.

Quantify's MeasurementControl keeps the dataset in memory and rewrites the *whole* file (truncate,
then write) about every 0.5 s while a run is acquiring. We therefore never read the file in place:
:func:`private_copy` copies it into the agent's work folder, checks that size and mtime did not
change during the copy and that the copy parses, and retries a few times when it caught a torn
write.

The file format is sniffed from its first bytes, not from its name:

- HDF5 (``\\x89HDF\\r\\n\\x1a\\n``): netCDF4 written by xarray's ``h5netcdf`` engine (current Quantify;
  complex values stored as HDF5 compounds, ``invalid_netcdf=True``);
- netCDF3 classic / 64-bit offset (``CDF\\x01`` / ``CDF\\x02``): what Quantify wrote in 2020-2021
  under the same name; read with :class:`scipy.io.netcdf_file` (read-only, no mmap).

Layout facts (quantify-core ``initialize_dataset``/``MeasurementControl``): one dimension ``dim_0``;
settables ``x0, x1, ...`` (coordinates) and gettables ``y0, y1, ...`` (NaN until measured), each
with attributes ``name``, ``long_name``, ``units``, ``batched`` (and ``batch_size``); global
attributes ``tuid``, ``name``, ``grid_2d``, ``grid_2d_uniformly_spaced``,
``1d_2_settables_uniformly_spaced`` and for 2-D grids ``xlen``/``ylen`` (x0 is the fastest axis).
Datasets with a ``quantify_dataset_version`` attribute store every attribute value as a JSON
string (except names listed in ``json_serialize_exclude``); they are decoded here.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from etiket_sync_agent.errors import SyncError

__all__ = [
    "CopiedDataset",
    "DatasetFormat",
    "DatasetReadError",
    "FileSignature",
    "QuantifyDataset",
    "Variable",
    "file_digest",
    "private_copy",
    "read_dataset",
    "sniff_format",
]

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_NETCDF3_SIGNATURES = (b"CDF\x01", b"CDF\x02")
_USER_BLOCK_OFFSETS = (512, 1024, 2048, 4096, 8192)
_INTERNAL_ATTRS = {"_FillValue", "coordinates", "_Netcdf4Dimid", "_Netcdf4Coordinates"}
_SETTABLE_PREFIX = "x"
_GETTABLE_PREFIX = "y"


class DatasetReadError(SyncError):
    """``dataset.hdf5`` cannot be read: not HDF5/netCDF3, truncated, or unreadable."""


class DatasetFormat(str, enum.Enum):
    """The on-disk format of a ``dataset.hdf5``."""

    HDF5 = "hdf5"
    NETCDF3 = "netcdf3"


@dataclass
class Variable:
    """One variable: its dimensions, values and decoded attributes."""

    name: str
    dims: tuple[str, ...]
    data: np.ndarray[Any, Any]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The ``long_name`` (Quantify's label), else the ``name`` attribute, else the key."""
        for key in ("long_name", "name"):
            value = self.attrs.get(key)
            if isinstance(value, str) and value.strip():
                return value
        return self.name

    @property
    def units(self) -> str:
        value = self.attrs.get("units")
        return value if isinstance(value, str) else ""

    @property
    def is_numeric(self) -> bool:
        return self.data.dtype.kind in "biufc"


def _index(name: str, prefix: str) -> int | None:
    if len(name) > 1 and name.startswith(prefix) and name[1:].isdigit():
        return int(name[1:])
    return None


@dataclass
class QuantifyDataset:
    """A Quantify dataset as read from disk (attributes decoded to plain Python values)."""

    format: DatasetFormat
    dims: dict[str, int]
    variables: dict[str, Variable]
    attrs: dict[str, Any]
    #: Whether attribute values were JSON-encoded (``quantify_dataset_version`` datasets).
    json_attrs: bool = False

    @property
    def tuid(self) -> str | None:
        value = self.attrs.get("tuid")
        return value if isinstance(value, str) else None

    @property
    def settables(self) -> list[str]:
        """Settable variables: ``x0, x1, ...`` in order, then others flagged ``is_main_coord``."""
        numbered = sorted(
            (idx, name)
            for name in self.variables
            if (idx := _index(name, _SETTABLE_PREFIX)) is not None
        )
        names = [name for _, name in numbered]
        names += [
            name
            for name, var in self.variables.items()
            if name not in names and var.attrs.get("is_main_coord") is True
        ]
        return names

    @property
    def gettables(self) -> list[str]:
        """Every other numeric variable sharing the settables' dimension (``y0, y1, ...`` first)."""
        settables = set(self.settables)
        numbered = sorted(
            (idx, name)
            for name in self.variables
            if (idx := _index(name, _GETTABLE_PREFIX)) is not None
        )
        names = [name for _, name in numbered if name not in settables]
        for name, var in self.variables.items():
            if name in settables or name in names or name in self.dims:
                continue
            if var.is_numeric and var.dims:
                names.append(name)
        return names

    @property
    def is_grid(self) -> bool:
        """Quantify flagged the run as a 2-D grid (``grid_2d``; older quantify-core: ``2D-grid``)."""
        return _truthy(self.attrs.get("grid_2d")) or _truthy(self.attrs.get("2D-grid"))

    @property
    def has_nan(self) -> bool:
        """Whether a gettable still holds NaN (not measured yet, or an interrupted run)."""
        for name in self.gettables:
            data = self.variables[name].data
            if data.dtype.kind in "fc" and data.size and bool(np.isnan(data).any()):
                return True
        return False

    @property
    def keywords(self) -> list[str]:
        """Per settable and gettable its ``long_name``, else its ``name`` (as the existing agent)."""
        words: dict[str, None] = {}
        for name in [*self.settables, *self.gettables]:
            var = self.variables[name]
            for key in ("long_name", "name"):
                value = var.attrs.get(key)
                if isinstance(value, str) and value.strip():
                    words.setdefault(value.strip(), None)
                    break
        return list(words)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    if isinstance(value, (list, tuple)):
        return bool(value) and _truthy(value[0])
    try:
        return bool(value)
    except (TypeError, ValueError):
        return False


# -- format sniffing ---------------------------------------------------------------------------
def sniff_format(path: Path, label: str | None = None) -> DatasetFormat:
    """The format from the magic bytes; :class:`DatasetReadError` for anything else."""
    label = label or path.name
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            if not head:
                raise DatasetReadError(f"{label} is empty (0 bytes)")
            if head == HDF5_SIGNATURE:
                return DatasetFormat.HDF5
            if head[:4] in _NETCDF3_SIGNATURES:
                return DatasetFormat.NETCDF3
            if head[:4] == b"CDF\x05":
                raise DatasetReadError(
                    f"{label} is a netCDF CDF-5 file, which Quantify never wrote and this "
                    "backend cannot read"
                )
            for offset in _USER_BLOCK_OFFSETS:  # HDF5 allows a user block before the superblock
                handle.seek(offset)
                if handle.read(8) == HDF5_SIGNATURE:
                    return DatasetFormat.HDF5
    except PermissionError:
        raise DatasetReadError(f"permission denied reading {label}") from None
    except FileNotFoundError:
        raise DatasetReadError(f"{label} vanished while it was read") from None
    except IsADirectoryError:
        raise DatasetReadError(f"{label} is a folder, not a file") from None
    raise DatasetReadError(
        f"{label} is neither HDF5 nor netCDF3 (it starts with {head[:8]!r}); "
        "not a Quantify dataset file"
    )


# -- attribute decoding ------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """numpy/bytes attribute values as plain Python values."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SUO":
            items = [_plain(v) for v in value.ravel().tolist()]
            if value.dtype.kind == "S" and value.ndim == 1 and value.size > 1:
                return items  # an array of strings, not netCDF3 chars
            return items[0] if len(items) == 1 else items
        if value.size == 1:
            return _plain(value.reshape(()).item())
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.complexfloating):
        return complex(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _decode_attrs(raw: dict[str, Any], json_attrs: bool) -> dict[str, Any]:
    decoded = {str(k): _plain(v) for k, v in raw.items() if str(k) not in _INTERNAL_ATTRS}
    if not json_attrs:
        return decoded
    exclude = decoded.get("json_serialize_exclude", [])
    if isinstance(exclude, str):
        try:
            exclude = json.loads(exclude)
        except ValueError:
            exclude = [exclude]
    excluded = {str(e) for e in exclude} if isinstance(exclude, list) else set()
    for key, value in decoded.items():
        if key in excluded or not isinstance(value, str):
            continue
        try:
            decoded[key] = json.loads(value)
        except ValueError:
            pass  # not JSON after all: keep the text
    return decoded


# -- reading -----------------------------------------------------------------------------------
_DIMENSION_ONLY = b"This is a netCDF dimension but not a netCDF variable"
_HDF5_INTERNAL_ATTRS = {
    "CLASS",
    "NAME",
    "REFERENCE_LIST",
    "DIMENSION_LIST",
    "_Netcdf4Dimid",
    "_Netcdf4Coordinates",
    "_NCProperties",
    "_nc3_strict",
}


def _hdf5_attrs(obj: Any) -> dict[str, Any]:
    return {str(k): obj.attrs[k] for k in obj.attrs if str(k) not in _HDF5_INTERNAL_ATTRS}


def _dimension_names(dset: Any) -> tuple[str, ...]:
    """netCDF4 dimension names of a dataset (attached dimension scales; phony names otherwise)."""
    own = str(dset.name).rsplit("/", 1)[-1]
    is_scale = dset.attrs.get("CLASS") in (b"DIMENSION_SCALE", "DIMENSION_SCALE")
    if is_scale and dset.ndim == 1:
        return (own,)  # a coordinate variable (or bare dimension) is its own dimension
    names: list[str] = []
    for axis in range(dset.ndim):
        proxy = dset.dims[axis]
        if len(proxy):
            names.append(str(proxy[0].name).rsplit("/", 1)[-1])
        else:
            names.append(f"phony_dim_{axis}")
    return tuple(names)


def _read_hdf5(path: Path, label: str) -> QuantifyDataset:
    # h5py directly (not h5netcdf): read-only, no file locking, and a broken file fails cleanly.
    import h5py

    try:
        with h5py.File(str(path), "r", locking=False) as f:
            raw_global = _hdf5_attrs(f)
            json_attrs = "quantify_dataset_version" in raw_global
            dims: dict[str, int] = {}
            variables: dict[str, Variable] = {}
            groups: list[str] = []
            for name in f:
                obj = f[name]
                if not isinstance(obj, h5py.Dataset):
                    groups.append(str(name))
                    continue
                dim_names = _dimension_names(obj)
                for dim_name, size in zip(dim_names, obj.shape, strict=True):
                    dims.setdefault(dim_name, int(size))
                marker = obj.attrs.get("NAME")
                if isinstance(marker, (bytes, np.bytes_)) and bytes(marker).startswith(
                    _DIMENSION_ONLY
                ):
                    continue  # a dimension without coordinate values (``dim_0``)
                variables[str(name)] = Variable(
                    str(name),
                    dim_names,
                    np.asarray(obj[()]),
                    _decode_attrs(_hdf5_attrs(obj), json_attrs),
                )
            if not variables and groups:
                raise DatasetReadError(
                    f"{label} holds only groups ({', '.join(groups)}), no Quantify variables"
                )
    except DatasetReadError:
        raise
    except Exception as exc:
        raise DatasetReadError(
            f"{label} cannot be read as HDF5/netCDF4 (truncated or corrupt?): "
            f"{type(exc).__name__}: {exc}"
        ) from None
    return QuantifyDataset(
        DatasetFormat.HDF5, dims, variables, _decode_attrs(raw_global, json_attrs), json_attrs
    )


def _read_netcdf3(path: Path, label: str) -> QuantifyDataset:
    from scipy.io import netcdf_file

    try:
        with netcdf_file(str(path), "r", mmap=False, maskandscale=False) as f:
            raw_global = dict(f._attributes)
            json_attrs = "quantify_dataset_version" in raw_global
            variables: dict[str, Variable] = {}
            dims: dict[str, int] = {}
            for name, var in f.variables.items():
                data = np.array(var.data, copy=True)
                var_dims = tuple(str(d) for d in var.dimensions)
                for dim_name, size in zip(var_dims, data.shape, strict=True):
                    dims.setdefault(dim_name, int(size))
                variables[str(name)] = Variable(
                    str(name), var_dims, data, _decode_attrs(dict(var._attributes), json_attrs)
                )
            for dim_name, size in f.dimensions.items():
                if size is not None:
                    dims.setdefault(str(dim_name), int(size))
    except Exception as exc:
        raise DatasetReadError(
            f"{label} cannot be read as netCDF3 (truncated or corrupt?): "
            f"{type(exc).__name__}: {exc}"
        ) from None
    return QuantifyDataset(
        DatasetFormat.NETCDF3, dims, variables, _decode_attrs(raw_global, json_attrs), json_attrs
    )


def read_dataset(path: Path, label: str | None = None) -> QuantifyDataset:
    """Read a Quantify dataset file (HDF5 or netCDF3) completely into memory.

    Raises :class:`DatasetReadError` with a message naming ``label`` for every problem.
    """
    label = label or path.name
    fmt = sniff_format(path, label)
    if fmt is DatasetFormat.HDF5:
        return _read_hdf5(path, label)
    return _read_netcdf3(path, label)


# -- the private copy --------------------------------------------------------------------------
@dataclass(frozen=True)
class FileSignature:
    """Size and mtime of a file: a change means it was rewritten."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileSignature:
        st = os.stat(path)
        return cls(st.st_size, st.st_mtime_ns)

    def as_list(self) -> list[int]:
        return [self.size, self.mtime_ns]


@dataclass
class CopiedDataset:
    """A consistent private copy of ``dataset.hdf5`` and what it holds."""

    path: Path
    signature: FileSignature
    dataset: QuantifyDataset
    attempts: int


def _copy_bytes(src: Path, dst: Path) -> int:
    with open(src, "rb") as source, open(dst, "wb") as sink:
        shutil.copyfileobj(source, sink, length=1 << 20)
    return dst.stat().st_size


def file_digest(path: Path) -> str:
    """A content digest (BLAKE2b) of a file."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def private_copy(
    src: Path,
    dst: Path,
    *,
    label: str,
    attempts: int = 5,
    delay: float = 0.1,
    quiet_time: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> CopiedDataset:
    """Copy ``src`` to ``dst`` and parse the copy, retrying torn reads.

    A copy counts when the source's size and mtime are the same before and after copying, the copy
    has that size, and it parses. mtimes can be coarse and a writer may pause mid-write, so a copy
    that fails to parse is only called corrupt at once when the same bytes (size, mtime and
    content) failed before and the file has not been modified for ``quiet_time`` seconds;
    otherwise it is retried ``attempts`` times. When every failed read saw the same bytes the
    parse error is raised (truncated or corrupt file), else that the file kept changing.
    """
    failures: list[tuple[FileSignature, str]] = []
    last_error: DatasetReadError | None = None
    for attempt in range(1, attempts + 1):
        try:
            before = FileSignature.of(src)
            copied = _copy_bytes(src, dst)
            after = FileSignature.of(src)
        except FileNotFoundError:
            raise DatasetReadError(f"{label} vanished while it was read") from None
        except PermissionError:
            raise DatasetReadError(f"permission denied reading {label}") from None
        except IsADirectoryError:
            raise DatasetReadError(f"{label} is a folder, not a file") from None
        except OSError as exc:
            raise DatasetReadError(f"{label} cannot be read: {exc.strerror or exc}") from None
        if before == after and copied == before.size:
            try:
                dataset = read_dataset(dst, label)
            except DatasetReadError as exc:
                seen = (before, file_digest(dst))
                quiet = time.time() - before.mtime_ns / 1e9 >= quiet_time
                if failures and failures[-1] == seen and quiet:
                    raise  # the same old bytes failed twice: corrupt, not torn
                failures.append(seen)
                last_error = exc
            else:
                return CopiedDataset(dst, before, dataset, attempt)
        else:
            failures.append((after, ""))
        if attempt < attempts:
            sleep(delay * attempt)
    if last_error is not None and len(set(failures)) == 1:
        raise last_error  # never changed while we tried: truncated or corrupt
    if last_error is not None:
        raise DatasetReadError(
            f"{label} kept changing or failing to parse over {attempts} reads; last problem: "
            f"{last_error}"
        )
    raise DatasetReadError(f"{label} kept changing while it was read ({attempts} attempts)")
