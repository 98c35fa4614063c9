"""Read QCoDeS SQLite databases with :mod:`sqlite3` only, read-only and without disturbing writers.

- Connections use the ``file:...?mode=ro`` URI: nothing is ever written, no ``PRAGMA journal_mode``
  is issued and no schema is upgraded. A database in WAL mode is read with its ``-wal`` content
  (what a running measurement committed but did not checkpoint yet is seen).
- ``SQLITE_BUSY``/"database is locked" while a writer commits is retried with a growing pause
  (sqlite's own busy handler waits first).
- Table and column names are always quoted, so names with spaces, dashes or quotes work.
- A large completed run is read in ranges of row ids by this process and one helper process
  (``_rowhelper.py``, standard library only, its own read-only connection) at once: the
  ``sqlite3`` module builds a Python object per value, which bounds one process to roughly a
  million rows of three columns per 0.7 s. The helper returns plain float64 bytes; anything that
  is not a float or an int (NULL, text, blobs), and anything the helper fails to deliver, is
  read by this process, through the same conversion as the one-query path.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import numpy as np

from etiket_sync_agent_qcodes._rowhelper import HEADER, NOT_NUMERIC, OK
from etiket_sync_agent_qcodes._rowhelper import retry_while_busy as _retry
from etiket_sync_agent_qcodes.rundescriber import (
    RunDescription,
    description_from_layouts,
    parse_run_description,
)

__all__ = [
    "PARALLEL_MIN_ROWS",
    "RANGE_IDS",
    "RUNS_TABLE_COLUMNS",
    "DatabaseUnavailable",
    "QCoDeSDatabase",
    "RunRow",
    "RunUnreadable",
    "quote",
]

#: Columns of ``runs`` that are not user metadata (QCoDeS' own list plus ``raw_data_db_path``).
RUNS_TABLE_COLUMNS = (
    "run_id",
    "exp_id",
    "name",
    "result_table_name",
    "result_counter",
    "run_timestamp",
    "completed_timestamp",
    "is_completed",
    "parameters",
    "guid",
    "run_description",
    "snapshot",
    "parent_datasets",
    "captured_run_id",
    "captured_counter",
    "raw_data_db_path",
)
_HEAVY = ("snapshot", "run_description")
#: Rows per ``fetchmany`` where rows are converted column by column.
_CHUNK = 16_384
#: Row ids per range query when a run is read in ranges (see ``QCoDeSDatabase.read_trees``).
RANGE_IDS = 131_072
#: A completed run with at least this many rows is read with a helper process.
PARALLEL_MIN_ROWS = 200_000
#: Seconds the main thread waits for a helper that delivers nothing before it ends the helper.
HELPER_PATIENCE = 120.0
_HELPER_SCRIPT = Path(__file__).with_name("_rowhelper.py")

Float64Array = np.ndarray[Any, np.dtype[np.float64]]


class DatabaseUnavailable(Exception):
    """The database file cannot be opened or read (missing, permission, not SQLite, corrupt)."""


class RunUnreadable(Exception):
    """One run cannot be read (its results table or raw-data file is missing or broken)."""


def quote(name: str) -> str:
    """An SQL identifier in double quotes (embedded quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def _readonly_uri(path: Path) -> str:
    return "file:" + urllib.parse.quote(str(Path(path).resolve())) + "?mode=ro"


def connect_readonly(path: Path, *, busy_timeout: float = 5.0) -> sqlite3.Connection:
    """Open ``path`` read-only (URI ``mode=ro``); DatabaseUnavailable when that is impossible."""
    path = Path(path)
    if not path.exists():
        raise DatabaseUnavailable(f"database {path} does not exist")
    if not path.is_file():
        raise DatabaseUnavailable(f"{path} is not a file")
    uri = _readonly_uri(path)
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout, check_same_thread=False)
        # Touch the schema now so "not a database"/permission errors surface here.
        _retry(lambda: conn.execute("SELECT count(*) FROM sqlite_master").fetchone())
    except sqlite3.DatabaseError as exc:
        raise DatabaseUnavailable(f"cannot read {path} as an SQLite database: {exc}") from None
    except OSError as exc:
        raise DatabaseUnavailable(f"cannot open {path}: {exc}") from None
    return conn


