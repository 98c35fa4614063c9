"""Write one QCoDeS run as ``measured_data.hdf5``: netCDF4/HDF5 laid out like QCoDeS' xarray export.

The layout follows ``DataSet.to_xarray_dataset()`` of QCoDeS (without importing qcodes, pandas or
xarray):

- every top-level parameter (dependents and standalones) is read with its setpoints: the rows where
  it is not NULL, in row order; array parameters are expanded like QCoDeS does (scalars broadcast
  to the row's array shape);
- when the run declares a shape for it and the data fill that shape, the setpoints become
  dimensions whose coordinates are the setpoint values in first-seen order;
- otherwise (no shapes, or an unfinished run) a single setpoint becomes the dimension when its
  values are unique; several setpoints become dimensions with sorted coordinates when the points
  form a grid (missing points are NaN), or - off grid and without declared shapes - a shared
  ``multi_index`` dimension with the setpoints as coordinates along it; repeated setpoint values
  fall back to a shared ``index`` dimension;
- dependents are merged like ``xarray.merge(join="outer")``: equal dimensions are shared,
  differing ones are joined (union of coordinates, NaN where a dependent has no value).

The file is written while the run is read: each dependent's variables as soon as it is laid out
(a large run's later dependents are still being read meanwhile), unless a later dependent changes
what was written (different coordinates), in which case the file is written again in one go.

Variable attributes: ``name``, ``paramtype``, ``label``, ``unit``, ``inferred_from``,
``depends_on``, ``units`` and ``long_name``. File attributes: ``ds_name``, ``sample_name``,
``exp_name``, ``snapshot``, ``guid``, ``run_timestamp``, ``completed_timestamp``,
``captured_run_id``, ``captured_counter``, ``run_id``, ``run_description``,
``parent_dataset_links``, ``run_timestamp_raw``, ``completed_timestamp_raw`` and every metadata
column of the run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5netcdf
import h5py
import numpy as np

from etiket_sync_agent_qcodes.reader import QCoDeSDatabase, RunRow, RunUnreadable
from etiket_sync_agent_qcodes.rundescriber import ParamSpec, RunDescription

__all__ = [
    "ExportSummary",
    "export_run",
    "format_timestamp",
    "parent_links",
    "run_attrs",
]

Log = Callable[[str, int], None]
Array = np.ndarray[Any, Any]


def _no_log(message: str, level: int) -> None:
    """Default logger: drop messages."""


@dataclass
class _Var:
    name: str
    dims: tuple[str, ...]
    data: Array
    coord: bool = False


@dataclass
class _Sub:
    """The xarray-like dataset of one top-level parameter."""

    dims: dict[str, int] = field(default_factory=dict)
    #: Dimension name → index values (None: no index variable, e.g. ``multi_index``).
    index: dict[str, Array | None] = field(default_factory=dict)
    vars: dict[str, _Var] = field(default_factory=dict)


@dataclass
class ExportSummary:
    """What :func:`export_run` wrote."""

    variables: dict[str, tuple[str, ...]] = field(default_factory=dict)
    coordinates: list[str] = field(default_factory=list)
    rows: int = 0
    points: int = 0
    warnings: list[str] = field(default_factory=list)


def format_timestamp(raw: float | None) -> str:
    """A POSIX time as QCoDeS shows it (local time, ``%Y-%m-%d %H:%M:%S%z``); '' for None."""
    if raw is None:
        return ""
    local = dt.datetime.fromtimestamp(raw, tz=dt.timezone.utc).astimezone()
    return local.strftime("%Y-%m-%d %H:%M:%S%z")


def parent_links(raw: str | None) -> list[dict[str, Any]]:
    """Decode ``parent_datasets``: a JSON list whose items are JSON strings (double-encoded)."""
    if not raw:
        return []
    try:
        outer = json.loads(raw)
    except ValueError:
        return []
    links: list[dict[str, Any]] = []
    for entry in outer if isinstance(outer, list) else []:
        if isinstance(entry, str):
            try:
                entry = json.loads(entry)
            except ValueError:
                continue
        if isinstance(entry, dict):
            links.append(entry)
    return links


def _attr_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float, str)):
        return value
    return str(value)


def run_attrs(run: RunRow) -> dict[str, Any]:
    """The global attributes QCoDeS' xarray export puts on a run."""
    links = parent_links(run.parent_datasets)
    attrs: dict[str, Any] = {
        "ds_name": run.name,
        "sample_name": run.sample_name,
        "exp_name": run.exp_name,
        "snapshot": run.snapshot or "null",
        "guid": run.guid or "",
        "run_timestamp": format_timestamp(run.run_timestamp),
        "completed_timestamp": format_timestamp(run.completed_timestamp),
        "captured_run_id": run.captured_run_id if run.captured_run_id is not None else run.run_id,
        "captured_counter": run.captured_counter if run.captured_counter is not None else -1,
        "run_id": run.run_id,
        "run_description": run.run_description or "",
        "parent_dataset_links": json.dumps([json.dumps(link) for link in links]),
        "run_timestamp_raw": run.run_timestamp if run.run_timestamp is not None else -1,
        "completed_timestamp_raw": (
            run.completed_timestamp if run.completed_timestamp is not None else -1
        ),
    }
    for key, value in run.metadata.items():
        attrs[key] = _attr_value(value)
    return attrs


