"""The existing agent's backend bases, for backends written for it (the "legacy API").

Third-party backends written for the existing agent import ``SyncSourceDatabaseBase``,
``SyncSourceFileBase`` and ``ScopeRequirement`` from this module path. Their classes are never
instantiated: every hook is an ``async`` static method taking the config dataclass first. The core
adapts such a class to its own contract when it is discovered (see
:mod:`etiket_sync_agent.connectors.legacy`); new backends should use
:mod:`etiket_sync_agent.connectors.base` instead.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import inspect
from pathlib import Path
from typing import Any, ClassVar

__all__ = [
    "ScopeRequirement",
    "SyncSourceBase",
    "SyncSourceDatabaseBase",
    "SyncSourceFileBase",
]


class ScopeRequirement(enum.Enum):
    """Whether a source must name a default scope (REQUIRED) or its datasets carry one
    (DISABLED). The existing agent defines no OPTIONAL member."""

    REQUIRED = "REQUIRED"
    DISABLED = "DISABLED"


def _check(cls: type, file_based: bool) -> None:
    name = getattr(cls, "sync_agent_name", None)
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"{cls.__qualname__}.sync_agent_name must be a non-empty string")
    config = getattr(cls, "config_data_class", None)
    if not (isinstance(config, type) and dataclasses.is_dataclass(config)):
        raise TypeError(f"{cls.__qualname__}.config_data_class must be a dataclass")
    if not isinstance(getattr(cls, "scope_requirement", None), ScopeRequirement):
        raise TypeError(f"{cls.__qualname__}.scope_requirement must be a ScopeRequirement")
    for flag in ("supports_scope_mapping", "live_sync_implemented", "has_owner"):
        if not isinstance(getattr(cls, flag, None), bool):
            raise TypeError(f"{cls.__qualname__}.{flag} must be a bool")
    if file_based:
        level = getattr(cls, "level", None)
        if not isinstance(level, int) or isinstance(level, bool) or level == 0 or level < -1:
            raise TypeError(f"{cls.__qualname__}.level must be -1 or a depth >= 1")
        if not isinstance(getattr(cls, "is_single_file", None), bool):
            raise TypeError(f"{cls.__qualname__}.is_single_file must be a bool")


class SyncSourceBase(abc.ABC):
    """Common part of the existing agent's two bases (class attributes and shared hooks)."""

    sync_agent_name: ClassVar[str]
    config_data_class: ClassVar[type[Any]]
    scope_requirement: ClassVar[ScopeRequirement]
    supports_scope_mapping: ClassVar[bool]
    live_sync_implemented: ClassVar[bool]
    has_owner: ClassVar[bool]

    @classmethod
    def sync_config(cls, config: dict[str, Any]) -> Any:
        """The config dataclass built from its stored dict."""
        return cls.config_data_class(**config)

    @staticmethod
    async def check_live_dataset(config: Any, sync_item: Any, max_priority: bool) -> bool:
        """Whether the dataset is still being measured (default: never)."""
        return False

    @staticmethod
    @abc.abstractmethod
    async def sync_dataset_normal(config: Any, sync_item: Any, sync_record: Any) -> None:
        """Upload the dataset's metadata and files."""

    @staticmethod
    async def sync_dataset_live(config: Any, sync_item: Any, sync_record: Any) -> None:
        """Stream a dataset still being measured (returns when it is complete).

        Only called when ``live_sync_implemented`` is True, so backends without live sync may
        leave it out (the existing agent's scaffold wrote a stub raising NotImplementedError).
        """
        raise NotImplementedError("this backend has no live sync")


class SyncSourceDatabaseBase(SyncSourceBase):
    """A source whose datasets are rows of a database."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not inspect.isabstract(cls):
            _check(cls, file_based=False)

    @staticmethod
    @abc.abstractmethod
    async def get_new_datasets(config: Any, last_sync_item: Any) -> list[Any]:
        """``SyncItemCreate`` entries after ``last_sync_item`` (by ``sync_priority``)."""


class SyncSourceFileBase(SyncSourceBase):
    """A source whose datasets are folders (or files) below :meth:`root_path`."""

    level: ClassVar[int]
    is_single_file: ClassVar[bool]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not inspect.isabstract(cls):
            _check(cls, file_based=True)

    @staticmethod
    @abc.abstractmethod
    def root_path(config: Any) -> Path:
        """The folder the core watches."""