@dataclass
class RunRow:
    """One row of ``runs`` (joined with its experiment)."""

    run_id: int
    exp_id: int | None
    name: str
    result_table_name: str | None
    run_timestamp: float | None
    completed_timestamp: float | None
    is_completed: bool
    guid: str | None
    captured_run_id: int | None = None
    captured_counter: int | None = None
    parent_datasets: str | None = None
    parameters: str | None = None
    raw_data_db_path: str | None = None
    exp_name: str = ""
    sample_name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    run_description: str | None = None
    snapshot: str | None = None

    @property
    def started(self) -> bool:
        """Whether the run was started (QCoDeS sets ``run_timestamp`` then)."""
        return self.run_timestamp is not None


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


class QCoDeSDatabase:
    """A read-only view of one QCoDeS database file (use as a context manager, or ``close()``)."""

    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout: float = 5.0,
        parallel: bool | None = None,
        range_ids: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        #: How :meth:`read_trees` reads: None (default) with a helper process for completed runs
        #: of at least :data:`PARALLEL_MIN_ROWS` rows on two or more CPUs, True always (tests,
        #: fidelity checks), False never.
        self.parallel = parallel
        #: Row ids per range query when reading with a helper (None: :data:`RANGE_IDS`).
        self.range_ids = range_ids
        self._conn: sqlite3.Connection | None = None
        self._raw_conns: dict[str, sqlite3.Connection] = {}

    def __enter__(self) -> QCoDeSDatabase:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        """The read-only connection (opened on first use)."""
        if self._conn is None:
            self._conn = connect_readonly(self.path, busy_timeout=self.busy_timeout)
        return self._conn

    def close(self) -> None:
        """Close every connection (main database and raw-data files)."""
        for conn in self._raw_conns.values():
            conn.close()
        self._raw_conns.clear()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a read query with busy retries; return all rows."""
        return _retry(lambda: self.conn.execute(sql, tuple(params)).fetchall())

    # -- schema -----------------------------------------------------------------------------------
    def tables(self) -> set[str]:
        """Names of the tables of the main database."""
        return {r[0] for r in self.query("SELECT name FROM sqlite_master WHERE type='table'")}

    def missing_tables(self) -> list[str]:
        """Which of the QCoDeS tables ``runs`` and ``experiments`` are missing."""
        tables = self.tables()
        return [t for t in ("runs", "experiments") if t not in tables]

    def user_version(self) -> int:
        """``PRAGMA user_version`` (the QCoDeS schema version)."""
        return int(self.query("PRAGMA user_version")[0][0])

    def run_columns(self) -> list[str]:
        """Columns of ``runs`` (fixed ones plus the dynamically added metadata columns)."""
        return [str(r[1]) for r in self.query("PRAGMA table_info(runs)")]

    def check_schema(self) -> list[str]:
        """The columns of ``runs``; DatabaseUnavailable if this is no usable QCoDeS database."""
        missing = self.missing_tables()
        if missing:
            raise DatabaseUnavailable(
                f"{self.path} is not a QCoDeS database: table(s) {', '.join(missing)} missing"
            )
        columns = self.run_columns()
        if "guid" not in columns:
            raise DatabaseUnavailable(
                f"{self.path} uses QCoDeS schema version {self.user_version()}, which has no "
                "guid column; open it once with qcodes to upgrade it (we never write to it)"
            )
        return columns

    # -- runs -------------------------------------------------------------------------------------
    def _select_runs(self, where: str, params: Sequence[Any], *, heavy: bool) -> list[RunRow]:
        columns = self.check_schema()
        wanted = [c for c in columns if heavy or c not in _HEAVY]
        exp_columns = {str(r[1]) for r in self.query("PRAGMA table_info(experiments)")}
        exp_name = "e.name" if "name" in exp_columns else "NULL"
        sample = "e.sample_name" if "sample_name" in exp_columns else "NULL"
        sql = (
            "SELECT "
            + ", ".join(f"r.{quote(c)}" for c in wanted)
            + f", {exp_name}, {sample} FROM runs AS r LEFT JOIN experiments AS e "
            "ON e.exp_id = r.exp_id " + where
        )
        rows = self.query(sql, params)
        return [self._run_row(wanted, row) for row in rows]

    @staticmethod
    def _run_row(columns: Sequence[str], row: Sequence[Any]) -> RunRow:
        values = dict(zip(columns, row[: len(columns)], strict=True))
        exp_name, sample = row[len(columns)], row[len(columns) + 1]
        metadata = {
            c: v for c, v in values.items() if c not in RUNS_TABLE_COLUMNS and v is not None
        }
        return RunRow(
            run_id=int(values["run_id"]),
            exp_id=_int(values.get("exp_id")),
            name=_text(values.get("name")) or "",
            result_table_name=_text(values.get("result_table_name")),
            run_timestamp=_float(values.get("run_timestamp")),
            completed_timestamp=_float(values.get("completed_timestamp")),
            is_completed=bool(values.get("is_completed")),
            guid=_text(values.get("guid")),
            captured_run_id=_int(values.get("captured_run_id")),
            captured_counter=_int(values.get("captured_counter")),
            parent_datasets=_text(values.get("parent_datasets")),
            parameters=_text(values.get("parameters")),
            raw_data_db_path=_text(values.get("raw_data_db_path")),
            exp_name=_text(exp_name) or "",
            sample_name=_text(sample) or "",
            metadata=metadata,
            run_description=_text(values.get("run_description")),
            snapshot=_text(values.get("snapshot")),
        )

    def list_runs(self, after_run_id: int = 0, limit: int = 1000) -> list[RunRow]:
        """Runs with ``run_id > after_run_id``, oldest first (without snapshot/description)."""
        return self._select_runs(
            "WHERE r.run_id > ? ORDER BY r.run_id LIMIT ?", (after_run_id, limit), heavy=False
        )

    def runs_started_since(self, before_run_id: int, since: float) -> list[RunRow]:
        """Older runs (``run_id < before_run_id``) that started at or after ``since``."""
        return self._select_runs(
            "WHERE r.run_id < ? AND r.run_timestamp >= ? ORDER BY r.run_id",
            (before_run_id, since),
            heavy=False,
        )

    def all_runs(self) -> list[RunRow]:
        """Every run, oldest first (without snapshot/description)."""
        return self._select_runs("ORDER BY r.run_id", (), heavy=False)

    def run_by_guid(self, guid: str) -> RunRow | None:
        """The full row of the run with this guid (None when absent)."""
        rows = self._select_runs("WHERE r.guid = ? ORDER BY r.run_id LIMIT 1", (guid,), heavy=True)
        return rows[0] if rows else None

    def run_timestamp_of(self, run_id: int) -> float | None:
        """``run_timestamp`` of one run (None when absent or not started)."""
        rows = self.query("SELECT run_timestamp FROM runs WHERE run_id = ?", (run_id,))
        return _float(rows[0][0]) if rows else None

    def newest_started_run_id(self) -> int | None:
        """The largest run_id of a started run."""
        rows = self.query("SELECT max(run_id) FROM runs WHERE run_timestamp IS NOT NULL")
        return _int(rows[0][0]) if rows else None

    # -- descriptions -----------------------------------------------------------------------------
    def description(self, run: RunRow) -> RunDescription:
        """The parameters of a run (from ``run_description`` or, before v3, the layouts)."""
        if run.run_description:
            try:
                return parse_run_description(run.run_description)
            except ValueError as exc:
                raise RunUnreadable(f"run {run.run_id}: {exc}") from None
        tables = self.tables()
        if "layouts" not in tables:
            raise RunUnreadable(f"run {run.run_id} has no run_description and no layouts table")
        layouts = self.query(
            "SELECT layout_id, parameter, label, unit, inferred_from FROM layouts "
            "WHERE run_id = ? ORDER BY layout_id",
            (run.run_id,),
        )
        deps: list[Any] = []
        if "dependencies" in tables and layouts:
            marks = ",".join("?" * len(layouts))
            deps = self.query(
                "SELECT dependent, independent, axis_num FROM dependencies "
                f"WHERE dependent IN ({marks})",
                [r[0] for r in layouts],
            )
        return description_from_layouts(layouts, deps)

    # -- results ----------------------------------------------------------------------------------
    def _raw_connection(self, run: RunRow) -> tuple[sqlite3.Connection, Path]:
        stored = run.raw_data_db_path or ""
        candidates = [Path(stored)] if stored else []
        name = Path(stored.replace("\\", "/")).name if stored else f"{run.guid}.db"
        candidates += [self.path.parent / name, self.path.parent / "raw" / name]
        for candidate in candidates:
            if candidate.is_file():
                key = str(candidate.resolve())
                if key not in self._raw_conns:
                    try:
                        self._raw_conns[key] = connect_readonly(
                            candidate, busy_timeout=self.busy_timeout
                        )
                    except DatabaseUnavailable as exc:
                        raise RunUnreadable(f"run {run.run_id}: raw-data file: {exc}") from None
                return self._raw_conns[key], Path(key)
        raise RunUnreadable(
            f"run {run.run_id} keeps its data in a per-dataset file {stored or name!r} "
            f"that is not found (looked next to {self.path.name} too)"
        )

    def _results_location(self, run: RunRow) -> tuple[sqlite3.Connection, str, Path]:
        table = run.result_table_name
        if not table:
            raise RunUnreadable(f"run {run.run_id} has no result_table_name")
        if run.raw_data_db_path:
            conn, path = self._raw_connection(run)
        else:
            conn, path = self.conn, self.path
        found = _retry(
            lambda: conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name = ?", (table,)
            ).fetchone()
        )
        if found is None:
            if run.raw_data_db_path is None and "raw_data_db_path" in run.metadata:
                conn, path = self._raw_connection(run)
            else:
                raise RunUnreadable(
                    f"run {run.run_id}: its results table {table!r} does not exist (the run "
                    "may keep its data in an exported netCDF file, which is not supported)"
                )
        return conn, table, path

    def results_connection(self, run: RunRow) -> tuple[sqlite3.Connection, str]:
        """The connection holding the run's results table, and the table's name."""
        conn, table, _ = self._results_location(run)
        return conn, table

    def results_size(self, run: RunRow) -> int:
        """The largest row id of the run's results table (grows while data are added)."""
        conn, table = self.results_connection(run)
        row = _retry(lambda: conn.execute(f"SELECT max(id) FROM {quote(table)}").fetchone())
        return int(row[0] or 0) if row else 0

    def results_columns(self, run: RunRow) -> list[str]:
        """Columns of the run's results table."""
        conn, table = self.results_connection(run)
        return [
            str(r[1])
            for r in _retry(lambda: conn.execute(f"PRAGMA table_info({quote(table)})").fetchall())
        ]

    def read_tree(
        self, run: RunRow, columns: Sequence[str], paramtypes: Sequence[str]
    ) -> dict[str, np.ndarray[Any, Any]]:
        """The rows where ``columns[0]`` is not NULL, in row order: column name → values.

        Numeric columns become float64 (NULL and QCoDeS' ``'nan'`` text → NaN), complex columns
        complex128, array columns object arrays of decoded arrays, text columns object arrays.
        One query over the whole table: the simple path :meth:`read_trees` must agree with.
        """
        conn, table = self.results_connection(run)
        return _read_tree(conn, table, columns, paramtypes)

    def read_trees(
        self,
        run: RunRow,
        trees: Sequence[tuple[Sequence[str], Sequence[str]]],
        *,
        parallel: bool | None = None,
        range_ids: int | None = None,
    ) -> Generator[dict[str, np.ndarray[Any, Any]], None, None]:
        """:meth:`read_tree` of each ``(columns, paramtypes)`` in ``trees``, in that order.

        With a helper process (see ``parallel`` and ``range_ids`` of the constructor; given here
        they override it) the run is read in ranges of row ids by this process and the helper at
        once; otherwise each tree is read by one query, like :meth:`read_tree`. Both give the
        same values. Close the iterator (or exhaust it) to end the helper.
        """
        conn, table, path = self._results_location(run)
        if not trees:
            return
        if parallel is None:
            parallel = self.parallel
        bounds: tuple[int, int] | None = None
        if parallel is None:
            if (
                run.is_completed
                and _usable_cpus() >= 2
                and any(_all_numeric(types) for _, types in trees)
            ):
                bounds = _id_bounds(conn, table)
            parallel = bounds is not None and bounds[1] - bounds[0] + 1 >= PARALLEL_MIN_ROWS
        elif parallel:
            bounds = _id_bounds(conn, table)
        if not parallel or bounds is None:  # no rowid ranges (or an empty table): one query
            for columns, paramtypes in trees:
                yield _read_tree(conn, table, columns, paramtypes)
            return
        step = range_ids or self.range_ids or RANGE_IDS
        yield from _read_ranges(
            conn, _readonly_uri(path), self.busy_timeout, table, trees, step, bounds
        )


