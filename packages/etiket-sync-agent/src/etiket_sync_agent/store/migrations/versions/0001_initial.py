"""The first tracking-store schema: sources, items, item files, item logs, agent status.

Revision ID: 0001_initial
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_status",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("iteration", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("heartbeat", sa.DateTime),
        sa.Column("state", sa.String(32), nullable=False, server_default="stopped"),
        sa.Column("pid", sa.Integer),
        sa.Column("host", sa.String(255)),
        sa.Column("agent_version", sa.String(64)),
    )
    op.create_table(
        "sync_sources",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("backend", sa.String(255), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("scope", sa.String(255)),
        sa.Column("scope_mapping", sa.JSON, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("cursor", sa.JSON),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("updated", sa.DateTime, nullable=False),
        sa.Column("last_sync_at", sa.DateTime),
    )
    op.create_table(
        "sync_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "source_id",
            sa.Integer,
            sa.ForeignKey("sync_sources.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("natural_key", sa.String(1024), nullable=False),
        sa.Column("dataset_uuid", sa.String(36), nullable=False),
        sa.Column("cursor", sa.BigInteger),
        sa.Column("path", sa.Text),
        sa.Column("scope_identifier", sa.String(255)),
        sa.Column("priority", sa.Float, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("last_traceback", sa.Text),
        sa.Column("fingerprint", sa.String(255)),
        sa.Column("synced_fingerprint", sa.String(255)),
        sa.Column("extra", sa.JSON, nullable=False),
        sa.Column("backend_state", sa.JSON, nullable=False),
        sa.Column("lease_owner", sa.String(255)),
        sa.Column("lease_until", sa.DateTime),
        sa.Column("live_since", sa.DateTime),
        sa.Column("last_synced_at", sa.DateTime),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("updated", sa.DateTime, nullable=False),
        sa.UniqueConstraint("source_id", "natural_key", name="uq_item_source_key"),
    )
    op.create_index("ix_items_claim", "sync_items", ["state", "next_attempt_at", "priority"])
    op.create_index("ix_items_source_state", "sync_items", ["source_id", "state"])
    op.create_table(
        "item_files",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "item_id",
            sa.Integer,
            sa.ForeignKey("sync_items.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("filename", sa.String(1024), nullable=False),
        sa.Column("file_uuid", sa.String(36), nullable=False),
        sa.Column("version_id", sa.BigInteger, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("md5", sa.String(32)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("upload_id", sa.String(255)),
        sa.Column("part_size", sa.BigInteger),
        sa.Column("finished_parts", sa.JSON, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("updated", sa.DateTime, nullable=False),
        sa.UniqueConstraint("item_id", "name", "version_id", name="uq_file_version"),
    )
    op.create_index("ix_files_item_name", "item_files", ["item_id", "name"])
    op.create_table(
        "item_logs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "item_id",
            sa.Integer,
            sa.ForeignKey("sync_items.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("traceback", sa.Text),
    )
    op.create_index("ix_logs_item", "item_logs", ["item_id"])


def downgrade() -> None:
    for table in ("item_logs", "item_files", "sync_items", "sync_sources", "agent_status"):
        op.drop_table(table)
