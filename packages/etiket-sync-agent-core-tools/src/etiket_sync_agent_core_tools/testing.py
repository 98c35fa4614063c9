"""Generators of realistic core-tools databases, for tests, the conformance kit and the demo.

Everything here writes the tables exactly as core-tools defines them (column names, types and the
way values are written), without importing core-tools:

- :func:`create_schema` creates ``global_measurement_overview``, ``measurement_parameters`` and
  ``sample_info_overview`` (optionally the legacy variant without ``measurement_parameters`` and
  ``data_update_count``, or with an extra ``scope`` column);
- :class:`MeasurementWriter` registers a measurement (current format: rows in
  ``measurement_parameters``; old format: a per-measurement table named
  ``_<set_up>_<project>_<sample>_<uuid>``), creates one large object per parameter, writes the
  sweep point by point like core-tools' buffer writer (float64 values appended to the large
  object, then ``write_cursor`` updated, then commit) and finally marks it completed;
- :func:`expected_arrays` gives the values a finished measurement must contain;
- :func:`create_database` / :func:`drop_database` make uniquely named databases on the server named
  by ``ETIKET_TEST_PG_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``);
- :func:`database_digest` summarises every table and large object (to prove nothing changed);
- :func:`make_demo_source` creates a demo database (needs a reachable PostgreSQL server).

Importable without pytest.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import random
import re
import secrets
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

from etiket_sync_agent_core_tools.db import PARAM_COLUMNS

__all__ = [
    "DEFAULT_DSN",
    "Axis",
    "Getter",
    "MeasurementSpec",
    "MeasurementWriter",
    "Output",
    "admin_dsn",
    "break_large_object",
    "config_for",
    "create_database",
    "create_schema",
    "database_digest",
    "demo_measurements",
    "drop_database",
    "expected_arrays",
    "make_demo_source",
    "postgres_unavailable_reason",
    "set_starred",
    "write_measurement",
]

#: The PostgreSQL server used when ``ETIKET_TEST_PG_DSN`` is not set.
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
NEW_FORMAT_MARKER = "New measurement_parameters"


def admin_dsn() -> str:
    """Connection string of a role that may create databases (``ETIKET_TEST_PG_DSN``)."""
    return os.environ.get("ETIKET_TEST_PG_DSN") or DEFAULT_DSN


def postgres_unavailable_reason(dsn: str | None = None, timeout: int = 3) -> str | None:
    """``None`` when the server answers, else why not (for ``pytest.skip``)."""
    dsn = dsn or admin_dsn()
    try:
        with psycopg.connect(dsn, connect_timeout=timeout, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        where = _safe_dsn(dsn)
        return f"PostgreSQL at {where} is not reachable: {str(exc).strip().splitlines()[0]}"
    return None


def _conninfo(params: dict[str, Any]) -> str:
    return make_conninfo("", **{k: v for k, v in params.items() if v is not None})


def _safe_dsn(dsn: str) -> str:
    params: dict[str, Any] = dict(conninfo_to_dict(dsn))
    params.pop("password", None)
    return _conninfo(params)


def create_database(prefix: str = "etiket_test_coretools", dsn: str | None = None) -> str:
    """Create an empty database with a unique name; returns its connection string."""
    dsn = dsn or admin_dsn()
    name = f"{prefix}_{secrets.token_hex(5)}"
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params: dict[str, Any] = dict(conninfo_to_dict(dsn))
    params["dbname"] = name
    return _conninfo(params)


def drop_database(conninfo: str, dsn: str | None = None) -> None:
    """Drop the database named in ``conninfo`` (closing its sessions first)."""
    name = conninfo_to_dict(conninfo).get("dbname")
    if not name:
        raise ValueError("the connection string names no database")
    with psycopg.connect(dsn or admin_dsn(), autocommit=True, connect_timeout=5) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
        )


def config_for(conninfo: str) -> dict[str, Any]:
    """The raw source configuration (``dbname``, ``user``, ``password``, ``host``, ``port``)."""
    params = conninfo_to_dict(conninfo)
    return {
        "dbname": params.get("dbname") or "postgres",
        "user": params.get("user") or "postgres",
        "password": params.get("password") or "",
        "host": params.get("host") or "localhost",
        "port": int(params.get("port") or 5432),
    }


_OVERVIEW_DDL = """
CREATE TABLE IF NOT EXISTS global_measurement_overview (
    id SERIAL,
    uuid BIGINT NOT NULL unique,
    exp_name text NOT NULL,
    set_up text NOT NULL,
    project text NOT NULL,
    sample text NOT NULL,
    creasted_by text NOT NULL,
    start_time TIMESTAMP,
    stop_time TIMESTAMP,
    exp_data_location text,
    snapshot BYTEA,
    metadata BYTEA,
    keywords JSONB,
    starred BOOL DEFAULT False,
    completed BOOL DEFAULT False,
    data_size int,
    data_cleared BOOL DEFAULT False,
    {update_count}
    data_synchronized BOOL DEFAULT False,
    table_synchronized BOOL DEFAULT False,
    sync_location text);
