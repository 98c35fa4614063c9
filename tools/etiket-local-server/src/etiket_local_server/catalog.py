"""The SQLite catalog: users, API tokens, scopes, datasets, file versions, uploads and parts.

One catalog per data directory (``<data_dir>/catalog.sqlite``). SQLite runs in WAL mode with a busy
timeout, so the server process and a CLI process (``token create``, ``scope create``) can write at
the same time. Inside the server every catalog call runs on the event-loop thread, so the server is
a single writer; only file bytes are hashed and written in worker threads.

Times are stored as naive UTC and turned into aware ISO-8601 strings on the wire.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)

__all__ = [
    "DEFAULT_USER",
    "AccessToken",
    "ApiToken",
    "Base",
    "Catalog",
    "CreatedToken",
    "Dataset",
    "DatasetAttribute",
    "FileVersion",
    "Scope",
    "ScopeMember",
    "Upload",
    "UploadPart",
    "User",
    "UserPassword",
    "hash_token",
    "restrict_permissions",
    "utcnow",
]

DEFAULT_USER = "local"
"""The user that exists in every data directory (``sub`` = ``"local"``)."""

_CATALOG_FILE = "catalog.sqlite"


def utcnow() -> datetime:
    """The current time as naive UTC (the catalog's storage convention)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def hash_token(token: str) -> str:
    """SHA-256 hex digest of an API token; only this digest is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Base(DeclarativeBase):
    """Declarative base of the catalog tables."""


class User(Base):
    """A person or service that owns API tokens and belongs to scopes."""

    __tablename__ = "users"

    sub: Mapped[str] = mapped_column(String(200), primary_key=True)
    firstname: Mapped[str] = mapped_column(String(200), default="")
    lastname: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(300), nullable=True)
    role: Mapped[str] = mapped_column(String(20), default="user")
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    modified: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ApiToken(Base):
    """A long-lived bearer token; the secret itself is never stored, only its SHA-256."""

    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("owner", "name", name="uq_api_token_owner_name"),)

    uid: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(ForeignKey("users.sub"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_validated: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class UserPassword(Base):
    """A user's password hash (argon2id, PHC string); users without a row cannot log in."""

    __tablename__ = "user_passwords"

    sub: Mapped[str] = mapped_column(ForeignKey("users.sub"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(Text)
    modified: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AccessToken(Base):
    """An OAuth2 access or refresh token issued by ``POST /api/v3/token`` (only its SHA-256).

    ``kind`` is ``access`` or ``refresh``; refresh tokens are single-use (rotation): spending one
    sets ``used``. Both expire at ``expires``.
    """

    __tablename__ = "oauth_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    sub: Mapped[str] = mapped_column(ForeignKey("users.sub"), index=True)
    expires: Mapped[datetime] = mapped_column(DateTime)
    used: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Scope(Base):
    """A permission boundary and namespace for datasets (and for ``alt_uid``)."""

    __tablename__ = "scopes"

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    is_restricted: Mapped[bool] = mapped_column(Boolean, default=True)
    is_archived: Mapped[bool] = mapped_column(Boolean, default=False)
    bucket_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    modified: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ScopeMember(Base):
    """Membership of a user in a scope (members may read and write the scope's datasets)."""

    __tablename__ = "scope_members"

    scope_uuid: Mapped[str] = mapped_column(ForeignKey("scopes.uuid"), primary_key=True)
    user_sub: Mapped[str] = mapped_column(ForeignKey("users.sub"), primary_key=True, index=True)


class Dataset(Base):
    """A dataset record; ``attributes`` is mirrored in :class:`DatasetAttribute` for searching."""

    __tablename__ = "datasets"
    __table_args__ = (
        UniqueConstraint("scope_uuid", "alt_uid", name="uq_dataset_scope_alt_uid"),
        Index("ix_dataset_scope_collected", "scope_uuid", "collected"),
    )

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    scope_uuid: Mapped[str] = mapped_column(ForeignKey("scopes.uuid"))
    alt_uid: Mapped[str | None] = mapped_column(String(500), nullable=True, index=True)
    collected: Mapped[datetime] = mapped_column(DateTime)
    name: Mapped[str] = mapped_column(Text)
    creator: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    ranking: Mapped[int] = mapped_column(Integer, default=0)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    modified: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    scope: Mapped[Scope] = relationship(lazy="joined")
    files: Mapped[list[FileVersion]] = relationship(
        back_populates="dataset",
        order_by="(FileVersion.name, FileVersion.uuid, FileVersion.version_id)",
        lazy="select",
    )
    attribute_rows: Mapped[list[DatasetAttribute]] = relationship(
        cascade="all, delete-orphan", lazy="select"
    )


class DatasetAttribute(Base):
    """One ``key = value`` attribute of a dataset (search index of ``Dataset.attributes``)."""

    __tablename__ = "dataset_attributes"
    __table_args__ = (Index("ix_dataset_attribute_key_value", "key", "value"),)

    dataset_uuid: Mapped[str] = mapped_column(ForeignKey("datasets.uuid"), primary_key=True)
    key: Mapped[str] = mapped_column(String(500), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class FileVersion(Base):
    """One version of a logical file (``uuid`` + ``version_id`` is unique)."""

    __tablename__ = "files"
    __table_args__ = (UniqueConstraint("uuid", "version_id", name="uq_file_uuid_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), index=True)
    version_id: Mapped[int] = mapped_column(BigInteger)
    ds_uuid: Mapped[str] = mapped_column(ForeignKey("datasets.uuid"), index=True)
    name: Mapped[str] = mapped_column(Text)
    filename: Mapped[str] = mapped_column(Text)
    creator: Mapped[str] = mapped_column(String(200))
    collected: Mapped[datetime] = mapped_column(DateTime)
    size: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(20))
    file_generator: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ranking: Mapped[int] = mapped_column(Integer, default=0)
    immutable: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(20), default="announced")
    md5_checksum: Mapped[str | None] = mapped_column(String(32), nullable=True)
    etag: Mapped[str | None] = mapped_column(String(64), nullable=True)
    checksum_kind: Mapped[str | None] = mapped_column(String(20), nullable=True)
    """How ``md5_checksum`` was verified: ``md5`` (the bytes) or ``md5_netcdf4`` (the content)."""
    object_md5: Mapped[str | None] = mapped_column(String(32), nullable=True)
    """Hex MD5 of the stored bytes (the ``ETag`` of a download, PROTOCOL §0.8)."""
    stored_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    secured_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    modified: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    dataset: Mapped[Dataset] = relationship(back_populates="files", lazy="raise_on_sql")


class Upload(Base):
    """An upload session: ``single`` (one PUT) or ``multipart`` (numbered parts)."""

    __tablename__ = "uploads"
    __table_args__ = (Index("ix_upload_file_version", "file_uuid", "version_id"),)

    upload_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    file_uuid: Mapped[str] = mapped_column(String(36))
    version_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(10))
    part_size: Mapped[int] = mapped_column(BigInteger)
    part_count: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12), default="active")
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class UploadPart(Base):
    """A part whose bytes arrived completely (a re-PUT replaces it)."""

    __tablename__ = "upload_parts"

    upload_id: Mapped[str] = mapped_column(ForeignKey("uploads.upload_id"), primary_key=True)
    part_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    etag: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)
    uploaded: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


