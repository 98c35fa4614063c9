"""Reading Labber log files (HDF5) with h5py, never disturbing the writer.

A Labber log file holds, at its root:

- attributes ``log_name``, ``creation_time`` (POSIX seconds), ``comment``, ``star``, ``version`` and
  ``Step dimensions`` (points per entry of the step list);
- ``Channels``: a compound table of every channel (name, instrument, quantity, physical unit, ...);
- ``Data/Data``: a 3-D float array ``(points of the first step, columns, remaining points)`` with
  ``Data/Channel names`` naming each column (``(name, info)``; a complex channel is two columns
  with info ``Real`` and ``Imaginary``); attributes ``Step index``, ``Step dimensions``,
  ``Completed`` on ``Data``;
- ``Traces``: vector channels ``<name>`` shaped ``(points, values, entries)`` with ``<name>_N``
  (points per entry) and ``<name>_t0dt`` (start and step of the x axis per entry);
- ``Step list`` / ``Step config`` (one group per step channel; a ``/`` in a channel name makes
  nested groups), ``Log list``, ``Instrument config``, ``Instruments``, ``Settings``, ``Tags``;
- additional logs appended to the same file as groups ``Log_2``, ``Log_3``, ... with their own
  ``Data`` and ``Traces`` (and, when they differ, their own step tables) and their own
  ``creation_time`` attribute;
- ``Data/Time stamp``: one POSIX time per outer step (per entry along the last axis of
  ``Data/Data``), in each log.

Files are opened read-only with ``locking=False`` (HDF5 file locks would make the writer fail).
A file that is still changing is first copied into a private work folder (see
:func:`private_copy`) and read from there.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from etiket_sync_agent.errors import SyncError

__all__ = [
    "HDF5_MAGIC",
    "Column",
    "LabberHeader",
    "LogLayout",
    "TimeStamps",
    "TraceInfo",
    "channel_table",
    "check_hdf5_signature",
    "decode",
    "group_entries",
    "is_completed",
    "jsonable",
    "log_groups",
    "log_header",
    "log_layout",
    "open_file",
    "open_labber",
    "private_copy",
    "read_header",
    "step_config_values",
    "stored_string_list",
    "string_list",
    "table_rows",
    "time_stamps",
]

#: The HDF5 superblock signature.
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
Array = np.ndarray[Any, np.dtype[Any]]
_LOG_GROUP = re.compile(r"^Log_(\d+)$")
_TRACE_SUFFIXES = ("_N", "_t0dt")
_TIME_STAMP = "Time stamp"


# -- plain values -------------------------------------------------------------------------------
def decode(value: Any) -> str:
    """A str from an HDF5 string value (bytes, numpy bytes/str, 0-d arrays)."""
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            value = value[()]
        elif value.size == 1:
            value = value.reshape(-1)[0]
        elif value.size == 0:
            return ""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def string_list(value: Any) -> list[str]:
    """A list of non-empty strings from a Tags-like attribute.

    Labber stores an empty list as an empty float array, one string as a plain string and several
    as an array of strings.
    """
    if value is None:
        return []
    if isinstance(value, (str, bytes, np.bytes_, np.str_)):
        text = decode(value).strip()
        return [text] if text else []
    array = np.asarray(value)
    if array.size == 0 or array.dtype.kind in "fiucb":
        return []
    texts = [decode(v).strip() for v in array.reshape(-1)]
    return [t for t in texts if t]


def stored_string_list(value: Any) -> list[str]:
    """A Tags-like attribute as stored: like :func:`string_list`, but empty strings are kept.

    ``['']`` (an array holding one empty string, or an empty plain string) stays ``['']``; only
    Labber's empty float array (and a missing attribute) is ``[]``.
    """
    if value is None:
        return []
    if isinstance(value, (str, bytes, np.bytes_, np.str_)):
        return [decode(value)]
    array = np.asarray(value)
    if array.size == 0 or array.dtype.kind in "fiucb":
        return []
    return [decode(v) for v in array.reshape(-1)]


def _finite_or_text(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def jsonable(value: Any) -> Any:
    """A strict-JSON-compatible copy of an HDF5 value (NaN/inf become strings, complex a dict)."""
    if isinstance(value, (bytes, np.bytes_)):
        return decode(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _finite_or_text(float(value))
    if isinstance(value, (complex, np.complexfloating)):
        c = complex(value)
        return {"real": _finite_or_text(c.real), "imag": _finite_or_text(c.imag)}
    if isinstance(value, np.void) and value.dtype.names:
        return {name: jsonable(value[name]) for name in value.dtype.names}
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return jsonable(value[()])
        return [jsonable(v) for v in value]
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (str, int, float)) or value is None:
        return value
    return str(value)


def table_rows(dataset: Any) -> list[dict[str, Any]]:
    """Rows of a compound HDF5 table as JSON-ready dicts (field name → value)."""
    if not isinstance(dataset, h5py.Dataset):
        return []
    values = dataset[()]
    names = dataset.dtype.names
    if not names:
        return [{"value": jsonable(v)} for v in np.atleast_1d(values)]
    return [{name: jsonable(row[name]) for name in names} for row in np.atleast_1d(values)]


def attrs_dict(obj: Any) -> dict[str, Any]:
    """The attributes of an HDF5 object as a JSON-ready dict (unreadable ones as a note)."""
    result: dict[str, Any] = {}
    for key in obj.attrs:
        try:
            result[str(key)] = jsonable(obj.attrs[key])
        except (OSError, TypeError, ValueError) as exc:  # exotic types h5py cannot read
            result[str(key)] = f"<unreadable attribute: {exc}>"
    return result


def group_entries(group: Any) -> dict[str, dict[str, Any]]:
    """Every group below ``group`` that holds attributes or datasets, by its relative path.

    Labber turns a ``/`` in a channel or instrument name into nested groups; the relative path
    gives the original name back. Each entry has the group's ``attributes`` and its compound
    tables (``Step items``, ``Relation parameters``, ...) as lists of rows.
    """
    found: dict[str, dict[str, Any]] = {}
    if not isinstance(group, h5py.Group):
        return found

    def walk(node: h5py.Group, prefix: str) -> None:
        datasets: dict[str, Any] = {}
        for name in node:
            child = node.get(name)
            if isinstance(child, h5py.Group):
                walk(child, f"{prefix}{name}/")
            elif isinstance(child, h5py.Dataset):
                datasets[name] = table_rows(child)
        attributes = attrs_dict(node)
        if prefix and (datasets or attributes):
            entry: dict[str, Any] = {"attributes": attributes}
            entry.update(datasets)
            found[prefix.rstrip("/")] = entry

    walk(group, "")
    return found


# -- opening ------------------------------------------------------------------------------------
def check_hdf5_signature(path: Path) -> None:
    """Raise :class:`SyncError` unless ``path`` starts like an HDF5 file.

    Uses ordinary ``open`` so permission problems surface as clear messages. The superblock may
    follow a user block of 512, 1024, 2048, ... bytes.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            if head == HDF5_MAGIC:
                return
            size = os.fstat(handle.fileno()).st_size
            offset = 512
            while offset + 8 <= size and offset <= 1 << 20:
                handle.seek(offset)
                if handle.read(8) == HDF5_MAGIC:
                    return
                offset *= 2
    except FileNotFoundError:
        raise SyncError(f"{path} no longer exists") from None
    except PermissionError:
        raise SyncError(f"permission denied reading {path}") from None
    except IsADirectoryError:
        raise SyncError(f"{path} is a folder, not a Labber log file") from None
    if size == 0:
        raise SyncError(f"{path.name} is empty (0 bytes): not a Labber log file (yet)")
    raise SyncError(
        f"{path.name} is not an HDF5 file (it starts with {head[:8]!r}, not the HDF5 signature); "
        "Labber log files are HDF5"
    )