CREATE INDEX IF NOT EXISTS id_indexed ON global_measurement_overview USING BTREE (id);
CREATE INDEX IF NOT EXISTS uuid_indexed ON global_measurement_overview USING BTREE (uuid);
CREATE INDEX IF NOT EXISTS starred_indexed ON global_measurement_overview USING BTREE (starred);
CREATE INDEX IF NOT EXISTS date_day_index ON global_measurement_overview
    USING BTREE (project, set_up, sample);
CREATE TABLE IF NOT EXISTS sample_info_overview (
    sample_info_hash text NOT NULL UNIQUE,
    set_up text NOT NULL,
    project text NOT NULL,
    sample text NOT NULL);
"""

_PARAMETERS_DDL = """
CREATE TABLE IF NOT EXISTS measurement_parameters (
    id SERIAL primary key,
    exp_uuid BIGINT NOT NULL,
    param_index INT NOT NULL,
    param_id BIGINT,
    nth_set INT,
    nth_dim INT,
    param_id_m_param BIGINT,
    setpoint BOOL,
    setpoint_local BOOL,
    name_gobal text,
    name text NOT NULL,
    label text NOT NULL,
    unit text NOT NULL,
    depencies jsonb,
    shape jsonb,
    write_cursor INT,
    total_size INT,
    oid INT);
CREATE INDEX IF NOT EXISTS exp_uuid_index ON measurement_parameters USING BTREE (exp_uuid);
CREATE INDEX IF NOT EXISTS oid_index ON measurement_parameters USING BTREE (oid);
"""

_OLD_TABLE_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    id SERIAL primary key,
    param_id BIGINT,
    nth_set INT,
    nth_dim INT,
    param_id_m_param BIGINT,
    setpoint BOOL,
    setpoint_local BOOL,
    name_gobal text,
    name text NOT NULL,
    label text NOT NULL,
    unit text NOT NULL,
    depencies jsonb,
    shape jsonb,
    write_cursor INT,
    total_size INT,
    oid INT,
    synchronized BOOL DEFAULT False,
    sync_location text);
"""


def create_schema(conninfo: str, *, legacy: bool = False, scope_column: bool = False) -> None:
    """Create the core-tools tables.

    ``legacy``: an old database (no ``measurement_parameters``, no ``data_update_count``), where
    every measurement uses its own parameter table. ``scope_column``: add a ``scope`` column as
    some installations do.
    """
    update_count = "" if legacy else "data_update_count int DEFAULT 0,"
    with psycopg.connect(conninfo) as conn:
        conn.execute(_OVERVIEW_DDL.format(update_count=update_count).encode())
        if not legacy:
            conn.execute(_PARAMETERS_DDL.encode())
        if scope_column:
            conn.execute("ALTER TABLE global_measurement_overview ADD COLUMN scope text")