def _param_attrs(spec: ParamSpec) -> dict[str, Any]:
    def names(values: Sequence[str]) -> Any:
        return list(values) if values else np.array([], dtype=np.float64)

    return {
        "name": spec.name,
        "paramtype": spec.paramtype,
        "label": spec.label,
        "unit": spec.unit,
        "inferred_from": names(spec.inferred_from),
        "depends_on": names(spec.depends_on),
        "units": spec.unit,
        "long_name": spec.label,
    }


# -- reading one parameter tree ----------------------------------------------------------------------
def _as_text(values: Array) -> Array:
    text: Array = np.array(["" if v is None else str(v) for v in values.ravel()])
    shaped: Array = np.reshape(text, values.shape)
    return shaped


def _expand_arrays(data: dict[str, Array], specs: dict[str, ParamSpec]) -> dict[str, Array]:
    """Rows holding arrays: broadcast scalars to each row's array shape, stack or concatenate."""
    names = list(data)
    n = len(next(iter(data.values()))) if data else 0
    rows: list[list[Array]] = []
    shapes: list[tuple[int, ...]] = []
    for i in range(n):
        cells = [np.asarray(data[name][i]) for name in names]
        biggest = max(cells, key=lambda c: c.size)
        shape = biggest.shape
        row = []
        for cell in cells:
            if cell.size == 1 and cell.shape != shape:
                cell = np.full(shape, cell.reshape(()).item())
            row.append(cell)
        rows.append(row)
        shapes.append(shape)
    out: dict[str, Array] = {}
    same = len(set(shapes)) <= 1
    for j, name in enumerate(names):
        cells = [row[j] for row in rows]
        if not cells:
            out[name] = np.array([], dtype=np.float64)
            continue
        stacked = np.stack(cells) if same else np.concatenate([c.ravel() for c in cells])
        kind = specs[name].paramtype if name in specs else "numeric"
        if kind == "numeric":
            stacked = stacked.astype(np.float64)
        elif kind == "complex":
            stacked = stacked.astype(np.complex128)
        elif kind == "text":
            stacked = _as_text(stacked)
        out[name] = stacked
    return out


def _tree_data(members: Sequence[ParamSpec], data: dict[str, Array]) -> dict[str, Array]:
    specs = {s.name: s for s in members}
    if any(s.paramtype == "array" for s in members if s.name in data):
        return _expand_arrays(data, specs)
    for name, column in data.items():
        if column.dtype == object:
            kind = specs[name].paramtype
            if kind == "text":
                data[name] = _as_text(column)
            elif kind == "complex":
                data[name] = column.astype(np.complex128)
    return data


# -- layouts -----------------------------------------------------------------------------------------
def _unique_first_seen(values: Array) -> tuple[Array, Array]:
    """Unique values in first-seen order and each value's code."""
    uniq, first, inverse = np.unique(
        values, return_index=True, return_inverse=True, equal_nan=values.dtype.kind in "fc"
    )
    order = np.argsort(first)
    remap = np.empty(uniq.size, dtype=np.intp)
    remap[order] = np.arange(uniq.size)
    return uniq[order], remap[inverse.ravel()]


