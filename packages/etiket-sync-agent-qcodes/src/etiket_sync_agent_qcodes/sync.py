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
from etiket_sync_agent_qcodes.reader import (
    DatabaseUnavailable,
    QCoDeSDatabase,
    RunRow,
    RunUnreadable,
)
from etiket_sync_agent_qcodes.rundescriber import RunDescription

__all__ = ["GENERATOR", "QCoDeSSync", "dataset_info", "fingerprint_of", "ranking_of"]

_log = logging.getLogger("etiket_sync_agent_qcodes")

GENERATOR = "etiket-sync-agent-qcodes"
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
    if description is None:
        return []
    words: list[str] = []
    for spec in description.params:
        words.append(spec.label or spec.name)
        if spec.label and spec.name != spec.label:
            words.append(spec.name)
    return words


def dataset_info(
    run: RunRow, config: QCoDeSConfig, description: RunDescription | None
) -> DatasetInfo:
    """The dataset record of a run (name, description, attributes, keywords, ranking)."""
    lines = run.name.strip().splitlines()
    name = lines[0].strip() if lines and lines[0].strip() else f"QCoDeS run {run.run_id}"
    rest = "\n".join(lines[1:]).strip()
    origin = (
        f"QCoDeS run {run.run_id} (guid {run.guid}) of experiment {run.exp_name!r} in database "
        f"{Path(config.database_path).name}"
    )
    attributes = {"sample": run.sample_name, "set-up": config.set_up}
    attributes.update({str(k): str(v) for k, v in config.static_attributes.items()})
    return DatasetInfo(
        name=name,
        collected=_collected(run),
        alt_uid=run.guid,
        description=f"{rest}\n\n{origin}" if rest else origin,
        keywords=_keywords(description),
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
        """Write ``measured_data.hdf5`` and ``snapshot.json`` for one run."""
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

        ctx.set_dataset(dataset_info(run, self.config, description))
        ctx.upload_file(
            FileInfo(
                name="measured_data.hdf5",
                path=path,
                filename="measured_data.hdf5",
                file_type=FileType.HDF5_NETCDF,
                generator=GENERATOR,
            )
        )
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
        ctx.upload_json(snapshot, "snapshot.json", generator=GENERATOR)
