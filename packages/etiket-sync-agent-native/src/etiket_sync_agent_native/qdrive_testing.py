"""A schema-faithful writer of qdrive's local cache, for tests (the real qdrive is not used).

Builds ``sql/etiket_db.sql`` with the tables, columns, unique constraints, FTS5 index + triggers and
Alembic revision of etiket_api.md §10.2 (head ``b7c9e2f41a03``), in WAL mode with a busy timeout
like qdrive, and file contents under ``data/<scope>/<dataset>/<file>/<version>/<filename>``.
Times are stored as naive UTC strings ``YYYY-MM-DD HH:MM:SS.ffffff``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import uuid as uuid_module
from pathlib import Path
from typing import Any

__all__ = ["ALEMBIC_HEAD", "QdriveCacheWriter"]

ALEMBIC_HEAD = "b7c9e2f41a03"

_SCHEMA = """
CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY);
CREATE TABLE schemas (id INTEGER PRIMARY KEY, uuid CHAR(32) NOT NULL UNIQUE, name VARCHAR NOT NULL,
  description VARCHAR, created VARCHAR NOT NULL, modified VARCHAR NOT NULL, schema JSON);
CREATE TABLE scopes (id INTEGER PRIMARY KEY, uuid CHAR(32) NOT NULL UNIQUE, created VARCHAR NOT NULL,
  modified VARCHAR NOT NULL, name VARCHAR NOT NULL, description VARCHAR, archived BOOLEAN NOT NULL,
  schema_id INTEGER REFERENCES schemas(id));
CREATE TABLE users (id INTEGER PRIMARY KEY, username VARCHAR NOT NULL UNIQUE, firstname VARCHAR,
  lastname VARCHAR, email VARCHAR, created VARCHAR, modified VARCHAR, active BOOLEAN,
  disable_on VARCHAR, user_type VARCHAR, api_token JSON);
CREATE TABLE scope_user_link (scope INTEGER REFERENCES scopes(id), user_id INTEGER REFERENCES users(id),
  PRIMARY KEY (scope, user_id));
CREATE TABLE datasets (id INTEGER PRIMARY KEY, uuid CHAR(32) NOT NULL, alt_uid VARCHAR,
  collected VARCHAR NOT NULL, created VARCHAR NOT NULL, modified VARCHAR NOT NULL, name VARCHAR NOT NULL,
  scope_id INTEGER NOT NULL REFERENCES scopes(id), creator VARCHAR NOT NULL, description VARCHAR,
  notes VARCHAR, keywords JSON NOT NULL, search_helper VARCHAR NOT NULL, ranking INTEGER NOT NULL,
  synchronized BOOLEAN NOT NULL, last_modified_by VARCHAR,
  UNIQUE (uuid), UNIQUE (alt_uid, scope_id));
CREATE TABLE dataset_attr (id INTEGER PRIMARY KEY, key VARCHAR NOT NULL, value VARCHAR NOT NULL,
  scope_id INTEGER NOT NULL REFERENCES scopes(id), UNIQUE (key, value, scope_id));
CREATE TABLE ds_attr_link (dataset_id INTEGER NOT NULL REFERENCES datasets(id),
  dataset_attr_id INTEGER NOT NULL REFERENCES dataset_attr(id), PRIMARY KEY (dataset_id, dataset_attr_id));
CREATE TABLE files (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, filename VARCHAR NOT NULL,
  file_generator VARCHAR, uuid CHAR(32) NOT NULL, version_id BIGINT NOT NULL, creator VARCHAR NOT NULL,
  type VARCHAR NOT NULL, scope_id INTEGER NOT NULL REFERENCES scopes(id),
  dataset_id INTEGER NOT NULL REFERENCES datasets(id), collected VARCHAR NOT NULL,
  created VARCHAR NOT NULL, modified VARCHAR NOT NULL, etag VARCHAR, size BIGINT NOT NULL,
  status VARCHAR NOT NULL, ranking INTEGER NOT NULL, local_path VARCHAR, S3_link VARCHAR,
  S3_validity FLOAT, last_accessed VARCHAR, synchronized BOOLEAN NOT NULL,
  UNIQUE (uuid, version_id));
CREATE INDEX ix_files_synchronized ON files (synchronized);
CREATE TABLE file_delete_queue (id INTEGER PRIMARY KEY, local_path VARCHAR NOT NULL,
  delete_after VARCHAR NOT NULL);