def open_file(path: Path) -> h5py.File:
    """Open a Labber file read-only without file locking; errors become :class:`SyncError`."""
    check_hdf5_signature(path)
    try:
        return h5py.File(path, "r", locking=False)
    except FileNotFoundError:
        raise SyncError(f"{path} no longer exists") from None
    except PermissionError:
        raise SyncError(f"permission denied reading {path}") from None
    except OSError as exc:
        raise SyncError(
            f"{path.name} cannot be read as HDF5 (truncated or damaged?): {exc}"
        ) from None


@contextmanager
def open_labber(path: Path) -> Iterator[h5py.File]:
    """:func:`open_file` as a context manager."""
    handle = open_file(path)
    try:
        yield handle
    finally:
        handle.close()


def private_copy(
    source: Path, target: Path, *, attempts: int = 5, pause: float = 0.2
) -> os.stat_result:
    """Copy a file that may be growing, until a copy matches one unchanged size and mtime.

    Returns the source's stat the copy matches. The source is only read. Raises
    :class:`SyncError` when it changed during every attempt.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(attempts):
        try:
            before = os.stat(source)
            shutil.copyfile(source, target)
            after = os.stat(source)
        except FileNotFoundError:
            raise SyncError(f"{source} vanished while it was copied") from None
        except PermissionError:
            raise SyncError(f"permission denied reading {source}") from None
        same = (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns)
        if same and target.stat().st_size == after.st_size:
            return after
        if attempt + 1 < attempts:
            time.sleep(pause)
    raise SyncError(
        f"{source.name} kept changing while it was copied ({attempts} attempts); "
        "it is read again on the next pass"
    )


# -- the header ---------------------------------------------------------------------------------
@dataclass
class LabberHeader:
    """The root attributes and tags of a log file."""

    log_name: str
    creation_time: float | None
    comment: str
    star: bool
    version: str
    project: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    user: list[str] = field(default_factory=list)
    #: ``Tags`` attributes ``project``, ``tags``, ``user`` as stored (empty strings kept).
    stored_tags: dict[str, list[str]] = field(default_factory=dict)


def _creation_time(raw_time: Any) -> float | None:
    if raw_time is None:
        return None
    try:
        value = float(np.asarray(raw_time).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return None
    return value if math.isfinite(value) else None


def log_header(handle: h5py.File, group: h5py.Group, header: LabberHeader) -> LabberHeader:
    """The header of one log: an appended ``Log_N`` has its own ``creation_time`` (and
    ``log_name``/``comment`` when it carries them); the root log is the file's header."""
    if group.name == "/":
        return header
    attrs = group.attrs
    own_time = _creation_time(attrs.get("creation_time"))
    own_name = decode(attrs["log_name"]).strip() if "log_name" in attrs else ""
    return dataclasses.replace(
        header,
        creation_time=own_time if own_time is not None else header.creation_time,
        log_name=own_name or header.log_name,
        comment=decode(attrs["comment"]) if "comment" in attrs else header.comment,
    )