_ADDED_COLUMNS = {"files": {"checksum_kind": "VARCHAR(20)", "object_md5": "VARCHAR(32)"}}


def _add_missing_columns(engine: Engine) -> None:
    """Columns added after a catalog was first created (``create_all`` only adds tables)."""
    with engine.begin() as connection:
        for table, columns in _ADDED_COLUMNS.items():
            present = {row[1] for row in connection.exec_driver_sql(f"PRAGMA table_info({table})")}
            for column, ddl in columns.items():
                if column not in present:
                    connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")


_POSIX_MODES = os.name != "nt"


def restrict_permissions(path: Path) -> None:
    """Make ``path`` readable by its owner only (0600) where the OS has POSIX modes.

    On Windows ``os.chmod`` can only toggle the read-only flag, so nothing is done there; the
    data directory's ACL (the user's profile) protects the file.
    """
    if not _POSIX_MODES:
        return
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@dataclass(frozen=True)
class CreatedToken:
    """A new API token: ``secret`` is the bearer value (shown once, never stored)."""

    uid: str
    name: str
    owner: str
    secret: str


class Catalog:
    """The catalog of one data directory, with the administrative operations the CLI needs."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / _CATALOG_FILE
        if not self.path.exists():
            # created private before SQLite writes into it; SQLite gives -wal/-shm the same mode
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self.engine: Engine = create_engine(
            f"sqlite:///{self.path}",
            connect_args={"check_same_thread": False, "timeout": 15},
        )
        event.listen(self.engine, "connect", _configure_sqlite)
        Base.metadata.create_all(self.engine)
        _add_missing_columns(self.engine)
        for suffix in ("", "-wal", "-shm"):
            restrict_permissions(self.path.with_name(self.path.name + suffix))
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Facts that never change once true (memberships are never revoked, a dataset never
        # changes scope), remembered to save a query per request.
        self.known_members: set[tuple[str, str]] = set()
        self.dataset_scopes: dict[str, str] = {}
        self.ensure_user(DEFAULT_USER, firstname="Local", lastname="User", role="admin")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self._sessions() as session:
            session.info["catalog"] = self
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dataset_scope(self, session: Session, dataset_uuid: str) -> str | None:
        """The scope uuid of a dataset (None when the dataset does not exist)."""
        scope_uuid = self.dataset_scopes.get(dataset_uuid)
        if scope_uuid is None:
            scope_uuid = session.scalar(
                select(Dataset.scope_uuid).where(Dataset.uuid == dataset_uuid)
            )
            if scope_uuid is not None:
                if len(self.dataset_scopes) > 200_000:
                    self.dataset_scopes.clear()
                self.dataset_scopes[dataset_uuid] = scope_uuid
        return scope_uuid

    def is_member(self, session: Session, scope_uuid: str, user_sub: str) -> bool:
        """Whether ``user_sub`` belongs to the scope."""
        key = (scope_uuid, user_sub)
        if key in self.known_members:
            return True
        if session.get(ScopeMember, key) is None:
            return False
        self.known_members.add(key)
        return True

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    # ---- administration -------------------------------------------------------------------

    def ensure_user(
        self,
        sub: str,
        *,
        firstname: str = "",
        lastname: str = "",
        email: str | None = None,
        role: str = "user",
    ) -> None:
        """Create user ``sub`` unless it exists."""
        with self.session() as session:
            if session.get(User, sub) is None:
                session.add(
                    User(
                        sub=sub,
                        firstname=firstname or sub,
                        lastname=lastname,
                        email=email,
                        role=role,
                    )
                )

    def create_token(self, name: str, *, owner: str = DEFAULT_USER) -> CreatedToken:
        """Create an API token for ``owner`` (created if missing); names are unique per owner."""
        self.ensure_user(owner)
        secret = "elt_" + secrets.token_urlsafe(32)
        uid = str(uuid.uuid4())
        with self.session() as session:
            clash = session.scalar(
                select(ApiToken.uid).where(ApiToken.owner == owner, ApiToken.name == name)
            )
            if clash is not None:
                raise ValueError(f"user {owner!r} already has an API token named {name!r}")
            session.add(ApiToken(uid=uid, name=name, owner=owner, token_hash=hash_token(secret)))
        return CreatedToken(uid=uid, name=name, owner=owner, secret=secret)

    def create_scope(
        self,
        name: str,
        *,
        owner: str = DEFAULT_USER,
        description: str = "",
        scope_uuid: str | None = None,
    ) -> str:
        """Create a scope with ``owner`` as member and return its uuid."""
        self.ensure_user(owner)
        new_uuid = str(uuid.UUID(scope_uuid)) if scope_uuid else str(uuid.uuid4())
        with self.session() as session:
            if session.scalar(select(Scope.uuid).where(Scope.name == name)) is not None:
                raise ValueError(f"a scope named {name!r} already exists")
            if session.get(Scope, new_uuid) is not None:
                raise ValueError(f"a scope with uuid {new_uuid} already exists")
            session.add(Scope(uuid=new_uuid, name=name, description=description))
            session.flush()
            session.add(ScopeMember(scope_uuid=new_uuid, user_sub=owner))
        return new_uuid

    def add_scope_member(self, scope_uuid: str, user_sub: str) -> None:
        """Give ``user_sub`` (created if missing) access to a scope."""
        self.ensure_user(user_sub)
        with self.session() as session:
            if session.get(Scope, scope_uuid) is None:
                raise ValueError(f"scope {scope_uuid} does not exist")
            if session.get(ScopeMember, (scope_uuid, user_sub)) is None:
                session.add(ScopeMember(scope_uuid=scope_uuid, user_sub=user_sub))

    def list_scopes(self) -> list[tuple[str, str]]:
        """``(uuid, name)`` of every scope, by name."""
        with self.session() as session:
            rows = session.execute(select(Scope.uuid, Scope.name).order_by(Scope.name)).all()
        return [(row[0], row[1]) for row in rows]
