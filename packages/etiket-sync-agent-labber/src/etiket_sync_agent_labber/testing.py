"""Generators of Labber log files for tests, benchmarks and the demo (h5py only, no pytest needed).

The files follow the layout Labber writes (see :mod:`etiket_sync_agent_labber.reader`): root
attributes, ``Channels``, ``Data/Data`` with ``Data/Channel names`` (complex channels as
Real/Imaginary column pairs, the last block NaN-padded), ``Traces`` with ``_N``/``_t0dt``,
``Step list``/``Step config`` (a ``/`` in a channel name makes nested groups), ``Log list``,
``Instrument config``, ``Instruments``, ``Settings``, ``Tags`` and appended logs ``Log_2``, ....

Every value is a deterministic function of the spec, so :func:`expected_arrays` gives the ground
truth a converted file must match. A log can be written partly (``written`` points, ``Completed``
false) and grown in place with :func:`append_points`, the way Labber grows a running log.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

__all__ = [
    "LabberFileSpec",
    "LogChannel",
    "LogSpec",
    "StepChannel",
    "append_points",
    "demo_spec",
    "expected_arrays",
    "finish_log",
    "labber_relpath",
    "make_demo_source",
    "write_database_file",
    "write_labber_file",
    "write_not_hdf5",
    "write_truncated",
]

Array = np.ndarray[Any, np.dtype[Any]]
_STR = h5py.string_dtype()


@dataclass
class StepChannel:
    """A channel of the step list: swept (several values), constant (one) or a relation."""

    name: str
    unit: str
    values: list[float]
    #: index (in the log's steps) of the swept channel this one follows as ``factor * value``
    relation_of: int | None = None
    factor: float = 1.0


@dataclass
class LogChannel:
    """A logged channel: a scalar (``trace_points == 0``) or a trace, real or complex."""

    name: str
    unit: str
    is_complex: bool = False
    trace_points: int = 0
    x_name: str = "Time"
    x_unit: str = "s"
    dt: float = 1e-9
    #: store the x values as an extra trace column instead of ``_t0dt``
    explicit_x: bool = False


@dataclass
class LogSpec:
    """One log (the root, or an appended ``Log_N``)."""

    steps: list[StepChannel]
    channels: list[LogChannel]
    #: An appended log's own ``creation_time`` (written on its ``Log_N`` group); None: not written.
    creation_time: float | None = None

    @property
    def swept(self) -> list[StepChannel]:
        return [s for s in self.steps if len(s.values) > 1 and s.relation_of is None]

    @property
    def dims(self) -> list[int]:
        """Labber order: innermost loop first."""
        return [len(s.values) for s in self.swept]

    @property
    def capacity(self) -> int:
        return int(math.prod(self.dims)) if self.dims else 1


@dataclass
class LabberFileSpec:
    """A whole log file."""

    log_name: str
    creation_time: float
    logs: list[LogSpec]
    comment: str = ""
    star: bool = False
    #: A str is stored as Labber stores one value; a list (e.g. ``[""]``) as an array of strings.
    project: str | list[str] = ""
    tags: list[str] = field(default_factory=list)
    user: str | list[str] = ""
    seed: int = 0
    settings: dict[str, Any] = field(
        default_factory=lambda: {
            "Time per point": 0.01,
            "Arm trig mode": False,
            "Limit hardware looping": True,
            "Log parallel": False,
            "Trig in loop": "None",
        }
    )


# -- values ---------------------------------------------------------------------------------------
def _step_indices(dims: list[int], count: int) -> list[Array]:
    points = np.arange(count)
    stride = 1
    indices = []
    for size in dims:
        indices.append((points // stride) % size)
        stride *= size
    return indices


def _step_values(log: LogSpec, count: int) -> dict[str, Array]:
    """Acquisition-ordered values of every swept and relation channel."""
    indices = _step_indices(log.dims, count)
    swept = log.swept
    values: dict[str, Array] = {}
    for k, step in enumerate(swept):
        values[step.name] = np.asarray(step.values, dtype=np.float64)[indices[k]]
    for step in log.steps:
        if step.relation_of is not None:
            source = log.steps[step.relation_of]
            values[step.name] = step.factor * values[source.name]
    return values


def _scalar(log: LogSpec, channel_index: int, count: int, seed: int) -> Array:
    base = np.zeros(count)
    for k, step in enumerate(log.swept):
        scale = max(float(np.max(np.abs(step.values))), 1e-30)
        vals = _step_values(log, count)[step.name]
        base = base + np.sin(1.7 * (k + 1) * vals / scale) + 0.01 * k
    level = 0.1 * (channel_index + 1) + 0.001 * seed
    values: Array = base + level + 0.05 * np.cos(np.arange(count) * 0.7 + seed)
    if log.channels[channel_index].is_complex:
        values = values * np.exp(1j * (0.3 * np.arange(count) + channel_index))
    return values


def _trace(log: LogSpec, channel_index: int, count: int, seed: int) -> Array:
    channel = log.channels[channel_index]
    t = np.arange(channel.trace_points)[np.newaxis, :]
    p = np.arange(count)[:, np.newaxis]
    values: Array = np.sin(0.2 * t + 0.1 * p + seed) * (1 + 0.01 * p)
    if channel.is_complex:
        values = values * np.exp(1j * 0.05 * t)
    return values


def _t0dt(log: LogSpec, channel: LogChannel, count: int) -> Array:
    pairs = np.zeros((count, 2))
    pairs[:, 1] = channel.dt
    return pairs


def expected_arrays(
    spec: LabberFileSpec, log_index: int = 0, written: int | None = None
) -> dict[str, Array]:
    """Ground truth of one log: Labber channel name → array on the converted grid.

    The grid is the swept channels' sizes, outermost first (the reverse of Labber's order), plus
    the trace axis for traces; points after ``written`` are NaN. Swept channels map to their 1-D
    values (the coordinate).
    """
    log = spec.logs[log_index]
    capacity = log.capacity
    count = capacity if written is None else written
    shape = tuple(reversed(log.dims))
    result: dict[str, Array] = {}

    def grid(flat: Array, extra: tuple[int, ...] = ()) -> Array:
        full = np.full((capacity, *extra), np.nan, dtype=flat.dtype)
        full[:count] = flat
        return full.reshape((*shape, *extra))

    for step in log.swept:
        result[step.name] = np.asarray(step.values, dtype=np.float64)
    steps = _step_values(log, count)
    for step in log.steps:
        if step.relation_of is not None:
            result[step.name] = grid(steps[step.name])
    for index, channel in enumerate(log.channels):
        if channel.trace_points:
            result[channel.name] = grid(
                _trace(log, index, count, spec.seed), (channel.trace_points,)
            )
        else:
            result[channel.name] = grid(_scalar(log, index, count, spec.seed))
    return result


# -- writing --------------------------------------------------------------------------------------
def _instrument_of(channel: str) -> tuple[str, str]:
    instrument, _, quantity = channel.partition(" - ")
    return (instrument, quantity) if quantity else ("Manual", channel)


def _instrument_id(instrument: str) -> str:
    return f"{instrument} - IP: 192.168.1.{len(instrument) % 200 + 10}, {instrument} at localhost"


def _compound(
    group: Any, name: str, fields: list[tuple[str, Any]], rows: list[tuple[Any, ...]]
) -> None:
    dtype = np.dtype(fields)
    array = np.empty(len(rows), dtype=dtype)
    for i, row in enumerate(rows):
        array[i] = row
    group.create_dataset(name, data=array)


def _columns(log: LogSpec) -> list[tuple[str, str]]:
    columns = [(s.name, "") for s in log.swept]
    columns += [(s.name, "") for s in log.steps if s.relation_of is not None]
    for channel in log.channels:
        if channel.trace_points:
            continue
        if channel.is_complex:
            columns += [(channel.name, "Real"), (channel.name, "Imaginary")]
        else:
            columns.append((channel.name, ""))
    return columns


def _column_block(spec: LabberFileSpec, log: LogSpec, start: int, stop: int) -> Array:
    """Values of points [start, stop) as rows x columns."""
    count = stop
    steps = _step_values(log, count)
    cols: list[Array] = []
    for step in log.swept:
        cols.append(steps[step.name])
    for step in log.steps:
        if step.relation_of is not None:
            cols.append(steps[step.name])
    for index, channel in enumerate(log.channels):
        if channel.trace_points:
            continue
        values = _scalar(log, index, count, spec.seed)
        if channel.is_complex:
            cols += [values.real, values.imag]
        else:
            cols.append(values)
    if not cols:
        return np.zeros((stop - start, 0))
    return np.stack(cols, axis=1)[start:stop]


def _tag_value(value: str | list[str], empty: Array) -> Any:
    if isinstance(value, list):
        return np.asarray(value, dtype=_STR) if value else empty
    return value if value else empty


def _write_step_config(group: Any, log: LogSpec) -> None:
    config = group.create_group("Step config")
    item_fields = [
        ("range_type", np.int32),
        ("step_type", np.int32),
        ("single", np.float64),
        ("start", np.float64),
        ("stop", np.float64),
        ("center", np.float64),
        ("span", np.float64),
        ("step", np.float64),
        ("n_pts", np.int32),
        ("interp", np.int32),
        ("sweep_rate", np.float64),
    ]
    for step in log.steps:
        # h5py makes nested groups for a '/' in the name, exactly like Labber's files.
        channel_group = config.create_group(step.name)
        values = step.values
        start, stop = float(values[0]), float(values[-1])
        n = len(values)
        channel_group.attrs["Step unit"] = 0
        channel_group.attrs["Alternate direction"] = False
        _compound(
            channel_group,
            "Step items",
            item_fields,
            [
                (
                    1 if n > 1 else 0,
                    1,
                    start,
                    start,
                    stop,
                    (start + stop) / 2,
                    stop - start,
                    (stop - start) / max(n - 1, 1),
                    n,
                    0,
                    0.0,
                )
            ],
        )
        relation_rows = [("x", step.name, False)]
        if step.relation_of is not None:
            relation_rows = [("x", log.steps[step.relation_of].name, False)]
        _compound(
            channel_group,
            "Relation parameters",
            [("variable", _STR), ("channel_name", _STR), ("use_lookup", np.bool_)],
            relation_rows,
        )


def _write_log_arrays(group: Any, spec: LabberFileSpec, log: LogSpec, written: int) -> None:
    dims = log.dims
    n0 = dims[0] if dims else 1
    columns = _columns(log)
    data_group = group.create_group("Data")
    names = np.empty(len(columns), dtype=np.dtype([("name", _STR), ("info", _STR)]))
    for i, column in enumerate(columns):
        names[i] = column
    data_group.create_dataset("Channel names", data=names)
    blocks = math.ceil(written / n0) if written else 0
    data_group.create_dataset(
        "Data",
        shape=(n0, len(columns), blocks),
        maxshape=(n0, len(columns), None),
        dtype=np.float64,
        chunks=(n0, max(len(columns), 1), 8),
        fillvalue=np.nan,
    )
    swept_names = [s.name for s in log.swept]
    all_names = [s.name for s in log.steps]
    data_group.attrs["Step index"] = np.asarray(
        [all_names.index(n) for n in swept_names], dtype=np.int64
    )
    data_group.attrs["Step dimensions"] = np.asarray(dims, dtype=np.int64)
    data_group.attrs["Completed"] = False
    traces = group.create_group("Traces")
    for channel in log.channels:
        if not channel.trace_points:
            continue
        width = (2 if channel.is_complex else 1) + (1 if channel.explicit_x else 0)
        dataset = traces.create_dataset(
            channel.name,
            shape=(channel.trace_points, width, 0),
            maxshape=(channel.trace_points, width, None),
            dtype=np.float64,
            chunks=(channel.trace_points, width, 4),
        )
        dataset.attrs["complex"] = channel.is_complex
        dataset.attrs["x, name"] = channel.x_name
        dataset.attrs["x, unit"] = channel.x_unit
        traces.create_dataset(
            f"{channel.name}_N", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(64,)
        )
        traces.create_dataset(
            f"{channel.name}_t0dt",
            shape=(0, 2),
            maxshape=(None, 2),
            dtype=np.float64,
            chunks=(64, 2),
        )
    traces.create_dataset(
        "Time stamp", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(64,)
    )
    data_group.create_dataset(
        "Time stamp", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(64,)
    )
    _grow(group, spec, log, 0, written)


def _grow(group: Any, spec: LabberFileSpec, log: LogSpec, old: int, new: int) -> None:
    """Write points [old, new) of a log into its (resizable) datasets."""
    if new <= old:
        return
    dims = log.dims
    n0 = dims[0] if dims else 1
    data = group["Data/Data"]
    blocks = math.ceil(new / n0)
    if data.shape[2] < blocks:
        data.resize(blocks, axis=2)
    if data.shape[1]:
        full = np.full((blocks * n0, data.shape[1]), np.nan)
        full[:new] = _column_block(spec, log, 0, new)
        first_block = old // n0
        # (rows, columns) in acquisition order → (n0, columns, blocks)
        cube = full.reshape(blocks, n0, data.shape[1]).transpose(1, 2, 0)
        data[:, :, first_block:blocks] = cube[:, :, first_block:blocks]
    traces = group["Traces"]
    for index, channel in enumerate(log.channels):
        if not channel.trace_points:
            continue
        dataset = traces[channel.name]
        dataset.resize(new, axis=2)
        values = _trace(log, index, new, spec.seed)[old:new]  # (points, trace points)
        dataset[:, 0, old:new] = values.real.T
        if channel.is_complex:
            dataset[:, 1, old:new] = values.imag.T
        t0dt = _t0dt(log, channel, new)
        if channel.explicit_x:
            x = t0dt[old:new, :1] + t0dt[old:new, 1:2] * np.arange(channel.trace_points)
            dataset[:, dataset.shape[1] - 1, old:new] = x.T
        counts = traces[f"{channel.name}_N"]
        counts.resize((new,))
        counts[old:new] = channel.trace_points
        pairs = traces[f"{channel.name}_t0dt"]
        pairs.resize((new, 2))
        pairs[old:new] = t0dt[old:new]
    stamps = traces["Time stamp"]
    stamps.resize((new,))
    stamps[old:new] = spec.creation_time + 0.25 * np.arange(old, new)
    # Data/Time stamp: one per outer step (per started block of the innermost step).
    n0 = log.dims[0] if log.dims else 1
    outer = group["Data"]["Time stamp"]
    first, last = math.ceil(old / n0), math.ceil(new / n0)
    start = log.creation_time if log.creation_time is not None else spec.creation_time
    outer.resize((last,))
    outer[first:last] = start + 0.25 * n0 * np.arange(first, last)
    group["Data"].attrs["Written points"] = new


def write_labber_file(
    path: Path, spec: LabberFileSpec, *, written: int | None = None, completed: bool | None = None
) -> Path:
    """Write a Labber log file; the last log gets ``written`` points (default: all).

    ``completed`` defaults to "every point written". Earlier logs are always complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    first = spec.logs[0]
    with h5py.File(path, "w") as f:
        f.attrs["log_name"] = spec.log_name
        f.attrs["creation_time"] = float(spec.creation_time)
        f.attrs["comment"] = spec.comment
        f.attrs["star"] = bool(spec.star)
        f.attrs["version"] = "1.7.7"
        f.attrs["Step dimensions"] = np.asarray(
            [len(s.values) for s in first.steps], dtype=np.int64
        )
        f.attrs["Step index"] = np.asarray(
            [i for i, s in enumerate(first.steps) if s in first.swept], dtype=np.int64
        )
        channel_names: list[str] = []
        for log in spec.logs:
            for name in [s.name for s in log.steps] + [c.name for c in log.channels]:
                if name not in channel_names:
                    channel_names.append(name)
        units = {s.name: s.unit for log in spec.logs for s in log.steps}
        units.update({c.name: c.unit for log in spec.logs for c in log.channels})
        _compound(
            f,
            "Channels",
            [
                ("name", _STR),
                ("instrument", _STR),
                ("quantity", _STR),
                ("unitPhys", _STR),
                ("unitInstr", _STR),
                ("gain", np.float64),
                ("offset", np.float64),
                ("amp", np.float64),
                ("highLim", np.float64),
                ("lowLim", np.float64),
            ],
            [
                (
                    name,
                    _instrument_id(_instrument_of(name)[0]),
                    _instrument_of(name)[1],
                    units[name],
                    units[name],
                    1.0,
                    0.0,
                    1.0,
                    np.inf,
                    -np.inf,
                )
                for name in channel_names
            ],
        )
        _compound(
            f,
            "Step list",
            [
                ("channel_name", _STR),
                ("step_unit", np.int32),
                ("wait_after", np.float64),
                ("after_last", np.int32),
                ("sweep_mode", np.int32),
                ("use_relations", np.bool_),
                ("equation", _STR),
                ("show_advanced", np.bool_),
            ],
            [
                (
                    s.name,
                    0,
                    0.0,
                    0,
                    0,
                    s.relation_of is not None,
                    f"{s.factor}*x" if s.relation_of is not None else "x",
                    False,
                )
                for s in first.steps
            ],
        )
        _compound(f, "Log list", [("channel_name", _STR)], [(c.name,) for c in first.channels])
        instruments = sorted({_instrument_of(n)[0] for n in channel_names})
        _compound(
            f,
            "Instruments",
            [
                ("hardware", _STR),
                ("version", _STR),
                ("id", _STR),
                ("model", _STR),
                ("name", _STR),
                ("interface", _STR),
                ("address", _STR),
                ("server", _STR),
                ("startup", _STR),
                ("lock", np.bool_),
            ],
            [
                (
                    inst,
                    "1.0",
                    _instrument_id(inst),
                    "",
                    inst,
                    "TCPIP",
                    "192.168.1.10",
                    "localhost",
                    "Set config",
                    False,
                )
                for inst in instruments
            ],
        )
        config = f.create_group("Instrument config")
        for inst in instruments:
            group = config.create_group(_instrument_id(inst))
            for name in channel_names:
                owner, quantity = _instrument_of(name)
                if owner == inst:
                    group.attrs[quantity] = 0.5
            group.attrs["Output"] = True
            group.attrs["Mode"] = "Normal"
            group.attrs["IQ reference"] = 0.25 + 0.75j
        settings = f.create_group("Settings")
        for key, value in spec.settings.items():
            settings.attrs[key] = value
        tags = f.create_group("Tags")
        # Labber stores an empty list (or an empty project/user) as an empty float array.
        empty = np.zeros(0, dtype=np.float64)
        tags.attrs["Project"] = _tag_value(spec.project, empty)
        tags.attrs["Tags"] = np.asarray(spec.tags, dtype=_STR) if spec.tags else empty
        tags.attrs["User"] = _tag_value(spec.user, empty)

        for index, log in enumerate(spec.logs):
            last = index == len(spec.logs) - 1
            group = f if index == 0 else f.create_group(f"Log_{index + 1}")
            if index and log.creation_time is not None:
                group.attrs["creation_time"] = float(log.creation_time)
            if index:
                group.attrs["Step dimensions"] = np.asarray(
                    [len(s.values) for s in log.steps], dtype=np.int64
                )
            _write_step_config(group, log)
            count = log.capacity if (not last or written is None) else min(written, log.capacity)
            _write_log_arrays(group, spec, log, count)
            done = count == log.capacity if (completed is None or not last) else completed
            group["Data"].attrs["Completed"] = bool(done)
    return path