def _decode_array(blob: Any) -> Any:
    if blob is None:
        return None
    if isinstance(blob, (bytes, bytearray, memoryview)):
        try:
            return np.lib.format.read_array(io.BytesIO(bytes(blob)), allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise RunUnreadable(f"an array value is not a valid .npy blob ({exc})") from None
    return np.asarray(blob)


def _decode_complex(blob: Any) -> complex:
    if blob is None:
        return complex("nan+nanj")
    if isinstance(blob, (bytes, bytearray, memoryview)):
        try:
            return complex(np.load(io.BytesIO(bytes(blob)), allow_pickle=False)[0])
        except (ValueError, OSError, IndexError) as exc:
            raise RunUnreadable(f"a complex value is not a valid .npy blob ({exc})") from None
    return complex(blob)


def _numeric(values: Sequence[Any]) -> Float64Array:
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        out = np.full(len(values), np.nan)
        for i, v in enumerate(values):
            try:
                out[i] = float(v)
            except (TypeError, ValueError):
                pass
        return out


def _all_numeric(paramtypes: Sequence[str]) -> bool:
    return all(t == "numeric" for t in paramtypes)


def _select(table: str, columns: Sequence[str], *, ranged: bool) -> str:
    """The rows of a tree (``columns[0]`` not NULL) in row order, optionally in an id range."""
    where = f"{quote(columns[0])} IS NOT NULL"
    if ranged:
        where = f"id > ? AND id <= ? AND {where}"
    return (
        f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(table)} "
        f"WHERE {where} ORDER BY id"
    )


