"""The exception hierarchy of the sync agent.

Backends raise :class:`SyncError` for an expected, explainable failure of one dataset (the message
is shown to the user without a traceback) and :class:`SourceError` when the whole source is unusable
(database missing, share unmounted): the engine then pauses that source with the message and retries
it later. Any other exception raised by a backend is recorded on the item with its traceback.
"""

from __future__ import annotations

__all__ = [
    "BackendNotFoundError",
    "BackendUnavailableError",
    "ConfigError",
    "EtiketSyncError",
    "NotImplementedYetError",
    "PluginContractError",
    "SourceError",
    "SyncError",
]


class EtiketSyncError(Exception):
    """Base class of every error raised by the sync agent."""


class ConfigError(EtiketSyncError, ValueError):
    """A source configuration is invalid.

    ``field`` names the offending configuration field (``None`` for problems of the whole config).
    """

    def __init__(self, field: str | None, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class SyncError(EtiketSyncError):
    """One dataset could not be synced; the message is shown to the user as is."""


class SourceError(EtiketSyncError):
    """A whole source is unusable right now (missing database, unmounted share, server down)."""


class PluginContractError(EtiketSyncError, TypeError):
    """A backend or converter class breaks the plugin contract (wrong or missing ClassVar)."""


class BackendNotFoundError(EtiketSyncError, LookupError):
    """A backend or converter name that no installed plugin provides."""


class BackendUnavailableError(EtiketSyncError, ImportError):
    """A backend is installed but cannot be loaded (missing optional dependency, broken plugin)."""


class NotImplementedYetError(EtiketSyncError, NotImplementedError):
    """A backend whose implementation has not landed yet (declared by the backend itself)."""
