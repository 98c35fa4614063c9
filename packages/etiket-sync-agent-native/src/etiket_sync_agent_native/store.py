"""The local store of native datasets: a folder with a SQLite catalog and the datasets' files.

Layout of a store folder::

    <root>/catalog.sqlite                 the catalog (SQLite, WAL mode)
    <root>/datasets/<uuid>/<nnnn>-<name>  the bytes of each file (one path per logical file name)
    <root>/.incoming/                     temporary copies, renamed into place when complete

Writers (lab scripts, through :class:`~etiket_sync_agent_native.Dataset`) and the reader (the
agent) may be different processes running at the same time. The catalog is in WAL mode, so the
agent reads a consistent snapshot while a script writes; writes take SQLite's write lock with
``BEGIN IMMEDIATE`` and wait for each other (``busy_timeout``). A file is first copied to a
temporary name on the same file system, flushed, and then renamed over its final path
(``os.replace`` is atomic), and only then recorded in the catalog: the agent, which only looks at
files listed in the catalog, never sees a half-copied file.

The agent opens the catalog read-only (``mode=ro``) and never writes into the store.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import sqlite3
import threading
import time
import uuid as uuid_module
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from etiket_sync_agent.errors import EtiketSyncError

__all__ = [
    "CATALOG_NAME",
    "SCHEMA_VERSION",
    "CatalogReader",
    "DatasetCompleteError",
    "DatasetNotFoundError",
    "DatasetRecord",
    "FileRecord",
    "NativeStore",
    "NativeStoreError",
    "default_native_directory",
    "validate_file_name",
]

CATALOG_NAME = "catalog.sqlite"
SCHEMA_VERSION = 1
_INCOMING = ".incoming"
_BUSY_TIMEOUT_S = 60.0
_SAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS datasets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    description TEXT,
    collected TEXT NOT NULL,
    created TEXT NOT NULL,
    modified REAL NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}',
    keywords TEXT NOT NULL DEFAULT '[]',
    complete INTEGER NOT NULL DEFAULT 0,
    completed TEXT,
    revision INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset_id INTEGER NOT NULL REFERENCES datasets(id),
    name TEXT NOT NULL,
    filename TEXT NOT NULL,
    stored TEXT NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    version INTEGER NOT NULL,
    added TEXT NOT NULL,
    UNIQUE (dataset_id, name)
);
"""


class NativeStoreError(EtiketSyncError):
    """A problem with the native store (unreadable catalog, bad argument, newer schema)."""


class DatasetNotFoundError(NativeStoreError, LookupError):
    """No dataset with that uuid in the store."""


class DatasetCompleteError(NativeStoreError):
    """The dataset is marked complete: its files and metadata can no longer change."""


def default_native_directory() -> Path:
    """The default store folder: ``<agent home>/native`` (``ETIKET_SYNC_HOME`` or platformdirs)."""
    from etiket_sync_agent.paths import agent_home

    return agent_home() / "native"


def validate_file_name(name: str) -> str:
    """Normalise a logical file name (relative POSIX path); raise ValueError when invalid."""
    if not isinstance(name, str):
        raise TypeError(f"a file name must be a string, not {type(name).__name__}")
    text = name.replace("\\", "/")
    path = PurePosixPath(text)
    if (
        not text.strip()
        or path.is_absolute()
        or ".." in path.parts
        or "\x00" in text
        or text.endswith("/")
        or any(not part.strip() for part in text.split("/"))
    ):
        raise ValueError(
            f"invalid file name {name!r}: must be a non-empty relative path without '..'"
        )
    return path.as_posix()


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.astimezone()


@dataclass(frozen=True)
class FileRecord:
    """One file of a native dataset, as the catalog records it.

    ``name`` is the logical name (unique in the dataset), ``stored`` the path of the bytes relative
    to the store root, ``version`` counts how often the name was (re)written.
    """

    id: int
    name: str
    filename: str
    stored: str
    size: int
    md5: str
    version: int
    added: str


@dataclass(frozen=True)
class DatasetRecord:
    """One native dataset, as the catalog records it."""

    id: int
    uuid: str
    name: str
    scope: str
    description: str | None
    collected: dt.datetime
    created: str
    modified: float
    attributes: dict[str, Any]
    keywords: list[str]
    complete: bool
    completed: str | None
    revision: int
    files: tuple[FileRecord, ...] = field(default=())

    @property
    def fingerprint(self) -> str:
        """Changes whenever the dataset's metadata, files or completeness change."""
        return f"r{self.revision};c{int(self.complete)}"


