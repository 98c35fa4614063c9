"""Convert one Labber log into an HDF5-netCDF file (``h5netcdf``), one variable at a time.

Complex values are written as netCDF-compatible complex types (h5netcdf >= 1.4 reads and writes
them; xarray gives complex arrays back). Older h5netcdf releases only write complex values as
"invalid netCDF" (plain HDF5 compound types), which xarray's h5netcdf engine reads the same way.

Layout of the converted file:

- the stepped channels become dimensions, outermost loop first (Labber lists the innermost first),
  each with a coordinate variable named after the channel holding its set values; arrays of a log
  that is still running or was aborted have the full grid's shape, with NaN where nothing was
  measured yet;
- every other column of ``Data/Data`` (log channels, and step channels that follow others through
  relations) becomes a variable on the step dimensions; Real/Imaginary column pairs become one
  complex variable;
- every trace (vector channel) becomes a variable on the step dimensions plus its own x axis, whose
  coordinate comes from ``<name>_t0dt`` (or the trace's own x values); traces sharing an equal axis
  share the dimension;
- ``units`` come from the ``Channels`` table, ``long_name`` is the Labber channel name (a ``/`` in a
  channel name becomes ``_`` in variable names, which netCDF reserves for groups);
- the file's attributes hold the log's name, creation time, comment, star, Labber version and
  completion state.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5netcdf
import h5py
import numpy as np

from etiket_sync_agent_labber.reader import (
    ChannelMeta,
    LabberHeader,
    LogLayout,
    TraceInfo,
    channel_table,
    data_array,
    log_header,
    step_config_values,
    time_stamps,
)

__all__ = ["ConversionSummary", "variable_name", "write_log"]

Array = np.ndarray[Any, np.dtype[Any]]


def _h5netcdf_version() -> tuple[int, int]:
    parts = str(getattr(h5netcdf, "__version__", "0.0")).split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (0, 0)


#: Before 1.4, h5netcdf refused complex variables unless the file is declared invalid netCDF.
_FILE_OPTIONS: dict[str, Any] = {} if _h5netcdf_version() >= (1, 4) else {"invalid_netcdf": True}


@dataclass
class ConversionSummary:
    """What :func:`write_log` wrote: variable name → (dimensions, Labber channel name)."""

    variables: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)
    coordinates: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def variable_name(channel: str) -> str:
    """The netCDF name of a Labber channel (``/`` is reserved for groups in netCDF)."""
    return channel.replace("/", "_").strip() or "channel"


class _Names:
    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, base: str) -> str:
        base = variable_name(base)
        name, n = base, 1
        while name in self.used:
            n += 1
            name = f"{base}_{n}"
        self.used.add(name)
        return name


def _pad_points(flat: Array, capacity: int, what: str, summary: ConversionSummary) -> Array:
    """``flat`` (acquisition order along axis 0) padded with NaN (or cut) to ``capacity``."""
    count = flat.shape[0]
    if count == capacity:
        return flat
    if count > capacity:
        extra = flat[capacity:]
        if np.any(~np.isnan(extra.real if np.iscomplexobj(extra) else extra)):
            summary.warnings.append(f"{what}: {count - capacity} values beyond the grid dropped")
        return flat[:capacity]
    pad_shape = (capacity - count, *flat.shape[1:])
    padding = np.full(pad_shape, np.nan, dtype=flat.dtype)
    return np.concatenate([flat, padding], axis=0)


def _column_values(data: h5py.Dataset, column_index: int, imag_index: int | None) -> Array:
    """Acquisition-ordered values of one column (complex for a Real/Imaginary pair)."""
    real = np.asarray(data[:, column_index, :], dtype=np.float64).ravel(order="F")
    if imag_index is not None:
        imag = np.asarray(data[:, imag_index, :], dtype=np.float64).ravel(order="F")
        values: Array = real + 1j * imag
    else:
        values = real
    return values


def _axis_values(rows: Array) -> tuple[Array, bool]:
    """One axis from rows of repeated values: the first non-NaN per position, and whether every
    row agrees with it where it has values (NaN-aware)."""
    if rows.shape[0] == 0:
        return np.full(rows.shape[1], np.nan), True
    known = ~np.isnan(rows.real if np.iscomplexobj(rows) else rows)
    first = np.argmax(known, axis=0)
    axis = rows[first, np.arange(rows.shape[1])].astype(rows.dtype)
    axis[~known.any(axis=0)] = np.nan
    agrees = np.where(known, rows == axis[np.newaxis, :], True)
    return axis, bool(np.all(agrees))


def _attrs(nc_obj: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, bool):
            value = np.int8(value)
        nc_obj.attrs[key] = value


def _channel_attrs(name: str, meta: ChannelMeta | None, kind: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "units": meta.unit if meta else "",
        "long_name": name,
        "labber_channel": name,
        "labber_kind": kind,
    }
    if meta and meta.instrument:
        attrs["instrument"] = meta.instrument
    if meta and meta.quantity:
        attrs["quantity"] = meta.quantity
    return attrs


def _global_attrs(header: LabberHeader, layout: LogLayout, source_name: str) -> dict[str, Any]:
    created = ""
    if header.creation_time is not None:
        created = dt.datetime.fromtimestamp(header.creation_time, tz=dt.timezone.utc).isoformat()
    return {
        "title": header.log_name,
        "log_name": header.log_name,
        "labber_log": layout.label,
        "creation_time": float(header.creation_time)
        if header.creation_time is not None
        else math.nan,
        "creation_time_utc": created,
        "comment": header.comment,
        "star": header.star,
        "labber_version": header.version,
        "completed": layout.completed,
        "step_dimensions": np.asarray(layout.dims or [1], dtype=np.int64),
        "step_channels": ", ".join(layout.dim_channels),
        "source_file": source_name,
        "source": "Labber",
        "project": ", ".join(header.project),
        "tags": ", ".join(header.tags),
        "user": ", ".join(header.user),
    }


def write_log(
    target: Path,
    handle: h5py.File,
    group: h5py.Group,
    layout: LogLayout,
    header: LabberHeader,
    source_name: str,
) -> ConversionSummary:
    """Write one log of an open Labber file to ``target`` (HDF5-netCDF, complex kept complex)."""
    header = log_header(handle, group, header)  # an appended Log_N has its own creation_time
    summary = ConversionSummary(warnings=list(layout.warnings))
    channels = channel_table(handle, group)
    capacity = layout.capacity
    grid_shape = tuple(reversed(layout.dims))
    names = _Names()
    dim_names = [names.take(c) for c in layout.dim_channels]
    grid_dims = tuple(reversed(dim_names))
    data = data_array(group)
    column_by_name = {c.name: c for c in layout.columns}

    with h5netcdf.File(target, "w", **_FILE_OPTIONS) as nc:
        _attrs(nc, _global_attrs(header, layout, source_name))
        for name, size in zip(dim_names, layout.dims, strict=True):
            nc.dimensions[name] = size

        # Step channels: one coordinate per dimension, from the channel's own column.
        dim_columns: set[str] = set()
        for k, (channel, dim) in enumerate(zip(layout.dim_channels, dim_names, strict=True)):
            column = column_by_name.get(channel)
            if column is None or data is None or column.is_complex:
                if channel == "point":
                    continue
                planned = step_config_values(handle, group, channel)
                if planned is not None and planned.shape == (layout.dims[k],):
                    var = nc.create_variable(dim, (dim,), dtype=np.float64, data=planned)
                    _attrs(var, _channel_attrs(channel, channels.get(channel), "step"))
                    summary.coordinates[dim] = channel
                else:
                    summary.warnings.append(
                        f"{layout.label}: step channel {channel!r} has no data column; "
                        "its dimension has no coordinate values"
                    )
                continue
            flat = _column_values(data, column.index, None)
            grid = _pad_points(flat, capacity, channel, summary).reshape(grid_shape)
            axis = len(grid_shape) - 1 - k
            rows = np.moveaxis(grid, axis, -1).reshape(-1, layout.dims[k])
            values, consistent = _axis_values(rows)
            if np.isnan(values).any():
                # Not measured yet (running log): the set values from the step configuration.
                planned = step_config_values(handle, group, channel)
                if planned is not None and planned.shape == values.shape:
                    values = np.where(np.isnan(values), planned, values)
            dim_columns.add(channel)
            if consistent:
                var = nc.create_variable(dim, (dim,), dtype=np.float64, data=values)
                _attrs(var, _channel_attrs(channel, channels.get(channel), "step"))
                summary.coordinates[dim] = channel
            else:
                summary.warnings.append(
                    f"{layout.label}: step channel {channel!r} does not repeat the same values "
                    "along its dimension; stored as a variable, the dimension has no coordinate"
                )
                full = names.take(f"{channel} values")
                var = nc.create_variable(full, grid_dims, dtype=np.float64, data=grid)
                _attrs(var, _channel_attrs(channel, channels.get(channel), "step"))
                summary.variables[full] = (grid_dims, channel)

        # Every other column: log channels and step channels driven by relations.
        if data is not None:
            for column in layout.columns:
                if column.name in dim_columns:
                    continue
                flat = _column_values(data, column.index, column.imag_index)
                grid = _pad_points(flat, capacity, column.name, summary).reshape(grid_shape)
                name = names.take(column.name)
                kind = "log" if column.name in layout.log_list else "step"
                var = nc.create_variable(name, grid_dims, dtype=grid.dtype, data=grid)
                _attrs(var, _channel_attrs(column.name, channels.get(column.name), kind))
                summary.variables[name] = (grid_dims, column.name)

        # Traces: the step grid plus the trace's own axis.
        trace_dims: dict[str, tuple[Array, str]] = {}
        traces_group = group.get("Traces")
        for trace in layout.traces:
            _write_trace(
                nc,
                traces_group,
                trace,
                capacity,
                grid_shape,
                grid_dims,
                names,
                trace_dims,
                channels.get(trace.name),
                summary,
                layout,
            )
        stamps = traces_group.get("Time stamp") if isinstance(traces_group, h5py.Group) else None
        if isinstance(stamps, h5py.Dataset) and stamps.size:
            flat = np.asarray(stamps[()], dtype=np.float64).reshape(-1)
            grid = _pad_points(flat, capacity, "Time stamp", summary).reshape(grid_shape)
            name = names.take("Time stamp")
            var = nc.create_variable(name, grid_dims, dtype=np.float64, data=grid)
            _attrs(var, {"units": "s", "long_name": "Time stamp", "labber_kind": "trace time"})
            summary.variables[name] = (grid_dims, "Time stamp")
        outer = time_stamps(group, layout)
        if outer is not None:
            name = names.take(
                "Time stamp" if "Time stamp" not in names.used else "Time stamp (steps)"
            )
            if outer.on_grid:
                stamp_dims = grid_dims[:-1]
            else:
                stamp_dims = (names.take(f"{name} index"),)
                nc.dimensions[stamp_dims[0]] = outer.values.shape[0]
            var = nc.create_variable(name, stamp_dims, dtype=np.float64, data=outer.values)
            _attrs(
                var,
                {
                    "units": "s",
                    "long_name": "Time stamp",
                    "labber_kind": "step time",
                    "labber_path": "Data/Time stamp",
                },
            )
            summary.variables[name] = (stamp_dims, "Time stamp")
    return summary


def _write_trace(
    nc: Any,
    traces_group: Any,
    trace: TraceInfo,
    capacity: int,
    grid_shape: tuple[int, ...],
    grid_dims: tuple[str, ...],
    names: _Names,
    trace_dims: dict[str, tuple[Array, str]],
    meta: ChannelMeta | None,
    summary: ConversionSummary,
    layout: LogLayout,
) -> None:
    dataset = traces_group[trace.name]
    points = trace.points
    real = np.asarray(dataset[:, 0, :], dtype=np.float64).T  # (entries, points)
    values: Array = real
    if trace.is_complex:
        values = real + 1j * np.asarray(dataset[:, 1, :], dtype=np.float64).T
    counts = traces_group.get(f"{trace.name}_N")
    if isinstance(counts, h5py.Dataset) and counts.size:
        n = np.asarray(counts[()]).reshape(-1).astype(np.int64)
        n = np.broadcast_to(n, (trace.entries,)) if n.size == 1 else n[: trace.entries]
        if n.size == trace.entries:
            short = np.arange(points)[np.newaxis, :] >= n[:, np.newaxis]
            values = values.copy()
            values[short] = np.nan

    # The trace's axis: explicit x values, else t0 + dt * i.
    axis_rows: Array | None = None
    if trace.has_x:
        axis_rows = np.asarray(dataset[:, dataset.shape[1] - 1, :], dtype=np.float64).T
    else:
        t0dt = traces_group.get(f"{trace.name}_t0dt")
        if isinstance(t0dt, h5py.Dataset) and t0dt.size >= 2:
            pairs = np.asarray(t0dt[()], dtype=np.float64).reshape(-1, 2)[: trace.entries]
            axis_rows = pairs[:, :1] + pairs[:, 1:2] * np.arange(points)[np.newaxis, :]
    x_label = trace.x_name or f"{trace.name} x"
    dim: str | None = None
    axis_values: Array | None = None
    consistent = True
    if axis_rows is not None and axis_rows.shape[0]:
        axis_values, consistent = _axis_values(axis_rows)
        for existing, (known, unit) in trace_dims.items():
            if (
                unit == trace.x_unit
                and known.shape == axis_values.shape
                and np.array_equal(known, axis_values, equal_nan=True)
                and existing.startswith(variable_name(x_label))
            ):
                dim = existing
                break
    if dim is None:
        dim = names.take(x_label)
        nc.dimensions[dim] = points
        if axis_values is not None:
            coord = nc.create_variable(dim, (dim,), dtype=np.float64, data=axis_values)
            _attrs(
                coord,
                {"units": trace.x_unit, "long_name": x_label, "labber_kind": "trace axis"},
            )
            trace_dims[dim] = (axis_values, trace.x_unit)
            summary.coordinates[dim] = x_label
    dims = (*grid_dims, dim)
    padded = _pad_points(values, capacity, trace.name, summary).reshape((*grid_shape, points))
    name = names.take(trace.name)
    var = nc.create_variable(name, dims, dtype=padded.dtype, data=padded)
    attrs = _channel_attrs(trace.name, meta, "trace")
    attrs["x_name"] = trace.x_name
    attrs["x_unit"] = trace.x_unit
    _attrs(var, attrs)
    summary.variables[name] = (dims, trace.name)
    if axis_rows is not None and not consistent:
        summary.warnings.append(
            f"{layout.label}: trace {trace.name!r} has a different x axis per entry; "
            f"stored as {trace.name} x values"
        )
        full = names.take(f"{trace.name} x values")
        grid = _pad_points(axis_rows, capacity, trace.name, summary).reshape((*grid_shape, points))
        var = nc.create_variable(full, dims, dtype=np.float64, data=grid)
        _attrs(var, {"units": trace.x_unit, "long_name": f"{x_label} of {trace.name}"})
        summary.variables[full] = (dims, trace.name)
