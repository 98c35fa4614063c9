"""The core-tools backend: one dataset per row of ``global_measurement_overview``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import psycopg

from etiket_sync_agent import ScopePolicy, SyncContext, SyncItem, SyncSourceDatabaseBase
from etiket_sync_agent.connectors.dataset import DatasetInfo, FileInfo, FileType
from etiket_sync_agent.errors import SourceError, SyncError
from etiket_sync_agent_core_tools.config import CoreToolsConfig, scrub, source_identity
from etiket_sync_agent_core_tools.db import (
    Database,
    LargeObjectReader,
    MeasurementRow,
    WrittenSize,
)
from etiket_sync_agent_core_tools.netcdf import write_measurement

__all__ = [
    "FILENAME",
    "FILE_NAME",
    "GENERATOR",
    "CoreToolsSync",
    "description_of",
    "fingerprint_of",
    "keywords_of",
]

_log = logging.getLogger("etiket_sync_agent_core_tools")

#: File generator, logical file name and download name as the existing agent uploads them.
GENERATOR = "core-tools"
FILE_NAME = "measurement"
FILENAME = "measured_data.hdf5"
#: Rows fetched per discovery query.
BATCH = 1000
#: Discovery looks this many ids back, so a measurement whose insert committed after a newer one
#: (two set-ups writing to one database) is not missed.
OVERLAP = 100


def keywords_of(value: Any) -> list[str]:
    """Keywords from the ``keywords`` jsonb column (a list of strings, rarely a dict or a string)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [f"{k}: {v}" if v not in (None, True, "") else str(k) for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        out: list[str] = []
        for entry in value:
            out.extend(
                keywords_of(entry) if isinstance(entry, (list, tuple, Mapping)) else [str(entry)]
            )
        return out
    return [str(value)]


def fingerprint_of(row: MeasurementRow, written: WrittenSize | None) -> str:
    """A cheap summary that changes when a synced measurement must be synced again.

    It covers ``starred``, ``exp_name``, ``completed``, ``data_update_count`` and, for unfinished
    measurements, how much is written (so a stale run that grows again is re-synced).
    """
    name = hashlib.sha1(row.exp_name.encode("utf-8")).hexdigest()[:12]
    parts = [
        f"s{int(row.starred)}",
        f"c{int(row.completed)}",
        f"n{name}",
        f"u{row.data_update_count or 0}",
    ]
    if not row.completed:
        size = written or WrittenSize(0, 0)
        parts.append(f"w{size.params}:{size.values}")
    return ";".join(parts)


def description_of(row: MeasurementRow, dbname: str) -> str:
    """The existing agent's description: ``database : <db> | id : <id> | ct_uuid : <uuid>``."""
    return f"database : {dbname} | id : {row.id} | ct_uuid : {row.uuid}"


def _decode_json(raw: bytes | None, what: str, ctx: SyncContext) -> Any:
    if raw is None:
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError as exc:
        ctx.add_log(
            f"the {what} column is not valid JSON ({exc}); uploaded as text", logging.WARNING
        )
        return {"unparsed": text}


def _collected(row: MeasurementRow) -> dt.datetime:
    if row.start_time is not None:
        return row.start_time
    if row.stop_time is not None:
        return row.stop_time
    # core-tools uuids are milliseconds since the epoch times 10**6 plus a small machine number.
    return dt.datetime.fromtimestamp(row.uuid // 1_000_000 / 1000.0)


class CoreToolsSync(SyncSourceDatabaseBase):
    """Syncs the measurements of a core-tools PostgreSQL database.

    Cursor = ``id``, natural key = ``str(uuid)``. Scope policy DISABLED: each dataset's scope
    identifier is the row's ``scope`` column when the database has one, else its ``project``.
    The unfinished newest measurement is synced live while its write cursors grow; one that
    shows no growth for ``stale_after`` seconds is synced as it is (and again if it grows).
    The database is only read (read-only sessions and transactions, large objects via ``lo_get``).

    Duplicate sources: :meth:`source_identity` returns ``postgresql://host:port/dbname``; the core
    should refuse a second source with the same identity.
    """

    name: ClassVar[str] = "core-tools"
    config_class: ClassVar[type[Any]] = CoreToolsConfig
    scope_policy: ClassVar[ScopePolicy] = ScopePolicy.DISABLED
    live_sync: ClassVar[bool] = True

    def __init__(self, config: CoreToolsConfig) -> None:
        super().__init__(config)
        self.config: CoreToolsConfig = config
        self._db = Database(config)
        self._yielded: set[int] = set()

    # -- identity --------------------------------------------------------------------------------
    def source_identity(self) -> str:
        """``postgresql://host:port/dbname``: two sources with the same identity are one database."""
        return source_identity(self.config)

    # -- discovery -------------------------------------------------------------------------------
    def _item(self, row: MeasurementRow, written: WrittenSize | None) -> SyncItem:
        return SyncItem(
            key=str(row.uuid),
            cursor=row.id,
            priority=float(row.id),
            scope_identifier=row.scope or row.project or None,
            fingerprint=fingerprint_of(row, written),
            extra={"id": row.id, "format": row.format_name},
        )

    def get_new_datasets(self, last_item: SyncItem | None) -> Iterator[SyncItem]:
        """Measurements after ``last_item.cursor`` (id), oldest first, fetched in batches."""
        cursor = last_item.cursor if last_item is not None else None
        low = 0 if cursor is None else max(int(cursor) - OVERLAP, 0)
        while True:
            with self._db.source_snapshot("listing new measurements") as conn:
                rows = self._db.list_measurements(conn, low, BATCH)
                written = self._db.written_sizes(conn, [r for r in rows if not r.completed])
            for row in rows:
                if cursor is not None and row.id <= cursor and row.id in self._yielded:
                    continue
                self._yielded.add(row.id)
                yield self._item(row, written.get(row.uuid))
            if len(rows) < BATCH:
                break
            low = rows[-1].id
        if self._yielded:
            floor = max(self._yielded) - OVERLAP
            self._yielded = {i for i in self._yielded if i > floor}

    def get_fingerprints(self) -> Mapping[str, str]:
        """uuid → fingerprint of every measurement (starred, name, completed, growth)."""
        with self._db.source_snapshot("reading measurement fingerprints") as conn:
            rows = self._db.all_measurements(conn)
            written = self._db.written_sizes(conn, [r for r in rows if not r.completed])
        return {str(r.uuid): fingerprint_of(r, written.get(r.uuid)) for r in rows}

    # -- live ------------------------------------------------------------------------------------
    def check_live_dataset(self, item: SyncItem, state: Mapping[str, Any]) -> bool:
        """Live while unfinished and growing; stale after ``stale_after`` s without growth."""
        uuid = int(item.key)
        with self._db.source_snapshot(f"checking measurement {uuid}") as conn:
            row = self._db.get_measurement(conn, uuid, heavy=False)
            if row is None or row.completed:
                return False
            written = self._db.written_sizes(conn, [row]).get(uuid, WrittenSize(0, 0))
        previous = state.get("written")
        if previous is None:
            return True
        if list(previous) != written.as_list():
            return True
        changed_at = float(state.get("changed_at") or 0.0)
        return time.time() - changed_at < float(self.config.stale_after)

    # -- sync ------------------------------------------------------------------------------------
    def sync_dataset(self, item: SyncItem, ctx: SyncContext) -> None:
        """Upload file ``measurement`` (``measured_data.hdf5``), ``snapshot.json`` and
        ``metadata.json`` for one row."""
        try:
            uuid = int(item.key)
        except ValueError:
            raise SyncError(f"{item.key!r} is not a core-tools measurement uuid") from None
        path = ctx.work_path("measured_data.hdf5")
        what = f"reading measurement {uuid}"
        try:
            with self._db.snapshot(what) as conn:
                row = self._db.get_measurement(conn, uuid)
                if row is None:
                    raise SyncError(
                        f"measurement uuid {uuid} is no longer in {OVERVIEW_DESC} of "
                        f"{self._db.describe()}"
                    )
                params = self._db.get_params(conn, row)
                reader = LargeObjectReader(conn)
                summary = write_measurement(path, row, params, reader, ctx.add_log)
                written = WrittenSize(len(params), sum(p.write_cursor for p in params))
        except (SyncError, SourceError):
            raise
        except psycopg.errors.UndefinedObject as exc:
            raise SyncError(
                f"measurement {uuid}: a large object of its data is missing: "
                f"{scrub(_first_line(exc), self.config)}"
            ) from None
        except psycopg.Error as exc:
            raise SyncError(
                f"measurement {uuid}: {self._db.describe()} refused a query: "
                f"{scrub(_first_line(exc), self.config)}"
            ) from None

        now = time.time()
        previous = ctx.state.get("written")
        changed_at = ctx.state.get("changed_at")
        if previous is None or list(previous) != written.as_list() or changed_at is None:
            changed_at = now
        ctx.state.update(
            {"written": written.as_list(), "changed_at": changed_at, "completed": row.completed}
        )
        if not row.completed and not ctx.live:
            ctx.add_log(
                "measurement is not completed (interrupted, or no growth for "
                f"{self.config.stale_after:g} s): synced as it is",
                logging.INFO,
            )

        ctx.set_dataset(
            DatasetInfo(
                name=row.exp_name.strip() or f"core-tools measurement {row.id}",
                collected=_collected(row),
                alt_uid=str(row.uuid),
                description=description_of(row, self.config.dbname),
                keywords=keywords_of(row.keywords),
                ranking=1 if row.starred else 0,
                attributes={"sample": row.sample, "set-up": row.set_up, "project": row.project},
            )
        )
        ctx.upload_file(
            FileInfo(
                name=FILE_NAME,
                path=path,
                filename=FILENAME,
                file_type=FileType.HDF5_NETCDF,
                generator=GENERATOR,
            )
        )
        snapshot = _decode_json(row.snapshot, "snapshot", ctx)
        ctx.upload_json(snapshot, "snapshot.json", generator=GENERATOR)
        ctx.upload_json(
            self._metadata_document(row, ctx, summary.variables),
            "metadata.json",
            generator=GENERATOR,
        )

    def _metadata_document(
        self, row: MeasurementRow, ctx: SyncContext, variables: Mapping[str, tuple[str, ...]]
    ) -> dict[str, Any]:
        return {
            "id": row.id,
            "uuid": row.uuid,
            "exp_name": row.exp_name,
            "set_up": row.set_up,
            "project": row.project,
            "sample": row.sample,
            "creator": row.creator,
            "start_time": row.start_time.isoformat() if row.start_time else None,
            "stop_time": row.stop_time.isoformat() if row.stop_time else None,
            "completed": row.completed,
            "starred": row.starred,
            "keywords": row.keywords,
            "data_size": row.data_size,
            "format": row.format_name,
            "measured_parameters": {name: list(dims) for name, dims in variables.items()},
            "metadata": _decode_json(row.metadata, "metadata", ctx),
        }

    def close(self) -> None:
        """Close the pooled connections."""
        self._db.close()


OVERVIEW_DESC = "global_measurement_overview"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