def read_header(handle: h5py.File) -> LabberHeader:
    """Root attributes and ``Tags`` of an open file (missing ones get neutral values)."""
    attrs = handle.attrs
    creation_time = _creation_time(attrs.get("creation_time"))
    star_raw = attrs.get("star", False)
    try:
        star = bool(np.asarray(star_raw).reshape(-1)[0]) if np.asarray(star_raw).size else False
    except (TypeError, ValueError):
        star = False
    tags_group = handle.get("Tags")
    tag_attrs = tags_group.attrs if isinstance(tags_group, h5py.Group) else {}
    return LabberHeader(
        log_name=decode(attrs.get("log_name", "")).strip(),
        creation_time=creation_time,
        comment=decode(attrs.get("comment", "")),
        star=star,
        version=decode(attrs.get("version", "")),
        project=string_list(tag_attrs.get("Project")),
        tags=string_list(tag_attrs.get("Tags")),
        user=string_list(tag_attrs.get("User")),
        stored_tags={
            "project": stored_string_list(tag_attrs.get("Project")),
            "tags": stored_string_list(tag_attrs.get("Tags")),
            "user": stored_string_list(tag_attrs.get("User")),
        },
    )


def log_groups(handle: h5py.File) -> list[tuple[str, h5py.Group]]:
    """``("Log_1", root)`` followed by every ``Log_N`` group in numeric order."""
    extra = []
    for name in handle:
        match = _LOG_GROUP.match(name)
        if match and isinstance(handle.get(name), h5py.Group) and int(match.group(1)) >= 2:
            extra.append((int(match.group(1)), name))
    return [("Log_1", handle)] + [(name, handle[name]) for _, name in sorted(extra)]