def append_points(path: Path, spec: LabberFileSpec, written: int) -> None:
    """Grow the last log of a file written by :func:`write_labber_file` to ``written`` points."""
    index = len(spec.logs) - 1
    log = spec.logs[index]
    with h5py.File(path, "a") as f:
        group = f if index == 0 else f[f"Log_{index + 1}"]
        old = int(group["Data"].attrs.get("Written points", 0))
        _grow(group, spec, log, old, min(written, log.capacity))


def finish_log(path: Path, spec: LabberFileSpec, *, completed: bool = True) -> None:
    """Write the remaining points of the last log and set its ``Completed`` flag."""
    append_points(path, spec, spec.logs[-1].capacity)
    index = len(spec.logs) - 1
    with h5py.File(path, "a") as f:
        group = f if index == 0 else f[f"Log_{index + 1}"]
        group["Data"].attrs["Completed"] = completed


# -- bad files -----------------------------------------------------------------------------------
def write_truncated(path: Path, spec: LabberFileSpec, keep: float = 0.4) -> Path:
    """A log file cut after ``keep`` of its bytes (a copy interrupted half-way)."""
    write_labber_file(path, spec)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: max(64, int(len(data) * keep))])
    return Path(path)


def write_not_hdf5(path: Path) -> Path:
    """A file named like a log that is not HDF5 at all."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(b"Labber export\nfrequency,amplitude\n1,2\n" * 20)
    return Path(path)


def write_database_file(root: Path) -> Path:
    """The ``Database.hdf5`` Labber keeps at the root of its data folder (not a dataset)."""
    path = Path(root) / "Database.hdf5"
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["version"] = "1.7.7"
        f.create_group("Logs")
    return path


# -- realistic specs -----------------------------------------------------------------------------
def labber_relpath(when: dt.datetime, name: str) -> str:
    """Labber's database layout: ``YYYY/MM/Data_MMDD/<name>.hdf5``."""
    return f"{when:%Y}/{when:%m}/Data_{when:%m%d}/{name}.hdf5"