@dataclass
class _Block:
    """The rows one query returned for one tree."""

    #: The numeric columns, in ``columns`` order, each contiguous (one value per row).
    numeric: list[Float64Array]
    #: Index in ``columns`` → the raw values of a non-numeric column.
    others: dict[int, list[Any]]


def _columns_of(rows: Float64Array) -> list[Float64Array]:
    """The columns of a row-major ``(rows, width)`` array, each contiguous."""
    return [np.ascontiguousarray(rows[:, j]) for j in range(rows.shape[1])]


def _read_fast(
    conn: sqlite3.Connection, sql: str, params: Sequence[Any], width: int
) -> list[Float64Array]:
    """Every value through numpy at once (floats and ints, also NULL → NaN and numeric text).

    Iterating the cursor directly is the fastest way through the sqlite3 module: no list of
    rows is built. Raises TypeError/ValueError for a value numpy cannot take (e.g. ``'abc'``).
    """
    cursor = conn.execute(sql, tuple(params))
    flat = np.fromiter(itertools.chain.from_iterable(cursor), np.float64)
    return _columns_of(flat.reshape(-1, width))


def _read_slow(
    conn: sqlite3.Connection, sql: str, params: Sequence[Any], paramtypes: Sequence[str]
) -> _Block:
    """Column by column: numeric columns through :func:`_numeric`, the others kept raw."""
    numeric = [i for i, t in enumerate(paramtypes) if t == "numeric"]
    other = [i for i, t in enumerate(paramtypes) if t != "numeric"]
    parts: list[list[Float64Array]] = [[] for _ in numeric]
    others: dict[int, list[Any]] = {i: [] for i in other}
    cursor = conn.execute(sql, tuple(params))
    while True:
        chunk = cursor.fetchmany(_CHUNK)
        if not chunk:
            break
        for j, i in enumerate(numeric):
            parts[j].append(_numeric([row[i] for row in chunk]))
        for i in other:
            others[i].extend(row[i] for row in chunk)
    return _Block([_joined(p) for p in parts], others)