def _own_or_root(group: h5py.Group, root: h5py.File, name: str) -> Any:
    own = group.get(name)
    return own if own is not None else root.get(name)


def is_completed(group: h5py.Group) -> bool:
    """The ``Completed`` flag of a log's ``Data`` (files without the flag count as complete)."""
    data = group.get("Data")
    if not isinstance(data, h5py.Group) or "Completed" not in data.attrs:
        return True
    return bool(np.asarray(data.attrs["Completed"]).reshape(-1)[0])


# -- channels -----------------------------------------------------------------------------------
@dataclass
class ChannelMeta:
    """One row of the ``Channels`` table."""

    name: str
    unit: str = ""
    instrument: str = ""
    quantity: str = ""


def _field(row: Any, names: tuple[str, ...], *candidates: str, position: int) -> Any:
    for candidate in candidates:
        if candidate in names:
            return row[candidate]
    return row[position] if position < len(names) else ""


def channel_table(handle: h5py.File, group: h5py.Group | None = None) -> dict[str, ChannelMeta]:
    """Channel name → metadata from ``Channels`` (the log's own table first, then the root's)."""
    table = _own_or_root(group, handle, "Channels") if group is not None else handle.get("Channels")
    result: dict[str, ChannelMeta] = {}
    if not isinstance(table, h5py.Dataset) or not table.dtype.names:
        return result
    names = tuple(table.dtype.names)
    for row in np.atleast_1d(table[()]):
        name = decode(_field(row, names, "name", position=0))
        result[name] = ChannelMeta(
            name=name,
            unit=decode(_field(row, names, "unitPhys", "unit", position=3)),
            instrument=decode(_field(row, names, "instrument", position=1)),
            quantity=decode(_field(row, names, "quantity", position=2)),
        )
    return result


def _first_column_names(table: Any) -> list[str]:
    if not isinstance(table, h5py.Dataset):
        return []
    rows = np.atleast_1d(table[()])
    if table.dtype.names:
        return [decode(row[0]) for row in rows]
    return [decode(row) for row in rows]


# -- layout of one log --------------------------------------------------------------------------
@dataclass
class Column:
    """A scalar channel in ``Data/Data``: one column, or a Real/Imaginary pair."""

    name: str
    index: int
    imag_index: int | None = None

    @property
    def is_complex(self) -> bool:
        return self.imag_index is not None


@dataclass
class TraceInfo:
    """A vector channel in ``Traces``."""

    name: str
    is_complex: bool
    has_x: bool
    points: int
    entries: int
    x_name: str
    x_unit: str


@dataclass
class LogLayout:
    """How one log's arrays map onto dimensions.

    ``dims``/``dim_channels`` are Labber's order: the first step (innermost loop) first.
    ``capacity`` is the number of points of the full grid; arrays with fewer points (a running or
    aborted log) are padded with NaN.
    """

    label: str
    dims: list[int]
    dim_channels: list[str]
    columns: list[Column]
    traces: list[TraceInfo]
    step_list: list[str]
    log_list: list[str]
    data_shape: tuple[int, ...] | None
    completed: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def capacity(self) -> int:
        return int(math.prod(self.dims)) if self.dims else 1

    @property
    def written_points(self) -> int:
        if self.data_shape is None or len(self.data_shape) != 3:
            return max((t.entries for t in self.traces), default=0)
        return int(self.data_shape[0] * self.data_shape[2])


def _columns(data_group: Any) -> list[Column]:
    table = data_group.get("Channel names") if isinstance(data_group, h5py.Group) else None
    if not isinstance(table, h5py.Dataset):
        return []
    rows = np.atleast_1d(table[()])
    entries: list[tuple[str, str]] = []
    for row in rows:
        if table.dtype.names:
            name = decode(row[0])
            info = decode(row[1]) if len(table.dtype.names) > 1 else ""
        else:
            name, info = decode(row), ""
        entries.append((name, info.strip()))
    columns: list[Column] = []
    used: set[int] = set()
    for index, (name, info) in enumerate(entries):
        if index in used:
            continue
        if info.lower() == "real":
            imag = next(
                (
                    j
                    for j, (other, other_info) in enumerate(entries)
                    if j not in used and other == name and other_info.lower() == "imaginary"
                ),
                None,
            )
            columns.append(Column(name, index, imag))
            used.add(index)
            if imag is not None:
                used.add(imag)
        elif info.lower() == "imaginary":
            columns.append(Column(f"{name} (imaginary)", index))
            used.add(index)
        else:
            columns.append(Column(name, index))
            used.add(index)
    return columns


