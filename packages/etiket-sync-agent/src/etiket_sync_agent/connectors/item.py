"""The unit of work: one dataset of one source, as discovery reports it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["SyncItem"]


@dataclass
class SyncItem:
    """One dataset of a source.

    Discovery creates these; the core stores them in the tracking store and hands them back to the
    backend's sync hooks (with ``dataset_uuid`` and ``state`` filled in).

    - ``key``: the natural key, stable and unique within the source (QCoDeS guid, Quantify TUID,
      Labber relative path + creation time). The dataset uuid on the server is derived from it.
    - ``cursor``: for database sources, the ordering value discovery continues after (e.g. run_id).
    - ``priority``: higher syncs first (newest measurements are usually most wanted).
    - ``path``: for file sources, the dataset's path relative to the source root (POSIX).
    - ``scope_identifier``: for ``ScopePolicy.DISABLED`` backends, which scope the dataset belongs to
      (a project name, a scope name or uuid); mapped to a server scope by the source's scope mapping.
    - ``fingerprint``: a cheap summary of the dataset's state (sizes, mtimes, a starred flag ...);
      when it changes for a synced item, the item is synced again.
    - ``extra``: small JSON-serialisable data the backend wants back in its hooks.
    """

    key: str
    cursor: int | None = None
    priority: float = 0.0
    path: str | None = None
    scope_identifier: str | None = None
    fingerprint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Filled in by the core when it hands the item to a hook.
    dataset_uuid: str | None = None
    item_id: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ValueError("SyncItem.key must be a non-empty string")
