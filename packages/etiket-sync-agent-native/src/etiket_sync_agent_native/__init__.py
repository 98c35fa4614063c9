"""Sync datasets created locally by scripts to eTiKeT.

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

__all__ = ["NativeConfig", "NativeSync"]

_TODO = "the native backend is not implemented yet"


@dataclasses.dataclass
class NativeConfig:
    """Configuration of a native source (field names as existing configurations use them)."""

    native_directory: Path | None = None


class NativeSync(SyncSourceDatabaseBase):
    """Syncs datasets created locally by scripts (not implemented yet)."""

    name: ClassVar[str] = "native"
    config_class: ClassVar[type[Any]] = NativeConfig
    scope_policy: ClassVar[ScopePolicy] = ScopePolicy.DISABLED
    live_sync: ClassVar[bool] = True
    implemented: ClassVar[bool] = False

    def get_new_datasets(self, last_item: SyncItem | None) -> Iterable[SyncItem]:
        raise NotImplementedYetError(_TODO)

    def sync_dataset(self, item: SyncItem, ctx: SyncContext) -> None:
        raise NotImplementedYetError(_TODO)


_ = Iterable
