"""SQLAlchemy 2 models of the tracking store.

Datetimes are stored as naive UTC (portable across SQLite and PostgreSQL) and converted to aware UTC
by the repository.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["AgentStatus", "Base", "Item", "ItemFile", "ItemLog", "ItemState", "Source"]


class ItemState(str, enum.Enum):
    """Life cycle of a dataset in the tracking store.

    new → syncing → synced | live | failed | waiting; live → syncing (periodically);
    failed → syncing (after backoff); synced → new (changed at the source); waiting → new (released);
    new | failed | waiting → gone (file sources: no longer at the source); gone → new (back again).
    """

    NEW = "new"
    SYNCING = "syncing"
    LIVE = "live"
    SYNCED = "synced"
    FAILED = "failed"
    WAITING = "waiting"
    GONE = "gone"


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


class AgentStatus(Base):
    __tablename__ = "agent_status"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    iteration: Mapped[int] = mapped_column(BigInteger, default=0)
    heartbeat: Mapped[dt.datetime | None] = mapped_column(DateTime)
    state: Mapped[str] = mapped_column(String(32), default="stopped")
    pid: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))
    agent_version: Mapped[str | None] = mapped_column(String(64))


class Source(Base):
    __tablename__ = "sync_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    backend: Mapped[str] = mapped_column(String(255))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    scope: Mapped[str | None] = mapped_column(String(255))
    scope_mapping: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(32), default="active")
    last_error: Mapped[str | None] = mapped_column(Text)
    cursor: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created: Mapped[dt.datetime] = mapped_column(DateTime)
    updated: Mapped[dt.datetime] = mapped_column(DateTime)
    last_sync_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Item(Base):
    __tablename__ = "sync_items"
    __table_args__ = (
        UniqueConstraint("source_id", "natural_key", name="uq_item_source_key"),
        Index("ix_items_claim", "state", "next_attempt_at", "priority"),
        Index("ix_items_source_state", "source_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sync_sources.id", ondelete="CASCADE"))
    natural_key: Mapped[str] = mapped_column(String(1024))
    dataset_uuid: Mapped[str] = mapped_column(String(36))
    cursor: Mapped[int | None] = mapped_column(BigInteger)
    path: Mapped[str | None] = mapped_column(Text)
    scope_identifier: Mapped[str | None] = mapped_column(String(255))
    priority: Mapped[float] = mapped_column(Float, default=0.0)
    state: Mapped[str] = mapped_column(String(16), default=ItemState.NEW.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_traceback: Mapped[str | None] = mapped_column(Text)
    fingerprint: Mapped[str | None] = mapped_column(String(255))
    synced_fingerprint: Mapped[str | None] = mapped_column(String(255))
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    backend_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    live_since: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_synced_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created: Mapped[dt.datetime] = mapped_column(DateTime)
    updated: Mapped[dt.datetime] = mapped_column(DateTime)


class ItemFile(Base):
    __tablename__ = "item_files"
    __table_args__ = (
        UniqueConstraint("item_id", "name", "version_id", name="uq_file_version"),
        Index("ix_files_item_name", "item_id", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("sync_items.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(1024))
    filename: Mapped[str] = mapped_column(String(1024))
    file_uuid: Mapped[str] = mapped_column(String(36))
    version_id: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="planned")
    upload_id: Mapped[str | None] = mapped_column(String(255))
    part_size: Mapped[int | None] = mapped_column(BigInteger)
    finished_parts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created: Mapped[dt.datetime] = mapped_column(DateTime)
    updated: Mapped[dt.datetime] = mapped_column(DateTime)


class ItemLog(Base):
    __tablename__ = "item_logs"
    __table_args__ = (Index("ix_logs_item", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("sync_items.id", ondelete="CASCADE"))
    created: Mapped[dt.datetime] = mapped_column(DateTime)
    level: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