# -- measurement specifications ------------------------------------------------------------------
@dataclass
class Axis:
    """A setpoint axis: a swept parameter or a local axis of a multi-parameter output."""

    name: str
    label: str
    unit: str
    values: Sequence[float]


@dataclass
class Output:
    """One output of a measured parameter; ``local_axes`` make it a trace/2-D image per point."""

    name: str
    label: str
    unit: str
    local_axes: list[Axis] = field(default_factory=list)


@dataclass
class Getter:
    """A measured parameter; several outputs make it a multi-parameter (e.g. a digitizer)."""

    name: str
    outputs: list[Output]


@dataclass
class MeasurementSpec:
    """What a measurement sweeps (outer loop first) and measures, and its overview row."""

    exp_name: str
    sweeps: list[Axis]
    getters: list[Getter]
    set_up: str = "XLD"
    project: str = "6dot"
    sample: str = "SQ21_1A"
    keywords: Any = field(default_factory=list)
    snapshot: Any = field(default_factory=dict)
    metadata: Any = field(default_factory=dict)
    starred: bool = False
    scope: str | None = None

    @property
    def sweep_shape(self) -> tuple[int, ...]:
        return tuple(len(a.values) for a in self.sweeps)

    @property
    def points(self) -> int:
        return math.prod(self.sweep_shape) if self.sweeps else 1


def _output_values(spec: MeasurementSpec, getter: Getter, output: Output) -> np.ndarray[Any, Any]:
    """Deterministic, smooth-plus-noise values of one output over the whole measurement."""
    local = tuple(len(a.values) for a in output.local_axes)
    shape = spec.sweep_shape + local
    seed = zlib.crc32(f"{spec.exp_name}/{getter.name}/{output.name}".encode())
    rng = np.random.default_rng(seed)
    grid = np.indices(shape, dtype=float).sum(axis=0) if shape else np.zeros(())
    return np.sin(grid / 7.0) * 1e-3 + rng.normal(scale=1e-4, size=shape)


def expected_arrays(spec: MeasurementSpec) -> dict[str, np.ndarray[Any, Any]]:
    """Output name → the full array a completed measurement holds."""
    return {o.name: _output_values(spec, g, o) for g in spec.getters for o in g.outputs}


@dataclass
class _ParamPlan:
    param_id: int
    nth_set: int
    nth_dim: int
    m_param: int
    setpoint: bool
    setpoint_local: bool
    name_global: str
    name: str
    label: str
    unit: str
    deps: list[int]
    shape: tuple[int, ...]
    data: np.ndarray[Any, Any]  # full flat values
    per_point: int  # values written per sweep point (0: written at start)
    oid: int = 0
    cursor: int = 0


def _param_id(rng: random.Random) -> int:
    # core-tools: uuid1 bytes as a signed 128-bit int shifted right by 64 (a signed 64-bit value)
    return rng.getrandbits(64) - (1 << 63)


