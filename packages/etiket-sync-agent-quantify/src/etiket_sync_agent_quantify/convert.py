"""Converted netCDF4 (HDF5) files written next to the original ``dataset.hdf5``.

- :func:`write_gridded`: a grid run (``grid_2d``) is stored flattened along ``dim_0``; the gridded
  file has the settables as dimensions (coordinate values sorted ascending, as Quantify's own
  ``to_gridded_dataset`` gives them) and every gettable reshaped onto that grid. Points are placed
  by their settable values, not by assuming a loop order, so an unfinished run fills the points
  measured so far and leaves the rest NaN.
- :func:`write_flat`: an old netCDF3 file copied variable by variable into netCDF4, so viewers that
  only read HDF5 see the data.

Attributes are written decoded (plain strings and numbers; booleans as 0/1 ``int8``; lists and
mappings as JSON text), so ``units`` and ``long_name`` read the same in every netCDF reader.
Outputs are byte-for-byte reproducible: the same input gives the same file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from etiket_sync_agent_quantify.dataset import QuantifyDataset, Variable

__all__ = ["GridError", "GridLayout", "grid_layout", "write_flat", "write_gridded"]

#: A grid whose cell count exceeds this many times the number of points is no grid.
_MAX_SPARSITY = 8
_MAX_CELLS = 200_000_000


class GridError(ValueError):
    """The settable values do not form a grid (the run is kept flat)."""


@dataclass
class GridLayout:
    """Where each flattened point lands on the grid."""

    flat_dim: str
    settables: list[str]
    coords: list[np.ndarray[Any, Any]]
    #: Positions along ``flat_dim`` whose settable values are all set (not NaN).
    points: np.ndarray[Any, Any]
    #: Flat (C-order) grid cell of each of those points.
    cells: np.ndarray[Any, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(c) for c in self.coords)


def grid_layout(ds: QuantifyDataset) -> GridLayout:
    """Work out the grid of a run; :class:`GridError` when its settables do not form one."""
    settables = ds.settables
    if not settables:
        raise GridError("the dataset has no settables (x0, x1, ...)")
    first = ds.variables[settables[0]]
    if len(first.dims) != 1:
        raise GridError(f"settable {settables[0]} is not one-dimensional")
    flat_dim = first.dims[0]
    n = first.data.shape[0]
    for name in settables:
        var = ds.variables[name]
        if var.dims != (flat_dim,) or var.data.shape != (n,):
            raise GridError(f"settable {name} does not run along {flat_dim} like {settables[0]}")
        if var.data.dtype.kind not in "biuf":
            raise GridError(f"settable {name} holds {var.data.dtype} values, not real numbers")
    mask = np.ones(n, dtype=bool)
    for name in settables:
        data = ds.variables[name].data
        if data.dtype.kind == "f":
            mask &= ~np.isnan(data)
    points = np.flatnonzero(mask)
    coords = [np.unique(ds.variables[name].data[mask]) for name in settables]
    shape = tuple(len(c) for c in coords)
    cells_total = math.prod(shape) if shape else 0
    if not points.size:
        raise GridError("no point has all its settable values set yet")
    if cells_total > _MAX_CELLS or cells_total > _MAX_SPARSITY * max(points.size, 1):
        raise GridError(
            f"the settable values span {' x '.join(map(str, shape))} = {cells_total} cells for "
            f"{points.size} points: not a grid"
        )
    index = [
        np.searchsorted(coord, ds.variables[name].data[mask])
        for coord, name in zip(coords, settables, strict=True)
    ]
    cells = np.ravel_multi_index(tuple(index), shape) if len(shape) > 1 else index[0]
    if np.unique(cells).size != cells.size:
        raise GridError("some settable value combinations occur more than once: not a grid")
    layout = GridLayout(flat_dim, settables, coords, points, np.asarray(cells, dtype=np.int64))
    for key, size in (("xlen", shape[0]), ("ylen", shape[1] if len(shape) > 1 else None)):
        declared = ds.attrs.get(key)
        if size is not None and isinstance(declared, int) and declared != size:
            layout.warnings.append(
                f"the dataset declares {key}={declared} but {settables[0 if key == 'xlen' else 1]} "
                f"has {size} distinct values"
            )
    return layout


# -- attributes --------------------------------------------------------------------------------
def _netcdf_attr(value: Any) -> Any:
    """A decoded attribute value as something every netCDF4 reader accepts (None = drop)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return np.int8(1 if value else 0)
    if isinstance(value, (int, float, str)):
        return value
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return np.asarray(value)
        return json.dumps(value, default=str)
    if isinstance(value, dict):
        return json.dumps(value, default=str, sort_keys=True)
    return str(value)