CREATE TABLE user_settings (id INTEGER PRIMARY KEY CHECK (id = 1), user_sub VARCHAR, server_url VARCHAR,
  open_id_config JSON, client_id VARCHAR, token JSON, api_token VARCHAR, current_scope VARCHAR,
  default_attributes JSON);
CREATE TABLE _old_sync_sources (id INTEGER PRIMARY KEY);
CREATE TABLE _old_sync_items (id INTEGER PRIMARY KEY);
CREATE TABLE _old_sync_scope_mappings (id INTEGER PRIMARY KEY);
"""

_FTS = """
CREATE VIRTUAL TABLE datasets_fts USING fts5(search_helper, content='datasets', content_rowid='id',
  tokenize='porter unicode61');
CREATE TRIGGER datasets_fts_ai AFTER INSERT ON datasets BEGIN
  INSERT INTO datasets_fts(rowid, search_helper) VALUES (new.id, new.search_helper); END;
CREATE TRIGGER datasets_fts_ad AFTER DELETE ON datasets BEGIN
  INSERT INTO datasets_fts(datasets_fts, rowid, search_helper)
  VALUES ('delete', old.id, old.search_helper); END;
CREATE TRIGGER datasets_fts_au AFTER UPDATE ON datasets BEGIN
  INSERT INTO datasets_fts(datasets_fts, rowid, search_helper)
  VALUES ('delete', old.id, old.search_helper);
  INSERT INTO datasets_fts(rowid, search_helper) VALUES (new.id, new.search_helper); END;
