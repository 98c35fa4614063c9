"""Write QCoDeS databases with :mod:`sqlite3` alone, following QCoDeS' documented schema.

For tests, demos and benchmarks of the backend, without the ``qcodes`` package: the schema of
``user_version`` 9 (or older versions for compatibility tests), results tables with numeric, array,
complex and text columns (arrays and complex values as numpy ``.npy`` blobs like QCoDeS stores
them), run descriptions in JSON versions 0-3, dynamic metadata columns, parent links, and runs that
are completed, still running or never started.

Every call opens its own connection and closes it, like a separate writer process would.
"""

from __future__ import annotations

import io
import json
import math
import sqlite3
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from etiket_sync_agent_qcodes.reader import quote
from etiket_sync_agent_qcodes.rundescriber import ParamSpec

__all__ = [
    "QCoDeSWriter",
    "RunHandle",
    "description_json",
    "make_demo_database",
    "make_demo_source",
    "sweep_1d_params",
]

_SQL_TYPES = {"numeric": "numeric", "array": "array", "complex": "complex", "text": "text"}


def _spec_v0(p: ParamSpec) -> dict[str, Any]:
    return {
        "name": p.name,
        "paramtype": p.paramtype,
        "label": p.label,
        "unit": p.unit,
        "inferred_from": list(p.inferred_from),
        "depends_on": list(p.depends_on),
    }


def _interdeps_v1(params: Sequence[ParamSpec]) -> dict[str, Any]:
    referenced = {d for p in params for d in (*p.depends_on, *p.inferred_from)}
    return {
        "parameters": {
            p.name: {"name": p.name, "paramtype": p.paramtype, "label": p.label, "unit": p.unit}
            for p in params
        },
        "dependencies": {p.name: list(p.depends_on) for p in params if p.depends_on},
        "inferences": {p.name: list(p.inferred_from) for p in params if p.inferred_from},
        "standalones": [
            p.name
            for p in params
            if not p.depends_on and not p.inferred_from and p.name not in referenced
        ],
    }


def description_json(
    params: Sequence[ParamSpec],
    shapes: Mapping[str, Sequence[int]] | None = None,
    version: int = 3,
) -> str:
    """A ``run_description`` in JSON version 0, 1, 2 or 3 (QCoDeS stores 3)."""
    v0 = {"paramspecs": [_spec_v0(p) for p in params]}
    doc: dict[str, Any]
    if version == 0:
        doc = {"version": 0, "interdependencies": v0}
    elif version == 1:
        doc = {"version": 1, "interdependencies": _interdeps_v1(params)}
    elif version == 2:
        doc = {"version": 2, "interdependencies": v0, "interdependencies_": _interdeps_v1(params)}
    elif version == 3:
        doc = {
            "version": 3,
            "interdependencies": v0,
            "interdependencies_": _interdeps_v1(params),
            "shapes": {k: list(v) for k, v in shapes.items()} if shapes else None,
        }
    else:
        raise ValueError(f"unknown run_description version {version}")
    return json.dumps(doc)


def _npy(value: Any) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, np.asarray(value), version=(3, 0), allow_pickle=False)
    return out.getvalue()


def _adapt(value: Any, paramtype: str) -> Any:
    if value is None:
        return None
    if paramtype == "array":
        return sqlite3.Binary(_npy(np.asarray(value)))
    if paramtype == "complex":
        out = io.BytesIO()
        np.save(out, np.array([complex(value)]))
        return sqlite3.Binary(out.getvalue())
    if paramtype == "text":
        return str(value)
    number = float(value)
    return "nan" if math.isnan(number) else number


def sweep_1d_params(
    setpoint: str = "gate", measured: str = "current", *, label_prefix: str = ""
) -> list[ParamSpec]:
    """A setpoint and one dependent on it."""
    return [
        ParamSpec(setpoint, "numeric", f"{label_prefix}Gate voltage", "V"),
        ParamSpec(measured, "numeric", f"{label_prefix}Current", "A", depends_on=(setpoint,)),
    ]


