"""Read QCoDeS SQLite databases with :mod:`sqlite3` only, read-only and without disturbing writers.

- Connections use the ``file:...?mode=ro`` URI: nothing is ever written, no ``PRAGMA journal_mode``
  is issued and no schema is upgraded. A database in WAL mode is read with its ``-wal`` content
  (what a running measurement committed but did not checkpoint yet is seen).
- ``SQLITE_BUSY``/"database is locked" while a writer commits is retried with a growing pause
  (sqlite's own busy handler waits first).
- Table and column names are always quoted, so names with spaces, dashes or quotes work.
"""

from __future__ import annotations

import io
import itertools
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import numpy as np

from etiket_sync_agent_qcodes.rundescriber import (
    RunDescription,
    description_from_layouts,
    parse_run_description,
)

__all__ = [
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
_CHUNK = 16_384

T = TypeVar("T")


class DatabaseUnavailable(Exception):
    """The database file cannot be opened or read (missing, permission, not SQLite, corrupt)."""


class RunUnreadable(Exception):
    """One run cannot be read (its results table or raw-data file is missing or broken)."""


def quote(name: str) -> str:
    """An SQL identifier in double quotes (embedded quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _retry(what: Callable[[], T], *, attempts: int = 8, pause: float = 0.05) -> T:
    """Run ``what``; on SQLITE_BUSY wait and try again (a writer is committing)."""
    for attempt in range(attempts):
        try:
            return what()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or attempt == attempts - 1:
                raise
            time.sleep(pause * (2**attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def connect_readonly(path: Path, *, busy_timeout: float = 5.0) -> sqlite3.Connection:
    """Open ``path`` read-only (URI ``mode=ro``); DatabaseUnavailable when that is impossible."""
    path = Path(path)
    if not path.exists():
        raise DatabaseUnavailable(f"database {path} does not exist")
    if not path.is_file():
        raise DatabaseUnavailable(f"{path} is not a file")
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"
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

    def __init__(self, path: Path | str, *, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
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
    def _raw_connection(self, run: RunRow) -> sqlite3.Connection:
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
                return self._raw_conns[key]
        raise RunUnreadable(
            f"run {run.run_id} keeps its data in a per-dataset file {stored or name!r} "
            f"that is not found (looked next to {self.path.name} too)"
        )

    def results_connection(self, run: RunRow) -> tuple[sqlite3.Connection, str]:
        """The connection holding the run's results table, and the table's name."""
        table = run.result_table_name
        if not table:
            raise RunUnreadable(f"run {run.run_id} has no result_table_name")
        conn = self._raw_connection(run) if run.raw_data_db_path else self.conn
        found = _retry(
            lambda: conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name = ?", (table,)
            ).fetchone()
        )
        if found is None:
            if run.raw_data_db_path is None and "raw_data_db_path" in run.metadata:
                conn = self._raw_connection(run)
            else:
                raise RunUnreadable(
                    f"run {run.run_id}: its results table {table!r} does not exist (the run "
                    "may keep its data in an exported netCDF file, which is not supported)"
                )
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
        """
        conn, table = self.results_connection(run)
        return _read_tree(conn, table, columns, paramtypes)


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


def _numeric(values: Sequence[Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
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


def _iter_chunks(conn: sqlite3.Connection, sql: str) -> Iterator[list[Any]]:
    cursor = _retry(lambda: conn.execute(sql))
    while True:
        chunk = cursor.fetchmany(_CHUNK)
        if not chunk:
            return
        yield chunk


def _read_tree(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], paramtypes: Sequence[str]
) -> dict[str, np.ndarray[Any, Any]]:
    if not columns:
        return {}
    sql = (
        f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(table)} "
        f"WHERE {quote(columns[0])} IS NOT NULL ORDER BY id"
    )
    numeric = [i for i, t in enumerate(paramtypes) if t == "numeric"]
    other = [i for i, t in enumerate(paramtypes) if t != "numeric"]
    all_numeric = not other
    blocks: list[np.ndarray[Any, np.dtype[np.float64]]] = []
    others: dict[int, list[Any]] = {i: [] for i in other}
    for chunk in _iter_chunks(conn, sql):
        if all_numeric:
            try:
                # Floats and ints only (the common case): the fastest conversion.
                flat = np.fromiter(
                    itertools.chain.from_iterable(chunk), np.float64, len(chunk) * len(columns)
                )
                blocks.append(flat.reshape(len(chunk), len(columns)))
                continue
            except (TypeError, ValueError):
                pass  # NULLs or QCoDeS' 'nan' text: column by column below
        block = np.empty((len(chunk), len(numeric)), dtype=np.float64)
        for j, i in enumerate(numeric):
            block[:, j] = _numeric([row[i] for row in chunk])
        blocks.append(block)
        for i in other:
            others[i].extend(row[i] for row in chunk)
    width = len(columns) if all_numeric else len(numeric)
    merged = np.concatenate(blocks) if blocks else np.empty((0, width), dtype=np.float64)
    blocks.clear()
    values: dict[str, np.ndarray[Any, Any]] = {}
    for j, i in enumerate(numeric):
        column_index = i if all_numeric else j
        values[columns[i]] = np.ascontiguousarray(merged[:, column_index])
    del merged
    for i in other:
        kind = paramtypes[i]
        raw = others.pop(i)
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
