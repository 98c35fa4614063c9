"""Write one core-tools measurement as an HDF5-netCDF4 file (``h5netcdf``), streaming.

Layout (the way core-tools' own xarray export organises a dataset, made collision-free):

- every measured output (a row with ``param_id == param_id_m_param`` that is not a setpoint; several
  rows with the same ``param_id`` and increasing ``nth_set`` are the outputs of a multi-parameter)
  becomes a float64 data variable named after the output, shaped like its ``shape`` column;
- its dimensions are its ``depencies``: first the swept setpoints (outer loop first), then the
  local setpoints of the output (e.g. the time axis of a digitizer trace); each becomes a
  dimension with a coordinate variable named after the setpoint. A swept setpoint's array has the
  full sweep shape; like core-tools we take its values along its own axis (``nth_dim``) at index 0
  of the others. Equal axes shared by several outputs become one dimension; different axes with
  the same name get a ``_2``, ``_3`` ... suffix;
- values are read up to ``write_cursor`` and the rest is NaN (the variable's ``_FillValue``), so an
  unfinished measurement has the shape of the finished one;
- attributes ``units``/``long_name`` (core-tools' unit and label) plus ``name``, ``label``,
  ``unit``, ``param_id``, ``write_cursor``, ``total_size`` on variables; measurement attributes
  (uuid, id, exp_name, sample_name, project, set_up, times, completed, starred, keywords, ...) on
  the file.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5netcdf
import numpy as np

from etiket_sync_agent.errors import SyncError
from etiket_sync_agent_core_tools.db import LargeObjectReader, MeasurementRow, ParamRow

__all__ = ["WriteSummary", "measurement_attrs", "write_measurement"]

Log = Callable[[str, int], None]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass
class _Dim:
    name: str
    size: int
    values: FloatArray | None
    unit: str


@dataclass
class _Var:
    name: str
    param: ParamRow
    dims: list[str]


@dataclass
class WriteSummary:
    """What :func:`write_measurement` wrote."""

    variables: dict[str, tuple[str, ...]] = field(default_factory=dict)
    coordinates: list[str] = field(default_factory=list)
    values_written: int = 0
    bytes_read: int = 0
    warnings: list[str] = field(default_factory=list)


def _prod(shape: Sequence[int]) -> int:
    return int(math.prod(shape)) if shape else 1


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def measurement_attrs(row: MeasurementRow) -> dict[str, Any]:
    """Global attributes of the file (netCDF-valid types only)."""
    return {
        "title": row.exp_name,
        "exp_name": row.exp_name,
        "uuid": np.int64(row.uuid),
        "id": np.int64(row.id),
        "sample_name": row.sample,
        "project": row.project,
        "set_up": row.set_up,
        "start_time": _iso(row.start_time),
        "stop_time": _iso(row.stop_time),
        "measurement_time": _iso(row.start_time),
        "completed": np.int8(1 if row.completed else 0),
        "starred": np.int8(1 if row.starred else 0),
        "keywords": json.dumps(row.keywords, default=str),
        "creator": row.creator or "",
        "core_tools_format": row.format_name,
        "source": "core-tools",
    }


class _Layout:
    """Decides dimensions, coordinates and variable names for a measurement's parameters."""

    def __init__(self, params: Sequence[ParamRow], reader: LargeObjectReader, log: Log) -> None:
        self.params = params
        self.reader = reader
        self.log = log
        self.dims: dict[str, _Dim] = {}
        self.extra_coords: list[tuple[str, str, ParamRow, FloatArray]] = []
        self.vars: list[_Var] = []
        self.names: set[str] = set()
        self._values_cache: dict[tuple[int, int, int], FloatArray] = {}
        self._by_id: dict[int, list[ParamRow]] = {}
        for p in params:
            if p.is_setpoint:
                self._by_id.setdefault(p.param_id, []).append(p)
        #: dimension name → the setpoint row its coordinate comes from
        self.coord_params: dict[str, ParamRow] = {}

    def _unique(self, base: str) -> str:
        base = base.strip().replace("/", "_") or "param"
        name, n = base, 1
        while name in self.names:
            n += 1
            name = f"{base}_{n}"
        self.names.add(name)
        return name

    def _setpoint_for(self, dep: int, measured: ParamRow) -> list[ParamRow]:
        candidates = self._by_id.get(dep, [])
        own = [c for c in candidates if c.param_id_m_param == measured.param_id]
        return sorted(own or candidates, key=lambda c: c.nth_set)

    def axis_values(self, sp: ParamRow, axis_hint: int) -> FloatArray:
        """The 1-D values of a setpoint along its own axis (NaN where not written yet)."""
        key = (sp.param_id, sp.param_id_m_param, sp.nth_set)
        cached = self._values_cache.get(key)
        if cached is not None:
            return cached
        shape = sp.shape or (sp.total_size,)
        limit = min(sp.write_cursor, sp.total_size)
        if len(shape) == 1:
            values = self.reader.read_strided(sp.oid, 0, 1, shape[0], limit)
        else:
            axis = sp.nth_dim if 0 <= sp.nth_dim < len(shape) else min(axis_hint, len(shape) - 1)
            stride = _prod(shape[axis + 1 :])
            values = self.reader.read_strided(sp.oid, 0, stride, shape[axis], limit)
        self._values_cache[key] = values
        return values

    def _dim_for(
        self, base: str, size: int, values: FloatArray | None, unit: str, used: set[str]
    ) -> str:
        if values is not None:
            for dim in self.dims.values():
                if (
                    dim.name not in used
                    and dim.size == size
                    and dim.values is not None
                    and dim.unit == unit
                    and (dim.name == base or dim.name.startswith(f"{base}_"))
                    and np.array_equal(dim.values, values, equal_nan=True)
                ):
                    return dim.name
        name = self._unique(base)
        self.dims[name] = _Dim(name, size, values, unit)
        return name

    def build(self) -> None:
        measured = [p for p in self.params if p.is_measured]
        for p in self.params:
            if not p.is_measured and not p.is_setpoint:
                self.log(
                    f"parameter {p.name!r} (param_id {p.param_id}) is neither measured nor a "
                    "setpoint of its measurement; skipped",
                    logging.WARNING,
                )
        for m in measured:
            if m.total_size != _prod(m.shape):
                raise SyncError(
                    f"parameter {m.name!r}: total_size {m.total_size} does not match its shape "
                    f"{list(m.shape)}; the parameter table is inconsistent"
                )
            used: set[str] = set()
            dims: list[str] = []
            for k, size in enumerate(m.shape):
                dep = m.dependencies[k] if k < len(m.dependencies) else None
                setpoints = self._setpoint_for(dep, m) if dep is not None else []
                if not setpoints:
                    if dep is not None:
                        self.log(
                            f"parameter {m.name!r}: setpoint {dep} of axis {k} is missing; "
                            "the axis has no coordinate",
                            logging.WARNING,
                        )
                    name = self._dim_for(f"{m.name}_dim_{k}", size, None, "", used)
                    used.add(name)
                    dims.append(name)
                    continue
                primary = setpoints[0]
                values = self.axis_values(primary, k)
                if values.size != size:
                    self.log(
                        f"parameter {m.name!r}: setpoint {primary.name!r} has {values.size} "
                        f"values but axis {k} has {size}; the axis has no coordinate",
                        logging.WARNING,
                    )
                    name = self._dim_for(f"{m.name}_dim_{k}", size, None, "", used)
                else:
                    before = set(self.dims)
                    name = self._dim_for(primary.name, size, values, primary.unit, used)
                    if name not in before:
                        self.coord_params[name] = primary
                        for extra in setpoints[1:]:
                            extra_values = self.axis_values(extra, k)
                            if extra_values.size == size:
                                self.extra_coords.append(
                                    (self._unique(extra.name), name, extra, extra_values)
                                )
                used.add(name)
                dims.append(name)
            self.vars.append(_Var(self._unique(m.name), m, dims))