@dataclass
class RunHandle:
    """A run written by :class:`QCoDeSWriter`."""

    run_id: int
    guid: str
    table: str
    params: list[ParamSpec] = field(default_factory=list)
    db_path: Path | None = None
    raw_path: Path | None = None


class QCoDeSWriter:
    """Creates and fills a QCoDeS database file (schema ``user_version`` 9 by default).

    Args:
        path: the database file (created with its folder).
        user_version: the schema version to write: 9 (current), 3-8 (``run_description``
            present, fewer columns) or 1-2 (no ``run_description``: layouts/dependencies only).
        wal: put the database in WAL mode like QCoDeS does.
    """

    def __init__(self, path: Path | str, *, user_version: int = 9, wal: bool = True) -> None:
        self.path = Path(path)
        self.user_version = user_version
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self._create(wal)

    def connect(self) -> sqlite3.Connection:
        """A fresh read-write connection (the caller closes it)."""
        conn = sqlite3.connect(self.path, timeout=30)
        # A test writer: durability on power loss does not matter, speed does.
        conn.execute("PRAGMA synchronous=OFF")
        return conn

    def _create(self, wal: bool) -> None:
        v = self.user_version
        extra = ["guid TEXT"]
        if v >= 3:
            extra.append("run_description TEXT")
        if v >= 5:
            extra.append('"snapshot" TEXT')
        if v >= 7:
            extra += ["captured_run_id", "captured_counter"]
        if v >= 8:
            extra.append('"parent_datasets" TEXT')
        conn = self.connect()
        try:
            if wal:
                conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(
                f"""
                CREATE TABLE experiments (exp_id INTEGER PRIMARY KEY, name TEXT,
                    sample_name TEXT, start_time INTEGER, end_time INTEGER,
                    run_counter INTEGER, format_string TEXT);
                CREATE TABLE runs (run_id INTEGER PRIMARY KEY, exp_id INTEGER, name TEXT,
                    result_table_name TEXT, result_counter INTEGER, run_timestamp INTEGER,
                    completed_timestamp INTEGER, is_completed BOOL, parameters TEXT,
                    {", ".join(extra)},
                    FOREIGN KEY(exp_id) REFERENCES experiments(exp_id));
                CREATE TABLE layouts (layout_id INTEGER PRIMARY KEY, run_id INTEGER,
                    parameter TEXT, label TEXT, unit TEXT, inferred_from TEXT,
                    FOREIGN KEY(run_id) REFERENCES runs(run_id));
                CREATE TABLE dependencies (dependent INTEGER, independent INTEGER,
                    axis_num INTEGER);
                PRAGMA user_version = {int(v)};
                """
            )
            conn.commit()
        finally:
            conn.close()

    # -- experiments and runs ----------------------------------------------------------------------
    def new_experiment(self, name: str, sample_name: str = "sample") -> int:
        """Insert an experiment; return its exp_id."""
        conn = self.connect()
        try:
            cur = conn.execute(
                "INSERT INTO experiments (name, sample_name, start_time, end_time, run_counter, "
                "format_string) VALUES (?, ?, ?, NULL, 0, '{}-{}-{}')",
                (name, sample_name, time.time()),
            )
            conn.commit()
            return int(cur.lastrowid or 0)
        finally:
            conn.close()

    def new_run(
        self,
        exp_id: int,
        name: str,
        params: Sequence[ParamSpec],
        *,
        shapes: Mapping[str, Sequence[int]] | None = None,
        start: bool = True,
        snapshot: Any = None,
        metadata: Mapping[str, Any] | None = None,
        parents: Sequence[str] = (),
        description_version: int = 3,
        table_name: str | None = None,
        guid: str | None = None,
        run_timestamp: float | None = None,
        raw_data_file: Path | None = None,
    ) -> RunHandle:
        """Create a run (started unless ``start=False``) with its empty results table.

        ``raw_data_file`` puts the results table into that file (QCoDeS' per-dataset backend)
        and records it in the ``raw_data_db_path`` column.
        """
        guid = guid or str(uuid.uuid4())
        conn = self.connect()
        try:
            counter_row = conn.execute(
                "SELECT run_counter FROM experiments WHERE exp_id = ?", (exp_id,)
            ).fetchone()
            counter = int(counter_row[0] or 0) + 1 if counter_row else 1
            table = table_name or f"results-{exp_id}-{counter}"
            columns = ["exp_id", "name", "result_table_name", "result_counter", "is_completed"]
            values: list[Any] = [exp_id, name, table, counter, 0]
            columns += ["parameters", "guid"]
            values += [",".join(p.name for p in params), guid]
            if self.user_version >= 3:
                columns.append("run_description")
                values.append(description_json(params, shapes, description_version))
            if self.user_version >= 5:
                columns.append("snapshot")
                values.append(json.dumps(snapshot) if snapshot is not None else None)
            if self.user_version >= 7:
                columns += ["captured_run_id", "captured_counter"]
                values += [None, counter]
            if self.user_version >= 8:
                links = [
                    json.dumps(
                        {"head": guid, "tail": p, "edge_type": "analysis", "description": ""}
                    )
                    for p in parents
                ]
                columns.append("parent_datasets")
                values.append(json.dumps(links))
            if start:
                columns.append("run_timestamp")
                values.append(run_timestamp if run_timestamp is not None else time.time())
            sql = (
                f"INSERT INTO runs ({', '.join(quote(c) for c in columns)}) "
                f"VALUES ({', '.join('?' * len(values))})"
            )
            cur = conn.execute(sql, values)
            run_id = int(cur.lastrowid or 0)
            if self.user_version >= 7:
                conn.execute("UPDATE runs SET captured_run_id = ? WHERE run_id = ?", (run_id,) * 2)
            conn.execute(
                "UPDATE experiments SET run_counter = ? WHERE exp_id = ?", (counter, exp_id)
            )
            layout_ids: dict[str, int] = {}
            for p in params:
                lcur = conn.execute(
                    "INSERT INTO layouts (run_id, parameter, label, unit, inferred_from) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (run_id, p.name, p.label, p.unit, ", ".join(p.inferred_from)),
                )
                layout_ids[p.name] = int(lcur.lastrowid or 0)
            for p in params:
                for axis, dep in enumerate(p.depends_on):
                    conn.execute(
                        "INSERT INTO dependencies (dependent, independent, axis_num) "
                        "VALUES (?, ?, ?)",
                        (layout_ids[p.name], layout_ids[dep], axis),
                    )
            create = (
                f"CREATE TABLE {quote(table)} (id INTEGER PRIMARY KEY"
                + "".join(f", {quote(p.name)} {_SQL_TYPES[p.paramtype]}" for p in params)
                + ")"
            )
            if raw_data_file is None:
                conn.execute(create)
            conn.commit()
        finally:
            conn.close()
        handle = RunHandle(run_id, guid, table, list(params), self.path, raw_data_file)
        if raw_data_file is not None:
            raw_data_file.parent.mkdir(parents=True, exist_ok=True)
            raw = sqlite3.connect(raw_data_file)
            try:
                raw.execute("PRAGMA journal_mode=WAL")
                raw.execute(create)
                raw.commit()
            finally:
                raw.close()
            self.set_metadata(handle, "raw_data_db_path", str(raw_data_file))
        for key, value in (metadata or {}).items():
            self.set_metadata(handle, key, value)
        return handle

    def set_metadata(self, run: RunHandle, key: str, value: Any) -> None:
        """Set a metadata column of a run (added to ``runs`` when missing, like QCoDeS)."""
        conn = self.connect()
        try:
            columns = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
            if key not in columns:
                conn.execute(f"ALTER TABLE runs ADD COLUMN {quote(key)}")
            conn.execute(f"UPDATE runs SET {quote(key)} = ? WHERE run_id = ?", (value, run.run_id))
            conn.commit()
        finally:
            conn.close()

    def start(self, run: RunHandle, timestamp: float | None = None) -> None:
        """Mark a run started (sets ``run_timestamp``)."""
        self._update(run, "run_timestamp = ?", timestamp or time.time())

    def complete(self, run: RunHandle, timestamp: float | None = None) -> None:
        """Mark a run completed."""
        self._update(run, "completed_timestamp = ?, is_completed = 1", timestamp or time.time())

    def _update(self, run: RunHandle, assignment: str, value: Any) -> None:
        conn = self.connect()
        try:
            conn.execute(f"UPDATE runs SET {assignment} WHERE run_id = ?", (value, run.run_id))
            conn.commit()
        finally:
            conn.close()

    def add_rows(self, run: RunHandle, rows: Iterable[Mapping[str, Any]]) -> int:
        """Append result rows (dicts of parameter name → value); returns how many."""
        types = {p.name: p.paramtype for p in run.params}
        target = run.raw_path if run.raw_path is not None else self.path
        conn = sqlite3.connect(target, timeout=30)
        conn.execute("PRAGMA synchronous=OFF")
        count = 0
        try:
            batches: dict[tuple[str, ...], list[list[Any]]] = {}
            for row in rows:
                names = tuple(row)
                batches.setdefault(names, []).append(
                    [_adapt(row[n], types.get(n, "numeric")) for n in names]
                )
                count += 1
            for names, values in batches.items():
                conn.executemany(
                    f"INSERT INTO {quote(run.table)} ({', '.join(quote(n) for n in names)}) "
                    f"VALUES ({', '.join('?' * len(names))})",
                    values,
                )
            conn.commit()
        finally:
            conn.close()
        return count

    def add_columns(self, run: RunHandle, columns: Mapping[str, Any]) -> int:
        """Append rows given column-wise (fast path for large numeric runs)."""
        names = list(columns)
        length = len(columns[names[0]]) if names else 0
        types = {p.name: p.paramtype for p in run.params}
        if all(types.get(n, "numeric") == "numeric" for n in names):
            rows: Iterable[Sequence[Any]] = zip(
                *(np.asarray(columns[n], dtype=np.float64).tolist() for n in names), strict=True
            )
        else:
            rows = (
                [_adapt(columns[n][i], types.get(n, "numeric")) for n in names]
                for i in range(length)
            )
        target = run.raw_path if run.raw_path is not None else self.path
        conn = sqlite3.connect(target, timeout=30)
        conn.execute("PRAGMA synchronous=OFF")
        try:
            conn.executemany(
                f"INSERT INTO {quote(run.table)} ({', '.join(quote(n) for n in names)}) "
                f"VALUES ({', '.join('?' * len(names))})",
                rows,
            )
            conn.commit()
        finally:
            conn.close()
        return length

    def sweep_1d(
        self,
        exp_id: int,
        name: str,
        points: int = 11,
        *,
        complete: bool = True,
        metadata: Mapping[str, Any] | None = None,
        snapshot: Any = None,
        shapes: bool = True,
    ) -> RunHandle:
        """A complete (or running) 1D sweep ``current(gate)``."""
        params = sweep_1d_params()
        run = self.new_run(
            exp_id,
            name,
            params,
            shapes={"current": (points,)} if shapes else None,
            snapshot=snapshot if snapshot is not None else {"station": {"gate": {"value": 0}}},
            metadata=metadata,
        )
        gate = np.linspace(-1, 1, points)
        self.add_columns(run, {"gate": gate, "current": np.sin(gate)})
        if complete:
            self.complete(run)
        return run