def _raster_axes(
    deps: Sequence[str], shape: tuple[int, ...], data: dict[str, Array]
) -> list[Array] | None:
    """Each setpoint's coordinates when the rows already are the grid in C order, else None.

    That is the usual sweep: setpoint ``k`` changes only with the ``k``-th index, so its values
    at index 0 of every other axis repeat along them, and they are distinct. The general path of
    :func:`_direct` then finds exactly these values (in first-seen order) and the identity
    permutation; checking it costs a few vectorised comparisons instead of sorting every
    column. Only for float and complex setpoints without NaN (``==`` must mean equal).
    """
    axes: list[Array] = []
    for axis, dep in enumerate(deps):
        column = data[dep]
        if column.dtype.kind not in "fc" or column.shape != shape:
            return None
        along: list[Any] = [0] * len(shape)
        along[axis] = slice(None)
        values = column[tuple(along)]
        spread: list[Any] = [np.newaxis] * len(shape)
        spread[axis] = slice(None)
        if not bool(np.all(column == values[tuple(spread)])):
            return None
        ordered = np.sort(values)
        if bool(np.any(ordered[1:] == ordered[:-1])):
            return None  # repeated values: no grid of this shape
        axes.append(values.copy())
    return axes


def _direct(
    top: ParamSpec, deps: Sequence[str], shape: tuple[int, ...], data: dict[str, Array]
) -> _Sub | None:
    """Shaped data on a complete grid (QCoDeS' direct method); None when it is no grid."""
    size = math.prod(shape)
    sub = _Sub()
    if not deps:
        dims = tuple(f"{top.name}_dim_{axis}" for axis in range(len(shape)))
        for dim, n in zip(dims, shape, strict=True):
            sub.dims[dim] = n
            sub.index[dim] = None
        sub.vars[top.name] = _Var(top.name, dims, data[top.name].reshape(shape))
        return sub
    if len(deps) != len(shape):
        return None
    axes = _raster_axes(deps, shape, data)
    if axes is not None:
        for dep, axis_values in zip(deps, axes, strict=True):
            sub.dims[dep] = int(axis_values.size)
            sub.index[dep] = axis_values
        sub.vars[top.name] = _Var(top.name, tuple(deps), data[top.name].reshape(shape))
        return sub
    destination = np.zeros(size, dtype=np.intp)
    for axis, dep in enumerate(deps):
        column = data[dep].ravel()
        if column.size != size:
            return None
        axis_values, codes = _unique_first_seen(column)
        if axis_values.size != shape[axis]:
            return None
        sub.dims[dep] = int(shape[axis])
        sub.index[dep] = axis_values
        destination = destination * shape[axis] + codes
    if not np.array_equal(np.sort(destination), np.arange(size)):
        return None
    permutation = np.argsort(destination)
    sub.vars[top.name] = _Var(
        top.name, tuple(deps), data[top.name].ravel()[permutation].reshape(shape)
    )
    return sub


def _is_unique(columns: Sequence[Array]) -> tuple[bool, list[Array], list[Array]]:
    """Whether the tuples are unique; also each column's sorted levels and codes."""
    levels: list[Array] = []
    codes: list[Array] = []
    combined = np.zeros(columns[0].size, dtype=np.int64)
    radix = 1
    overflow = False
    for column in columns:
        uniq, inverse = np.unique(column, return_inverse=True)
        levels.append(uniq)
        codes.append(inverse.ravel())
        radix *= max(uniq.size, 1)
        if radix > 2**62:
            overflow = True
        else:
            combined = combined * uniq.size + inverse.ravel()
    if overflow:
        unique = len(set(zip(*(c.tolist() for c in codes), strict=True))) == columns[0].size
    else:
        unique = np.unique(combined).size == combined.size
    return unique, levels, codes


def _fill_value(dtype: np.dtype[Any]) -> Any:
    if dtype.kind == "c":
        return complex("nan+nanj")
    return np.nan


def _flat(column: Array) -> Array:
    return column.ravel()