def _param_attrs(p: ParamRow, kind: str) -> dict[str, Any]:
    return {
        "units": p.unit,
        "long_name": p.label or p.name,
        "name": p.name,
        "label": p.label,
        "unit": p.unit,
        "param_id": np.int64(p.param_id),
        "core_tools_kind": kind,
    }


def write_measurement(
    path: Path,
    row: MeasurementRow,
    params: Sequence[ParamRow],
    reader: LargeObjectReader,
    log: Log,
) -> WriteSummary:
    """Write ``measured_data.hdf5`` for one measurement; returns what was written."""
    summary = WriteSummary()
    layout = _Layout(params, reader, log)
    layout.build()
    with h5netcdf.File(path, "w") as f:
        for key, value in measurement_attrs(row).items():
            f.attrs[key] = value
        f.dimensions = {d.name: d.size for d in layout.dims.values()}
        for dim in layout.dims.values():
            sp = layout.coord_params.get(dim.name)
            if dim.values is None or sp is None:
                continue
            var = f.create_variable(dim.name, (dim.name,), "f8", data=dim.values)
            kind = "local setpoint" if sp.setpoint_local else "setpoint"
            for key, value in _param_attrs(sp, kind).items():
                var.attrs[key] = value
            summary.coordinates.append(dim.name)
        for name, dim_name, sp, values in layout.extra_coords:
            var = f.create_variable(name, (dim_name,), "f8", data=values)
            for key, value in _param_attrs(sp, "setpoint").items():
                var.attrs[key] = value
            summary.coordinates.append(name)
        for v in layout.vars:
            summary.values_written += _write_variable(f, v, reader, summary, log)
            summary.variables[v.name] = tuple(v.dims)
        if layout.vars:
            f.attrs["measured_parameters"] = json.dumps([v.name for v in layout.vars])
    summary.bytes_read = reader.bytes_read
    return summary