def make_demo_database(path: Path, runs: int = 5) -> Path:
    """A database with a realistic mix of runs (all completed) for demos and tests.

    The first ``runs`` entries of: a starred 1D sweep, a 2D sweep with three dependents, spectra
    (array parameter), an IQ trace (complex), a run with a text parameter and two dependents on
    different setpoints, then further 1D sweeps.
    """
    writer = QCoDeSWriter(path)
    exp = writer.new_experiment("demo", "demo_sample")
    station = {"station": {"instruments": {"dac": {"parameters": {"ch1": {"value": 0.1}}}}}}
    makers = [
        lambda i: _demo_1d(writer, exp, station),
        lambda i: _demo_2d(writer, exp, station),
        lambda i: _demo_spectra(writer, exp, station),
        lambda i: _demo_iq(writer, exp, station),
        lambda i: _demo_mixed(writer, exp, station),
    ]
    for i in range(runs):
        if i < len(makers):
            makers[i](i)
        else:
            writer.sweep_1d(exp, f"demo sweep {i}", snapshot=station)
    return path


def _demo_1d(writer: QCoDeSWriter, exp: int, station: Any) -> None:
    writer.sweep_1d(exp, "1D gate sweep\nplunger P1, sensor dot", metadata={"inspectr_tag": "star"})