def demo_spec(kind: int, *, seed: int = 0, creation_time: float = 1714550400.0) -> LabberFileSpec:
    """One of several realistic specs (``kind`` modulo 5).

    0: 1-D resonator sweep with a complex S21; 1: 2-D qubit spectroscopy with a trace, a nested
    (``/``) step channel and a relation; 2: Rabi with complex traces and explicit x values;
    3: a file with two extra appended logs; 4: a single-point log without swept channels.
    """
    kind %= 5
    if kind == 0:
        logs = [
            LogSpec(
                steps=[
                    StepChannel("VNA - Start frequency", "Hz", list(np.linspace(6e9, 6.1e9, 41))),
                    StepChannel("VNA - Output power", "dBm", [-30.0]),
                ],
                channels=[
                    LogChannel("VNA - S21", "", is_complex=True),
                    LogChannel("Fridge - MXC temperature", "K"),
                ],
            )
        ]
        return LabberFileSpec(
            "Resonator sweep",
            creation_time,
            logs,
            comment="Resonator R1 transmission",
            star=True,
            project="Resonators",
            tags=["resonator", "vna"],
            user="alice",
            seed=seed,
        )
    if kind == 1:
        logs = [
            LogSpec(
                steps=[
                    StepChannel("Qubit source - Frequency", "Hz", list(np.linspace(4e9, 4.2e9, 9))),
                    StepChannel("Flux/Bias - Voltage", "V", list(np.linspace(-0.5, 0.5, 5))),
                    StepChannel("Flux/Bias - Current", "A", [0.0], relation_of=1, factor=1e-3),
                ],
                channels=[
                    LogChannel("Digitizer - Signal", "V", trace_points=16),
                    LogChannel("Digitizer - Amplitude", "V"),
                ],
            )
        ]
        return LabberFileSpec(
            "Qubit spectroscopy vs flux",
            creation_time,
            logs,
            comment="Two-tone, flux sweep",
            project="Qubits",
            tags=["spectroscopy"],
            user="bob",
            seed=seed,
        )
    if kind == 2:
        logs = [
            LogSpec(
                steps=[
                    StepChannel("AWG - Pulse amplitude", "V", list(np.linspace(0, 1, 11))),
                ],
                channels=[
                    LogChannel(
                        "Digitizer - IQ",
                        "V",
                        is_complex=True,
                        trace_points=12,
                        explicit_x=True,
                        x_name="Time",
                        x_unit="s",
                    ),
                    LogChannel("Digitizer - Population", ""),
                ],
            )
        ]
        return LabberFileSpec(
            "Rabi",
            creation_time,
            logs,
            comment="",
            tags=[],
            user="carol",
            seed=seed,
        )
    if kind == 3:

        def log(start: float, n: int) -> LogSpec:
            return LogSpec(
                steps=[
                    StepChannel("Magnet - Field", "T", list(np.linspace(start, start + 0.1, n)))
                ],
                channels=[
                    LogChannel("Lock-in - X", "V"),
                    LogChannel("Lock-in - R", "V", is_complex=True),
                    LogChannel("Scope - Trace", "V", trace_points=8, dt=2e-6),
                ],
            )

        return LabberFileSpec(
            "Field sweep (appended logs)",
            creation_time,
            [log(0.0, 7), log(0.2, 5), log(0.4, 6)],
            comment="Three field ranges in one file",
            project="Magnetotransport",
            tags=["field", "lock-in"],
            user="dave",
            seed=seed,
        )
    logs = [
        LogSpec(
            steps=[StepChannel("Gate - Voltage", "V", [0.25])],
            channels=[LogChannel("DMM - Voltage", "V"), LogChannel("DMM - Resistance", "Ohm")],
        )
    ]
    return LabberFileSpec(
        "Single point check", creation_time, logs, comment="Sanity check", seed=seed
    )


def make_demo_source(root: Path) -> dict[str, Any]:
    """A small Labber data folder: five logs of different kinds plus ``Database.hdf5``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    write_database_file(root)
    start = dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.timezone.utc)
    for kind in range(5):
        when = start + dt.timedelta(days=kind // 2, hours=kind)
        spec = demo_spec(kind, seed=kind, creation_time=when.timestamp())
        write_labber_file(root / labber_relpath(when, spec.log_name), spec)
    return {"labber_directory": str(root), "set_up": "demo-fridge"}