"""


def _t(value: dt.datetime | None = None) -> str:
    when = value or dt.datetime.now(dt.timezone.utc)
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")


def _helper(*parts: Any) -> str:
    return re.sub(r"[^0-9A-Za-z]+", " ", " ".join(str(p) for p in parts if p)).strip()


class QdriveCacheWriter:
    """Writes qdrive's cache the way qdrive does (one connection, WAL, short transactions)."""

    def __init__(self, root: Path, user: str = "qdrive-user") -> None:
        self.root = Path(root)
        self.user = user
        (self.root / "sql").mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(exist_ok=True)
        self.path = self.root / "sql" / "etiket_db.sql"
        new = not self.path.exists()
        self.conn = sqlite3.connect(self.path, timeout=10)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA busy_timeout=10000")
        if new:
            self.conn.executescript(_SCHEMA)
            try:
                self.conn.executescript(_FTS)
            except sqlite3.OperationalError:  # pragma: no cover - SQLite built without FTS5
                pass
            self.conn.execute("INSERT INTO alembic_version VALUES (?)", (ALEMBIC_HEAD,))
            self.conn.execute(
                "INSERT INTO users (username, firstname, lastname, created, modified, active, "
                "user_type) VALUES (?, 'Q', 'User', ?, ?, 1, 'standard_user')",
                (user, _t(), _t()),
            )
            self.conn.execute("INSERT INTO user_settings (id, user_sub) VALUES (1, ?)", (user,))
            self.conn.commit()

    def close(self) -> None:
        self.conn.close()

    def scope(self, name: str, scope_uuid: str | None = None) -> int:
        """The row id of scope ``name`` (created when missing)."""
        row = self.conn.execute("SELECT id FROM scopes WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return int(row[0])
        cur = self.conn.execute(
            "INSERT INTO scopes (uuid, created, modified, name, description, archived) "
            "VALUES (?, ?, ?, ?, '', 0)",
            (scope_uuid or str(uuid_module.uuid4()), _t(), _t(), name),
        )
        self.conn.commit()
        return int(cur.lastrowid or 0)

    def scope_uuid(self, scope_id: int) -> str:
        return str(
            self.conn.execute("SELECT uuid FROM scopes WHERE id = ?", (scope_id,)).fetchone()[0]
        )

    def dataset(
        self,
        name: str,
        scope: str | int,
        *,
        collected: dt.datetime | None = None,
        alt_uid: str | None = None,
        description: str | None = None,
        notes: str | None = None,
        keywords: list[str] | None = None,
        attributes: dict[str, str] | None = None,
        ranking: int = 0,
        synchronized: bool = False,
    ) -> str:
        """Create a dataset as qdrive does; returns its uuid."""
        scope_id = scope if isinstance(scope, int) else self.scope(scope)
        ds_uuid = str(uuid_module.uuid4())
        now = _t()
        attrs = attributes or {}
        cur = self.conn.execute(
            "INSERT INTO datasets (uuid, alt_uid, collected, created, modified, name, scope_id, "
            "creator, description, notes, keywords, search_helper, ranking, synchronized, "
            "last_modified_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                ds_uuid,
                alt_uid,
                _t(collected),
                now,
                now,
                name,
                scope_id,
                self.user,
                description,
                notes,
                json.dumps(keywords or []),
                _helper(
                    name,
                    description,
                    notes,
                    *(keywords or []),
                    *[f"{k} {v}" for k, v in attrs.items()],
                ),
                ranking,
                int(synchronized),
                self.user,
            ),
        )
        dataset_id = int(cur.lastrowid or 0)
        for key, value in attrs.items():
            self.conn.execute(
                "INSERT OR IGNORE INTO dataset_attr (key, value, scope_id) VALUES (?,?,?)",
                (key, value, scope_id),
            )
            attr_id = self.conn.execute(
                "SELECT id FROM dataset_attr WHERE key=? AND value=? AND scope_id=?",
                (key, value, scope_id),
            ).fetchone()[0]
            self.conn.execute("INSERT INTO ds_attr_link VALUES (?, ?)", (dataset_id, attr_id))
        self.conn.commit()
        return ds_uuid

    def update_dataset(self, ds_uuid: str, **values: Any) -> None:
        """A local edit: stamps ``modified`` and resets ``synchronized`` (as qdrive does)."""
        sets = {**values, "modified": _t(), "synchronized": 0, "last_modified_by": self.user}
        if "keywords" in sets:
            sets["keywords"] = json.dumps(sets["keywords"])
        cols = ", ".join(f"{k} = ?" for k in sets)
        self.conn.execute(f"UPDATE datasets SET {cols} WHERE uuid = ?", (*sets.values(), ds_uuid))
        self.conn.commit()

    def file(
        self,
        ds_uuid: str,
        name: str,
        content: bytes,
        *,
        filename: str | None = None,
        file_type: str = "TEXT",
        status: str = "complete",
        synchronized: bool = False,
        file_uuid: str | None = None,
        version_id: int | None = None,
        generator: str | None = "qdrive",
        ranking: int = 0,
    ) -> tuple[str, int]:
        """Write a file version (content into the data folder, row into ``files``)."""
        row = self.conn.execute(
            "SELECT id, scope_id FROM datasets WHERE uuid = ?", (ds_uuid,)
        ).fetchone()
        dataset_id, scope_id = int(row[0]), int(row[1])
        if file_uuid is None:
            known = self.conn.execute(
                "SELECT uuid FROM files WHERE dataset_id = ? AND name = ?", (dataset_id, name)
            ).fetchone()
            file_uuid = str(known[0]) if known else str(uuid_module.uuid4())
        if version_id is None:
            latest = self.conn.execute(
                "SELECT MAX(version_id) FROM files WHERE uuid = ?", (file_uuid,)
            ).fetchone()[0]
            now_ms = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)
            version_id = max(now_ms, int(latest or 0) + 1)
        filename = filename or name.rsplit("/", 1)[-1]
        target = (
            self.root / "data" / self.scope_uuid(scope_id) / ds_uuid / file_uuid
            / str(version_id) / filename
        )  # fmt: skip
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        now = _t()
        self.conn.execute(
            "INSERT INTO files (name, filename, file_generator, uuid, version_id, creator, type, "
            "scope_id, dataset_id, collected, created, modified, size, status, ranking, "
            "local_path, synchronized) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                name,
                filename,
                generator,
                file_uuid,
                version_id,
                self.user,
                file_type,
                scope_id,
                dataset_id,
                now,
                now,
                now,
                len(content),
                status,
                ranking,
                str(target),
                int(synchronized),
            ),
        )
        self.conn.commit()
        return file_uuid, version_id

    def set_file_status(self, file_uuid: str, version_id: int, status: str) -> None:
        self.conn.execute(
            "UPDATE files SET status = ?, modified = ? WHERE uuid = ? AND version_id = ?",
            (status, _t(), file_uuid, version_id),
        )
        self.conn.commit()