def _demo_2d(writer: QCoDeSWriter, exp: int, station: Any) -> None:
    params = [
        ParamSpec("P1", "numeric", "Plunger 1", "mV"),
        ParamSpec("P2", "numeric", "Plunger 2", "mV"),
        *(
            ParamSpec(name, "numeric", label, "nA", depends_on=("P1", "P2"))
            for name, label in (("I_sd", "Current"), ("I_sens", "Sensor"), ("I_leak", "Leakage"))
        ),
    ]
    run = writer.new_run(
        exp,
        "charge stability P1 P2",
        params,
        shapes={n: (20, 15) for n in ("I_sd", "I_sens", "I_leak")},
        snapshot=station,
    )
    p1, p2 = np.meshgrid(np.linspace(0, 10, 20), np.linspace(-5, 5, 15), indexing="ij")
    writer.add_columns(
        run,
        {
            "P1": p1.ravel(),
            "P2": p2.ravel(),
            "I_sd": np.sin(p1 + p2).ravel(),
            "I_sens": np.cos(p1 - p2).ravel(),
            "I_leak": (0.01 * p1).ravel(),
        },
    )
    writer.complete(run)


def _demo_spectra(writer: QCoDeSWriter, exp: int, station: Any) -> None:
    params = [
        ParamSpec("B", "numeric", "Magnetic field", "T"),
        ParamSpec("f", "array", "Frequency", "Hz"),
        ParamSpec("S21", "array", "Transmission", "dB", depends_on=("B", "f")),
    ]
    run = writer.new_run(exp, "resonator vs field", params, shapes={"S21": (5, 50)})
    freqs = np.linspace(5e9, 6e9, 50)
    writer.add_rows(
        run,
        [
            {"B": b, "f": freqs, "S21": -20 * np.exp(-(((freqs - 5.5e9 - b * 1e8) / 1e7) ** 2))}
            for b in np.linspace(0, 1, 5)
        ],
    )
    writer.complete(run)


