"""The eTiKeT content checksum of a netCDF4 file, ``md5_netcdf4`` (PROTOCOL §7.4).

For a file version of type ``HDF5_NETCDF`` the platform's own client sends this content hash (not
the MD5 of the bytes) when it validates an upload, and the platform compares regenerated files by
it. The definition, in order, into one MD5:

1. every variable, sorted by name: its name (UTF-8); unless the variable is scalar, its raw array
   bytes (object and string arrays: the UTF-8 of ``str`` of the array as a Python list); then its
   attributes sorted by name, skipping names that start with ``__NCH``, each as name followed by
   the value (an ndarray as its raw bytes, anything else as the UTF-8 of ``str(value)``);
2. the global attributes in file order (not sorted), with the same skip rule and encoding.

Files are read with ``h5netcdf.legacyapi``, as the platform's client reads them. Two files with the
same data and attributes hash equal whatever their HDF5 layout, chunking or compression. Known
weaknesses of the definition (kept, because the platform compares against it): the values of
scalar variables are not hashed and the order of global attributes matters.

:class:`Md5NetCDF4` is the incremental form, for writers that hash what they write while they
write it; :func:`md5_netcdf4` reads a finished file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from os import PathLike
from typing import Any

import numpy as np

__all__ = ["Md5NetCDF4", "NetCDFChecksumError", "md5_netcdf4"]

_SKIP_PREFIX = "__NCH"


class NetCDFChecksumError(ValueError):
    """The file could not be read as netCDF4/HDF5, so it has no content checksum."""


def _value_bytes(value: Any) -> bytes:
    """An attribute value as the definition encodes it."""
    if isinstance(value, np.ndarray):
        return value.tobytes()
    return str(value).encode("utf-8")


def _array_bytes(array: np.ndarray[Any, Any]) -> bytes:
    """A non-scalar variable's data as the definition encodes it."""
    if array.dtype.kind in "OUS":
        return str(array.tolist()).encode("utf-8")
    return np.ascontiguousarray(array).tobytes()


class Md5NetCDF4:
    """Incremental ``md5_netcdf4``: feed variables in name order, then the global attributes.

    A writer that knows every variable's data and attributes can hash them while it writes, so a
    converted file is never read back::

        h = Md5NetCDF4()
        for name in sorted(variables):
            h.variable(name, data_chunks, attributes, scalar=...)
        h.global_attributes(global_attrs)
        digest = h.hexdigest()

    ``data_chunks`` may be one array or any iterable of arrays that, concatenated in C order,
    give the variable's data (numeric variables only: string variables hash ``str`` of the whole
    list, so pass their data as one array).
    """

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)

    def variable_name(self, name: str) -> None:
        """Start a variable: its name."""
        self._md5.update(name.encode("utf-8"))

    def variable_data(self, array: np.ndarray[Any, Any]) -> None:
        """Add (a C-order piece of) a non-scalar variable's data."""
        self._md5.update(_array_bytes(np.asarray(array)))

    def attributes(self, attrs: Mapping[str, Any], *, sort: bool) -> None:
        """Add attributes: a variable's (``sort=True``) or the global ones in file order."""
        names: Iterable[str] = sorted(attrs) if sort else list(attrs)
        for key in names:
            if key.startswith(_SKIP_PREFIX):
                continue
            self._md5.update(key.encode("utf-8"))
            self._md5.update(_value_bytes(attrs[key]))

    def variable(
        self,
        name: str,
        data: np.ndarray[Any, Any] | Iterable[np.ndarray[Any, Any]] | None,
        attrs: Mapping[str, Any],
        *,
        scalar: bool = False,
    ) -> None:
        """Add one whole variable: name, data (skipped for scalars) and sorted attributes."""
        self.variable_name(name)
        if not scalar and data is not None:
            if isinstance(data, np.ndarray):
                self.variable_data(data)
            else:
                for chunk in data:
                    self.variable_data(chunk)
        self.attributes(attrs, sort=True)

    def global_attributes(self, attrs: Mapping[str, Any]) -> None:
        """Add the global attributes, in the order the file holds them."""
        self.attributes(attrs, sort=False)

    def hexdigest(self) -> str:
        """The checksum as 32 lowercase hex digits."""
        return self._md5.hexdigest()


def md5_netcdf4(path: str | PathLike[str]) -> str:
    """``md5_netcdf4`` of a finished netCDF4 file, read with ``h5netcdf.legacyapi``.

    Raises:
        NetCDFChecksumError: the file is not readable as netCDF4/HDF5 (callers that validate an
            upload then fall back to the byte MD5, as the platform does).
    """
    import h5netcdf.legacyapi as nc

    try:
        with nc.Dataset(path, "r") as ds:
            h = Md5NetCDF4()
            for name in sorted(ds.variables):
                var = ds.variables[name]
                scalar = len(var.shape) == 0
                h.variable_name(name)
                if not scalar:
                    h.variable_data(np.asarray(var[:]))
                h.attributes({k: var.getncattr(k) for k in var.ncattrs()}, sort=True)
            h.global_attributes({k: ds.getncattr(k) for k in ds.ncattrs()})
            return h.hexdigest()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NetCDFChecksumError(f"{path}: not readable as netCDF4 ({exc})") from exc