def _via_index(
    top: ParamSpec, deps: Sequence[str], data: dict[str, Array], shapes_declared: bool
) -> _Sub:
    """The pandas-index path of QCoDeS' export (no shapes, or data not matching them)."""
    sub = _Sub()
    values = _flat(data[top.name])
    n = values.size
    present = [d for d in deps if d in data]

    def index_dim() -> None:
        sub.dims["index"] = n
        sub.index["index"] = np.arange(n, dtype=np.int64)

    if not present:
        index_dim()
        sub.vars[top.name] = _Var(top.name, ("index",), values)
        return sub
    columns = [_flat(data[d]) for d in present]
    if len(present) == 1:
        (column,) = columns
        unique_count = np.unique(column, equal_nan=column.dtype.kind in "fc").size
        if unique_count == n:
            sub.dims[present[0]] = n
            sub.index[present[0]] = column
            sub.vars[top.name] = _Var(top.name, (present[0],), values)
            return sub
        index_dim()
        sub.vars[present[0]] = _Var(present[0], ("index",), column)
        sub.vars[top.name] = _Var(top.name, ("index",), values)
        return sub
    unique, levels, codes = _is_unique(columns)
    if not unique:
        index_dim()
        for dep, column in zip(present, columns, strict=True):
            sub.vars[dep] = _Var(dep, ("index",), column)
        sub.vars[top.name] = _Var(top.name, ("index",), values)
        return sub
    grid_shape = tuple(level.size for level in levels)
    on_grid = math.prod(grid_shape) == n
    if not on_grid and not shapes_declared:
        sub.dims["multi_index"] = n
        sub.index["multi_index"] = None
        for dep, column in zip(present, columns, strict=True):
            sub.vars[dep] = _Var(dep, ("multi_index",), column, coord=True)
        sub.vars[top.name] = _Var(top.name, ("multi_index",), values)
        return sub
    for dep, level in zip(present, levels, strict=True):
        sub.dims[dep] = level.size
        sub.index[dep] = level
    if values.dtype.kind in "fc":
        grid = np.full(grid_shape, _fill_value(values.dtype), dtype=values.dtype)
    else:
        grid = np.full(grid_shape, np.nan, dtype=object)
    grid[tuple(codes)] = values
    sub.vars[top.name] = _Var(top.name, tuple(present), grid)
    return sub


def _layout(
    top: ParamSpec,
    description: RunDescription,
    data: dict[str, Array],
) -> _Sub:
    deps = [d for d in top.depends_on]
    shape = (description.shapes or {}).get(top.name)
    if shape is not None and data[top.name].size == math.prod(shape):
        shaped = {name: column.reshape(shape) for name, column in data.items()}
        sub = _direct(top, deps, tuple(shape), shaped)
        if sub is not None:
            return sub
    return _via_index(top, deps, data, description.shapes is not None)


def _add_inferred(
    sub: _Sub, top: ParamSpec, inferred: Sequence[ParamSpec], data: dict[str, Array]
) -> None:
    target = sub.vars[top.name]
    for spec in inferred:
        if spec.name in sub.vars or spec.name not in data:
            continue
        column = data[spec.name].ravel()
        if column.size == target.data.size:
            sub.vars[spec.name] = _Var(spec.name, target.dims, column.reshape(target.data.shape))


# -- merging -----------------------------------------------------------------------------------------
def _same_index(a: Array | None, b: Array | None) -> bool:
    if a is None or b is None:
        return a is b
    if a.shape != b.shape or a.dtype.kind != b.dtype.kind:
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def _union(a: Array, b: Array) -> Array:
    try:
        return np.union1d(a, b)
    except TypeError:
        seen = dict.fromkeys([*a.tolist(), *b.tolist()])
        return np.array(list(seen))


def _reindex(var: _Var, dim: str, old: Array, new: Array) -> _Var:
    axis = var.dims.index(dim)
    position = {v: i for i, v in enumerate(new.tolist())}
    target = [position[v] for v in old.tolist()]
    shape = list(var.data.shape)
    shape[axis] = new.size
    if var.data.dtype.kind in "fc":
        out = np.full(shape, _fill_value(var.data.dtype), dtype=var.data.dtype)
    else:
        out = np.full(shape, np.nan, dtype=object)
    index: list[Any] = [slice(None)] * len(shape)
    index[axis] = target
    out[tuple(index)] = var.data
    return _Var(var.name, var.dims, out, var.coord)