_DATASET_COLUMNS = (
    "id, uuid, name, scope, description, collected, created, modified, attributes, keywords, "
    "complete, completed, revision"
)


def _dataset_from_row(row: Sequence[Any], files: tuple[FileRecord, ...] = ()) -> DatasetRecord:
    try:
        collected = dt.datetime.fromisoformat(str(row[5]))
        attributes = json.loads(row[8])
        keywords = json.loads(row[9])
    except (ValueError, TypeError) as exc:
        raise NativeStoreError(
            f"catalog row of dataset {row[1]} is corrupt (collected/attributes/keywords): {exc}"
        ) from None
    if not isinstance(attributes, dict) or not isinstance(keywords, list):
        raise NativeStoreError(
            f"catalog row of dataset {row[1]} is corrupt: attributes must be an object and "
            "keywords a list"
        )
    return DatasetRecord(
        id=int(row[0]),
        uuid=str(row[1]),
        name=str(row[2]),
        scope=str(row[3]),
        description=None if row[4] is None else str(row[4]),
        collected=_aware(collected),
        created=str(row[6]),
        modified=float(row[7]),
        attributes=attributes,
        keywords=[str(k) for k in keywords],
        complete=bool(row[10]),
        completed=None if row[11] is None else str(row[11]),
        revision=int(row[12]),
        files=files,
    )


def _file_from_row(row: Sequence[Any]) -> FileRecord:
    return FileRecord(
        id=int(row[0]),
        name=str(row[1]),
        filename=str(row[2]),
        stored=str(row[3]),
        size=int(row[4]),
        md5=str(row[5]),
        version=int(row[6]),
        added=str(row[7]),
    )


def _check_schema(conn: sqlite3.Connection, catalog: Path) -> None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = int(row[0]) if row is not None else 0
    if version > SCHEMA_VERSION:
        raise NativeStoreError(
            f"{catalog} has catalog schema version {version}; this etiket-sync-agent-native "
            f"understands up to {SCHEMA_VERSION}: upgrade the package"
        )


class _Reads:
    """Queries shared by the writer-side store and the read-only reader."""

    catalog: Path

    def _connect(self) -> sqlite3.Connection:
        raise NotImplementedError

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        try:
            yield conn
        finally:
            conn.close()

    def _files_of(self, conn: sqlite3.Connection, dataset_id: int) -> tuple[FileRecord, ...]:
        rows = conn.execute(
            "SELECT id, name, filename, stored, size, md5, version, added FROM files "
            "WHERE dataset_id = ? ORDER BY id",
            (dataset_id,),
        ).fetchall()
        return tuple(_file_from_row(r) for r in rows)

    def get(self, dataset_uuid: str, *, with_files: bool = True) -> DatasetRecord | None:
        """The dataset with this uuid (and its files), or ``None``."""
        with self._connection() as conn:
            conn.execute("BEGIN")  # one snapshot for the row and its files
            try:
                row = conn.execute(
                    f"SELECT {_DATASET_COLUMNS} FROM datasets WHERE uuid = ?", (dataset_uuid,)
                ).fetchone()
                if row is None:
                    return None
                files = self._files_of(conn, int(row[0])) if with_files else ()
                return _dataset_from_row(row, files)
            finally:
                conn.execute("COMMIT")

    def list_after(
        self, after_id: int | None = None, limit: int | None = None
    ) -> list[DatasetRecord]:
        """Datasets with ``id > after_id``, oldest first (without their files)."""
        query = f"SELECT {_DATASET_COLUMNS} FROM datasets WHERE id > ? ORDER BY id"
        params: tuple[Any, ...] = (after_id if after_id is not None else -1,)
        if limit is not None:
            query += " LIMIT ?"
            params = (*params, int(limit))
        with self._connection() as conn:
            return [_dataset_from_row(r) for r in conn.execute(query, params).fetchall()]

    def max_id(self) -> int:
        """The largest dataset row id (0 for an empty catalog)."""
        with self._connection() as conn:
            row = conn.execute("SELECT MAX(id) FROM datasets").fetchone()
        return int(row[0] or 0)

    def fingerprints(self) -> dict[str, str]:
        """uuid → fingerprint of every dataset."""
        with self._connection() as conn:
            rows = conn.execute("SELECT uuid, revision, complete FROM datasets").fetchall()
        return {str(u): f"r{int(r)};c{int(c)}" for u, r, c in rows}


