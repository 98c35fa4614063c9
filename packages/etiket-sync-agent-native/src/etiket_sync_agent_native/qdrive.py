"""Reading qdrive's local cache: the datasets qdrive and dataQruiser create on this machine.

qdrive (the platform's Python library) and the dataQruiser GUI keep a shared SQLite database
``<data dir>/sql/etiket_db.sql`` and a data folder ``<data dir>/data/<scope>/<dataset>/<file>/
<version>/<filename>`` (etiket_api.md §10). Both write it concurrently (WAL mode). The existing
agent's ``native`` connector uploads the datasets and the completed file versions recorded there;
this module gives our ``native`` backend the same reach.

Access is strictly read-only and never blocks the writers: a ``file:...?mode=ro`` URI connection
with ``query_only`` and a short busy timeout (a WAL reader does not block writers; when a writer
holds the database in a way a reader must wait for, discovery gives up after the timeout and tries
again next poll). Nothing in qdrive's tables or data folder is written: what was synced is recorded
in our tracking store (per item and file version).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etiket_sync_agent import DatasetInfo, FileInfo, FileType, SyncContext, SyncItem
from etiket_sync_agent.errors import SyncError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "QdriveCache",
    "QdriveCacheError",
    "QdriveDataset",
    "QdriveFile",
    "default_qdrive_directory",
    "describe_qdrive_dataset",
    "qdrive_items",
]

#: How long a read waits for a writer's lock before giving up (milliseconds).
BUSY_TIMEOUT_MS = 200
#: The file type qdrive uses for live mirrors; never uploaded (as the existing agent).
HDF5_CACHE = "HDF5_CACHE"


class QdriveCacheError(Exception):
    """qdrive's cache cannot be read right now (missing, locked, unexpected schema)."""


def default_qdrive_directory() -> Path:
    """qdrive's shared data folder on this platform (§10.1)."""
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "quantum_machines" / "etiket"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "quantum_machines" / "etiket"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "quantum_machines" / "etiket"


def parse_time(value: Any) -> dt.datetime | None:
    """qdrive stores times as naive UTC strings ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        try:
            parsed = dt.datetime.fromisoformat(str(value).replace("T", " "))
        except ValueError:
            return None
    return parsed.replace(tzinfo=dt.timezone.utc) if parsed.tzinfo is None else parsed


def _ms(value: Any) -> int:
    parsed = parse_time(value)
    return 0 if parsed is None else int(parsed.timestamp() * 1000)


@dataclass(frozen=True)
class QdriveFile:
    """One file version of a qdrive dataset."""

    uuid: str
    version_id: int
    name: str
    filename: str
    type: str
    status: str
    synchronized: bool
    ranking: int
    generator: str | None
    collected: dt.datetime | None
    modified_ms: int
    path: Path


@dataclass
class QdriveDataset:
    """One dataset of qdrive's cache with its metadata and file versions."""

    id: int
    uuid: str
    alt_uid: str | None
    name: str
    scope_uuid: str
    collected: dt.datetime
    modified_ms: int
    creator: str | None
    description: str | None
    notes: str | None
    keywords: list[str]
    ranking: int
    synchronized: bool
    attributes: dict[str, str] = field(default_factory=dict)
    files: list[QdriveFile] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        """Changes when the metadata or a completed file version changes."""
        done = sorted((f.uuid, f.version_id) for f in self.files if f.status == "complete")
        last = max([self.modified_ms, *(f.modified_ms for f in self.files)])
        return f"q{last}:{len(done)}"

    def uploadable(self) -> list[QdriveFile]:
        """Completed, non-cache versions: the newest one per logical name, oldest name first."""
        newest: dict[str, QdriveFile] = {}
        for f in self.files:
            if f.status != "complete" or f.type == HDF5_CACHE:
                continue
            kept = newest.get(f.name)
            if kept is None or f.version_id > kept.version_id:
                newest[f.name] = f
        return sorted(newest.values(), key=lambda f: (f.name, f.version_id))


