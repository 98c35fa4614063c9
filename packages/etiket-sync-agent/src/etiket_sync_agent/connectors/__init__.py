"""The backend contract and backend discovery."""

from etiket_sync_agent.connectors.base import (
    ScopePolicy,
    SyncSourceBase,
    SyncSourceDatabaseBase,
    SyncSourceFileBase,
    check_backend_class,
)
from etiket_sync_agent.connectors.config import config_to_storage, mask_config, parse_config
from etiket_sync_agent.connectors.context import SyncContext, SyncPlan
from etiket_sync_agent.connectors.dataset import DatasetInfo, FileInfo, FileType, guess_file_type
from etiket_sync_agent.connectors.item import SyncItem
from etiket_sync_agent.connectors.registry import backend_registry, list_backends, load_backend

__all__ = [
    "DatasetInfo",
    "FileInfo",
    "FileType",
    "ScopePolicy",
    "SyncContext",
    "SyncItem",
    "SyncPlan",
    "SyncSourceBase",
    "SyncSourceDatabaseBase",
    "SyncSourceFileBase",
    "backend_registry",
    "check_backend_class",
    "config_to_storage",
    "guess_file_type",
    "list_backends",
    "load_backend",
    "mask_config",
    "parse_config",
]
