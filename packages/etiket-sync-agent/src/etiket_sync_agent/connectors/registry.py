"""Discovery of sync backends in the entry-point group ``etiket_sync_agent.connectors``."""

from __future__ import annotations

from functools import lru_cache

from etiket_sync_agent.connectors.base import SyncSourceBase, check_backend_class
from etiket_sync_agent.connectors.legacy import adapt_legacy
from etiket_sync_agent.plugins import CONNECTORS_GROUP, PluginInfo, PluginRegistry

__all__ = ["backend_registry", "list_backends", "load_backend"]


@lru_cache(maxsize=1)
def backend_registry() -> PluginRegistry[SyncSourceBase]:
    """The process-wide backend registry (created on first use, never at import)."""
    # Backends written for the existing agent use the same entry-point group; they are adapted.
    return PluginRegistry(
        CONNECTORS_GROUP,
        check_backend_class,
        "backend",
        "etiket-sync-agent-",
        adapt=adapt_legacy,
    )


def load_backend(name: str) -> type[SyncSourceBase]:
    """The backend class for ``name`` (``qcodes``, ``etiket_sync_agent_qcodes`` ...)."""
    return backend_registry().get(name)


def list_backends() -> list[PluginInfo[SyncSourceBase]]:
    """Every installed backend with its load status."""
    return backend_registry().infos()