def _merge_into(merged: _Sub, sub: _Sub, log: Log) -> set[str]:
    """Merge one dependent's dataset into ``merged`` (``xarray.merge(join="outer")``-like).

    Returns the dimensions and variables already in ``merged`` that this changed (a dimension
    joined with different coordinates, and every variable reindexed along it).
    """
    changed: set[str] = set()
    for dim, size in sub.dims.items():
        if dim not in merged.dims:
            merged.dims[dim] = size
            merged.index[dim] = sub.index[dim]
            continue
        old, new = merged.index[dim], sub.index[dim]
        if merged.dims[dim] == size and _same_index(old, new):
            continue
        if old is None or new is None:
            raise RunUnreadable(f"dimension {dim!r} differs between parameters")
        joined = _union(old, new)
        changed.add(dim)
        changed.update(n for n, v in merged.vars.items() if dim in v.dims)
        merged.vars = {
            n: _reindex(v, dim, old, joined) if dim in v.dims else v for n, v in merged.vars.items()
        }
        sub.vars = {
            n: _reindex(v, dim, new, joined) if dim in v.dims else v for n, v in sub.vars.items()
        }
        merged.dims[dim] = joined.size
        merged.index[dim] = joined
    for name, var in sub.vars.items():
        known = merged.vars.get(name)
        if known is None:
            merged.vars[name] = var
        elif known.dims != var.dims or not _same_index(known.data, var.data):
            log(
                f"parameter {name!r} has different values for different dependents; kept the first",
                logging.WARNING,
            )
        elif var.coord:
            known.coord = True
    return changed


# -- writing -----------------------------------------------------------------------------------------
def _h5_data(data: Array) -> tuple[Any, Array]:
    if data.dtype.kind in "UO":
        return h5py.string_dtype(), np.array(
            [
                "" if (v is None or (isinstance(v, float) and math.isnan(v))) else str(v)
                for v in data.ravel()
            ],
            dtype=object,
        ).reshape(data.shape)
    return data.dtype, data


def export_run(
    database: QCoDeSDatabase,
    run: RunRow,
    path: Path,
    log: Log = _no_log,
) -> ExportSummary:
    """Read ``run`` from ``database`` and write ``path`` (HDF5-netCDF4); returns a summary."""
    description = database.description(run)
    specs = description.by_name()
    table_columns = set(database.results_columns(run))
    tops = description.top_level()
    summary = ExportSummary()
    for top in tops:
        if top.name not in table_columns:
            message = f"parameter {top.name!r} has no column in the results table"
            summary.warnings.append(message)
            log(message, logging.WARNING)
    missing_setpoints = sorted(
        {d for t in tops for d in t.depends_on if d not in table_columns and d in specs}
    )
    for name in missing_setpoints:
        message = f"setpoint {name!r} has no column in the results table"
        summary.warnings.append(message)
        log(message, logging.WARNING)
    trees: list[tuple[ParamSpec, list[ParamSpec], list[ParamSpec]]] = []
    for top in tops:
        if top.name not in table_columns:
            continue
        inferred = description.inferred_for(top)
        members = [top, *(specs[d] for d in top.depends_on if d in specs), *inferred]
        trees.append((top, [m for m in members if m.name in table_columns], inferred))

    queries = [
        ([m.name for m in members], [m.paramtype for m in members]) for _, members, _ in trees
    ]
    try:
        _read_and_write(database, run, path, description, trees, queries, summary, log)
    except BaseException:
        path.unlink(missing_ok=True)  # no half-written file
        raise
    return summary


