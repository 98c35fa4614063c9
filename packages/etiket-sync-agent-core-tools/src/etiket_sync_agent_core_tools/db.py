"""Read-only access to a core-tools PostgreSQL database (psycopg 3, no core_tools import).

The schema (facts from core-tools' own table definitions):

``global_measurement_overview``: one row per measurement — ``id`` (serial), ``uuid`` (bigint,
unique), ``exp_name``, ``set_up``, ``project``, ``sample``, ``creasted_by`` (sic), ``start_time`` and
``stop_time`` (timestamp without time zone), ``exp_data_location`` (old format: the name of the
measurement's parameter table), ``snapshot`` and ``metadata`` (bytea holding JSON text),
``keywords`` (jsonb), ``starred``, ``completed``, ``data_size``, ``data_cleared``,
``data_update_count`` (newer databases), ``data_synchronized``, ``table_synchronized`` and
``sync_location`` (set to ``'New measurement_parameters'`` for measurements in the current format).
Some installations add a ``scope`` column.

Parameters of a measurement are rows of ``measurement_parameters`` (current format, selected by
``exp_uuid`` and ordered by ``param_index``) or of the per-measurement table named by
``exp_data_location`` (old format, ordered by ``id``), with the same columns: ``param_id``,
``nth_set``, ``nth_dim``, ``param_id_m_param``, ``setpoint``, ``setpoint_local``, ``name_gobal``
(sic), ``name``, ``label``, ``unit``, ``depencies`` (sic, jsonb list of ``param_id``),
``shape`` (jsonb), ``write_cursor`` (values written so far), ``total_size`` (values in the
array) and ``oid`` (a large object holding the values as native float64, written front to back).

Every session we open is read-only (``default_transaction_read_only=on``) and every transaction is a
``REPEATABLE READ READ ONLY`` snapshot, so a measurement's cursors and data are read consistently
while core-tools keeps writing. Note that PostgreSQL does not block large-object *writes* in read-only
transactions: this module only ever calls ``lo_get``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from etiket_sync_agent.errors import SourceError, SyncError
from etiket_sync_agent_core_tools.config import (
    OVERVIEW_TABLE,
    PARAMETERS_TABLE,
    CoreToolsConfig,
    connect_kwargs,
    scrub,
    source_identity,
)

__all__ = [
    "NEW_FORMAT_MARKER",
    "Database",
    "LargeObjectReader",
    "MeasurementRow",
    "ParamRow",
    "WrittenSize",
]

_log = logging.getLogger("etiket_sync_agent_core_tools")

#: ``sync_location`` value core-tools writes for measurements stored in ``measurement_parameters``.
NEW_FORMAT_MARKER = "New measurement_parameters"
#: Values read from a large object per ``lo_get`` call (8 MiB).
CHUNK_VALUES = 1 << 20

_OPTIONAL_COLUMNS = (
    "creasted_by",
    "exp_data_location",
    "keywords",
    "starred",
    "completed",
    "data_size",
    "data_update_count",
    "sync_location",
    "scope",
    "snapshot",
    "metadata",
)
_REQUIRED_COLUMNS = ("id", "uuid", "exp_name", "set_up", "project", "sample", "start_time")
#: Columns of ``measurement_parameters`` the reader needs (also what the fixtures write).
PARAM_COLUMNS = (
    "param_id",
    "nth_set",
    "nth_dim",
    "param_id_m_param",
    "setpoint",
    "setpoint_local",
    "name_gobal",
    "name",
    "label",
    "unit",
    "depencies",
    "shape",
    "write_cursor",
    "total_size",
    "oid",
)


@dataclass(frozen=True)
class WrittenSize:
    """How much of a measurement is written: parameter rows and the sum of their write cursors."""

    params: int
    values: int

    def as_list(self) -> list[int]:
        return [self.params, self.values]


@dataclass
class MeasurementRow:
    """One row of ``global_measurement_overview`` (columns a database lacks are ``None``)."""

    id: int
    uuid: int
    exp_name: str
    set_up: str
    project: str
    sample: str
    start_time: dt.datetime | None
    stop_time: dt.datetime | None
    creator: str | None
    exp_data_location: str | None
    keywords: Any
    starred: bool
    completed: bool
    data_size: int | None
    data_update_count: int | None
    sync_location: str | None
    scope: str | None
    snapshot: bytes | None = None
    metadata: bytes | None = None

    @property
    def new_format(self) -> bool:
        """Whether the parameters are in ``measurement_parameters`` (else the old per-run table)."""
        if self.sync_location == NEW_FORMAT_MARKER:
            return True
        return not (self.exp_data_location or "").strip()

    @property
    def format_name(self) -> str:
        return "measurement_parameters" if self.new_format else "per-measurement table"


@dataclass
class ParamRow:
    """One parameter (setpoint, local setpoint or measured output) of a measurement."""

    param_id: int
    nth_set: int
    nth_dim: int
    param_id_m_param: int
    setpoint: bool
    setpoint_local: bool
    name_global: str | None
    name: str
    label: str
    unit: str
    dependencies: list[int]
    shape: tuple[int, ...]
    write_cursor: int
    total_size: int
    oid: int

    @property
    def is_measured(self) -> bool:
        """A measured output: not a setpoint and its own measurement parameter."""
        return (
            not self.setpoint and not self.setpoint_local and self.param_id == self.param_id_m_param
        )

    @property
    def is_setpoint(self) -> bool:
        return self.setpoint or self.setpoint_local

    @classmethod
    def from_db(cls, values: Sequence[Any]) -> ParamRow:
        (
            param_id,
            nth_set,
            nth_dim,
            m_param,
            setpoint,
            setpoint_local,
            name_global,
            name,
            label,
            unit,
            deps,
            shape,
            cursor,
            total,
            oid,
        ) = values
        if isinstance(shape, int):
            shape = [shape]
        return cls(
            param_id=int(param_id) if param_id is not None else 0,
            nth_set=int(nth_set or 0),
            nth_dim=int(nth_dim) if nth_dim is not None else -1,
            param_id_m_param=int(m_param) if m_param is not None else 0,
            setpoint=bool(setpoint),
            setpoint_local=bool(setpoint_local),
            name_global=name_global,
            name=str(name),
            label=str(label or ""),
            unit=str(unit or ""),
            dependencies=[int(d) for d in (deps or []) if d is not None],
            shape=tuple(int(s) for s in (shape or [])),
            write_cursor=max(int(cursor or 0), 0),
            total_size=int(total or 0),
            oid=int(oid) if oid is not None else 0,
        )


def _connection_problem(exc: BaseException) -> bool:
    """Whether an error means the connection (or server) is gone rather than a bad query."""
    if isinstance(exc, psycopg.InterfaceError):
        return True
    if isinstance(exc, psycopg.OperationalError):
        # Class 57 (operator intervention: admin shutdown, crash), 08 (connection exception) or
        # no SQLSTATE at all (the socket broke).
        state = getattr(exc, "sqlstate", None)
        return state is None or state.startswith(("57", "08", "53"))
    return False


class Database:
    """A small pool of read-only connections to one core-tools database, safe across threads."""

    def __init__(self, config: CoreToolsConfig, *, max_idle: int = 4) -> None:
        self.config = config
        self.identity = source_identity(config)
        self._max_idle = max_idle
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._columns: set[str] | None = None
        self._closed = False

    # -- connections -----------------------------------------------------------------------------
    def describe(self) -> str:
        """Where the database is, for messages (no secret)."""
        return (
            f"PostgreSQL database {self.config.dbname!r} at {self.config.host}:{self.config.port}"
        )

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(**connect_kwargs(self.config))
        except psycopg.Error as exc:
            raise SourceError(
                f"cannot connect to {self.describe()} as {self.config.user!r}: "
                f"{scrub(_first_line(exc), self.config)}"
            ) from None
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        return conn

    def _acquire(self) -> psycopg.Connection[Any]:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed and not conn.broken:
                    return conn
        return self._connect()

    def _release(self, conn: psycopg.Connection[Any], *, ok: bool) -> None:
        if ok and not conn.closed and not conn.broken:
            with self._lock:
                if not self._closed and len(self._idle) < self._max_idle:
                    self._idle.append(conn)
                    return
        with contextlib.suppress(Exception):
            conn.close()

    @contextlib.contextmanager
    def snapshot(self, what: str) -> Iterator[psycopg.Connection[Any]]:
        """A connection inside a read-only REPEATABLE READ transaction.

        A lost connection or a server going away becomes :class:`SourceError` naming ``what``;
        other database errors propagate (callers turn them into item errors).
        """
        if self._closed:
            raise SourceError(f"the core-tools source for {self.describe()} was closed")
        conn = self._acquire()
        try:
            with conn.transaction():
                yield conn
        except psycopg.Error as exc:
            if _connection_problem(exc) or conn.broken or conn.closed:
                raise SourceError(
                    f"lost the connection to {self.describe()} while {what}: "
                    f"{scrub(_first_line(exc), self.config)}"
                ) from None
            raise
        finally:
            self._release(conn, ok=not conn.broken and not conn.closed)

    @contextlib.contextmanager
    def source_snapshot(self, what: str) -> Iterator[psycopg.Connection[Any]]:
        """Like :meth:`snapshot`, but any database error is a :class:`SourceError`.

        For discovery and live checks, where a failing query means the source is unusable (a
        table dropped, privileges revoked); the cached schema is forgotten so it is re-read.
        """
        try:
            with self.snapshot(what) as conn:
                yield conn
        except psycopg.Error as exc:
            self._columns = None
            raise SourceError(
                f"{self.describe()} refused a query while {what}: "
                f"{scrub(_first_line(exc), self.config)}"
            ) from None
        except SourceError:
            self._columns = None
            raise

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()

    # -- schema ----------------------------------------------------------------------------------
    def overview_columns(self, conn: psycopg.Connection[Any]) -> set[str]:
        """Columns of ``global_measurement_overview`` (cached; checks the table exists)."""
        if self._columns is None:
            rows = conn.execute(
                "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) "
                "AND a.attnum > 0 AND NOT a.attisdropped",
                (OVERVIEW_TABLE,),
            ).fetchall()
            columns = {str(r[0]) for r in rows}
            if not columns:
                raise SourceError(
                    f"{self.describe()} has no table {OVERVIEW_TABLE!r} "
                    "(not a core-tools database, or the table was dropped)"
                )
            missing = [c for c in _REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise SourceError(
                    f"{OVERVIEW_TABLE!r} in {self.describe()} lacks the columns {missing}: "
                    "not a core-tools database"
                )
            self._columns = columns
        return self._columns

    def _select_list(self, conn: psycopg.Connection[Any], *, heavy: bool) -> sql.Composed:
        columns = self.overview_columns(conn)
        parts: list[sql.Composable] = [sql.Identifier(c) for c in _REQUIRED_COLUMNS]
        parts.append(
            sql.Identifier("stop_time") if "stop_time" in columns else sql.SQL("NULL::timestamp")
        )
        for name in _OPTIONAL_COLUMNS:
            if name in ("snapshot", "metadata") and not heavy:
                parts.append(sql.SQL("NULL"))
            elif name in columns:
                parts.append(sql.Identifier(name))
            else:
                parts.append(sql.SQL("NULL"))
        return sql.SQL(", ").join(parts)

    @staticmethod
    def _row(values: Sequence[Any]) -> MeasurementRow:
        (
            id_,
            uuid,
            exp_name,
            set_up,
            project,
            sample,
            start_time,
            stop_time,
            creator,
            location,
            keywords,
            starred,
            completed,
            data_size,
            update_count,
            sync_location,
            scope,
            snapshot,
            metadata,
        ) = values
        return MeasurementRow(
            id=int(id_),
            uuid=int(uuid),
            exp_name=str(exp_name or ""),
            set_up=str(set_up or ""),
            project=str(project or ""),
            sample=str(sample or ""),
            start_time=start_time,
            stop_time=stop_time,
            creator=creator,
            exp_data_location=location,
            keywords=keywords,
            starred=bool(starred),
            completed=bool(completed),
            data_size=int(data_size) if data_size is not None else None,
            data_update_count=int(update_count) if update_count is not None else None,
            sync_location=sync_location,
            scope=str(scope) if scope not in (None, "") else None,
            snapshot=bytes(snapshot) if snapshot is not None else None,
            metadata=bytes(metadata) if metadata is not None else None,
        )

    # -- queries ---------------------------------------------------------------------------------
    def list_measurements(
        self, conn: psycopg.Connection[Any], after_id: int, limit: int
    ) -> list[MeasurementRow]:
        """Rows with ``id > after_id``, oldest first, without snapshot and metadata."""
        query = sql.SQL("SELECT {} FROM {} WHERE id > %s ORDER BY id LIMIT %s").format(
            self._select_list(conn, heavy=False), sql.Identifier(OVERVIEW_TABLE)
        )
        return [self._row(r) for r in conn.execute(query, (after_id, limit)).fetchall()]

    def all_measurements(self, conn: psycopg.Connection[Any]) -> list[MeasurementRow]:
        """Every row (without snapshot and metadata), for fingerprints."""
        query = sql.SQL("SELECT {} FROM {} ORDER BY id").format(
            self._select_list(conn, heavy=False), sql.Identifier(OVERVIEW_TABLE)
        )
        return [self._row(r) for r in conn.execute(query).fetchall()]

    def get_measurement(
        self, conn: psycopg.Connection[Any], uuid: int, *, heavy: bool = True
    ) -> MeasurementRow | None:
        query = sql.SQL("SELECT {} FROM {} WHERE uuid = %s").format(
            self._select_list(conn, heavy=heavy), sql.Identifier(OVERVIEW_TABLE)
        )
        found = conn.execute(query, (uuid,)).fetchone()
        return None if found is None else self._row(found)

    def _old_table(self, conn: psycopg.Connection[Any], row: MeasurementRow) -> sql.Identifier:
        """The old-format parameter table of ``row`` as a safe identifier (SyncError if absent)."""
        name = (row.exp_data_location or "").strip()
        try:
            with conn.transaction():  # a savepoint: a bad name must not abort the snapshot
                found = conn.execute(
                    "SELECT n.nspname, c.relname FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
                    (name,),
                ).fetchone()
        except psycopg.Error as exc:
            if _connection_problem(exc):
                raise
            found = None
        if found is None:
            raise SyncError(
                f"measurement {row.uuid} (id {row.id}) is in the old format but its parameter "
                f"table {name!r} does not exist in {self.describe()}"
            )
        return sql.Identifier(str(found[0]), str(found[1]))

    def _new_table_exists(self, conn: psycopg.Connection[Any]) -> bool:
        found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (PARAMETERS_TABLE,)).fetchone()
        return bool(found and found[0])

    def get_params(self, conn: psycopg.Connection[Any], row: MeasurementRow) -> list[ParamRow]:
        """The parameter rows of a measurement in core-tools' order."""
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in PARAM_COLUMNS)
        if row.new_format:
            if not self._new_table_exists(conn):
                raise SyncError(
                    f"measurement {row.uuid} (id {row.id}) is in the current format but "
                    f"{self.describe()} has no table {PARAMETERS_TABLE!r}"
                )
            query = sql.SQL(
                "SELECT {} FROM {} WHERE exp_uuid = %s ORDER BY param_index, id"
            ).format(columns, sql.Identifier(PARAMETERS_TABLE))
            rows = conn.execute(query, (row.uuid,)).fetchall()
        else:
            table = self._old_table(conn, row)
            rows = conn.execute(
                sql.SQL("SELECT {} FROM {} ORDER BY id").format(columns, table)
            ).fetchall()
        return [ParamRow.from_db(r) for r in rows]

    def written_sizes(
        self, conn: psycopg.Connection[Any], rows: Sequence[MeasurementRow]
    ) -> dict[int, WrittenSize]:
        """uuid → written size, for the given (usually unfinished) measurements."""
        result: dict[int, WrittenSize] = {}
        new = [r.uuid for r in rows if r.new_format]
        if new and self._new_table_exists(conn):
            for uuid, count, total in conn.execute(
                sql.SQL(
                    "SELECT exp_uuid, count(*), coalesce(sum(write_cursor), 0) FROM {} "
                    "WHERE exp_uuid = ANY(%s) GROUP BY exp_uuid"
                ).format(sql.Identifier(PARAMETERS_TABLE)),
                (new,),
            ).fetchall():
                result[int(uuid)] = WrittenSize(int(count), int(total))
        for r in rows:
            if r.new_format:
                result.setdefault(r.uuid, WrittenSize(0, 0))
                continue
            try:
                table = self._old_table(conn, r)
            except SyncError:
                result[r.uuid] = WrittenSize(-1, -1)
                continue
            found = conn.execute(
                sql.SQL("SELECT count(*), coalesce(sum(write_cursor), 0) FROM {}").format(table)
            ).fetchone()
            result[r.uuid] = (
                WrittenSize(int(found[0]), int(found[1])) if found else WrittenSize(0, 0)
            )
        return result