_TABLE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class MeasurementWriter:
    """Writes one measurement the way core-tools does; call :meth:`advance` to add sweep points."""

    def __init__(
        self,
        conninfo: str,
        spec: MeasurementSpec,
        *,
        old_format: bool = False,
        start_time: dt.datetime | None = None,
        seed: int | None = None,
    ) -> None:
        self.conninfo = conninfo
        self.spec = spec
        self.old_format = old_format
        self.start_time = start_time or dt.datetime.now(dt.timezone.utc)
        self._rng = random.Random(seed)
        self.id = 0
        self.uuid = 0
        self.table: str | None = None
        self.points_written = 0
        self.completed = False
        self._params: list[_ParamPlan] = []

    @property
    def key(self) -> str:
        """The natural key the backend uses (``str(uuid)``)."""
        return str(self.uuid)

    def _plan(self) -> list[_ParamPlan]:
        spec = self.spec
        sweep_shape = spec.sweep_shape
        plans: list[_ParamPlan] = []
        for getter in spec.getters:
            m_id = _param_id(self._rng)
            sweep_ids = [_param_id(self._rng) for _ in spec.sweeps]
            local_ids = [[_param_id(self._rng) for _ in o.local_axes] for o in getter.outputs]
            for i, output in enumerate(getter.outputs):
                values = _output_values(spec, getter, output)
                local_n = math.prod(len(a.values) for a in output.local_axes)
                plans.append(
                    _ParamPlan(
                        m_id,
                        i,
                        -1,
                        m_id,
                        False,
                        False,
                        getter.name,
                        output.name,
                        output.label,
                        output.unit,
                        sweep_ids + local_ids[i],
                        tuple(values.shape),
                        values.ravel(),
                        local_n,
                    )
                )
            for i, output in enumerate(getter.outputs):
                for j, axis in enumerate(output.local_axes):
                    plans.append(
                        _ParamPlan(
                            local_ids[i][j],
                            0,
                            j,
                            m_id,
                            False,
                            True,
                            "local_var",
                            axis.name,
                            axis.label,
                            axis.unit,
                            [],
                            (len(axis.values),),
                            np.asarray(axis.values, dtype=float),
                            0,
                        )
                    )
            for j, axis in enumerate(spec.sweeps):
                grid = np.broadcast_to(
                    np.asarray(axis.values, dtype=float).reshape(
                        [len(axis.values) if k == j else 1 for k in range(len(sweep_shape))]
                    ),
                    sweep_shape,
                )
                plans.append(
                    _ParamPlan(
                        sweep_ids[j],
                        0,
                        j,
                        m_id,
                        True,
                        False,
                        axis.name,
                        axis.name,
                        axis.label,
                        axis.unit,
                        [],
                        sweep_shape,
                        np.ascontiguousarray(grid).ravel(),
                        1,
                    )
                )
        return plans

    def begin(self) -> MeasurementWriter:
        """Insert the overview row and the parameter rows; write the local axes."""
        spec = self.spec
        ms = int(self.start_time.timestamp() * 1000)
        self.uuid = ms * 1_000_000 + self._rng.randrange(99_999_999)
        self._params = self._plan()
        with psycopg.connect(self.conninfo) as conn:
            conn.execute(
                "INSERT INTO sample_info_overview (sample_info_hash, sample, set_up, project) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (spec.set_up + spec.project + spec.sample, spec.sample, spec.set_up, spec.project),
            )
            columns = [
                "uuid",
                "set_up",
                "project",
                "sample",
                "creasted_by",
                "exp_name",
                "sync_location",
                "exp_data_location",
                "start_time",
                "snapshot",
                "metadata",
                "keywords",
                "starred",
            ]
            location = ""
            if self.old_format:
                location = (
                    (f"_{spec.set_up}_{spec.project}_{spec.sample}_{self.uuid}")
                    .replace(" ", "_")
                    .replace("-", "_")
                )
                if not _TABLE_NAME_RE.match(location):
                    raise ValueError(
                        f"set-up/project/sample give an invalid table name {location!r}"
                    )
                self.table = location
            values: list[Any] = [
                self.uuid,
                spec.set_up,
                spec.project,
                spec.sample,
                conninfo_to_dict(self.conninfo).get("user") or "postgres",
                spec.exp_name,
                None if self.old_format else NEW_FORMAT_MARKER,
                location,
                self.start_time.timestamp(),
                json.dumps(spec.snapshot).encode("ascii"),
                json.dumps(spec.metadata).encode("ascii"),
                Jsonb(spec.keywords),
                spec.starred,
            ]
            placeholders = [
                sql.SQL("to_timestamp(%s)") if c == "start_time" else sql.SQL("%s") for c in columns
            ]
            if spec.scope is not None:
                columns.append("scope")
                values.append(spec.scope)
                placeholders.append(sql.SQL("%s"))
            found = conn.execute(
                sql.SQL(
                    "INSERT INTO global_measurement_overview ({}) VALUES ({}) RETURNING id"
                ).format(
                    sql.SQL(", ").join(sql.Identifier(c) for c in columns),
                    sql.SQL(", ").join(placeholders),
                ),
                values,
            ).fetchone()
            assert found is not None
            self.id = int(found[0])
            if self.old_format:
                assert self.table is not None
                conn.execute(_OLD_TABLE_DDL.format(table=self.table).encode())
            for index, p in enumerate(self._params):
                oid_row = conn.execute("SELECT lo_create(0)").fetchone()
                assert oid_row is not None
                p.oid = int(oid_row[0])
                if p.per_point == 0:  # local axes are known up front: written at once
                    conn.execute(
                        "SELECT lo_put(%s, 0, %s)", (p.oid, p.data.astype("<f8").tobytes())
                    )
                    p.cursor = int(p.data.size)
                row = [
                    p.param_id,
                    p.nth_set,
                    p.nth_dim,
                    p.m_param,
                    p.setpoint,
                    p.setpoint_local,
                    p.name_global,
                    p.name,
                    p.label,
                    p.unit,
                    Jsonb(p.deps),
                    Jsonb(list(p.shape)),
                    p.cursor,
                    int(p.data.size),
                    p.oid,
                ]
                names = list(PARAM_COLUMNS)  # the reader's column list: one truth
                if self.old_format:
                    table: sql.Composable = sql.SQL(self.table or "")
                else:
                    table = sql.Identifier("measurement_parameters")
                    names = ["exp_uuid", "param_index", *names]
                    row = [self.uuid, index, *row]
                conn.execute(
                    sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                        table,
                        sql.SQL(", ").join(sql.Identifier(n) for n in names),
                        sql.SQL(", ").join(sql.Placeholder() * len(names)),
                    ),
                    row,
                )
        return self

    def advance(self, points: int | None = None) -> int:
        """Write the next ``points`` sweep points (all remaining when None); returns points written."""
        total = self.spec.points
        end = total if points is None else min(total, self.points_written + points)
        if end <= self.points_written:
            return self.points_written
        start = self.points_written
        with psycopg.connect(self.conninfo) as conn:
            for p in self._params:
                if p.per_point == 0:
                    continue
                a, b = start * p.per_point, end * p.per_point
                conn.execute(
                    "SELECT lo_put(%s, %s, %s)", (p.oid, a * 8, p.data[a:b].astype("<f8").tobytes())
                )
                p.cursor = b
            self._update_cursors(conn)
        self.points_written = end
        return end

    def _update_cursors(self, conn: psycopg.Connection[Any]) -> None:
        for index, p in enumerate(self._params):
            if self.old_format:
                conn.execute(
                    sql.SQL("UPDATE {} SET write_cursor = %s WHERE id = %s").format(
                        sql.SQL(self.table or "")
                    ),
                    (p.cursor, index + 1),
                )
            else:
                conn.execute(
                    "UPDATE measurement_parameters SET write_cursor = %s "
                    "WHERE exp_uuid = %s AND param_index = %s",
                    (p.cursor, self.uuid, index),
                )

    def finish(self, stop_time: dt.datetime | None = None) -> None:
        """Mark the measurement completed (with ``stop_time`` and ``data_size``)."""
        stop = stop_time or (self.start_time + dt.timedelta(seconds=max(1, self.points_written)))
        data_size = sum(
            int(p.data.size) for p in self._params if not p.setpoint and not p.setpoint_local
        )
        with psycopg.connect(self.conninfo) as conn:
            self._update_cursors(conn)
            conn.execute(
                "UPDATE global_measurement_overview SET stop_time = to_timestamp(%s), "
                "completed = true, data_size = %s WHERE uuid = %s",
                (stop.timestamp(), data_size, self.uuid),
            )
        self.completed = True