def _set_attrs(target: Any, attrs: dict[str, Any]) -> None:
    for key, value in attrs.items():
        converted = _netcdf_attr(value)
        if converted is not None and key not in ("_FillValue", "coordinates"):
            target.attrs[key] = converted


def _fill_for(dtype: np.dtype[Any]) -> Any:
    return np.nan if dtype.kind == "f" else None


def _create(
    f: Any, name: str, dims: tuple[str, ...], data: np.ndarray[Any, Any], attrs: dict[str, Any]
) -> None:
    fill = _fill_for(data.dtype)
    if data.dtype.kind in "SUO":
        data = np.asarray([str(v) for v in data.ravel()], dtype=object).reshape(data.shape)
        var = f.create_variable(name, dims, str, data=data)
    elif fill is not None:
        var = f.create_variable(name, dims, data.dtype, data=data, fillvalue=fill)
    else:
        var = f.create_variable(name, dims, data.dtype, data=data)
    _set_attrs(var, attrs)


def _has_complex(ds: QuantifyDataset) -> bool:
    return any(v.data.dtype.kind == "c" for v in ds.variables.values())


def _global_attrs(ds: QuantifyDataset, source_name: str, conversion: str) -> dict[str, Any]:
    attrs = dict(ds.attrs)
    attrs["etiket_converted_from"] = source_name
    attrs["etiket_conversion"] = conversion
    return attrs


# -- writers -----------------------------------------------------------------------------------
def _gridded_values(var: Variable, layout: GridLayout) -> np.ndarray[Any, Any]:
    data = var.data
    dtype = data.dtype
    if dtype.kind in "biu":
        dtype = np.dtype(np.float64)  # empty cells need NaN
    grid = np.full(math.prod(layout.shape), np.nan, dtype=dtype)
    grid[layout.cells] = data[layout.points]
    return grid.reshape(layout.shape)


def write_gridded(ds: QuantifyDataset, path: Path, source_name: str) -> GridLayout:
    """Write the gridded netCDF4 file of a grid run; returns the layout used.

    Variables not along the flattened dimension are copied unchanged. Raises :class:`GridError`
    when the run does not form a grid (nothing is written then).
    """
    layout = grid_layout(ds)
    settable_set = set(layout.settables)
    with _open_for_write(path, _has_complex(ds)) as f:
        attrs = _global_attrs(ds, source_name, "gridded: settables as dimensions")
        if "grid_2d" in attrs:
            attrs["grid_2d"] = False  # no longer a flattened grid (as quantify's own gridding)
        _set_attrs(f, attrs)
        dims = {
            name: len(coord) for name, coord in zip(layout.settables, layout.coords, strict=True)
        }
        for var in ds.variables.values():
            if var.name in settable_set or layout.flat_dim in var.dims:
                continue
            for dim, size in zip(var.dims, var.data.shape, strict=True):
                dims.setdefault(dim, size)
        f.dimensions = dims
        for name, coord in zip(layout.settables, layout.coords, strict=True):
            _create(f, name, (name,), coord, ds.variables[name].attrs)
        for var in ds.variables.values():
            if var.name in settable_set:
                continue
            if var.dims == (layout.flat_dim,):
                _create(
                    f,
                    var.name,
                    tuple(layout.settables),
                    _gridded_values(var, layout),
                    var.attrs,
                )
            elif layout.flat_dim not in var.dims:
                _create(f, var.name, var.dims, var.data, var.attrs)
            else:
                layout.warnings.append(
                    f"variable {var.name} has dimensions {var.dims}; only variables along "
                    f"{layout.flat_dim} alone can be gridded, so it is left out of the gridded file"
                )
    return layout


def write_flat(ds: QuantifyDataset, path: Path, source_name: str) -> None:
    """Copy every dimension, variable and attribute into a netCDF4 (HDF5) file."""
    with _open_for_write(path, _has_complex(ds)) as f:
        _set_attrs(f, _global_attrs(ds, source_name, "netCDF3 copied to netCDF4"))
        dims = dict(ds.dims)
        for var in ds.variables.values():
            for dim, size in zip(var.dims, var.data.shape, strict=True):
                dims.setdefault(dim, size)
        f.dimensions = dims
        for var in ds.variables.values():
            _create(f, var.name, var.dims, var.data, var.attrs)


def _open_for_write(path: Path, invalid_netcdf: bool) -> Any:
    import h5netcdf

    return h5netcdf.File(str(path), "w", invalid_netcdf=invalid_netcdf)