class LargeObjectReader:
    """Reads float64 values out of large objects with ``lo_get`` inside the current snapshot."""

    def __init__(self, conn: psycopg.Connection[Any], *, chunk_values: int = CHUNK_VALUES) -> None:
        self.conn = conn
        self.chunk_values = chunk_values
        self.bytes_read = 0

    @staticmethod
    def _oid(oid: int) -> int:
        # core-tools keeps OIDs in an INT column: values above 2**31 would come back negative.
        return oid + (1 << 32) if oid < 0 else oid

    def read(self, oid: int, start: int, count: int) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Values ``start .. start+count`` (fewer if the object is shorter)."""
        if count <= 0:
            return np.empty(0, dtype="<f8")
        found = self.conn.execute(
            "SELECT lo_get(%s::bigint::oid, %s, %s)", (self._oid(oid), start * 8, count * 8)
        ).fetchone()
        raw = bytes(found[0]) if found and found[0] is not None else b""
        self.bytes_read += len(raw)
        usable = len(raw) - len(raw) % 8
        return np.frombuffer(raw[:usable], dtype="<f8").astype(np.float64, copy=False)

    def read_strided(
        self, oid: int, start: int, stride: int, count: int, limit: int
    ) -> np.ndarray[Any, np.dtype[np.float64]]:
        """``count`` values at ``start + i*stride``; indices at or beyond ``limit`` are NaN."""
        out = np.full(count, np.nan)
        if stride == 1:
            n = max(0, min(count, limit - start))
            data = self.read(oid, start, n)
            out[: data.size] = data
            return out
        n = 0
        while n < count and start + n * stride < limit:
            n += 1
        if n == 0:
            return out
        rows = self.conn.execute(
            "SELECT i, lo_get(%s::bigint::oid, (%s + i * %s) * 8, 8) "
            "FROM generate_series(0, %s) AS i",
            (self._oid(oid), start, stride, n - 1),
        ).fetchall()
        for i, raw in rows:
            value = bytes(raw) if raw is not None else b""
            self.bytes_read += len(value)
            if len(value) == 8:
                out[int(i)] = np.frombuffer(value, dtype="<f8")[0]
        return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