def write_measurement(
    conninfo: str,
    spec: MeasurementSpec,
    *,
    old_format: bool = False,
    points: int | None = None,
    complete: bool = True,
    start_time: dt.datetime | None = None,
    seed: int | None = None,
) -> MeasurementWriter:
    """Write a measurement: ``points`` sweep points (all by default), completed unless told not."""
    writer = MeasurementWriter(
        conninfo, spec, old_format=old_format, start_time=start_time, seed=seed
    ).begin()
    writer.advance(points)
    if complete:
        writer.finish()
    return writer


def set_starred(
    conninfo: str, uuid: int, starred: bool = True, exp_name: str | None = None
) -> None:
    """Star/unstar a measurement (and optionally rename it) like core-tools' data browser."""
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            "UPDATE global_measurement_overview SET starred = %s, "
            "exp_name = coalesce(%s, exp_name) WHERE uuid = %s",
            (starred, exp_name, uuid),
        )


def break_large_object(conninfo: str, uuid: int) -> int:
    """Delete the large object of a measurement's first measured parameter (a corrupt dataset)."""
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT exp_data_location, sync_location FROM global_measurement_overview WHERE uuid = %s",
            (uuid,),
        ).fetchone()
        if row is None:
            raise LookupError(f"no measurement with uuid {uuid}")
        if row[1] == NEW_FORMAT_MARKER:
            found = conn.execute(
                "SELECT oid FROM measurement_parameters WHERE exp_uuid = %s AND setpoint = false "
                "AND setpoint_local = false ORDER BY param_index LIMIT 1",
                (uuid,),
            ).fetchone()
        else:
            found = conn.execute(
                sql.SQL(
                    "SELECT oid FROM {} WHERE setpoint = false AND setpoint_local = false "
                    "ORDER BY id LIMIT 1"
                ).format(sql.SQL(str(row[0]))),
            ).fetchone()
        if found is None:
            raise LookupError(f"measurement {uuid} has no measured parameter")
        conn.execute("SELECT lo_unlink(%s)", (int(found[0]),))
        return int(found[0])