class CatalogReader(_Reads):
    """Read-only access to a store's catalog (what the agent uses).

    The catalog is opened with ``mode=ro``: the reader can never change it. A store folder without
    a catalog yet reads as empty.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.catalog = self.root / CATALOG_NAME
        self._checked = False

    def exists(self) -> bool:
        """Whether the store has a catalog yet."""
        return self.catalog.is_file()

    def _connect(self) -> sqlite3.Connection:
        uri = f"{self.catalog.resolve().as_uri()}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise NativeStoreError(f"cannot open the native catalog {self.catalog}: {exc}") from exc
        try:
            if not self._checked:
                _check_schema(conn, self.catalog)
                self._checked = True
        except sqlite3.Error as exc:
            conn.close()
            raise NativeStoreError(
                f"{self.catalog} is not a native-dataset catalog: {exc}"
            ) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def get(self, dataset_uuid: str, *, with_files: bool = True) -> DatasetRecord | None:
        if not self.exists():
            return None
        return super().get(dataset_uuid, with_files=with_files)

    def list_after(
        self, after_id: int | None = None, limit: int | None = None
    ) -> list[DatasetRecord]:
        if not self.exists():
            return []
        return super().list_after(after_id, limit)

    def max_id(self) -> int:
        if not self.exists():
            return 0
        return super().max_id()

    def fingerprints(self) -> dict[str, str]:
        if not self.exists():
            return {}
        return super().fingerprints()

    def path_of(self, record: FileRecord) -> Path:
        """Where the bytes of a catalog file are."""
        return self.root / record.stored


class NativeStore(_Reads):
    """Read-write access to a store folder (what lab scripts use through ``Dataset``).

    Creating a ``NativeStore`` creates the folder and the catalog when missing. Each thread uses
    its own catalog connection (kept open between calls; :meth:`close` closes it), so one store
    object may be shared by threads, and several processes may write to one store at the same
    time.
    """

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_native_directory()
        self.catalog = self.root / CATALOG_NAME
        self._local = threading.local()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / _INCOMING).mkdir(exist_ok=True)
        (self.root / "datasets").mkdir(exist_ok=True)
        self._initialise()

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(str(self.catalog), timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise NativeStoreError(f"cannot open the native catalog {self.catalog}: {exc}") from exc
        conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        # WAL + NORMAL: a committed dataset survives a crash of the script; only a power cut can
        # lose the last transactions (never corrupt the catalog).
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        # One connection per thread (and process), kept open: opening and closing a WAL database
        # for every call costs a checkpoint each time.
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = self._connect()
            self._local.conn, self._local.pid = conn, os.getpid()
        yield conn

    def close(self) -> None:
        """Close this thread's catalog connection (reopened on the next call)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local.conn = None

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``: takes the write lock up front)."""
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _initialise(self) -> None:
        with self._connection() as conn:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise NativeStoreError(
                    f"{self.catalog}: SQLite refused WAL mode ({mode!r}); the store must be on a "
                    "local disk"
                )
        with self._connection() as conn:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if {"meta", "datasets", "files"} <= tables:
                _check_schema(conn, self.catalog)
                return
        with self._write() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            _check_schema(conn, self.catalog)

    # -- datasets --------------------------------------------------------------------------------
    def create_dataset(
        self,
        *,
        name: str,
        scope: str,
        attributes: Mapping[str, Any] | None = None,
        keywords: Sequence[str] | None = None,
        description: str | None = None,
        collected: dt.datetime | None = None,
        dataset_uuid: str | None = None,
    ) -> DatasetRecord:
        """Insert a new, incomplete dataset and return it."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a native dataset needs a non-empty name")
        if not isinstance(scope, str) or not scope.strip():
            raise ValueError("a native dataset needs a scope (a scope name or uuid)")
        if description is not None and not isinstance(description, str):
            raise TypeError("description must be a string")
        identifier = (
            str(uuid_module.UUID(dataset_uuid)) if dataset_uuid else str(uuid_module.uuid4())
        )
        when = _aware(collected) if collected is not None else dt.datetime.now(dt.timezone.utc)
        if not isinstance(when, dt.datetime):
            raise TypeError("collected must be a datetime")
        attrs = _check_attributes(attributes or {})
        words = _check_keywords(keywords or [])
        (self.root / "datasets" / identifier).mkdir(parents=True, exist_ok=True)
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO datasets (uuid, name, scope, description, collected, created, "
                    "modified, attributes, keywords) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        identifier,
                        name.strip(),
                        scope.strip(),
                        description,
                        when.isoformat(),
                        _now_iso(),
                        time.time(),
                        json.dumps(attrs, sort_keys=True),
                        json.dumps(words),
                    ),
                )
        except sqlite3.IntegrityError:
            raise NativeStoreError(f"a dataset with uuid {identifier} already exists") from None
        record = self.get(identifier)
        assert record is not None
        return record

    def require(self, dataset_uuid: str) -> DatasetRecord:
        """The dataset with this uuid; raise DatasetNotFoundError naming the store when absent."""
        record = self.get(dataset_uuid)
        if record is None:
            raise DatasetNotFoundError(f"no native dataset {dataset_uuid} in {self.root}")
        return record

    def _open_row(self, conn: sqlite3.Connection, dataset_uuid: str) -> tuple[int, bool]:
        row = conn.execute(
            "SELECT id, complete FROM datasets WHERE uuid = ?", (dataset_uuid,)
        ).fetchone()
        if row is None:
            raise DatasetNotFoundError(f"no native dataset {dataset_uuid} in {self.root}")
        return int(row[0]), bool(row[1])

    def _bump(self, conn: sqlite3.Connection, dataset_id: int) -> None:
        conn.execute(
            "UPDATE datasets SET revision = revision + 1, modified = ? WHERE id = ?",
            (time.time(), dataset_id),
        )

    def update_dataset(
        self,
        dataset_uuid: str,
        *,
        name: str | None = None,
        description: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        keywords: Sequence[str] | None = None,
    ) -> DatasetRecord:
        """Change metadata of an incomplete dataset (attributes are merged, keywords added)."""
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ValueError("a native dataset needs a non-empty name")
        new_attrs = _check_attributes(attributes or {})
        new_words = _check_keywords(keywords or [])
        with self._write() as conn:
            dataset_id, complete = self._open_row(conn, dataset_uuid)
            if complete:
                raise DatasetCompleteError(
                    f"native dataset {dataset_uuid} is complete; its metadata can no longer change"
                )
            row = conn.execute(
                "SELECT attributes, keywords FROM datasets WHERE id = ?", (dataset_id,)
            ).fetchone()
            attrs = {**json.loads(row[0]), **new_attrs}
            words = list(dict.fromkeys([*json.loads(row[1]), *new_words]))
            conn.execute(
                "UPDATE datasets SET attributes = ?, keywords = ? WHERE id = ?",
                (json.dumps(attrs, sort_keys=True), json.dumps(words), dataset_id),
            )
            if name is not None:
                conn.execute(
                    "UPDATE datasets SET name = ? WHERE id = ?", (name.strip(), dataset_id)
                )
            if description is not None:
                conn.execute(
                    "UPDATE datasets SET description = ? WHERE id = ?", (description, dataset_id)
                )
            self._bump(conn, dataset_id)
        return self.require(dataset_uuid)

    def complete_dataset(self, dataset_uuid: str) -> DatasetRecord:
        """Mark a dataset complete (idempotent)."""
        with self._write() as conn:
            dataset_id, complete = self._open_row(conn, dataset_uuid)
            if not complete:
                conn.execute(
                    "UPDATE datasets SET complete = 1, completed = ? WHERE id = ?",
                    (_now_iso(), dataset_id),
                )
                self._bump(conn, dataset_id)
        return self.require(dataset_uuid)

    # -- files -----------------------------------------------------------------------------------
    def add_file(
        self,
        dataset_uuid: str,
        source: Path | str | bytes | bytearray | memoryview,
        name: str | None = None,
    ) -> FileRecord:
        """Copy a file (path) or bytes into the dataset under ``name``.

        A name already in the dataset gets the new content as its next version. The bytes are
        copied to a temporary file, flushed and renamed into place before the catalog lists them.
        """
        if isinstance(source, (bytes, bytearray, memoryview)):
            if name is None:
                raise ValueError("add_file(bytes) needs a name=")
            data: bytes | None = bytes(source)
            source_path: Path | None = None
        else:
            source_path = Path(source)
            data = None
            if source_path.is_dir():
                raise IsADirectoryError(f"{source_path} is a folder, not a file")
            if not source_path.is_file():
                raise FileNotFoundError(f"{source_path} does not exist")
            if name is None:
                name = source_path.name
        logical = validate_file_name(name)
        current = self.require(dataset_uuid)
        if current.complete:
            raise DatasetCompleteError(
                f"native dataset {dataset_uuid} is complete; no file can be added ({logical})"
            )
        temp, size, md5 = self._copy_to_incoming(source_path, data)
        try:
            with self._write() as conn:
                dataset_id, complete = self._open_row(conn, dataset_uuid)
                if complete:
                    raise DatasetCompleteError(
                        f"native dataset {dataset_uuid} is complete; no file can be added "
                        f"({logical})"
                    )
                row = conn.execute(
                    "SELECT id, stored, version FROM files WHERE dataset_id = ? AND name = ?",
                    (dataset_id, logical),
                ).fetchone()
                if row is None:
                    count = conn.execute(
                        "SELECT COUNT(*) FROM files WHERE dataset_id = ?", (dataset_id,)
                    ).fetchone()[0]
                    stored = f"datasets/{dataset_uuid}/{int(count) + 1:04d}-{_safe(logical)}"
                    version = 1
                else:
                    stored, version = str(row[1]), int(row[2]) + 1
                target = self.root / stored
                target.parent.mkdir(parents=True, exist_ok=True)
                _replace(temp, target)
                filename = PurePosixPath(logical).name
                if row is None:
                    conn.execute(
                        "INSERT INTO files (dataset_id, name, filename, stored, size, md5, "
                        "version, added) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (dataset_id, logical, filename, stored, size, md5, version, _now_iso()),
                    )
                else:
                    conn.execute(
                        "UPDATE files SET size = ?, md5 = ?, version = ?, added = ? WHERE id = ?",
                        (size, md5, version, _now_iso(), int(row[0])),
                    )
                self._bump(conn, dataset_id)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        record = self.require(dataset_uuid)
        return next(f for f in record.files if f.name == logical)

    def _copy_to_incoming(self, source: Path | None, data: bytes | None) -> tuple[Path, int, str]:
        digest = hashlib.md5(usedforsecurity=False)
        temp = self.root / _INCOMING / f"{uuid_module.uuid4().hex}.part"
        size = 0
        try:
            with open(temp, "xb") as sink:
                if data is not None:
                    sink.write(data)
                    digest.update(data)
                    size = len(data)
                else:
                    assert source is not None
                    with open(source, "rb") as reader:
                        while chunk := reader.read(1 << 20):
                            sink.write(chunk)
                            digest.update(chunk)
                            size += len(chunk)
                sink.flush()
                os.fsync(sink.fileno())
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise
        return temp, size, digest.hexdigest()

    def path_of(self, record: FileRecord) -> Path:
        """Where the bytes of a catalog file are."""
        return self.root / record.stored


