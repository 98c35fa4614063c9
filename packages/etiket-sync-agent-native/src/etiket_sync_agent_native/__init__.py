"""Sync datasets created locally by scripts ("native" datasets) to eTiKeT.

Scripts create datasets with :class:`Dataset` (no server connection needed); they are kept in a
local store (a folder with a SQLite catalog). The ``native`` backend (:class:`NativeSync`) uploads
them, live while they are open and a final time once they are complete.
"""

from __future__ import annotations

from etiket_sync_agent_native.dataset import Dataset, close_stores
from etiket_sync_agent_native.store import (
    CatalogReader,
    DatasetCompleteError,
    DatasetNotFoundError,
    DatasetRecord,
    FileRecord,
    NativeStore,
    NativeStoreError,
    default_native_directory,
)
from etiket_sync_agent_native.sync import NativeConfig, NativeSync

__all__ = [
    "CatalogReader",
    "Dataset",
    "DatasetCompleteError",
    "DatasetNotFoundError",
    "DatasetRecord",
    "FileRecord",
    "NativeConfig",
    "NativeStore",
    "NativeStoreError",
    "NativeSync",
    "close_stores",
    "default_native_directory",
]