def _traces(group: h5py.Group, warnings: list[str], label: str) -> list[TraceInfo]:
    traces_group = group.get("Traces")
    if not isinstance(traces_group, h5py.Group):
        return []
    names = set(traces_group)
    found: list[TraceInfo] = []
    for name in sorted(names):
        dataset = traces_group.get(name)
        if name == _TIME_STAMP or not isinstance(dataset, h5py.Dataset):
            continue
        if any(name.endswith(s) and name[: -len(s)] in names for s in _TRACE_SUFFIXES):
            continue
        if dataset.ndim != 3:
            warnings.append(
                f"{label}: Traces/{name} has shape {dataset.shape}, not (points, values, "
                "entries); it is not converted (the original file holds it)"
            )
            continue
        is_complex = bool(np.asarray(dataset.attrs.get("complex", False)).reshape(-1)[0])
        value_columns = 2 if is_complex else 1
        found.append(
            TraceInfo(
                name=name,
                is_complex=is_complex,
                has_x=dataset.shape[1] > value_columns,
                points=int(dataset.shape[0]),
                entries=int(dataset.shape[2]),
                x_name=decode(dataset.attrs.get("x, name", "")).strip(),
                x_unit=decode(dataset.attrs.get("x, unit", "")).strip(),
            )
        )
    return found


def _int_list(value: Any) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(v) for v in np.asarray(value).reshape(-1)]
    except (TypeError, ValueError):
        return None


def log_layout(handle: h5py.File, label: str, group: h5py.Group) -> LogLayout:
    """Work out the dimensions and channels of one log (the root or a ``Log_N`` group)."""
    warnings: list[str] = []
    step_list = _first_column_names(_own_or_root(group, handle, "Step list"))
    log_list = _first_column_names(_own_or_root(group, handle, "Log list"))
    data_group = group.get("Data")
    data = data_group.get("Data") if isinstance(data_group, h5py.Group) else None
    data_shape = tuple(int(s) for s in data.shape) if isinstance(data, h5py.Dataset) else None
    if data_shape is not None and len(data_shape) != 3:
        raise SyncError(f"{label}: Data/Data has shape {data_shape}, expected 3 dimensions")
    columns = _columns(data_group)
    column_names = [c.name for c in columns]
    traces = _traces(group, warnings, label)

    dims: list[int] = []
    dim_channels: list[str] = []
    data_attrs = data_group.attrs if isinstance(data_group, h5py.Group) else {}
    index = _int_list(data_attrs.get("Step index"))
    sizes = _int_list(data_attrs.get("Step dimensions"))
    root_sizes = _int_list(group.attrs.get("Step dimensions"))
    if root_sizes is None:
        root_sizes = _int_list(handle.attrs.get("Step dimensions"))
    if index is not None and sizes is not None and len(index) == len(sizes):
        for i, size in zip(index, sizes, strict=True):
            if size > 1:
                name = step_list[i] if 0 <= i < len(step_list) else f"step {i}"
                dims.append(size)
                dim_channels.append(name)
    elif root_sizes is not None and len(root_sizes) == len(step_list):
        for name, size in zip(step_list, root_sizes, strict=True):
            if size > 1:
                dims.append(size)
                dim_channels.append(name)
    elif root_sizes is not None:
        stepped = [n for n in step_list if n in column_names]
        for k, size in enumerate(s for s in root_sizes if s > 1):
            dims.append(size)
            dim_channels.append(stepped[k] if k < len(stepped) else f"step {k}")

    layout = LogLayout(
        label=label,
        dims=dims,
        dim_channels=dim_channels,
        columns=columns,
        traces=traces,
        step_list=step_list,
        log_list=log_list,
        data_shape=data_shape,
        completed=is_completed(group),
        warnings=warnings,
    )
    needed = max([layout.written_points] + [t.entries for t in traces])
    if needed > layout.capacity:
        if dims:
            warnings.append(
                f"{label}: step dimensions {dims} do not fit the stored data "
                f"(Data/Data {data_shape}, {needed} points); the data is written along one "
                "'point' dimension instead"
            )
        layout.dims = [needed] if needed > 1 else []
        layout.dim_channels = ["point"] if needed > 1 else []
    return layout