def _replace(temp: Path, target: Path, attempts: int = 50) -> None:
    """``os.replace`` that waits while another process holds ``target`` open (Windows)."""
    for attempt in range(attempts):
        try:
            os.replace(temp, target)
            return
        except PermissionError:
            if os.name != "nt" or attempt == attempts - 1:
                raise
            time.sleep(0.2)


def _safe(name: str) -> str:
    flat = _SAFE_CHARS.sub("_", name.replace("/", "__")).strip("._") or "file"
    return flat[-120:]


def _check_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(attributes, Mapping):
        raise TypeError("attributes must be a mapping of str to str/int/float/bool")
    checked: dict[str, Any] = {}
    for key, value in attributes.items():
        if not isinstance(key, str) or not key.strip():
            raise TypeError(f"attribute names must be non-empty strings, got {key!r}")
        if not isinstance(value, (str, int, float, bool)):
            raise TypeError(
                f"attribute {key!r}: values must be str, int, float or bool, "
                f"not {type(value).__name__}"
            )
        checked[key] = value
    return checked


def _check_keywords(keywords: Sequence[str]) -> list[str]:
    if isinstance(keywords, str):
        raise TypeError("keywords must be a list of strings, not one string")
    out: list[str] = []
    for keyword in keywords:
        if not isinstance(keyword, str):
            raise TypeError(f"keywords must be strings, got {keyword!r}")
        if keyword.strip() and keyword.strip() not in out:
            out.append(keyword.strip())
    return out
