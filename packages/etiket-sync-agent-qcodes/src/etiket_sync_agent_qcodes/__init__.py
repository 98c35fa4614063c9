"""Sync QCoDeS SQLite databases to eTiKeT.

Not implemented yet: the backend is registered so ``etiket-sync backends`` lists it (as "not
implemented yet"), and its configuration fields are final, but syncing lands with its own issue.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from etiket_sync_agent import (
    ScopePolicy,
    SyncContext,
    SyncItem,
    SyncSourceDatabaseBase,
)
from etiket_sync_agent.errors import NotImplementedYetError

__all__ = ["QCoDeSConfig", "QCoDeSSync"]

_TODO = "the qcodes backend is not implemented yet"


@dataclasses.dataclass
class QCoDeSConfig:
    """Configuration of a qcodes source (field names as existing configurations use them)."""

    database_path: Path
    set_up: str
    static_attributes: dict[str, str] = dataclasses.field(default_factory=dict)
    stale_after: float = 300.0


class QCoDeSSync(SyncSourceDatabaseBase):
    """Syncs QCoDeS SQLite databases (not implemented yet)."""

    name: ClassVar[str] = "qcodes"
    config_class: ClassVar[type[Any]] = QCoDeSConfig
    scope_policy: ClassVar[ScopePolicy] = ScopePolicy.REQUIRED
    live_sync: ClassVar[bool] = True
    implemented: ClassVar[bool] = False

    def get_new_datasets(self, last_item: SyncItem | None) -> Iterable[SyncItem]:
        raise NotImplementedYetError(_TODO)

    def sync_dataset(self, item: SyncItem, ctx: SyncContext) -> None:
        raise NotImplementedYetError(_TODO)


_ = Iterable
