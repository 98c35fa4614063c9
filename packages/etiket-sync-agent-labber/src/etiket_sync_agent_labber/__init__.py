"""Sync Labber HDF5 log files to eTiKeT.

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
    SyncSourceFileBase,
)
from etiket_sync_agent.errors import NotImplementedYetError

__all__ = ["LabberConfig", "LabberSync"]

_TODO = "the labber backend is not implemented yet"


@dataclasses.dataclass
class LabberConfig:
    """Configuration of a labber source (field names as existing configurations use them)."""

    labber_directory: Path
    set_up: str
    static_attributes: dict[str, str] = dataclasses.field(default_factory=dict)
    is_server_folder: bool = False


class LabberSync(SyncSourceFileBase):
    """Syncs Labber HDF5 log files (not implemented yet)."""

    name: ClassVar[str] = "labber"
    config_class: ClassVar[type[Any]] = LabberConfig
    scope_policy: ClassVar[ScopePolicy] = ScopePolicy.REQUIRED
    live_sync: ClassVar[bool] = True
    implemented: ClassVar[bool] = False

    def root_path(self) -> Path:
        raise NotImplementedYetError(_TODO)

    def sync_dataset(self, item: SyncItem, ctx: SyncContext) -> None:
        raise NotImplementedYetError(_TODO)


_ = Iterable