class _Writer:
    """Writes the merged dataset into an open netCDF file, dimension by dimension and variable
    by variable, so a large run's first dependents are written while the next ones are read."""

    def __init__(self, f: h5netcdf.File, specs: dict[str, ParamSpec]) -> None:
        self.f = f
        self.specs = specs
        self.dims: set[str] = set()
        self.vars: set[str] = set()

    def can_extend(self, merged: _Sub, changed: set[str]) -> bool:
        """Whether writing ``merged``'s new parts keeps the file equal to a one-shot write:
        nothing written has changed and no name is both a dimension and a variable."""
        if changed & (self.dims | self.vars):
            return False
        new_dims = set(merged.dims) - self.dims
        new_vars = set(merged.vars) - self.vars
        return not (new_vars & set(merged.dims)) and not (new_dims & self.vars)

    def write(self, merged: _Sub) -> None:
        """Write the dimensions (with their coordinates) and variables not written yet."""
        for dim, size in merged.dims.items():
            if dim not in self.dims:
                self.f.dimensions[dim] = size
                self.dims.add(dim)
        for dim, index in merged.index.items():
            if index is None or dim in self.vars:
                continue
            dtype, stored = _h5_data(index)
            var = self.f.create_variable(dim, (dim,), dtype, data=stored)
            if dim in self.specs:
                for key, value in _param_attrs(self.specs[dim]).items():
                    var.attrs[key] = value
            self.vars.add(dim)
        for name, item in merged.vars.items():
            if name in self.vars:
                continue
            dtype, stored = _h5_data(item.data)
            fill = {"fillvalue": np.nan} if stored.dtype.kind == "f" else {}
            var = self.f.create_variable(name, item.dims, dtype, data=stored, **fill)
            if name in self.specs:
                for key, value in _param_attrs(self.specs[name]).items():
                    var.attrs[key] = value
            self.vars.add(name)

    def finish(self, merged: _Sub, summary: ExportSummary) -> None:
        """The ``coordinates`` attributes (known once every variable is merged); the summary."""
        coord_names = {n for n, v in merged.vars.items() if v.coord}
        for dim, index in merged.index.items():
            if index is not None:
                summary.coordinates.append(dim)
        for name, item in merged.vars.items():
            if not item.coord and coord_names:
                shared = [c for c in coord_names if set(merged.vars[c].dims) <= set(item.dims)]
                if shared:
                    self.f.variables[name].attrs["coordinates"] = " ".join(sorted(shared))
            if item.coord:
                summary.coordinates.append(name)
            else:
                summary.variables[name] = item.dims
                summary.points += int(item.data.size)


def _read_and_write(
    database: QCoDeSDatabase,
    run: RunRow,
    path: Path,
    description: RunDescription,
    trees: Sequence[tuple[ParamSpec, list[ParamSpec], list[ParamSpec]]],
    queries: Sequence[tuple[list[str], list[str]]],
    summary: ExportSummary,
    log: Log,
) -> None:
    """Read each dependent, lay it out, merge it and write what is new; write the file in one go
    at the end instead if a later dependent changed what was written (different coordinates)."""
    specs = description.by_name()
    merged = _Sub()
    with contextlib.ExitStack() as stack:
        # Closed on any error too: a parallel read ends its helper process then.
        tree_values = stack.enter_context(contextlib.closing(database.read_trees(run, queries)))
        writer: _Writer | None = None
        extend = True
        for (top, members, inferred), raw in zip(trees, tree_values, strict=True):
            summary.rows += int(raw[top.name].shape[0])
            data = _tree_data(members, raw)
            del raw
            if data[top.name].size == 0:
                continue
            sub = _layout(top, description, data)
            _add_inferred(sub, top, inferred, data)
            del data
            changed = _merge_into(merged, sub, log)
            if not extend:
                continue
            if writer is None:
                # Opened once the first dependent is read (a helper is reading meanwhile).
                writer = _Writer(_create(stack, path, run), specs)
            if writer.can_extend(merged, changed):
                writer.write(merged)
            else:
                extend = False
        if extend and writer is not None:
            writer.finish(merged, summary)
            return
    with contextlib.ExitStack() as stack:
        writer = _Writer(_create(stack, path, run), specs)
        writer.write(merged)
        writer.finish(merged, summary)


def _create(stack: contextlib.ExitStack, path: Path, run: RunRow) -> h5netcdf.File:
    """``path`` as a new netCDF file with the run's attributes (closed by ``stack``)."""
    f = stack.enter_context(h5netcdf.File(path, "w"))
    for key, value in run_attrs(run).items():
        f.attrs[key] = value
    return f
