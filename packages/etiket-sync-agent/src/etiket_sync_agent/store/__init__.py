"""The tracking store: sources, per-dataset sync state, file versions and upload resume data.

SQLite (WAL) under the agent home by default; PostgreSQL (``postgresql+psycopg://``) to share one
store between several workers. Migrations run automatically when the store is opened.
"""

from etiket_sync_agent.store.models import ItemState
from etiket_sync_agent.store.repository import (
    AgentRecord,
    DuplicateSourceError,
    FileRecord,
    InvalidTransition,
    ItemRecord,
    ItemSpec,
    LogRecordRow,
    SourceRecord,
    StoreVersionError,
    TrackingStore,
    UpsertResult,
    open_store,
)

__all__ = [
    "AgentRecord",
    "DuplicateSourceError",
    "FileRecord",
    "InvalidTransition",
    "ItemRecord",
    "ItemSpec",
    "ItemState",
    "LogRecordRow",
    "SourceRecord",
    "StoreVersionError",
    "TrackingStore",
    "UpsertResult",
    "open_store",
]