def _joined(parts: Sequence[Float64Array]) -> Float64Array:
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return np.empty(0, dtype=np.float64)
    return np.concatenate(parts)


def _read_block(
    conn: sqlite3.Connection, sql: str, params: Sequence[Any], paramtypes: Sequence[str]
) -> _Block:
    """One query's rows of one tree (retried while the database is busy)."""
    if _all_numeric(paramtypes):
        try:
            return _Block(_retry(lambda: _read_fast(conn, sql, params, len(paramtypes))), {})
        except (TypeError, ValueError):
            pass  # text numpy cannot read (or a blob): column by column
    return _retry(lambda: _read_slow(conn, sql, params, paramtypes))


def _finish(
    blocks: Sequence[_Block], columns: Sequence[str], paramtypes: Sequence[str]
) -> dict[str, np.ndarray[Any, Any]]:
    """Column name → values of a tree from its blocks in row order (numeric columns first).

    Each block column is released as soon as it is copied (less memory at once).
    """
    numeric = [i for i, t in enumerate(paramtypes) if t == "numeric"]
    other = [i for i, t in enumerate(paramtypes) if t != "numeric"]
    values: dict[str, np.ndarray[Any, Any]] = {}
    released = np.empty(0, dtype=np.float64)
    for j, i in enumerate(numeric):
        values[columns[i]] = _joined([block.numeric[j] for block in blocks])
        for block in blocks:
            block.numeric[j] = released
    for i in other:
        kind = paramtypes[i]
        raw = list(itertools.chain.from_iterable(block.others.pop(i) for block in blocks))
        if kind == "array":
            arr = np.empty(len(raw), dtype=object)
            arr[:] = [_decode_array(v) for v in raw]
        elif kind == "complex":
            arr = np.array([_decode_complex(v) for v in raw], dtype=np.complex128)
        else:
            arr = np.empty(len(raw), dtype=object)
            arr[:] = [_text(v) if not isinstance(v, (int, float)) else v for v in raw]
        values[columns[i]] = arr
    return values


