"""The QCoDeS backend: one dataset per started run of a QCoDeS SQLite database."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from etiket_sync_agent import ScopePolicy, SyncContext, SyncItem, SyncSourceDatabaseBase
from etiket_sync_agent.connectors.dataset import DatasetInfo, FileInfo, FileType
from etiket_sync_agent.errors import SourceError, SyncError
from etiket_sync_agent_qcodes.config import QCoDeSConfig
from etiket_sync_agent_qcodes.export import export_run
from etiket_sync_agent_qcodes.qh_meta import QHMeta, qh_meta_from_snapshot
from etiket_sync_agent_qcodes.reader import (
    DatabaseUnavailable,
    QCoDeSDatabase,
    RunRow,
    RunUnreadable,
)
from etiket_sync_agent_qcodes.rundescriber import RunDescription

__all__ = [
    "FILENAME",
    "FILE_NAME",
    "GENERATOR",
    "SNAPSHOT_NAME",
    "QCoDeSSync",
    "dataset_info",
    "description_of",
    "fingerprint_of",
    "ranking_of",
]

_log = logging.getLogger("etiket_sync_agent_qcodes")

#: File generator, logical file name and download name as the existing agent uploads them.
GENERATOR = "QCoDeS"
FILE_NAME = "measurement"
FILENAME = "measured_data.hdf5"
#: Our addition: the station snapshot as its own file (it is also inside the netCDF file).
SNAPSHOT_NAME = "snapshot.json"
#: Runs listed per query during discovery.
BATCH = 1000
#: A run older than the cursor that started at most this long before the cursor's run is looked
#: at again: it may have been created (not started) before the cursor's run and started later.
LATE_START_MARGIN = 60.0


def ranking_of(run: RunRow) -> int:
    """1 for an inspectr star, -1 for a cross, else 0."""
    tag = run.metadata.get("inspectr_tag")
    if isinstance(tag, bytes):
        tag = tag.decode("utf-8", errors="replace")
    tag = str(tag or "").strip().lower()
    return 1 if tag == "star" else -1 if tag == "cross" else 0


def fingerprint_of(run: RunRow, rows: int | None) -> str:
    """Changes when a synced run must be synced again (name, metadata, completion, growth)."""
    summary = json.dumps(
        [run.name, run.completed_timestamp, sorted((k, str(v)) for k, v in run.metadata.items())],
        default=str,
    )
    digest = hashlib.sha1(summary.encode("utf-8")).hexdigest()[:16]
    parts = [f"c{int(run.is_completed)}", digest]
    if not run.is_completed:
        parts.append(f"r{rows if rows is not None else '?'}")
    return ";".join(parts)


def _collected(run: RunRow) -> dt.datetime:
    stamp = run.run_timestamp if run.run_timestamp is not None else run.completed_timestamp
    if stamp is None:
        return dt.datetime.now(dt.timezone.utc)
    return dt.datetime.fromtimestamp(stamp, tz=dt.timezone.utc)


def _keywords(description: RunDescription | None) -> list[str]:
    """Per parameter its label (the netCDF ``long_name``), else its name, as the existing agent."""
    if description is None:
        return []
    return [spec.label or spec.name for spec in description.params]


def description_of(run: RunRow, database_name: str) -> str:
    """The existing agent's description: database, run id, guid, experiment; then the extra
    lines of a multi-line run name after a blank line."""
    text = (
        f"database : {database_name} | run ID : {run.run_id} | GUID : {run.guid} | "
        f"exp name : {run.exp_name}"
    )
    extra = run.name.strip().splitlines()[1:]
    if extra:
        text += "\n\n" + "\n".join(extra)
    return text


def dataset_info(
    run: RunRow,
    config: QCoDeSConfig,
    description: RunDescription | None,
    qh_meta: QHMeta | None = None,
) -> DatasetInfo:
    """The dataset record of a run, as the existing agent makes it.

    Name = first line of the run name; alt_uid = the run's guid (so datasets the existing agent
    uploaded are found and adopted); attributes ``sample`` and ``set-up``, then
    ``static_attributes``, then the ``qh_meta`` attributes (later wins); keywords = parameter
    labels plus the ``qh_meta`` tags.
    """
    lines = run.name.strip().splitlines()
    name = lines[0].strip() if lines and lines[0].strip() else f"QCoDeS run {run.run_id}"
    attributes = {"sample": run.sample_name, "set-up": config.set_up}
    attributes.update({str(k): str(v) for k, v in config.static_attributes.items()})
    keywords = _keywords(description)
    if qh_meta is not None:
        attributes.update(qh_meta.attributes)
        keywords.extend(qh_meta.tags)
    return DatasetInfo(
        name=name,
        collected=_collected(run),
        alt_uid=run.guid,
        description=description_of(run, Path(config.database_path).name),
        keywords=keywords,
        ranking=ranking_of(run),
        attributes=attributes,
    )


class QCoDeSSync(SyncSourceDatabaseBase):
    """Syncs the runs of a QCoDeS SQLite database.

    Cursor = ``run_id``, natural key = ``guid``. Runs that were never started are skipped until
    they start (also when a newer run started first). The newest unfinished run is synced live
    while its results table grows; after ``stale_after`` seconds without growth it is synced as
    it is (and again if it grows). The database is opened read-only for every call.
    """

    name: ClassVar[str] = "qcodes"
    config_class: ClassVar[type[Any]] = QCoDeSConfig
    scope_policy: ClassVar[ScopePolicy] = ScopePolicy.REQUIRED
    live_sync: ClassVar[bool] = True

    def __init__(self, config: QCoDeSConfig) -> None:
        super().__init__(config)
        self.config: QCoDeSConfig = config
        self._yielded: set[int] = set()

    @property
    def database_path(self) -> Path:
        """The configured database file."""
        return Path(self.config.database_path).expanduser()

    def source_identity(self) -> str:
        """The database file's resolved path: two sources with one identity are one database."""
        return str(self.database_path.resolve())

    def _open(self) -> QCoDeSDatabase:
        return QCoDeSDatabase(self.database_path)

    # -- discovery -------------------------------------------------------------------------------
    def _item(self, run: RunRow, rows: int | None) -> SyncItem:
        assert run.guid is not None
        return SyncItem(
            key=run.guid,
            cursor=run.run_id,
            priority=float(run.run_id),
            fingerprint=fingerprint_of(run, rows),
            extra={"run_id": run.run_id},
        )

    @staticmethod
    def _rows(database: QCoDeSDatabase, run: RunRow) -> int | None:
        if run.is_completed:
            return None
        try:
            return database.results_size(run)
        except (RunUnreadable, sqlite3.Error):
            return None

    def get_new_datasets(self, last_item: SyncItem | None) -> Iterator[SyncItem]:
        """Started runs after ``last_item.cursor`` (run_id), oldest first.

        Runs with a smaller run_id that started after the cursor's run (created earlier, started
        later) are reported too, once per process.
        """
        cursor = int(last_item.cursor) if last_item and last_item.cursor is not None else 0
        try:
            with self._open() as database:
                database.check_schema()
                found: list[SyncItem] = []
                if cursor > 0:
                    since = database.run_timestamp_of(cursor)
                    if since is not None:
                        for run in database.runs_started_since(cursor, since - LATE_START_MARGIN):
                            if run.run_id in self._yielded or not run.guid:
                                continue
                            found.append(self._item(run, self._rows(database, run)))
                after = cursor
                while True:
                    runs = database.list_runs(after, BATCH)
                    for run in runs:
                        if run.started and run.guid:
                            found.append(self._item(run, self._rows(database, run)))
                    if len(runs) < BATCH:
                        break
                    after = runs[-1].run_id
        except DatabaseUnavailable as exc:
            raise SourceError(str(exc)) from None
        except sqlite3.Error as exc:
            raise SourceError(f"cannot list the runs of {self.database_path}: {exc}") from None
        for item in found:
            self._yielded.add(int(item.cursor or 0))
        yield from found

    def get_fingerprints(self) -> Mapping[str, str]:
        """guid → fingerprint of every started run (name, metadata, completion, growth)."""
        try:
            with self._open() as database:
                database.check_schema()
                return {
                    run.guid: fingerprint_of(run, self._rows(database, run))
                    for run in database.all_runs()
                    if run.started and run.guid
                }
        except DatabaseUnavailable as exc:
            raise SourceError(str(exc)) from None
        except sqlite3.Error as exc:
            raise SourceError(f"cannot read the runs of {self.database_path}: {exc}") from None

    # -- live ------------------------------------------------------------------------------------
    def check_live_dataset(self, item: SyncItem, state: Mapping[str, Any]) -> bool:
        """Live while unfinished, the newest run and growing; stale after ``stale_after`` s."""
        try:
            with self._open() as database:
                run = database.run_by_guid(item.key)
                if run is None or run.is_completed or not run.started:
                    return False
                if database.newest_started_run_id() != run.run_id:
                    return False
                rows = database.results_size(run)
        except (DatabaseUnavailable, RunUnreadable, sqlite3.Error):
            return False
        previous = state.get("rows")
        if previous is None or int(previous) != rows:
            return True
        changed_at = float(state.get("changed_at") or 0.0)
        return time.time() - changed_at < float(self.config.stale_after)

    # -- sync ------------------------------------------------------------------------------------
    def sync_dataset(self, item: SyncItem, ctx: SyncContext) -> None:
        """Upload the run as file ``measurement`` (``measured_data.hdf5``) plus ``snapshot.json``."""
        path = ctx.work_path("measured_data.hdf5")
        try:
            with self._open() as database:
                run = database.run_by_guid(item.key)
                if run is None:
                    raise SyncError(
                        f"no run with guid {item.key} in {self.database_path} (deleted?)"
                    )
                rows = database.results_size(run)
                description = database.description(run)
                summary = export_run(database, run, path, ctx.add_log)
        except DatabaseUnavailable as exc:
            raise SyncError(str(exc)) from None
        except RunUnreadable as exc:
            raise SyncError(f"{self.database_path.name}: {exc}") from None
        except sqlite3.Error as exc:
            raise SyncError(
                f"run {item.extra.get('run_id', item.key)} of {self.database_path}: "
                f"cannot be read ({exc})"
            ) from None
        except OSError as exc:
            raise SyncError(f"cannot write the netCDF file of run {item.key}: {exc}") from None
        except (ValueError, TypeError, IndexError) as exc:
            raise SyncError(
                f"run {item.extra.get('run_id', item.key)} of {self.database_path.name}: its data "
                f"cannot be laid out ({type(exc).__name__}: {exc})"
            ) from None

        now = time.time()
        previous = ctx.state.get("rows")
        changed_at = ctx.state.get("changed_at")
        if previous is None or int(previous) != rows or changed_at is None:
            changed_at = now
        ctx.state.update({"rows": rows, "changed_at": changed_at, "completed": run.is_completed})
        if not run.is_completed and not ctx.live:
            ctx.add_log(
                f"run {run.run_id} is not completed (not the newest run, or no new data for "
                f"{self.config.stale_after:g} s): synced as it is",
                logging.INFO,
            )
        for warning in summary.warnings:
            _log.debug("run %s: %s", run.run_id, warning)

        snapshot: Any = None
        if run.snapshot:
            try:
                snapshot = json.loads(run.snapshot)
            except ValueError as exc:
                ctx.add_log(
                    f"the snapshot of run {run.run_id} is not valid JSON ({exc}); uploaded "
                    "as text inside a JSON object",
                    logging.WARNING,
                )
                snapshot = {"unparsed_snapshot": run.snapshot}
        qh_meta = qh_meta_from_snapshot(snapshot)
        for problem in qh_meta.problems:
            ctx.add_log(f"run {run.run_id}: {problem}; ignored", logging.WARNING)

        ctx.set_dataset(dataset_info(run, self.config, description, qh_meta))
        ctx.upload_file(
            FileInfo(
                name=FILE_NAME,
                path=path,
                filename=FILENAME,
                file_type=FileType.HDF5_NETCDF,
                generator=GENERATOR,
            )
        )
        ctx.upload_json(snapshot, SNAPSHOT_NAME, generator=GENERATOR)
