"""eTiKeT sync agent: moves measurement data from acquisition tools to an eTiKeT server.

Importing this package loads no plugins; backends and converters are discovered on first use.
The backend contract lives in :mod:`etiket_sync_agent.connectors`, converters in
:mod:`etiket_sync_agent.converters`.
"""

from etiket_sync_agent._version import PLUGIN_API_VERSION, __version__
from etiket_sync_agent.connectors.base import (
    ScopePolicy,
    SyncSourceBase,
    SyncSourceDatabaseBase,
    SyncSourceFileBase,
)
from etiket_sync_agent.connectors.context import SyncContext
from etiket_sync_agent.connectors.dataset import DatasetInfo, FileInfo, FileType
from etiket_sync_agent.connectors.item import SyncItem
from etiket_sync_agent.converters.base import FileConverter
from etiket_sync_agent.errors import ConfigError, SourceError, SyncError
from etiket_sync_agent.plugins import CONNECTORS_GROUP, CONVERTERS_GROUP

__all__ = [
    "CONNECTORS_GROUP",
    "CONVERTERS_GROUP",
    "PLUGIN_API_VERSION",
    "ConfigError",
    "DatasetInfo",
    "FileConverter",
    "FileInfo",
    "FileType",
    "ScopePolicy",
    "SourceError",
    "SyncContext",
    "SyncError",
    "SyncItem",
    "SyncSourceBase",
    "SyncSourceDatabaseBase",
    "SyncSourceFileBase",
    "__version__",
]
