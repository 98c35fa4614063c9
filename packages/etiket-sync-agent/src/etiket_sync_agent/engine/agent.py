"""The sync engine: discover items, claim them, run backend hooks, upload plans, commit state.

One :class:`Agent` runs per tracking store. Each iteration it

1. discovers new and changed items of every active source (database sources after their cursor,
   file sources through a cached scan when due or when file-system events hint at changes),
2. claims due items fairly across sources and syncs them with bounded concurrency: the backend hook
   runs in a worker thread and describes the dataset; the engine then creates or updates the dataset
   on the server and uploads only the files whose content changed,
3. records the outcome (synced, live, failed with backoff, waiting for a scope) per item.

No exception from a backend, a file or the server stops the loop; each is recorded on its item or
source. Backend hooks never see HTTP or SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etiket_sync_agent.connectors.base import (
    ScopePolicy,
    SyncSourceBase,
    SyncSourceDatabaseBase,
    SyncSourceFileBase,
)
from etiket_sync_agent.connectors.config import parse_config
from etiket_sync_agent.connectors.context import SyncContext, SyncPlan
from etiket_sync_agent.connectors.dataset import FileInfo, FileType
from etiket_sync_agent.connectors.item import SyncItem
from etiket_sync_agent.connectors.registry import load_backend
from etiket_sync_agent.detect.scan import TreeScanner
from etiket_sync_agent.detect.watch import ChangeWatcher
from etiket_sync_agent.engine.identity import dataset_uuid_for, file_uuid_for, next_version_id
from etiket_sync_agent.engine.options import EngineOptions
from etiket_sync_agent.engine.scopes import ScopeResolver, ScopeUnresolved
from etiket_sync_agent.errors import EtiketSyncError, SourceError, SyncError
from etiket_sync_agent.platform import (
    DatasetCreate,
    EtiketClient,
    FileCreate,
    Uploader,
)
from etiket_sync_agent.platform.errors import EtiketError
from etiket_sync_agent.platform.upload import NETCDF_FILE_TYPE, validation_checksum
from etiket_sync_agent.store import ItemRecord, ItemSpec, ItemState, SourceRecord, TrackingStore

__all__ = ["Agent", "IterationReport"]

_log = logging.getLogger("etiket_sync_agent.engine")


@dataclass
class IterationReport:
    """What one iteration did."""

    iteration: int
    discovered: int = 0
    synced: int = 0
    live: int = 0
    failed: int = 0
    waiting: int = 0
    claimed: int = 0
    files_uploaded: int = 0
    bytes_uploaded: int = 0


@dataclass
class _SourceRuntime:
    record: SourceRecord
    backend: SyncSourceBase | None = None
    scanner: TreeScanner | None = None
    error: str | None = None
    retry_at: float = 0.0
    next_scan: float = 0.0
    next_fingerprints: float = 0.0
    known_fingerprints: dict[str, str | None] = field(default_factory=dict)
    newest_key: str | None = None
    newest_priority: float = float("-inf")
    pending_settle: dict[str, int] = field(default_factory=dict)
    #: Items whose newest mtime lies in the future (clock skew on a share, a touched file):
    #: key → (fingerprint, monotonic time it was first seen); they settle by observation.
    future_seen: dict[str, tuple[str | None, float]] = field(default_factory=dict)
    #: Keys found by the last complete scan (None before this agent's first one).
    scanned_keys: set[str] | None = None


def _md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _StoreResume:
    """Adapts the tracking store's per-file upload records to the uploader's resume protocol."""

    def __init__(self, store: TrackingStore, file_id: int) -> None:
        self._store = store
        self._file_id = file_id

    def load(self, file_uuid: str, version_id: int) -> Any:
        from etiket_sync_agent.platform.upload import UploadState

        row = self._store.get_file(self._file_id)
        if row is None or not row.upload_id or not row.part_size:
            return None
        parts = {int(k): str(v) for k, v in (row.finished_parts or {}).items()}
        return UploadState(upload_id=row.upload_id, part_size=row.part_size, parts=parts)

    def begin(self, file_uuid: str, version_id: int, upload_id: str, part_size: int) -> None:
        self._store.set_upload(self._file_id, upload_id, part_size)

    def part_done(self, file_uuid: str, version_id: int, part_number: int, etag: str) -> None:
        self._store.add_finished_part(self._file_id, part_number, etag)

    def finished(self, file_uuid: str, version_id: int) -> None:
        """Nothing to do: the engine marks the file done after validation."""


class Agent:
    """One sync agent working on one tracking store."""

    def __init__(
        self,
        store: TrackingStore,
        client: EtiketClient,
        options: EngineOptions | None = None,
        *,
        backend_loader: Callable[[str], type[SyncSourceBase]] = load_backend,
    ) -> None:
        self.store = store
        self.client = client
        self.options = options or EngineOptions()
        self._load_backend = backend_loader
        self._sources: dict[int, _SourceRuntime] = {}
        self._scopes = ScopeResolver(self._lookup_scope)
        self._creator: str | None = None
        self._stop = asyncio.Event()
        self._until_idle = False
        self._item_slots = asyncio.Semaphore(self.options.concurrency)
        self._file_slots = asyncio.Semaphore(max(1, self.options.concurrency * 2))
        self._uploader = Uploader(client, part_concurrency=self.options.part_concurrency)
        self._watcher: ChangeWatcher | None = None
        self._work_root = Path(tempfile.mkdtemp(prefix="etiket-sync-work-"))
        self.last_report: IterationReport | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask the loop to finish: no new work is claimed, in-flight work gets a grace period."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def close(self) -> None:
        """Stop watchers, close backends and remove temporary files."""
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        for runtime in self._sources.values():
            if runtime.backend is not None:
                with contextlib.suppress(Exception):
                    runtime.backend.close()
        self._sources.clear()
        shutil.rmtree(self._work_root, ignore_errors=True)

    async def run(self, iterations: int = 0, *, until_idle: bool = False) -> int:
        """Run iterations (0 = until stopped). Returns the number of iterations done.

        With ``until_idle`` the loop ends once nothing is left to sync and no item is live, after
        every item that failed in this run has had ``options.idle_retries`` quick retries.
        """
        done = 0
        self._until_idle = until_idle
        self.store.heartbeat("running")
        try:
            while not self._stop.is_set():
                report = await self.iteration()
                done += 1
                if iterations and done >= iterations:
                    break
                if until_idle and self.is_idle() and not self._quick_retries_pending():
                    break
                if report.claimed == 0 and not self._stop.is_set():
                    await self._sleep(self.options.idle_sleep)
        finally:
            self.store.heartbeat("stopped")
        return done

    async def _sleep(self, seconds: float) -> None:
        wake = self._watcher.changed if self._watcher is not None else None
        waiters = [asyncio.ensure_future(self._stop.wait())]
        if wake is not None:
            waiters.append(asyncio.ensure_future(wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def _quick_retries_pending(self) -> bool:
        """Whether a failed item of a source that can sync still has one of the quick retries of
        an ``until_idle`` run (items of paused sources or sources in error are not waited for)."""
        active = self._active_source_ids()
        if self.options.idle_retries <= 0 or not active:
            return False
        return self.store.count_failed_with_attempts(self.options.idle_retries, active) > 0

    def is_idle(self) -> bool:
        """Nothing new, syncing or live (failed items are not waited for)."""
        counts = self.store.count_by_state()
        busy = sum(
            counts.get(state.value, 0)
            for state in (ItemState.NEW, ItemState.SYNCING, ItemState.LIVE)
        )
        return busy == 0 and not any(r.pending_settle for r in self._sources.values())

    # -- one iteration ---------------------------------------------------------------------------
    async def iteration(self) -> IterationReport:
        """Discover, then sync what is due. Never raises for item or source problems."""
        report = IterationReport(iteration=self.store.bump_iteration())
        self.store.heartbeat("running")
        await self._refresh_sources()
        for runtime in list(self._sources.values()):
            if self._stop.is_set():
                break
            report.discovered += await self._discover(runtime)
        if not self._stop.is_set():
            await self._sync_due(report)
        self.last_report = report
        return report

    async def _refresh_sources(self) -> None:
        records = {r.id: r for r in self.store.list_sources()}
        for source_id in list(self._sources):
            if source_id not in records:
                runtime = self._sources.pop(source_id)
                if runtime.backend is not None:
                    runtime.backend.close()
                if self._watcher is not None:
                    self._watcher.unwatch(source_id)
        for source_id, record in records.items():
            known = self._sources.get(source_id)
            if known is None or known.record.config != record.config:
                if known is not None and known.backend is not None:
                    known.backend.close()
                self._sources[source_id] = _SourceRuntime(record)
            else:
                known.record = record

    def _backend(self, runtime: _SourceRuntime) -> SyncSourceBase:
        if runtime.backend is None:
            cls = self._load_backend(runtime.record.backend)
            config = parse_config(cls.config_class, runtime.record.config, check=False)
            runtime.backend = cls(config)
            if isinstance(runtime.backend, SyncSourceFileBase):
                runtime.scanner = TreeScanner(runtime.backend)
                self._watch(runtime)
        return runtime.backend

    def _watch(self, runtime: _SourceRuntime) -> None:
        backend = runtime.backend
        if not isinstance(backend, SyncSourceFileBase) or not self.options.use_watchdog:
            return
        if backend.is_server_folder():
            return  # network drives: events are unreliable, polling only
        if self._watcher is None:
            self._watcher = ChangeWatcher()
        self._watcher.watch(runtime.record.id, Path(backend.root_path()))

    # -- discovery -------------------------------------------------------------------------------
    def _source_failed(self, runtime: _SourceRuntime, message: str) -> None:
        if runtime.error != message:
            _log.warning("source %s: %s", runtime.record.name, message)
        runtime.error = message
        runtime.retry_at = time.monotonic() + self.options.source_retry
        self.store.set_source_status(runtime.record.name, "error", message)

    def _source_ok(self, runtime: _SourceRuntime) -> None:
        if runtime.error is not None or runtime.record.status == "error":
            _log.info("source %s recovered", runtime.record.name)
            self.store.set_source_status(runtime.record.name, "active", None)
        runtime.error = None

    async def _discover(self, runtime: _SourceRuntime) -> int:
        record = runtime.record
        if record.status == "paused" or time.monotonic() < runtime.retry_at:
            return 0
        try:
            backend = self._backend(runtime)
            if isinstance(backend, SyncSourceDatabaseBase):
                found = await self._discover_database(runtime, backend)
            elif isinstance(backend, SyncSourceFileBase):
                found = await self._discover_files(runtime, backend)
            else:  # pragma: no cover - the contract check forbids it
                raise SourceError("backend is neither a database nor a file source")
        except SourceError as exc:
            self._source_failed(runtime, str(exc))
            return 0
        except EtiketSyncError as exc:
            self._source_failed(runtime, str(exc))
            return 0
        except Exception as exc:
            self._source_failed(runtime, f"discovery failed: {type(exc).__name__}: {exc}")
            _log.debug("discovery traceback", exc_info=True)
            return 0
        self._source_ok(runtime)
        return found

    def _spec(self, runtime: _SourceRuntime, item: SyncItem) -> ItemSpec:
        pinned = item.extra.get("dataset_uuid") if isinstance(item.extra, dict) else None
        return ItemSpec(
            natural_key=item.key,
            dataset_uuid=str(pinned) if pinned else dataset_uuid_for(runtime.record.uuid, item.key),
            cursor=item.cursor,
            path=item.path,
            scope_identifier=item.scope_identifier,
            priority=item.priority,
            fingerprint=item.fingerprint,
            extra=dict(item.extra),
        )

    async def _discover_database(
        self, runtime: _SourceRuntime, backend: SyncSourceDatabaseBase
    ) -> int:
        record = runtime.record
        cursor = record.cursor or {}
        last = (
            SyncItem(key=str(cursor.get("key") or "cursor"), cursor=cursor.get("cursor"))
            if cursor.get("cursor") is not None
            else None
        )

        def list_new() -> list[SyncItem]:
            return list(backend.get_new_datasets(last))

        items = await asyncio.to_thread(list_new)
        found = 0
        if items:
            result = self.store.upsert_items(record.id, [self._spec(runtime, i) for i in items])
            found = result.inserted
            newest = max(items, key=lambda i: (i.cursor is not None, i.cursor or 0))
            if newest.cursor is not None:
                self.store.set_cursor(record.id, {"cursor": newest.cursor, "key": newest.key})
        now = time.monotonic()
        if now >= runtime.next_fingerprints:
            runtime.next_fingerprints = now + self.options.fingerprint_interval
            fingerprints = await asyncio.to_thread(backend.get_fingerprints)
            if fingerprints:
                changed = self.store.update_fingerprints(record.id, dict(fingerprints))
                found += changed
        return found

    async def _discover_files(self, runtime: _SourceRuntime, backend: SyncSourceFileBase) -> int:
        now = time.monotonic()
        hinted = self._watcher.take_hint(runtime.record.id) if self._watcher else False
        if not hinted and now < runtime.next_scan and not runtime.pending_settle:
            return 0
        runtime.next_scan = now + self.options.scan_interval
        scanner = runtime.scanner
        assert scanner is not None
        result = await asyncio.to_thread(scanner.scan)
        settle_ns = int(self.options.settle_time * 1e9)
        wall_ns = time.time_ns()
        live_capable = backend.live_sync
        specs: list[ItemSpec] = []
        runtime.pending_settle = {}
        newest_key, newest_priority = runtime.newest_key, runtime.newest_priority
        for item in result.items:
            if item.priority >= newest_priority:
                newest_key, newest_priority = item.key, item.priority
        for item in result.items:
            newest_mtime = result.newest_mtime_ns.get(item.key, 0)
            if newest_mtime > wall_ns:
                # An mtime in the future says nothing about when the file was written: wait
                # until the fingerprint has been stable for the settle time as we observe it.
                seen = runtime.future_seen.get(item.key)
                if seen is None or seen[0] != item.fingerprint:
                    seen = runtime.future_seen[item.key] = (item.fingerprint, now)
                still_written = now - seen[1] < self.options.settle_time
            else:
                runtime.future_seen.pop(item.key, None)
                still_written = wall_ns - newest_mtime < settle_ns
            is_live_candidate = live_capable and item.key == newest_key
            if still_written and not is_live_candidate:
                runtime.pending_settle[item.key] = newest_mtime
                continue
            if runtime.known_fingerprints.get(item.key, "\0") == item.fingerprint:
                continue
            specs.append(self._spec(runtime, item))
        runtime.newest_key, runtime.newest_priority = newest_key, newest_priority
        present = {item.key for item in result.items}
        for key in [k for k in runtime.future_seen if k not in present]:
            del runtime.future_seen[key]
        self._adopt_moves(runtime, backend, specs, present)
        # A folder we could not list must not look like deleted datasets; and only when a key
        # seen before is missing (or on this agent's first scan) can anything have vanished.
        vanished = runtime.scanned_keys is None or not runtime.scanned_keys <= present
        if not result.errors and vanished:
            for key in self.store.retire_vanished(runtime.record.id, present):
                runtime.known_fingerprints.pop(key, None)
                _log.info("[%s] %s is no longer at the source", runtime.record.name, key)
        if not result.errors:
            runtime.scanned_keys = present
        if not specs:
            return 0
        upserted = self.store.upsert_items(runtime.record.id, specs)
        for spec in specs:
            runtime.known_fingerprints[spec.natural_key] = spec.fingerprint
        return upserted.inserted + upserted.changed

    def _adopt_moves(
        self,
        runtime: _SourceRuntime,
        backend: SyncSourceFileBase,
        specs: list[ItemSpec],
        present: set[str],
    ) -> None:
        """Re-key known items whose dataset moved (see ``TrackingStore.adopt_moved_items``)."""
        if not backend.detect_moves or not specs:
            return
        for old_key, new_key in self.store.adopt_moved_items(runtime.record.id, specs, present):
            runtime.known_fingerprints.pop(old_key, None)
            moved = self.store.get_item_by_key(runtime.record.id, new_key)
            message = f"dataset moved from {old_key} to {new_key}; nothing uploaded again"
            _log.info("[%s] %s", runtime.record.name, message)
            if moved is not None:
                self.store.add_log(moved.id, "INFO", message)

    # -- syncing ---------------------------------------------------------------------------------
    def _active_source_ids(self) -> list[int]:
        """Sources whose items may be claimed now (not in error, not paused)."""
        return [
            sid
            for sid, r in self._sources.items()
            if r.error is None and r.record.status != "paused"
        ]

    async def _sync_due(self, report: IterationReport) -> None:
        active = self._active_source_ids()
        if not active:
            return
        batch = max(self.options.concurrency * 2, 1)
        per_source = max(1, batch // len(active))
        claimed = self.store.claim_items(
            self.options.worker_id,
            limit=batch,
            lease_seconds=self.options.lease_seconds,
            source_ids=active,
            per_source_limit=per_source,
        )
        report.claimed = len(claimed)
        if not claimed:
            return
        tasks = [asyncio.create_task(self._sync_item_guarded(rec, report)) for rec in claimed]
        stop_waiter = asyncio.ensure_future(self._stop.wait())
        try:
            pending: set[asyncio.Future[Any]] = set(tasks)
            while pending:
                done, pending = await asyncio.wait(
                    pending | {stop_waiter}, return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(stop_waiter)
                if stop_waiter in done:
                    break
            if pending:
                _, still = await asyncio.wait(pending, timeout=self.options.shutdown_grace)
                for task in still:
                    task.cancel()
                if still:
                    await asyncio.gather(*still, return_exceptions=True)
        finally:
            stop_waiter.cancel()

    async def _sync_item_guarded(self, rec: ItemRecord, report: IterationReport) -> None:
        async with self._item_slots:
            try:
                outcome = await self._sync_item(rec, report)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    self.store.release_lease(rec.id, self.options.worker_id)
                raise
            except ScopeUnresolved as exc:
                self.store.mark_waiting(rec.id, str(exc))
                report.waiting += 1
                return
            except SyncError as exc:
                self._record_failure(rec, str(exc), None)
                report.failed += 1
                return
            except (EtiketError, EtiketSyncError, OSError) as exc:
                self._record_failure(rec, f"{type(exc).__name__}: {exc}", traceback.format_exc())
                report.failed += 1
                return
            except Exception as exc:
                self._record_failure(rec, f"{type(exc).__name__}: {exc}", traceback.format_exc())
                report.failed += 1
                return
            if outcome == "live":
                report.live += 1
            else:
                report.synced += 1

    def _record_failure(self, rec: ItemRecord, message: str, tb: str | None) -> None:
        _log.warning("item %s failed: %s", rec.natural_key, message)
        backoff_base = self.options.backoff_base
        if self._until_idle and rec.attempts < self.options.idle_retries:
            # a scripted sync waits for a few quick retries, not for hours of backoff
            backoff_base = min(backoff_base, self.options.idle_retry_delay)
        self.store.mark_failed(
            rec.id,
            self.options.worker_id,
            message,
            tb,
            backoff_base=backoff_base,
            backoff_cap=self.options.backoff_cap,
        )

    async def _lookup_scope(self, name_or_uuid: str) -> str | None:
        scope = await self.client.find_scope(name_or_uuid)
        return None if scope is None else str(scope.uuid)

    async def _creator_sub(self) -> str:
        if self._creator is None:
            self._creator = (await self.client.userinfo()).sub
        return self._creator

    def _is_newest(self, runtime: _SourceRuntime, rec: ItemRecord) -> bool:
        if isinstance(runtime.backend, SyncSourceFileBase):
            return runtime.newest_key == rec.natural_key
        newest = self.store.newest_item_key(rec.source_id)
        return newest == rec.natural_key

    async def _sync_item(self, rec: ItemRecord, report: IterationReport) -> str:
        runtime = self._sources.get(rec.source_id)
        if runtime is None:
            raise SourceError("the source of this item was removed")
        backend = self._backend(runtime)
        record = runtime.record
        scope_uuid = await self._scopes.resolve(
            backend.scope_policy,
            record.scope,
            backend.default_scope() if backend.scope_policy is ScopePolicy.OPTIONAL else None,
            rec.scope_identifier,
            record.scope_mapping or {},
        )
        item = SyncItem(
            key=rec.natural_key,
            cursor=rec.cursor,
            priority=rec.priority,
            path=rec.path,
            scope_identifier=rec.scope_identifier,
            fingerprint=rec.fingerprint,
            extra=dict(rec.extra or {}),
            dataset_uuid=rec.dataset_uuid,
            item_id=rec.id,
        )
        state = dict(rec.backend_state or {})
        live = False
        if backend.live_sync and self._is_newest(runtime, rec):
            live = await asyncio.to_thread(backend.check_live_dataset, item, state)
        work_dir = self._work_root / f"item-{rec.id}-{os.urandom(4).hex()}"
        work_dir.mkdir(parents=True)
        try:
            ctx = SyncContext(item, work_dir, source_name=record.name, live=live, state=state)
            hook = backend.sync_dataset_live if live else backend.sync_dataset
            await asyncio.to_thread(hook, item, ctx)
            for log in ctx.plan.logs:
                self.store.add_log(rec.id, logging.getLevelName(log.level), log.message)
            await self._execute_plan(rec, ctx.plan, scope_uuid, work_dir, report)
            self.store.set_backend_state(rec.id, ctx.state)
            if ctx.plan.errors:
                raise SyncError("; ".join(ctx.plan.errors))
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
        if live:
            self.store.mark_live(
                rec.id, self.options.worker_id, next_sync_in=self.options.live_interval
            )
            return "live"
        self.store.mark_synced(rec.id, self.options.worker_id, fingerprint=rec.fingerprint)
        return "synced"

    async def _execute_plan(
        self,
        rec: ItemRecord,
        plan: SyncPlan,
        scope_uuid: str,
        work_dir: Path,
        report: IterationReport,
    ) -> None:
        info = plan.dataset
        if info is None:
            raise SyncError("the backend described no dataset (ctx.set_dataset was not called)")
        creator = info.creator or await self._creator_sub()
        alt_uid = info.alt_uid if info.alt_uid and info.alt_uid != rec.dataset_uuid else None
        create = DatasetCreate(
            uuid=rec.dataset_uuid,
            alt_uid=alt_uid,
            collected=info.collected,
            name=info.name,
            creator=creator,
            description=info.description,
            notes=info.notes,
            keywords=info.keywords,
            ranking=info.ranking,
            scope_uuid=scope_uuid,
            attributes=info.attributes,
        )
        await self.client.ensure_dataset(create)
        errors: list[str] = []

        async def one(file: FileInfo) -> None:
            async with self._file_slots:
                try:
                    sent = await self._sync_file(rec, file, creator, work_dir, info.collected)
                except Exception as exc:
                    errors.append(f"{file.name}: {type(exc).__name__}: {exc}")
                    raise
                if sent:
                    report.files_uploaded += 1
                    report.bytes_uploaded += sent

        results = await asyncio.gather(*(one(f) for f in plan.files), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            first = failures[0]
            if len(failures) == 1:
                raise first
            raise SyncError(f"{len(failures)} files failed: " + "; ".join(errors))

    async def _sync_file(
        self,
        rec: ItemRecord,
        file: FileInfo,
        creator: str,
        work_dir: Path,
        collected: Any,
    ) -> int:
        """Upload ``file`` if its content changed since the last version. Returns bytes sent."""
        path = Path(file.path)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise SyncError(f"file {path} vanished before it could be uploaded") from None
        except PermissionError:
            raise SyncError(f"permission denied reading {path}") from None
        generated = work_dir in path.parents
        latest = self.store.get_latest_file(rec.id, file.name)
        if (
            latest is not None
            and latest.status == "done"
            and not generated
            and latest.size == st.st_size
            and latest.mtime_ns == st.st_mtime_ns
        ):
            return 0
        md5 = await asyncio.to_thread(_md5_file, path)
        # netCDF: the content hash is the identity, so a regenerated file with the same content
        # is not a new version (and is what the server validates, as with the platform's client)
        netcdf = file.file_type == FileType.HDF5_NETCDF
        content = (
            await asyncio.to_thread(
                validation_checksum, path, md5, NETCDF_FILE_TYPE, file.content_checksum
            )
            if netcdf
            else None
        )
        identity = content or md5
        same_content = latest is not None and latest.md5 == identity
        if same_content and content is not None and latest is not None and latest.status == "done":
            # same netCDF content in another layout (size may differ): not a new version
            self.store.touch_file(latest.id, st.st_size, st.st_mtime_ns)
            return 0
        if latest is not None and same_content and latest.size == st.st_size:
            if latest.status == "done":
                self.store.touch_file(latest.id, st.st_size, st.st_mtime_ns)
                return 0
            row = latest  # a version planned before a crash: resume it
        else:
            previous = latest.version_id if latest is not None else None
            pinned = file.version_id is not None and (
                previous is None or file.version_id > previous
            )
            row = self.store.plan_file_version(
                rec.id,
                name=file.name,
                filename=file.filename or path.name,
                file_uuid=file.uuid or file_uuid_for(rec.dataset_uuid, file.name),
                version_id=(
                    file.version_id
                    if pinned and file.version_id is not None
                    else next_version_id(previous)
                ),
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                md5=identity,
            )
        create = FileCreate(
            name=file.name,
            filename=file.filename or path.name,
            uuid=row.file_uuid,
            creator=creator,
            collected=file.collected or collected,
            size=row.size,
            type=(file.file_type or FileType.UNKNOWN).value,
            file_generator=file.generator,
            version_id=row.version_id,
            ranking=file.ranking,
            ds_uuid=rec.dataset_uuid,
            immutable=file.immutable,
        )
        # announced by the uploader once the bytes are known (no junk versions, D10)
        result = await self._uploader.upload(
            path,
            row.file_uuid,
            row.version_id,
            resume=_StoreResume(self.store, row.id),
            expected_md5=md5,
            file_type=create.type,
            content_checksum=content,
            announce=create,
        )
        self.store.mark_file_done(row.id)
        return 0 if result.already_secured else int(result.bytes_sent)