def _write_variable(
    f: h5netcdf.File, v: _Var, reader: LargeObjectReader, summary: WriteSummary, log: Log
) -> int:
    m = v.param
    shape = tuple(m.shape)
    total = m.total_size
    cursor = m.write_cursor
    if cursor > total:
        message = (
            f"parameter {m.name!r}: write_cursor {cursor} exceeds total_size {total}; "
            f"reading {total} values"
        )
        summary.warnings.append(message)
        log(message, logging.WARNING)
        cursor = total
    big = total * 8 > (4 << 20)
    var = f.create_variable(
        v.name,
        tuple(v.dims),
        "f8",
        fillvalue=np.nan,
        chunks=True if big and shape else None,
    )
    for key, value in _param_attrs(m, "measured").items():
        var.attrs[key] = value
    var.attrs["name_global"] = m.name_global or ""
    var.attrs["nth_set"] = np.int64(m.nth_set)
    var.attrs["write_cursor"] = np.int64(m.write_cursor)
    var.attrs["total_size"] = np.int64(m.total_size)
    if cursor <= 0:
        return 0
    if not shape:
        data = reader.read(m.oid, 0, 1)
        if data.size:
            var[...] = data[0]
        return int(data.size)
    row = _prod(shape[1:])
    rows_per_chunk = max(1, reader.chunk_values // max(row, 1))
    pos = 0
    while pos < cursor:
        count = min(rows_per_chunk * row, cursor - pos)
        data = reader.read(m.oid, pos, count)
        got = int(data.size)
        r0 = pos // row
        full = got // row
        if full:
            var[r0 : r0 + full, ...] = data[: full * row].reshape((full, *shape[1:]))
        rest = got - full * row
        if rest:
            buf = np.full(row, np.nan)
            buf[:rest] = data[full * row :]
            var[r0 + full, ...] = buf.reshape(shape[1:])
        pos += got
        if got < count:
            message = (
                f"parameter {m.name!r}: its large object {m.oid} holds {pos} values but "
                f"write_cursor says {cursor}; the rest is NaN"
            )
            summary.warnings.append(message)
            log(message, logging.WARNING)
            break
    return pos
