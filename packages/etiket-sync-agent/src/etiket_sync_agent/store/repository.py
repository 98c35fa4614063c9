"""The repository the engine and the CLI use: every read and write of the tracking store.

Each method runs in its own short transaction and returns plain frozen records, never live ORM
objects, so callers can use them from any thread. Claims are safe with several worker processes:
on PostgreSQL candidates are selected ``FOR UPDATE SKIP LOCKED``; on every database the claiming
``UPDATE`` re-checks the claimable condition, so two workers can never take the same item.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import and_, create_engine, delete, event, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from etiket_sync_agent._version import __version__
from etiket_sync_agent.errors import EtiketSyncError
from etiket_sync_agent.store.models import AgentStatus, Item, ItemFile, ItemLog, ItemState, Source

__all__ = [
    "AgentRecord",
    "DuplicateSourceError",
    "FileRecord",
    "InvalidTransition",
    "ItemRecord",
    "ItemSpec",
    "LogRecordRow",
    "SourceRecord",
    "StoreVersionError",
    "TrackingStore",
    "UpsertResult",
    "open_store",
]

_MIGRATIONS = Path(__file__).with_name("migrations")


class StoreVersionError(EtiketSyncError):
    """The tracking store was created by a newer agent."""


class DuplicateSourceError(EtiketSyncError):
    """A source with that name exists already."""


class InvalidTransition(EtiketSyncError):
    """An item state change that the state machine does not allow."""


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.replace(tzinfo=dt.timezone.utc)


def _naive(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class SourceRecord:
    id: int
    uuid: str
    name: str
    backend: str
    config: dict[str, Any]
    scope: str | None
    scope_mapping: dict[str, str]
    status: str
    last_error: str | None
    cursor: dict[str, Any] | None
    created: dt.datetime | None
    last_sync_at: dt.datetime | None

    @classmethod
    def of(cls, row: Source) -> SourceRecord:
        return cls(
            row.id,
            row.uuid,
            row.name,
            row.backend,
            dict(row.config or {}),
            row.scope,
            dict(row.scope_mapping or {}),
            row.status,
            row.last_error,
            dict(row.cursor) if row.cursor else None,
            _utc(row.created),
            _utc(row.last_sync_at),
        )


@dataclass(frozen=True)
class ItemRecord:
    id: int
    source_id: int
    natural_key: str
    dataset_uuid: str
    cursor: int | None
    path: str | None
    scope_identifier: str | None
    priority: float
    state: ItemState
    attempts: int
    next_attempt_at: dt.datetime | None
    last_error: str | None
    last_traceback: str | None
    fingerprint: str | None
    extra: dict[str, Any]
    backend_state: dict[str, Any]
    lease_owner: str | None
    last_synced_at: dt.datetime | None
    source_name: str | None = None

    @classmethod
    def of(cls, row: Item, source_name: str | None = None) -> ItemRecord:
        return cls(
            row.id,
            row.source_id,
            row.natural_key,
            row.dataset_uuid,
            row.cursor,
            row.path,
            row.scope_identifier,
            row.priority,
            ItemState(row.state),
            row.attempts,
            _utc(row.next_attempt_at),
            row.last_error,
            row.last_traceback,
            row.fingerprint,
            dict(row.extra or {}),
            dict(row.backend_state or {}),
            row.lease_owner,
            _utc(row.last_synced_at),
            source_name,
        )


@dataclass(frozen=True)
class FileRecord:
    id: int
    item_id: int
    name: str
    filename: str
    file_uuid: str
    version_id: int
    size: int
    mtime_ns: int
    md5: str | None
    status: str
    upload_id: str | None
    part_size: int | None
    finished_parts: dict[str, str]

    @classmethod
    def of(cls, row: ItemFile) -> FileRecord:
        return cls(
            row.id,
            row.item_id,
            row.name,
            row.filename,
            row.file_uuid,
            row.version_id,
            row.size,
            row.mtime_ns,
            row.md5,
            row.status,
            row.upload_id,
            row.part_size,
            {str(k): str(v) for k, v in (row.finished_parts or {}).items()},
        )


@dataclass(frozen=True)
class AgentRecord:
    iteration: int
    heartbeat: dt.datetime | None
    state: str
    pid: int | None
    host: str | None
    agent_version: str | None


@dataclass(frozen=True)
class LogRecordRow:
    created: dt.datetime | None
    level: str
    message: str
    traceback: str | None


@dataclass
class ItemSpec:
    """What discovery knows about an item (see :class:`~etiket_sync_agent.SyncItem`)."""

    natural_key: str
    dataset_uuid: str
    cursor: int | None = None
    path: str | None = None
    scope_identifier: str | None = None
    priority: float = 0.0
    fingerprint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UpsertResult:
    inserted: int
    changed: int


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy/our code control transactions (BEGIN IMMEDIATE for writers).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _migrate(engine: Engine) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        if current is not None:
            try:
                script.get_revision(current)
            except Exception:
                raise StoreVersionError(
                    f"the tracking store {engine.url.render_as_string(hide_password=True)} was "
                    f"created by a newer etiket-sync-agent (schema revision {current!r} is unknown "
                    f"to version {__version__}); upgrade the agent"
                ) from None
        heads = script.get_heads()
        if current in heads:
            return
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _give_back(row: Item) -> None:
    """An unfinished ``syncing`` item, claimable again at once (``live`` if it was live)."""
    row.state = ItemState.LIVE.value if row.live_since else ItemState.NEW.value
    row.next_attempt_at = None
    row.lease_owner = row.lease_until = None


def open_store(
    url: str | None = None, *, now: Callable[[], dt.datetime] | None = None
) -> TrackingStore:
    """Open (creating or upgrading as needed) the tracking store at ``url``.

    Default: ``ETIKET_SYNC_DB_URL`` or SQLite ``<agent home>/sync.db``.
    """
    from etiket_sync_agent.paths import database_url

    return TrackingStore(url or database_url(), now=now)


class TrackingStore:
    """Per-dataset sync state, shared by the engine, the CLI and (on PostgreSQL) several workers."""

    def __init__(self, url: str, *, now: Callable[[], dt.datetime] | None = None) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(
                url, connect_args={"timeout": 30, "check_same_thread": False}
            )
            _configure_sqlite(self.engine)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        self._now = now or (lambda: dt.datetime.now(dt.timezone.utc))
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        _migrate(self.engine)
        if self.is_sqlite and "///" in url:
            db_file = Path(url.split("///", 1)[1])
            if db_file.exists():
                os.chmod(db_file, 0o600)  # the config may hold database passwords

    def close(self) -> None:
        self.engine.dispose()

    # -- plumbing --------------------------------------------------------------------------------
    def now(self) -> dt.datetime:
        return self._now().astimezone(dt.timezone.utc)

    def _n(self) -> dt.datetime:
        return _naive(self.now())

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    # -- agent -----------------------------------------------------------------------------------
    def _agent_row(self, session: Session) -> AgentStatus:
        row = session.get(AgentStatus, 1)
        if row is None:
            row = AgentStatus(id=1, iteration=0, state="stopped")
            session.add(row)
            session.flush()
        return row

    def bump_iteration(self) -> int:
        """Count one more loop iteration; returns the new count."""
        with self._session() as s:
            row = self._agent_row(s)
            row.iteration = (row.iteration or 0) + 1
            row.heartbeat = self._n()
            return row.iteration

    def heartbeat(self, state: str) -> None:
        """Record that the agent is alive and in ``state`` (running, idle, stopped ...)."""
        with self._session() as s:
            row = self._agent_row(s)
            row.heartbeat = self._n()
            row.state = state
            row.pid = os.getpid()
            row.host = socket.gethostname()
            row.agent_version = __version__

    def agent_status(self) -> AgentRecord:
        with self._session() as s:
            row = self._agent_row(s)
            return AgentRecord(
                row.iteration or 0,
                _utc(row.heartbeat),
                row.state,
                row.pid,
                row.host,
                row.agent_version,
            )

    # -- sources ---------------------------------------------------------------------------------
    def add_source(
        self, name: str, backend: str, config: Mapping[str, Any], scope: str | None = None
    ) -> SourceRecord:
        """Store a new source (the config must already be validated)."""
        now = self._n()
        try:
            with self._session() as s:
                row = Source(
                    uuid=str(uuid.uuid4()),
                    name=name,
                    backend=backend,
                    config=dict(config),
                    scope=scope,
                    scope_mapping={},
                    status="active",
                    created=now,
                    updated=now,
                )
                s.add(row)
                s.flush()
                return SourceRecord.of(row)
        except IntegrityError:
            raise DuplicateSourceError(f"a source named {name!r} already exists") from None

    def get_source(self, name: str) -> SourceRecord | None:
        with self._session() as s:
            row = s.scalar(select(Source).where(Source.name == name))
            return None if row is None else SourceRecord.of(row)

    def get_source_by_id(self, source_id: int) -> SourceRecord | None:
        with self._session() as s:
            row = s.get(Source, source_id)
            return None if row is None else SourceRecord.of(row)

    def list_sources(self) -> list[SourceRecord]:
        with self._session() as s:
            return [SourceRecord.of(r) for r in s.scalars(select(Source).order_by(Source.name))]

    def remove_source(self, name: str) -> bool:
        """Forget a source and all its items (cascade). Returns whether it existed."""
        with self._session() as s:
            row = s.scalar(select(Source).where(Source.name == name))
            if row is None:
                return False
            item_ids = select(Item.id).where(Item.source_id == row.id)
            s.execute(delete(ItemLog).where(ItemLog.item_id.in_(item_ids)))
            s.execute(delete(ItemFile).where(ItemFile.item_id.in_(item_ids)))
            s.execute(delete(Item).where(Item.source_id == row.id))
            s.delete(row)
            return True

    def set_source_status(self, name: str, status: str, error: str | None = None) -> None:
        if status not in ("active", "paused", "error"):
            raise ValueError(f"unknown source status {status!r}")
        with self._session() as s:
            s.execute(
                update(Source)
                .where(Source.name == name)
                .values(status=status, last_error=error, updated=self._n())
            )

    def set_scope_mapping(self, name: str, identifier: str, scope: str) -> None:
        """Map a scope identifier of a DISABLED-policy source; waiting items are released."""
        with self._session() as s:
            row = s.scalar(select(Source).where(Source.name == name))
            if row is None:
                raise KeyError(name)
            row.scope_mapping = {**(row.scope_mapping or {}), identifier: scope}
            row.updated = self._n()
            s.execute(
                update(Item)
                .where(Item.source_id == row.id, Item.state == ItemState.WAITING.value)
                .values(state=ItemState.NEW.value, last_error=None, updated=self._n())
            )

    def set_cursor(self, source_id: int, cursor: Mapping[str, Any]) -> None:
        with self._session() as s:
            s.execute(update(Source).where(Source.id == source_id).values(cursor=dict(cursor)))

    # -- items: discovery ------------------------------------------------------------------------
    def upsert_items(self, source_id: int, specs: Iterable[ItemSpec]) -> UpsertResult:
        """Insert new items, update known ones; a synced item whose fingerprint changed → new."""
        specs = list(specs)
        inserted = changed = 0
        now = self._n()
        for start in range(0, len(specs), 2000):
            batch = {spec.natural_key: spec for spec in specs[start : start + 2000]}
            with self._session() as s:
                existing = {
                    row.natural_key: row
                    for row in s.scalars(
                        select(Item).where(
                            Item.source_id == source_id, Item.natural_key.in_(list(batch))
                        )
                    )
                }
                new_rows: list[dict[str, Any]] = []
                for key, spec in batch.items():
                    row = existing.get(key)
                    if row is None:
                        new_rows.append(
                            {
                                "source_id": source_id,
                                "natural_key": key,
                                "dataset_uuid": spec.dataset_uuid,
                                "cursor": spec.cursor,
                                "path": spec.path,
                                "scope_identifier": spec.scope_identifier,
                                "priority": spec.priority,
                                "state": ItemState.NEW.value,
                                "attempts": 0,
                                "fingerprint": spec.fingerprint,
                                "extra": dict(spec.extra),
                                "backend_state": {},
                                "created": now,
                                "updated": now,
                            }
                        )
                        continue
                    if row.state == ItemState.GONE.value:  # back at the source
                        row.state = ItemState.NEW.value
                        row.attempts = 0
                        row.next_attempt_at = None
                        changed += 1
                    row.path = spec.path
                    row.priority = spec.priority
                    row.scope_identifier = spec.scope_identifier
                    if spec.cursor is not None:
                        row.cursor = spec.cursor
                    if spec.extra != (row.extra or {}):
                        row.extra = dict(spec.extra)
                    if spec.fingerprint != row.fingerprint:
                        row.fingerprint = spec.fingerprint
                        row.updated = now
                        if self._reset_on_change(row):
                            changed += 1
                if new_rows:
                    s.execute(insert(Item), new_rows)
                    inserted += len(new_rows)
        return UpsertResult(inserted, changed)

    def adopt_moved_items(
        self, source_id: int, specs: Iterable[ItemSpec], present_keys: Iterable[str]
    ) -> list[tuple[str, str]]:
        """Recognise moved datasets: re-key known items instead of creating new ones.

        A spec whose natural key is unknown but whose fingerprint (relative names, sizes and
        mtimes of every file, which a move keeps) equals that of a known item whose key is no
        longer present in the source is the same dataset at a new place: the known item takes
        the new key and path and keeps its dataset uuid, state and file versions, so nothing is
        uploaded again. Returns ``(old key, new key)`` pairs.
        """
        present = set(present_keys)
        candidates = {
            spec.natural_key: spec
            for spec in specs
            if spec.fingerprint and not spec.fingerprint.startswith("0:")
        }
        if not candidates:
            return []
        moved: list[tuple[str, str]] = []
        with self._session() as s:
            known = set(
                s.scalars(
                    select(Item.natural_key).where(
                        Item.source_id == source_id,
                        Item.natural_key.in_(list(candidates)),
                    )
                )
            )
            fresh = {k: v for k, v in candidates.items() if k not in known}
            if not fresh:
                return []
            by_print: dict[str, list[Item]] = {}
            for row in s.scalars(
                select(Item).where(
                    Item.source_id == source_id,
                    Item.fingerprint.in_({spec.fingerprint for spec in fresh.values()}),
                )
            ):
                if row.natural_key not in present and row.lease_owner is None:
                    by_print.setdefault(str(row.fingerprint), []).append(row)
            for key, spec in sorted(fresh.items()):
                rows = by_print.get(str(spec.fingerprint))
                if not rows:
                    continue
                row = rows.pop(0)
                moved.append((row.natural_key, key))
                row.natural_key = key
                row.path = spec.path
                row.priority = spec.priority
                row.updated = self._n()
        return moved

    def retire_vanished(self, source_id: int, present_keys: Iterable[str]) -> list[str]:
        """Mark unsynced items whose key is no longer at the source as ``gone``; return the keys.

        Only items that never reached ``synced`` (new, failed, waiting) and are not leased are
        retired, so a deleted folder that failed does not retry forever and a file that was keyed
        provisionally (e.g. before its header was written) does not linger. A key that shows up
        again is reset to ``new`` by :meth:`upsert_items`. Synced items stay as they are: the
        server keeps what was uploaded.
        """
        present = set(present_keys)
        unsynced = [ItemState.NEW.value, ItemState.FAILED.value, ItemState.WAITING.value]
        now = self._n()
        with self._session() as s:
            rows = s.execute(
                select(Item.id, Item.natural_key).where(
                    Item.source_id == source_id,
                    Item.state.in_(unsynced),
                    Item.lease_owner.is_(None),
                )
            ).all()
            vanished = [(row_id, key) for row_id, key in rows if key not in present]
            for start in range(0, len(vanished), 2000):
                ids = [row_id for row_id, _ in vanished[start : start + 2000]]
                s.execute(
                    update(Item)
                    .where(Item.id.in_(ids), Item.state.in_(unsynced))
                    .values(state=ItemState.GONE.value, next_attempt_at=None, updated=now)
                )
                s.execute(
                    insert(ItemLog),
                    [
                        {
                            "item_id": row_id,
                            "created": now,
                            "level": "INFO",
                            "message": "no longer at the source; not retried unless it comes back",
                            "traceback": None,
                        }
                        for row_id in ids
                    ],
                )
        retired = [key for _, key in vanished]
        return retired

    def _reset_on_change(self, row: Item) -> bool:
        if row.state in (ItemState.SYNCED.value, ItemState.FAILED.value):
            row.state = ItemState.NEW.value
            row.attempts = 0
            row.next_attempt_at = None
            return True
        return False

    def update_fingerprints(self, source_id: int, fingerprints: Mapping[str, str]) -> int:
        """Store fingerprints reported by a database backend; returns items reset for re-sync."""
        changed = 0
        keys = list(fingerprints)
        for start in range(0, len(keys), 2000):
            chunk = keys[start : start + 2000]
            with self._session() as s:
                for row in s.scalars(
                    select(Item).where(Item.source_id == source_id, Item.natural_key.in_(chunk))
                ):
                    value = fingerprints[row.natural_key]
                    if value != row.fingerprint:
                        first_report = (
                            row.fingerprint is None
                            and row.state == "synced"
                            and (row.synced_fingerprint is None)
                        )
                        row.fingerprint = value
                        if first_report:
                            row.synced_fingerprint = value  # adopt: nothing changed since sync
                        elif self._reset_on_change(row):
                            changed += 1
        return changed

    def reset_item(self, item_id: int) -> None:
        """Send an item back to ``new`` (e.g. a user asked for a re-sync)."""
        with self._session() as s:
            s.execute(
                update(Item)
                .where(Item.id == item_id)
                .values(
                    state=ItemState.NEW.value,
                    attempts=0,
                    next_attempt_at=None,
                    lease_owner=None,
                    lease_until=None,
                    updated=self._n(),
                )
            )

    # -- items: claiming and outcomes ------------------------------------------------------------
    def _claimable(self, now: dt.datetime) -> Any:
        return or_(
            Item.state == ItemState.NEW.value,
            and_(
                Item.state.in_([ItemState.FAILED.value, ItemState.LIVE.value]),
                or_(Item.next_attempt_at.is_(None), Item.next_attempt_at <= now),
            ),
            and_(Item.state == ItemState.SYNCING.value, Item.lease_until < now),
        )

    def claim_items(
        self,
        worker_id: str,
        limit: int,
        lease_seconds: float,
        source_ids: Sequence[int] | None = None,
        per_source_limit: int | None = None,
    ) -> list[ItemRecord]:
        """Reserve up to ``limit`` due items for ``worker_id``, highest priority first.

        With ``per_source_limit`` no source gets more than that many, so a source with thousands
        of new items cannot starve the others.
        """
        now = self._n()
        lease_until = now + dt.timedelta(seconds=lease_seconds)
        sources = (
            list(source_ids) if source_ids is not None else [r.id for r in self.list_sources()]
        )
        per_source = per_source_limit or limit
        claimed: list[ItemRecord] = []
        with self._session() as s:
            names = dict(s.execute(select(Source.id, Source.name)).all())
            for source_id in sources:
                if len(claimed) >= limit:
                    break
                query = (
                    select(Item.id)
                    .where(Item.source_id == source_id, self._claimable(now))
                    .order_by(Item.priority.desc(), Item.id)
                    .limit(min(per_source, limit - len(claimed)))
                )
                if not self.is_sqlite:
                    query = query.with_for_update(skip_locked=True)
                for item_id in list(s.scalars(query)):
                    result = s.execute(
                        update(Item)
                        .where(Item.id == item_id, self._claimable(now))
                        .values(
                            state=ItemState.SYNCING.value,
                            lease_owner=worker_id,
                            lease_until=lease_until,
                            updated=now,
                        )
                        .execution_options(synchronize_session=False)
                    )
                    if result.rowcount == 1:  # type: ignore[attr-defined]
                        row = s.get(Item, item_id, populate_existing=True)
                        assert row is not None
                        claimed.append(ItemRecord.of(row, names.get(row.source_id)))
        return claimed

    def _owned(self, s: Session, item_id: int, worker_id: str | None) -> Item:
        row = s.get(Item, item_id, with_for_update=not self.is_sqlite)
        if row is None:
            raise KeyError(f"no item {item_id}")
        if row.state != ItemState.SYNCING.value:
            raise InvalidTransition(f"item {item_id} is {row.state}, not syncing")
        if worker_id is not None and row.lease_owner != worker_id:
            raise InvalidTransition(
                f"item {item_id} is leased by {row.lease_owner}, not {worker_id}"
            )
        return row

    def mark_synced(
        self, item_id: int, worker_id: str | None, fingerprint: str | None = None
    ) -> None:
        """syncing → synced (or → new when the source changed again while syncing)."""
        now = self._n()
        with self._session() as s:
            row = self._owned(s, item_id, worker_id)
            changed_meanwhile = fingerprint is not None and row.fingerprint != fingerprint
            row.state = ItemState.NEW.value if changed_meanwhile else ItemState.SYNCED.value
            row.synced_fingerprint = fingerprint if fingerprint is not None else row.fingerprint
            row.attempts = 0
            row.next_attempt_at = None
            row.last_error = row.last_traceback = None
            row.lease_owner = row.lease_until = row.live_since = None
            row.last_synced_at = row.updated = now
            s.execute(update(Source).where(Source.id == row.source_id).values(last_sync_at=now))

    def mark_live(self, item_id: int, worker_id: str | None, next_sync_in: float) -> None:
        """syncing → live; synced again after ``next_sync_in`` seconds."""
        now = self._n()
        with self._session() as s:
            row = self._owned(s, item_id, worker_id)
            row.state = ItemState.LIVE.value
            row.live_since = row.live_since or now
            row.next_attempt_at = now + dt.timedelta(seconds=next_sync_in)
            row.attempts = 0
            row.last_error = row.last_traceback = None
            row.lease_owner = row.lease_until = None
            row.last_synced_at = row.updated = now
            s.execute(update(Source).where(Source.id == row.source_id).values(last_sync_at=now))

    def mark_failed(
        self,
        item_id: int,
        worker_id: str | None,
        error: str,
        traceback: str | None,
        *,
        backoff_base: float = 10.0,
        backoff_cap: float = 3600.0,
    ) -> dt.datetime:
        """syncing → failed; retried after an exponential backoff with jitter. Returns when."""
        now = self._n()
        with self._session() as s:
            row = self._owned(s, item_id, worker_id)
            row.attempts = (row.attempts or 0) + 1
            delay = min(backoff_cap, backoff_base * 2 ** (row.attempts - 1))
            delay *= random.uniform(0.75, 1.0)
            row.state = ItemState.FAILED.value
            row.next_attempt_at = now + dt.timedelta(seconds=delay)
            row.last_error = error
            row.last_traceback = traceback
            row.lease_owner = row.lease_until = None
            row.updated = now
            s.add(
                ItemLog(
                    item_id=item_id, created=now, level="ERROR", message=error, traceback=traceback
                )
            )
            return row.next_attempt_at.replace(tzinfo=dt.timezone.utc)

    def mark_waiting(self, item_id: int, reason: str) -> None:
        """syncing → waiting for the user (e.g. a scope mapping); released by the mapping."""
        now = self._n()
        with self._session() as s:
            row = self._owned(s, item_id, None)
            row.state = ItemState.WAITING.value
            row.last_error = reason
            row.last_traceback = None
            row.lease_owner = row.lease_until = None
            row.next_attempt_at = now + dt.timedelta(minutes=5)
            row.updated = now

    def release_waiting(self, source_id: int | None = None, *, due_only: bool = False) -> int:
        """waiting → new (all of a source, or those whose re-check time has come)."""
        now = self._n()
        conditions = [Item.state == ItemState.WAITING.value]
        if source_id is not None:
            conditions.append(Item.source_id == source_id)
        if due_only:
            conditions.append(Item.next_attempt_at <= now)
        with self._session() as s:
            result = s.execute(
                update(Item).where(*conditions).values(state=ItemState.NEW.value, updated=now)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def release_lease(self, item_id: int, worker_id: str) -> None:
        """Give an item back unfinished (shutdown): it is claimable again at once."""
        with self._session() as s:
            row = s.get(Item, item_id)
            if row is None or row.state != ItemState.SYNCING.value or row.lease_owner != worker_id:
                return
            _give_back(row)

    def release_all_leases(self) -> int:
        """Give back every item left ``syncing`` by an agent that is gone; returns how many.

        Only for a caller that knows no other agent uses the store (the single-instance lock of
        a SQLite store): items a killed agent had in flight are claimable at once instead of
        after their lease expires. Shared (PostgreSQL) stores rely on lease expiry.
        """
        with self._session() as s:
            rows = s.scalars(select(Item).where(Item.state == ItemState.SYNCING.value)).all()
            for row in rows:
                _give_back(row)
            return len(rows)

    def set_backend_state(self, item_id: int, state: Mapping[str, Any]) -> None:
        with self._session() as s:
            s.execute(update(Item).where(Item.id == item_id).values(backend_state=dict(state)))

    # -- items: reading --------------------------------------------------------------------------
    def get_item(self, item_id: int) -> ItemRecord | None:
        with self._session() as s:
            row = s.get(Item, item_id)
            return None if row is None else ItemRecord.of(row)

    def get_item_by_key(self, source_id: int, natural_key: str) -> ItemRecord | None:
        with self._session() as s:
            row = s.scalar(
                select(Item).where(Item.source_id == source_id, Item.natural_key == natural_key)
            )
            return None if row is None else ItemRecord.of(row)

    def list_items(
        self,
        source_id: int,
        state: ItemState | str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[ItemRecord]:
        with self._session() as s:
            query = select(Item).where(Item.source_id == source_id)
            if state is not None:
                query = query.where(Item.state == ItemState(state).value)
            query = query.order_by(Item.id).limit(limit).offset(offset)
            return [ItemRecord.of(r) for r in s.scalars(query)]

    def newest_item_key(self, source_id: int) -> str | None:
        """Natural key of the source's item with the highest priority (then the latest id)."""
        with self._session() as s:
            return s.scalar(
                select(Item.natural_key)
                .where(Item.source_id == source_id)
                .order_by(Item.priority.desc(), Item.id.desc())
                .limit(1)
            )

    def count_by_state(self, source_id: int | None = None) -> dict[str, int]:
        with self._session() as s:
            query = select(Item.state, func.count()).group_by(Item.state)
            if source_id is not None:
                query = query.where(Item.source_id == source_id)
            return {state: int(n) for state, n in s.execute(query).all()}

    def count_failed_with_attempts(
        self, at_most: int, source_ids: Sequence[int] | None = None
    ) -> int:
        """Failed items (of ``source_ids``, default all) that failed at most ``at_most`` times."""
        with self._session() as s:
            query = (
                select(func.count())
                .select_from(Item)
                .where(Item.state == ItemState.FAILED.value, Item.attempts <= at_most)
            )
            if source_ids is not None:
                query = query.where(Item.source_id.in_(list(source_ids)))
            return int(s.execute(query).scalar_one())

    def list_errors(self, source_id: int | None = None, limit: int = 100) -> list[ItemRecord]:
        """Failed and waiting items with their last error, most recent first."""
        with self._session() as s:
            query = (
                select(Item, Source.name)
                .join(Source, Source.id == Item.source_id)
                .where(Item.state.in_([ItemState.FAILED.value, ItemState.WAITING.value]))
            )
            if source_id is not None:
                query = query.where(Item.source_id == source_id)
            query = query.order_by(Item.updated.desc()).limit(limit)
            return [ItemRecord.of(row, name) for row, name in s.execute(query).all()]

    def add_log(self, item_id: int, level: str, message: str, traceback: str | None = None) -> None:
        with self._session() as s:
            s.add(
                ItemLog(
                    item_id=item_id,
                    created=self._n(),
                    level=level,
                    message=message,
                    traceback=traceback,
                )
            )

    def item_logs(self, item_id: int, limit: int = 200) -> list[LogRecordRow]:
        with self._session() as s:
            rows = s.scalars(
                select(ItemLog)
                .where(ItemLog.item_id == item_id)
                .order_by(ItemLog.id.desc())
                .limit(limit)
            )
            return [LogRecordRow(_utc(r.created), r.level, r.message, r.traceback) for r in rows]

    # -- item files (versions and upload resume) -------------------------------------------------
    def get_latest_file(self, item_id: int, name: str) -> FileRecord | None:
        with self._session() as s:
            row = s.scalar(
                select(ItemFile)
                .where(ItemFile.item_id == item_id, ItemFile.name == name)
                .order_by(ItemFile.version_id.desc())
                .limit(1)
            )
            return None if row is None else FileRecord.of(row)

    def get_file(self, file_id: int) -> FileRecord | None:
        with self._session() as s:
            row = s.get(ItemFile, file_id)
            return None if row is None else FileRecord.of(row)

    def list_files(self, item_id: int) -> list[FileRecord]:
        with self._session() as s:
            return [
                FileRecord.of(r)
                for r in s.scalars(
                    select(ItemFile)
                    .where(ItemFile.item_id == item_id)
                    .order_by(ItemFile.name, ItemFile.version_id)
                )
            ]

    def plan_file_version(
        self,
        item_id: int,
        *,
        name: str,
        filename: str,
        file_uuid: str,
        version_id: int,
        size: int,
        mtime_ns: int,
        md5: str | None,
    ) -> FileRecord:
        """Record a new version *before* it is created on the server (crash-safe identity)."""
        now = self._n()
        with self._session() as s:
            row = ItemFile(
                item_id=item_id,
                name=name,
                filename=filename,
                file_uuid=file_uuid,
                version_id=version_id,
                size=size,
                mtime_ns=mtime_ns,
                md5=md5,
                status="planned",
                finished_parts={},
                created=now,
                updated=now,
            )
            s.add(row)
            s.flush()
            return FileRecord.of(row)

    def touch_file(self, file_id: int, size: int, mtime_ns: int) -> None:
        """Same content seen with a new mtime: remember it so the file is not hashed again."""
        with self._session() as s:
            s.execute(
                update(ItemFile)
                .where(ItemFile.id == file_id)
                .values(size=size, mtime_ns=mtime_ns, updated=self._n())
            )

    def set_upload(self, file_id: int, upload_id: str, part_size: int) -> None:
        with self._session() as s:
            s.execute(
                update(ItemFile)
                .where(ItemFile.id == file_id)
                .values(
                    upload_id=upload_id,
                    part_size=part_size,
                    finished_parts={},
                    status="uploading",
                    updated=self._n(),
                )
            )

    def add_finished_part(self, file_id: int, part_number: int, etag: str) -> None:
        with self._session() as s:
            row = s.get(ItemFile, file_id, with_for_update=not self.is_sqlite)
            if row is None:
                raise KeyError(f"no file {file_id}")
            row.finished_parts = {**(row.finished_parts or {}), str(part_number): etag}
            row.updated = self._n()

    def mark_file_done(self, file_id: int) -> None:
        with self._session() as s:
            s.execute(
                update(ItemFile)
                .where(ItemFile.id == file_id)
                .values(status="done", updated=self._n())
            )

    def file_totals(self, source_id: int) -> tuple[int, int]:
        """(number of uploaded file versions, their bytes) of a source."""
        with self._session() as s:
            count, size = s.execute(
                select(func.count(ItemFile.id), func.coalesce(func.sum(ItemFile.size), 0))
                .join(Item, Item.id == ItemFile.item_id)
                .where(Item.source_id == source_id, ItemFile.status == "done")
            ).one()
            return int(count), int(size)