def _read_tree(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], paramtypes: Sequence[str]
) -> dict[str, np.ndarray[Any, Any]]:
    """The simple path: one query for the whole tree."""
    if not columns:
        return {}
    block = _read_block(conn, _select(table, columns, ranged=False), (), paramtypes)
    return _finish([block], columns, paramtypes)


# -- reading in id ranges, with a helper process -------------------------------------------------
def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _id_bounds(conn: sqlite3.Connection, table: str) -> tuple[int, int] | None:
    """(min, max) of ``id`` when it is the table's INTEGER PRIMARY KEY (rowid), else None.

    None also for an empty table. Ranges of a rowid are cheap (a b-tree seek) and in id order.
    """
    info = _retry(lambda: conn.execute(f"PRAGMA table_info({quote(table)})").fetchall())
    keys = [row for row in info if int(row[5] or 0) > 0]
    if len(keys) != 1 or keys[0][1] != "id" or str(keys[0][2]).upper() != "INTEGER":
        return None
    # Two queries: SQLite answers a lone min() or max() of the rowid from the b-tree's ends,
    # but scans the whole table for "SELECT min(id), max(id)".
    low = _retry(lambda: conn.execute(f"SELECT min(id) FROM {quote(table)}").fetchone())
    high = _retry(lambda: conn.execute(f"SELECT max(id) FROM {quote(table)}").fetchone())
    if low is None or high is None or low[0] is None or high[0] is None:
        return None
    return int(low[0]), int(high[0])


class _HelperFailed(Exception):
    """The helper process ended or reported an error."""


