"""zarr → netCDF4 (HDF5) and zarr → deterministic zip.

A zarr store is a folder such as ``scan.zarr``. :class:`ZarrToNetCDF` reads it through
:mod:`etiket_sync_agent_converters.zarr_store` (the ``zarr`` and ``numcodecs`` libraries: zarr v2
and v3, every codec they support) and writes every group as a netCDF group and every
array as a variable, chunk by chunk, with its attributes. :class:`ZarrToZip` packs the folder into
a zip whose bytes depend only on the files' names and contents (sorted entries, fixed timestamps
and permissions, no compression), so the same store always gives the same MD5 and is not uploaded
again; the zip is a valid zarr ``ZipStore`` (keys at the zip's root).
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import h5netcdf
import h5py
import numpy as np

from etiket_sync_agent import FileConverter
from etiket_sync_agent_converters.errors import ConversionError
from etiket_sync_agent_converters.zarr_store import ZarrArray, ZarrGroup, open_zarr_store

__all__ = ["ZarrToNetCDF", "ZarrToZip", "deterministic_zip", "write_zarr_netcdf"]

#: 1980-01-01 00:00:00, the earliest time a zip entry can carry.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_ZIP64_LIMIT = (1 << 31) - 1


def deterministic_zip(folder: Path, target: Path) -> Path:
    """Zip every file below ``folder`` (hidden ones included: ``.zarray`` matters).

    Entries are sorted by relative POSIX path, stored uncompressed (zarr chunks are usually
    compressed already, and deflate output may differ between zlib versions), with a fixed
    timestamp, permissions and "created on" system: same names and contents → same bytes.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConversionError(folder, "is not a folder")
    entries: list[tuple[str, Path]] = []
    for current, dirs, files in os.walk(folder):
        dirs.sort()
        for name in files:
            path = Path(current) / name
            if path.is_file():
                entries.append((path.relative_to(folder).as_posix(), path))
    entries.sort(key=lambda e: e[0])
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        for rel, path in entries:
            info = zipfile.ZipInfo(rel, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3  # unix, whatever the platform
            info.external_attr = (0o100644 & 0xFFFF) << 16
            size = path.stat().st_size
            info.file_size = size
            try:
                with (
                    open(path, "rb") as source,
                    archive.open(info, "w", force_zip64=size > _ZIP64_LIMIT) as sink,
                ):
                    while chunk := source.read(1 << 20):
                        sink.write(chunk)
            except OSError as exc:
                raise ConversionError(folder, f"cannot read {rel}: {exc}") from None
    return target


def _attribute(value: Any) -> Any:
    """A netCDF-storable form of a JSON attribute value (None when it cannot be stored)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, (float, str)):
        return value
    if isinstance(value, list) and value:
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            try:
                return np.array(value)
            except OverflowError:
                return json.dumps(value)
        if all(isinstance(v, str) for v in value):
            return list(value)
    return json.dumps(value, sort_keys=True)


#: Attribute names netCDF-4/HDF5 reserve for themselves (dimension scales, netCDF internals).
_RESERVED = {"CLASS", "NAME", "DIMENSION_LIST", "REFERENCE_LIST", "_Netcdf4Dimid", "_NCProperties"}


def _set_attributes(target: Any, attributes: dict[str, Any]) -> None:
    for key in sorted(attributes):
        if key == "_FillValue":
            continue
        value = _attribute(attributes[key])
        if value is None:
            continue
        name = f"zarr_{key}" if key in _RESERVED or key.startswith("_Netcdf4") else key
        target.attrs[name] = value


def _dims_of(array: ZarrArray) -> tuple[str, ...]:
    if array.dimensions is not None:
        return array.dimensions
    return tuple(f"{array.name}_dim_{axis}" for axis in range(len(array.shape)))


def _needs_invalid_netcdf(group: ZarrGroup) -> bool:
    return any(a.dtype.kind == "c" for a in group.arrays) or any(
        _needs_invalid_netcdf(g) for g in group.groups
    )


def _write_group(nc: Any, group: ZarrGroup, store: Path) -> None:
    _set_attributes(nc, group.attributes)
    sizes: dict[str, tuple[int, str]] = {}
    for array in group.arrays:
        for dim, size in zip(_dims_of(array), array.shape, strict=True):
            known = sizes.get(dim)
            if known is not None and known[0] != size:
                raise ConversionError(
                    store,
                    f"dimension {dim!r} has length {known[0]} in array {known[1]} but {size} "
                    f"in array {array.where}",
                )
            sizes[dim] = (size, array.where)
    for dim in sorted(sizes):
        nc.dimensions[dim] = sizes[dim][0]
    for array in group.arrays:
        try:
            _write_array(nc, array)
        except ConversionError:
            raise
        except (ValueError, TypeError, OSError, KeyError) as exc:
            raise ConversionError(
                store, f"array {array.where} cannot be written as netCDF: {exc}"
            ) from None
    for child in group.groups:
        _write_group(nc.create_group(child.name), child, store)


def _mask_fill(array: ZarrArray) -> Any:
    """The zarr fill value to declare as netCDF ``_FillValue`` (what readers mask as missing).

    zarr v2 (as xarray reads it): the array's ``fill_value``. zarr v3 always has a fill value
    (often 0, which is real data): only a NaN fill is declared; xarray keeps an intended
    ``_FillValue`` in the attributes, which wins in both versions.
    """
    fill = array.fill_value
    if array.zarr_format == 2 or fill is None:
        return fill
    if isinstance(fill, (float, np.floating)) and np.isnan(fill):
        return fill
    return None


def _write_array(nc: Any, array: ZarrArray) -> None:
    kwargs: dict[str, Any] = {}
    if array.object_strings or array.dtype.kind == "U":
        dtype: Any = h5py.string_dtype("utf-8")
    elif array.dtype.kind == "b":
        dtype = np.dtype("i1")  # netCDF has no bool: int8 + dtype="bool", as xarray writes it
    else:
        dtype = array.dtype.newbyteorder("=") if array.dtype.kind in "iufc" else array.dtype
    if array.dtype.kind != "U" and not array.object_strings:
        fill = array.attributes.get("_FillValue", _mask_fill(array))
        if fill is not None and array.dtype.kind in "iufc" and not array.extra_attributes:
            kwargs["fillvalue"] = np.array(fill).astype(dtype)
        if array.shape and all(array.shape):
            kwargs["chunks"] = tuple(
                min(c, s) for c, s in zip(array.chunks, array.shape, strict=True)
            )
            kwargs["compression"] = "gzip"
            kwargs["compression_opts"] = 4
    variable = nc.create_variable(array.name, _dims_of(array), dtype, **kwargs)
    extra = dict(array.extra_attributes)
    if array.dtype.kind == "b":
        extra["dtype"] = "bool"
    _set_attributes(variable, {**array.attributes, **extra})
    if 0 in array.shape:
        return
    for index in array.chunk_grid():
        values = array.read_chunk(index)
        if array.dtype.kind == "U":
            values = values.astype(object)
        elif array.dtype.kind == "b":
            values = values.astype("i1")
        if array.shape:
            variable[array.chunk_region(index)] = values
        else:
            variable[()] = values


def write_zarr_netcdf(store: Path, target: Path) -> Path:
    """Convert a zarr store (v2 or v3) into a netCDF4/HDF5 file at ``target``."""
    root = open_zarr_store(store)
    invalid = _needs_invalid_netcdf(root)
    with warnings.catch_warnings():
        # Complex numbers are an HDF5 extension h5netcdf warns about; they are wanted here.
        warnings.filterwarnings("ignore", "You are writing invalid netcdf features")
        with h5netcdf.File(target, "w", invalid_netcdf=invalid) as nc:
            nc.attrs["converter"] = "etiket-sync-agent-converters zarr-to-netcdf"
            nc.attrs["source_store"] = Path(store).name
            _write_group(nc, root, Path(store))
    return target


def _is_store(input_path: Path) -> bool:
    path = Path(input_path)
    return path.suffix.lower() == ".zarr" and path.is_dir()


class ZarrToNetCDF(FileConverter):
    """zarr store (v2/v3) → netCDF4 (HDF5): groups, variables, dimensions and attributes."""

    input_type: ClassVar[str] = "zarr"
    output_type: ClassVar[str] = "nc"
    description: ClassVar[str] = "zarr (v2/v3) → netCDF4 (HDF5)"

    def accepts(self, input_path: Path) -> bool:
        """``*.zarr`` folders (a file named ``x.zarr`` is not a zarr store)."""
        return _is_store(input_path)

    def convert(self, input_path: Path, output_dir: Path) -> Path:
        """Convert the store into ``output_dir/<stem>.nc``; raise ConversionError if invalid."""
        input_path = Path(input_path)
        target = Path(output_dir) / f"{input_path.stem or 'store'}.nc"
        try:
            return write_zarr_netcdf(input_path, target)
        except Exception:
            target.unlink(missing_ok=True)
            raise


class ZarrToZip(FileConverter):
    """zarr store → deterministic zip (a zarr ZipStore): same store, same bytes."""

    input_type: ClassVar[str] = "zarr"
    output_type: ClassVar[str] = "zip"
    description: ClassVar[str] = "zarr → zip (deterministic)"

    def accepts(self, input_path: Path) -> bool:
        """``*.zarr`` folders (a file named ``x.zarr`` is not a zarr store)."""
        return _is_store(input_path)

    def convert(self, input_path: Path, output_dir: Path) -> Path:
        """Zip the store into ``output_dir/<name>.zip``."""
        input_path = Path(input_path)
        if not input_path.is_dir():
            raise ConversionError(input_path, "is not a folder (a zarr store is a folder)")
        target = Path(output_dir) / f"{input_path.name}.zip"
        try:
            return deterministic_zip(input_path, target)
        except Exception:
            target.unlink(missing_ok=True)
            raise