class QdriveCache:
    """Read-only view of qdrive's cache below ``root`` (the folder holding ``sql/`` and ``data/``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.database = self.root / "sql" / "etiket_db.sql"
        self.data = self.root / "data"

    def exists(self) -> bool:
        return self.database.is_file()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self.database.is_file():
            raise QdriveCacheError(f"qdrive's cache {self.database} does not exist")
        uri = f"{self.database.resolve().as_uri()}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as exc:
            raise QdriveCacheError(f"cannot open qdrive's cache {self.database}: {exc}") from None
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA query_only = 1")
            yield conn
        except sqlite3.Error as exc:
            raise QdriveCacheError(f"reading qdrive's cache {self.database}: {exc}") from None
        finally:
            conn.close()

    # -- discovery ---------------------------------------------------------------------------------
    def pending(self, after_ms: int | None = None) -> list[tuple[str, int, str, str]]:
        """``(uuid, modified ms, scope uuid, fingerprint)`` of datasets with something to sync.

        qdrive's own rule (§10.3): the dataset is not synchronized, or it has a completed,
        unsynchronized, non-cache file version. ``after_ms`` keeps datasets (or files) modified
        after that time only.
        """
        with self._connect() as conn:
            rows = conn.execute(
                """
                SELECT d.id, d.uuid, d.modified, s.uuid AS scope_uuid,
                       (SELECT MAX(f.modified) FROM files f WHERE f.dataset_id = d.id) AS fmod,
                       (SELECT COUNT(*) FROM files f
                         WHERE f.dataset_id = d.id AND f.status = 'complete') AS ndone
                FROM datasets d JOIN scopes s ON s.id = d.scope_id
                WHERE d.synchronized = 0 OR EXISTS (
                    SELECT 1 FROM files f WHERE f.dataset_id = d.id AND f.synchronized = 0
                    AND f.status = 'complete' AND f.type != 'HDF5_CACHE')
                ORDER BY d.id
                """
            ).fetchall()
        out = []
        for row in rows:
            last = max(_ms(row["modified"]), _ms(row["fmod"]))
            if after_ms is not None and last <= after_ms:
                continue
            out.append((str(row["uuid"]), last, str(row["scope_uuid"]), f"q{last}:{row['ndone']}"))
        return out

    def fingerprints(self) -> dict[str, str]:
        """uuid → fingerprint of every dataset qdrive still lists as having something to sync."""
        return {uuid: fp for uuid, _, _, fp in self.pending()}

    # -- one dataset -------------------------------------------------------------------------------
    def get(self, dataset_uuid: str) -> QdriveDataset | None:
        """A dataset with its attributes and file versions (None when qdrive no longer has it)."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT d.*, s.uuid AS scope_uuid FROM datasets d "
                "JOIN scopes s ON s.id = d.scope_id WHERE d.uuid = ?",
                (dataset_uuid,),
            ).fetchone()
            if row is None:
                return None
            attrs = conn.execute(
                "SELECT a.key, a.value FROM dataset_attr a "
                "JOIN ds_attr_link l ON l.dataset_attr_id = a.id WHERE l.dataset_id = ? "
                "ORDER BY a.key, a.value",
                (row["id"],),
            ).fetchall()
            files = conn.execute(
                "SELECT * FROM files WHERE dataset_id = ? ORDER BY name, version_id", (row["id"],)
            ).fetchall()
        try:
            keywords = json.loads(row["keywords"]) if row["keywords"] else []
        except ValueError:
            keywords = []
        attributes: dict[str, str] = {}
        for attr in attrs:
            # The cache allows several values per key; the server takes one string per key.
            key, value = str(attr["key"]), str(attr["value"])
            attributes[key] = value if key not in attributes else f"{attributes[key]}, {value}"
        dataset = QdriveDataset(
            id=int(row["id"]),
            uuid=str(row["uuid"]),
            alt_uid=row["alt_uid"],
            name=str(row["name"]),
            scope_uuid=str(row["scope_uuid"]),
            collected=parse_time(row["collected"]) or dt.datetime.now(dt.timezone.utc),
            modified_ms=_ms(row["modified"]),
            creator=row["creator"],
            description=row["description"],
            notes=row["notes"],
            keywords=[str(k) for k in keywords if str(k).strip()],
            ranking=int(row["ranking"] or 0),
            synchronized=bool(row["synchronized"]),
            attributes=attributes,
        )
        for f in files:
            dataset.files.append(
                QdriveFile(
                    uuid=str(f["uuid"]),
                    version_id=int(f["version_id"]),
                    name=str(f["name"]),
                    filename=str(f["filename"]),
                    type=str(f["type"] or "UNKNOWN"),
                    status=str(f["status"]),
                    synchronized=bool(f["synchronized"]),
                    ranking=int(f["ranking"] or 0),
                    generator=f["file_generator"],
                    collected=parse_time(f["collected"]),
                    modified_ms=_ms(f["modified"]),
                    path=self._path_of(dataset.scope_uuid, dataset.uuid, f),
                )
            )
        return dataset

    def _path_of(self, scope_uuid: str, dataset_uuid: str, row: sqlite3.Row) -> Path:
        local = row["local_path"]
        if local:
            candidate = Path(str(local))
            if not candidate.is_absolute():
                candidate = self.data / candidate
            return candidate
        return (
            self.data
            / scope_uuid
            / dataset_uuid
            / str(row["uuid"])
            / str(row["version_id"])
            / str(row["filename"])
        )