def _demo_iq(writer: QCoDeSWriter, exp: int, station: Any) -> None:
    params = [
        ParamSpec("t", "numeric", "Time", "s"),
        ParamSpec("iq", "complex", "IQ signal", "V", depends_on=("t",)),
    ]
    run = writer.new_run(exp, "IQ trace", params, snapshot=station)
    t = np.linspace(0, 1e-6, 40)
    writer.add_rows(run, [{"t": v, "iq": complex(np.cos(v * 1e7), np.sin(v * 1e7))} for v in t])
    writer.complete(run)


def _demo_mixed(writer: QCoDeSWriter, exp: int, station: Any) -> None:
    params = [
        ParamSpec("state", "text", "Prepared state", ""),
        ParamSpec("fidelity", "numeric", "Fidelity", "", depends_on=("state",)),
        ParamSpec("V", "numeric", "Bias", "V"),
        ParamSpec("G", "numeric", "Conductance", "e^2/h", depends_on=("V",)),
    ]
    run = writer.new_run(exp, "readout and bias", params, snapshot=station)
    writer.add_rows(
        run, [{"state": s, "fidelity": f} for s, f in (("0", 0.98), ("1", 0.95), ("+", 0.9))]
    )
    writer.add_rows(run, [{"V": v, "G": v**2} for v in np.linspace(-1, 1, 9)])
    writer.complete(run)


def make_demo_source(root: Path) -> dict[str, Any]:
    """Create ``<root>/experiments.db`` with demo runs; return the source configuration."""
    path = make_demo_database(Path(root) / "experiments.db")
    return {"database_path": str(path), "set_up": "demo-fridge"}