def _row_value(row: Any, names: tuple[str, ...], field_name: str, position: int) -> float:
    value = row[field_name] if field_name in names else row[position]
    return float(np.asarray(value).reshape(-1)[0])


def step_config_values(handle: h5py.File, group: h5py.Group, channel: str) -> Array | None:
    """The values a step channel is set to, from its ``Step config`` items (``None`` when they
    cannot be worked out: non-linear interpolation, unknown layout)."""
    items = None
    for owner in (group, handle):
        config = owner.get("Step config")
        if isinstance(config, h5py.Group):
            candidate = config.get(f"{channel}/Step items")
            if isinstance(candidate, h5py.Dataset):
                items = candidate
                break
    if items is None or not items.dtype.names:
        return None
    names = tuple(items.dtype.names)
    pieces: list[Array] = []
    try:
        for row in np.atleast_1d(items[()]):
            range_type = int(_row_value(row, names, "range_type", 0))
            if range_type == 0:
                pieces.append(np.asarray([_row_value(row, names, "single", 2)]))
                continue
            if range_type == 1:
                start = _row_value(row, names, "start", 3)
                stop = _row_value(row, names, "stop", 4)
            else:
                center = _row_value(row, names, "center", 5)
                span = _row_value(row, names, "span", 6)
                start, stop = center - span / 2, center + span / 2
            count = int(_row_value(row, names, "n_pts", 8))
            interp = int(_row_value(row, names, "interp", 9)) if len(names) > 9 else 0
            if interp != 0 or count < 1:
                return None
            values = np.linspace(start, stop, count)
            if pieces and pieces[-1].size and values.size and pieces[-1][-1] == values[0]:
                values = values[1:]  # a ramp starting where the previous stopped
            pieces.append(values)
    except (IndexError, KeyError, TypeError, ValueError):
        return None
    return np.concatenate(pieces) if pieces else None


def data_array(group: h5py.Group) -> h5py.Dataset | None:
    """A log's ``Data/Data`` dataset, if it has one."""
    data_group = group.get("Data")
    data = data_group.get("Data") if isinstance(data_group, h5py.Group) else None
    return data if isinstance(data, h5py.Dataset) else None


@dataclass
class TimeStamps:
    """A log's ``Data/Time stamp``: one POSIX time per outer step.

    ``values`` is shaped like the outer steps of the grid, outermost first (the grid's dimensions
    without the innermost step), padded with NaN for steps not reached; ``on_grid`` is False when
    the stamps do not fit the grid (then ``values`` is the flat list as stored).
    """

    values: Array
    on_grid: bool


def time_stamps(group: h5py.Group, layout: LogLayout) -> TimeStamps | None:
    """``Data/Time stamp`` of a log (the root or a ``Log_N`` group), if it has one."""
    data_group = group.get("Data")
    stamps = data_group.get("Time stamp") if isinstance(data_group, h5py.Group) else None
    if not isinstance(stamps, h5py.Dataset) or not stamps.size:
        return None
    try:
        flat = np.asarray(stamps[()], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        layout.warnings.append(f"{layout.label}: Data/Time stamp is not numeric; not converted")
        return None
    first = layout.dims[0] if layout.dims else 1
    inner_matches = layout.data_shape is None or layout.data_shape[0] == first
    outer = layout.dims[1:] if layout.dims else []
    capacity = int(math.prod(outer)) if outer else 1
    if not inner_matches or "point" in layout.dim_channels or flat.size > capacity:
        return TimeStamps(flat, on_grid=False)
    padded = np.full(capacity, np.nan)
    padded[: flat.size] = flat
    return TimeStamps(padded.reshape(tuple(reversed(outer))), on_grid=True)