# -- what the native backend does with it -----------------------------------------------------------

#: ``SyncItem.extra["origin"]`` of items that come from qdrive's cache.
ORIGIN = "qdrive"


def qdrive_items(cache: QdriveCache, after_ms: int | None) -> tuple[list[SyncItem], int | None]:
    """Items for qdrive datasets with something to sync (after ``after_ms``), and the new mark."""
    items: list[SyncItem] = []
    newest = after_ms
    for ds_uuid, modified_ms, scope_uuid, fingerprint in cache.pending(after_ms):
        items.append(
            SyncItem(
                key=ds_uuid,
                priority=modified_ms / 1000,
                scope_identifier=scope_uuid,
                fingerprint=fingerprint,
                extra={"dataset_uuid": ds_uuid, "origin": ORIGIN},
            )
        )
        newest = modified_ms if newest is None else max(newest, modified_ms)
    return items, newest


def describe_qdrive_dataset(cache: QdriveCache, item: SyncItem, ctx: SyncContext) -> None:
    """Describe one qdrive dataset: its own uuid, scope and metadata, and each completed file
    version with its own file uuid and version id (the newest complete version per name)."""
    try:
        ds = cache.get(item.key)
    except QdriveCacheError as exc:
        raise SyncError(str(exc)) from None
    if ds is None:
        raise SyncError(
            f"qdrive dataset {item.key} is no longer in qdrive's cache {cache.database}"
        )
    ctx.set_dataset(
        DatasetInfo(
            name=ds.name,
            collected=ds.collected,
            alt_uid=ds.alt_uid,
            uuid=ds.uuid,
            description=ds.description,
            notes=ds.notes,
            keywords=ds.keywords,
            ranking=ds.ranking,
            attributes=ds.attributes,
            creator=ds.creator or None,
        )
    )
    known = {t.value for t in FileType}
    uploadable = ds.uploadable()
    for f in uploadable:
        if not f.path.is_file():
            ctx.add_error(
                f"file {f.name!r} version {f.version_id} of qdrive dataset {ds.uuid} is missing "
                f"from qdrive's data folder (expected at {f.path})"
            )
            continue
        ctx.upload_file(
            FileInfo(
                name=f.name,
                path=f.path,
                filename=f.filename,
                file_type=FileType(f.type) if f.type in known else FileType.UNKNOWN,
                generator=f.generator,
                ranking=f.ranking,
                collected=f.collected,
                uuid=f.uuid,
                version_id=f.version_id,
            )
        )
    chosen = {(f.uuid, f.version_id) for f in uploadable}
    older = [
        f
        for f in ds.files
        if f.status == "complete"
        and f.type != HDF5_CACHE
        and not f.synchronized
        and (f.uuid, f.version_id) not in chosen
    ]
    if older:
        ctx.add_log(
            f"{len(older)} older unsynchronized version(s) superseded by a newer complete version "
            "are not uploaded: " + ", ".join(f"{f.name}@{f.version_id}" for f in older[:10])
        )
    writing = [f.name for f in ds.files if f.status == "writing"]
    if writing:
        ctx.add_log(f"still being written by qdrive (synced once complete): {', '.join(writing)}")
    ctx.state.update({"qdrive_fingerprint": ds.fingerprint})