# -- realistic sets ------------------------------------------------------------------------------
def _snapshot(spec_name: str, gates: dict[str, float]) -> dict[str, Any]:
    return {
        "station": {
            "instruments": {
                "gates": {
                    "name": "gates",
                    "parameters": {
                        g: {"name": g, "value": v, "unit": "mV", "label": g}
                        for g, v in gates.items()
                    },
                },
                "dig": {"name": "dig", "parameters": {"sample_rate": {"value": 5e8, "unit": "Hz"}}},
            }
        },
        "measurement": spec_name,
    }


def demo_measurements(project: str = "6dot", *, scale: int = 1) -> list[MeasurementSpec]:
    """A realistic mix: 1-D sweep, 2-D sweep with two getters, digitizer traces, 0-D, starred."""
    n = 20 * scale
    sweep_p1 = Axis("P1", "Plunger 1", "mV", list(np.linspace(-50, 50, n)))
    sweep_p2 = Axis("P2", "Plunger 2", "mV", list(np.linspace(-30, 30, n // 2)))
    vsd = Axis("vSD", "Source-drain", "mV", list(np.linspace(0, 2, 8)))
    time_axis = Axis("time", "Time", "ns", list(np.arange(50 * scale) * 2.0))
    return [
        MeasurementSpec(
            "1D sweep P1",
            [sweep_p1],
            [Getter("SD1", [Output("SD1_current", "Sensor current", "nA")])],
            project=project,
            keywords=["P1", "SD1_current"],
            snapshot=_snapshot("1D sweep P1", {"P1": -50.0, "P2": 10.0}),
            metadata={"operator": "demo", "notes": "charge sensor calibration"},
        ),
        MeasurementSpec(
            "2D charge stability P1 P2",
            [sweep_p1, sweep_p2],
            [
                Getter("SD1", [Output("SD1_current", "Sensor current", "nA")]),
                Getter("SD2", [Output("SD2_current", "Sensor 2 current", "nA")]),
            ],
            project=project,
            keywords=["P1", "P2", "SD1_current", "SD2_current"],
            starred=True,
            snapshot=_snapshot("2D", {"P1": 0.0, "P2": 0.0}),
            metadata={"operator": "demo"},
        ),
        MeasurementSpec(
            "digitizer traces vs vSD",
            [vsd],
            [
                Getter(
                    "dig",
                    [
                        Output("ch1", "Channel 1", "mV", [time_axis]),
                        Output("ch2", "Channel 2", "mV", [time_axis]),
                    ],
                )
            ],
            project=project,
            keywords=["vSD", "ch1", "ch2"],
            snapshot=_snapshot("traces", {"P1": 1.0}),
        ),
        MeasurementSpec(
            "single point readout",
            [],
            [Getter("SD1", [Output("SD1_current", "Sensor current", "nA")])],
            project=project,
            keywords={"calibration": True},
        ),
    ]


def database_digest(conninfo: str) -> dict[str, str]:
    """MD5 of every table's rows and of every large object (equal before/after proves read-only)."""
    digest: dict[str, str] = {}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
            "('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        for schema, table in tables:
            found = conn.execute(
                sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
                    "FROM {} t"
                ).format(sql.Identifier(schema, table))
            ).fetchone()
            assert found is not None
            digest[f"table {schema}.{table}"] = f"{found[0]}:{found[1]}"
        for oid, md5 in conn.execute(
            "SELECT oid, md5(lo_get(oid)) FROM pg_largeobject_metadata ORDER BY oid"
        ).fetchall():
            digest[f"lo {oid}"] = str(md5)
    return digest


def make_demo_source(root: Path) -> dict[str, Any]:
    """Create a demo core-tools database and return its source configuration.

    Needs a reachable PostgreSQL server that lets the role create databases: ``ETIKET_DEMO_PG_DSN``,
    else ``ETIKET_TEST_PG_DSN``, else ``postgresql://postgres@127.0.0.1:5432/postgres``. The database
    is named ``etiket_demo_coretools_<random>`` and is left in place (its name is written to
    ``<root>/DATABASE.txt``; drop it with ``DROP DATABASE``). Measurements use the project ``demo``;
    the returned dict carries ``_demo_scope_identifiers: ["demo"]`` for the demo command (which pops
    it and maps it to its scope). Raises RuntimeError when the server is unreachable.
    """
    dsn = os.environ.get("ETIKET_DEMO_PG_DSN") or admin_dsn()
    reason = postgres_unavailable_reason(dsn)
    if reason is not None:
        raise RuntimeError(f"the core-tools demo needs PostgreSQL: {reason}")
    conninfo = create_database("etiket_demo_coretools", dsn)
    create_schema(conninfo)
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    # An interrupted run (never completed) first, so the newest measurement is a finished one.
    interrupted = demo_measurements("demo")[0]
    interrupted.exp_name = "1D sweep P1 (interrupted)"
    write_measurement(conninfo, interrupted, points=7, complete=False, start_time=start, seed=9)
    for i, spec in enumerate(demo_measurements("demo")):
        write_measurement(
            conninfo,
            spec,
            start_time=start + dt.timedelta(minutes=10 * (i + 1)),
            seed=i,
            old_format=i == 3,
        )
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    config = config_for(conninfo)
    (root / "DATABASE.txt").write_text(
        f"core-tools demo database {config['dbname']!r} on {config['host']}:{config['port']}\n"
        f"written {time.strftime('%Y-%m-%d %H:%M:%S')}; drop it with "
        f"DROP DATABASE {config['dbname']};\n",
        encoding="utf-8",
    )
    # The demo maps these scope identifiers (the measurements' project) to its scope.
    return {**config, "_demo_scope_identifiers": ["demo"]}