class _Helper:
    """A helper process (:mod:`etiket_sync_agent_qcodes._rowhelper`) reading numeric ranges."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        #: Replies are read into this buffer (reused: no fresh memory per reply).
        self._buffer = bytearray()
        _widen_pipe(process)

    @classmethod
    def start(cls, uri: str, busy_timeout: float) -> _Helper | None:
        """Start one (None when this interpreter cannot start it)."""
        executable = Path(sys.executable or "")
        if (
            getattr(sys, "frozen", False)  # a bundled app: sys.executable is not a Python
            or not executable.name.lower().startswith("python")
            or not _HELPER_SCRIPT.is_file()
        ):
            return None
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if sys.platform == "win32" else 0
        try:
            process = subprocess.Popen(
                [sys.executable, "-I", "-S", str(_HELPER_SCRIPT), uri, repr(busy_timeout)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                creationflags=flags,
            )
        except (OSError, ValueError):
            return None
        return cls(process)

    def _exactly(self, size: int) -> bytes:
        assert self.process.stdout is not None
        data = self.process.stdout.read(size)
        if len(data) != size:
            raise _HelperFailed("the helper process ended")
        return data

    def _floats(self, size: int) -> Float64Array:
        """The next ``size`` bytes as float64, in the reused buffer (valid until the next call)."""
        replies = cast(io.BufferedReader, self.process.stdout)
        if size % 8:
            raise _HelperFailed(f"the helper sent {size} bytes, not whole float64 values")
        if len(self._buffer) < size:
            self._buffer = bytearray(size)
        view = memoryview(self._buffer)[:size]
        done = 0
        while done < size:
            got = replies.readinto(view[done:])
            if not got:
                raise _HelperFailed("the helper process ended")
            done += got
        return np.frombuffer(self._buffer, dtype=np.float64, count=size // 8)

    def read(
        self, queries: Sequence[tuple[str, Sequence[int], int]]
    ) -> list[list[Float64Array] | None]:
        """Per ``(sql, params, width)``: the columns of its rows (float64, each contiguous), or
        None where a value was not a float or an int."""
        assert self.process.stdin is not None
        request = json.dumps([[sql, list(params)] for sql, params, _ in queries])
        self.process.stdin.write(request.encode("utf-8") + b"\n")
        self.process.stdin.flush()
        results: list[list[Float64Array] | None] = []
        for _, _, width in queries:
            status, size = HEADER.unpack(self._exactly(HEADER.size))
            if status == OK:
                rows = self._floats(size).reshape(-1, width)
                results.append([rows[:, j].copy() for j in range(width)])  # out of the buffer
            elif status == NOT_NUMERIC:
                results.append(None)
            else:
                raise _HelperFailed(self._exactly(size).decode("utf-8", errors="replace"))
        return results

    def end_input(self) -> None:
        """No more requests: the process ends once it has answered the last one."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
        except OSError:
            pass

    def close(self, *, kill: bool = False) -> None:
        """End the process: EOF on its input, or ``kill`` (also wakes a thread reading it)."""
        if kill:
            self.process.kill()
        self.end_input()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _widen_pipe(process: subprocess.Popen[bytes]) -> None:
    """On Linux, a 1 MiB pipe for the replies: fewer wake-ups of the thread reading them."""
    if sys.platform != "linux" or process.stdout is None:
        return
    import fcntl

    try:
        fcntl.fcntl(process.stdout.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
    except (OSError, AttributeError):
        pass  # older kernel or a lower /proc/sys/fs/pipe-max-size: the default pipe works too


_PENDING, _LOCAL, _HELPER, _DONE = range(4)


@dataclass
class _Task:
    """One tree's rows in one id range (``low`` < id <= ``high``)."""

    tree: int
    low: int
    high: int
    #: Whether the helper process may read it (numeric trees; not after it said "not numeric").
    helper_may: bool
    state: int = _PENDING
    block: _Block | None = None


class _Schedule:
    """The tasks of one read, in tree order, shared by the main thread and the helper thread.

    Both take the first pending task they may read, so the trees complete one after another:
    the main thread hands a tree to its consumer as soon as the tree is complete, and the helper
    goes on reading the next ones meanwhile. A task the helper gives back (not numeric, helper
    failed) is pending again and read by the main thread.
    """

    def __init__(self, tasks: Sequence[_Task]) -> None:
        self.tasks = list(tasks)
        self.changed = threading.Condition()
        self.helping = False

    def take(self, *, helper: bool) -> _Task | None:
        """The first pending task this side may read (now marked as taken), or None."""
        with self.changed:
            if helper and not self.helping:
                return None
            for task in self.tasks:
                if task.state == _PENDING and (task.helper_may or not helper):
                    task.state = _HELPER if helper else _LOCAL
                    return task
            return None

    def deliver(self, task: _Task, block: _Block | None) -> None:
        """A task is read (``block``), or given back by the helper (None)."""
        with self.changed:
            if block is None:
                task.state = _PENDING
                task.helper_may = False
            else:
                task.block = block
                task.state = _DONE
            self.changed.notify_all()

    def stop_helping(self) -> None:
        """The helper stops: give back the task it was reading, hand it no more."""
        with self.changed:
            self.helping = False
            for each in self.tasks:
                if each.state == _HELPER:
                    each.state = _PENDING
            self.changed.notify_all()

    def complete(
        self, tree: int, read: Callable[[_Task], _Block], stalled: Callable[[], None]
    ) -> list[_Block]:
        """Main thread: read tasks (of this tree first) until ``tree`` is complete; its blocks.

        ``stalled`` is called when the helper delivered nothing for :data:`HELPER_PATIENCE`
        seconds while this thread waited for it (it should end the helper).
        """
        mine = [task for task in self.tasks if task.tree == tree]
        waited = 0.0
        while True:
            with self.changed:
                if all(each.state == _DONE for each in mine):
                    blocks = [each.block for each in mine if each.block is not None]
                    for each in mine:
                        each.block = None
                    self.tasks = [each for each in self.tasks if each.tree != tree]
                    return blocks
                task = self.take(helper=False)
                if task is None:
                    # The rest of this tree is with the helper: wait for it (or for its end).
                    started = time.monotonic()
                    if not self.changed.wait(timeout=1.0):
                        waited += time.monotonic() - started
                        if waited > HELPER_PATIENCE:
                            stalled()
                    continue
                waited = 0.0
            self.deliver(task, read(task))


def _help(
    helper: _Helper, schedule: _Schedule, query: Callable[[_Task], tuple[str, Any, int]]
) -> None:
    """Helper thread: feed the helper process tasks until none is left or it fails."""
    try:
        while True:
            task = schedule.take(helper=True)
            if task is None:
                return
            (columns,) = helper.read([query(task)])
            schedule.deliver(task, None if columns is None else _Block(columns, {}))
    except Exception:
        pass  # whatever the helper did not deliver, the main thread reads
    finally:
        schedule.stop_helping()


def _ranges(first: int, last: int, step: int) -> list[tuple[int, int]]:
    """``(low, high]`` id ranges of ``step`` ids covering ``first`` … ``last``."""
    return [(low, min(low + step, last)) for low in range(first - 1, last, step)]


def _ranges_with_small_end(
    ranges: Sequence[tuple[int, int]], count: int = 2, pieces: int = 4
) -> list[tuple[int, int]]:
    """``ranges`` with each of the last ``count`` split into ``pieces`` (where possible)."""
    head = list(ranges[: max(0, len(ranges) - count)])
    for low, high in ranges[len(head) :]:
        step = max(1, -(-(high - low) // pieces))
        head += _ranges(low + 1, high, step)
    return head


def _read_ranges(
    conn: sqlite3.Connection,
    uri: str,
    busy_timeout: float,
    table: str,
    trees: Sequence[tuple[Sequence[str], Sequence[str]]],
    range_ids: int,
    bounds: tuple[int, int],
) -> Generator[dict[str, np.ndarray[Any, Any]], None, None]:
    """The trees, read in id ranges by this thread and a helper process (fed by a second thread).

    ``bounds`` are the (min, max) ids seen when reading starts: the ranges end there, so every
    reader sees the same rows (QCoDeS only appends rows). Whatever the helper does not deliver
    (non-numeric trees, values that are not plain numbers, a helper that could not start or
    failed) is read here.
    """
    ranges = _ranges(*bounds, max(1, int(range_ids)))
    sqls = [_select(table, columns, ranged=True) if columns else "" for columns, _ in trees]
    present = [t for t, (columns, _) in enumerate(trees) if columns]
    tasks = [
        _Task(t, low, high, helper_may=_all_numeric(trees[t][1]))
        for t in present
        # The schedule ends with smaller tasks, so both readers finish at about the same time.
        for low, high in (_ranges_with_small_end(ranges) if t == present[-1] else ranges)
    ]
    schedule = _Schedule(tasks)

    def read(task: _Task) -> _Block:
        return _read_block(conn, sqls[task.tree], (task.low, task.high), trees[task.tree][1])

    def query(task: _Task) -> tuple[str, Any, int]:
        return sqls[task.tree], (task.low, task.high), len(trees[task.tree][0])

    def stalled() -> None:
        if helper is not None:
            helper.process.kill()

    helpful = sum(task.helper_may for task in tasks) > 1
    helper = _Helper.start(uri, busy_timeout) if helpful else None
    thread: threading.Thread | None = None
    if helper is not None:
        schedule.helping = True
        thread = threading.Thread(target=_help, args=(helper, schedule, query), daemon=True)
        thread.start()
    finished = False
    try:
        for t, (columns, types) in enumerate(trees):
            if not columns:
                yield {}
                continue
            blocks = schedule.complete(t, read, stalled)
            if t == present[-1] and helper is not None:
                helper.end_input()  # everything is read: let it exit while we go on
            values = _finish(blocks, columns, types)
            del blocks
            yield values
            del values
        finished = True
    finally:
        schedule.stop_helping()
        if helper is not None:
            helper.close(kill=not finished)
        if thread is not None:
            thread.join()
