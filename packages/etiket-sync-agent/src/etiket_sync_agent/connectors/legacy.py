"""Adapting backends written for the existing agent (the "legacy API") to our contract.

A legacy backend subclasses :mod:`etiket_sync_agent.connectors.sync_source_abstract`'s bases: class
attributes ``sync_agent_name``, ``config_data_class``, ``scope_requirement``,
``supports_scope_mapping``, ``live_sync_implemented``, ``has_owner`` (+ ``level``,
``is_single_file`` for file sources) and ``async`` static hooks taking the config first.
:func:`adapt_legacy` builds an ordinary backend class around it:

- name: the entry-point name (``my_platform_sync_agent`` → ``my-platform-sync-agent``);
- config: the legacy dataclass; its ``async validate()`` runs on a private event loop;
- discovery: ``get_new_datasets(config, last_sync_item)`` → items keyed by ``data_identifier``,
  the legacy ``sync_priority`` kept (in milliseconds) as our cursor and as the priority, a given
  ``dataset_uuid`` pinned as the dataset's uuid, ``scope_identifier`` kept for scope mapping;
- sync: ``sync_dataset_normal/live(config, sync_item, sync_record)`` run on a private event loop
  in the engine's worker thread; the ``sync_record`` is a
  :class:`~etiket_sync_agent.sync.sync_records.SyncRecordManager` writing into our context;
- live: ``check_live_dataset(config, item, max_priority=True)`` (the engine's stale timeout guards
  against runs that never finish); a live sync runs the legacy live hook, then the normal one.

Not carried over: ``has_owner`` (uploads use the agent's login) and a per-item ``owner``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
from collections.abc import Coroutine, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from etiket_sync_agent.connectors import sync_source_abstract as legacy
from etiket_sync_agent.connectors.base import (
    ScopePolicy,
    SyncSourceDatabaseBase,
    SyncSourceFileBase,
)
from etiket_sync_agent.connectors.context import SyncContext
from etiket_sync_agent.connectors.item import SyncItem
from etiket_sync_agent.errors import PluginContractError, SyncError
from etiket_sync_agent.schemas import SyncItemCreate, SyncItemSchema
from etiket_sync_agent.sync.sync_records.manager import SyncRecordManager

__all__ = ["adapt_legacy", "is_legacy_backend", "legacy_name", "run_coroutine"]

_PRIORITY_SCALE = 1000  # legacy float priorities → integer cursors (millisecond resolution)


def is_legacy_backend(cls: object) -> bool:
    """Whether ``cls`` is a backend class written for the existing agent."""
    return isinstance(cls, type) and issubclass(cls, legacy.SyncSourceBase)


def legacy_name(entry_name: str) -> str:
    """Our backend name for a legacy entry point (lower case, ``_`` → ``-``)."""
    name = re.sub(r"[^a-z0-9_-]+", "-", entry_name.strip().lower()).replace("_", "-").strip("-")
    return name or "legacy"


def run_coroutine(value: Coroutine[Any, Any, Any] | Any) -> Any:
    """Run a legacy hook's coroutine to completion from synchronous code.

    In a worker thread (how the engine calls hooks) it gets a private event loop; when called from
    a thread that already runs a loop (e.g. the control API validating a config), it runs on a
    short-lived helper thread so the running loop is never blocked re-entrantly.
    """
    if not asyncio.iscoroutine(value):
        return value
    coro = value
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _config_class(legacy_cls: type[Any]) -> type[Any]:
    """The legacy config dataclass with a synchronous ``validate_config`` hook our core calls."""
    base = legacy_cls.config_data_class

    def validate_config(self: Any) -> None:
        hook = getattr(base, "validate", None)
        if hook is None:
            return
        result = run_coroutine(hook(self))
        if result is False:
            raise ValueError("the configuration was refused by the backend's validate()")

    namespace = {
        "validate_config": validate_config,
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
        "__doc__": base.__doc__,
    }
    return type(base.__name__, (base,), namespace)


def _schema(item: SyncItem) -> SyncItemSchema:
    priority = item.extra.get("legacy_priority", item.priority)
    return SyncItemSchema(
        id=item.item_id or 0,
        data_identifier=item.key,
        dataset_uuid=item.dataset_uuid,
        scope_identifier=item.scope_identifier,
        sync_priority=float(priority),
    )


class _LegacyAdapter:
    """Hooks shared by both adapted kinds (mixed in before our base)."""

    legacy_class: ClassVar[type[Any]]
    legacy_api: ClassVar[bool] = True
    display_name: ClassVar[str]
    config: Any

    def check_live_dataset(self, item: SyncItem, state: Mapping[str, Any]) -> bool:
        hook = self.legacy_class.check_live_dataset
        return bool(run_coroutine(hook(self.config, _schema(item), True)))

    def _run(self, hook_name: str, item: SyncItem, ctx: SyncContext) -> None:
        record = SyncRecordManager(ctx)
        hook = getattr(self.legacy_class, hook_name)
        with record.task(f"Running {hook_name} of {self.display_name}"):
            run_coroutine(hook(self.config, _schema(item), record))

    def sync_dataset(self, item: SyncItem, ctx: SyncContext) -> None:
        try:
            self._run("sync_dataset_normal", item, ctx)
        except SyncError:
            raise
        except Exception as exc:
            raise SyncError(f"{type(exc).__name__}: {exc}") from exc
        if ctx.plan.dataset is None:
            raise SyncError(
                "the legacy backend described no dataset "
                "(SyncUtilities.create_or_update_dataset was not called)"
            )

    def sync_dataset_live(self, item: SyncItem, ctx: SyncContext) -> None:
        try:
            self._run("sync_dataset_live", item, ctx)
        except SyncError:
            raise
        except Exception as exc:
            raise SyncError(f"live sync failed: {type(exc).__name__}: {exc}") from exc
        self.sync_dataset(item, ctx)


def _get_new_datasets(self: Any, last_item: SyncItem | None) -> Iterator[SyncItem]:
    last = None
    if last_item is not None and last_item.cursor is not None:
        last = SyncItemSchema(
            data_identifier=last_item.key,
            sync_priority=last_item.cursor / _PRIORITY_SCALE,
        )
    found = run_coroutine(self.legacy_class.get_new_datasets(self.config, last)) or []
    items: list[SyncItem] = []
    for raw in found:
        create = raw if isinstance(raw, SyncItemCreate) else SyncItemCreate.model_validate(raw)
        extra: dict[str, Any] = {"legacy_priority": create.sync_priority}
        if create.dataset_uuid is not None:
            extra["dataset_uuid"] = str(create.dataset_uuid)
        items.append(
            SyncItem(
                key=create.data_identifier,
                cursor=round(create.sync_priority * _PRIORITY_SCALE),
                priority=create.sync_priority,
                scope_identifier=create.scope_identifier,
                extra=extra,
            )
        )
    items.sort(key=lambda i: i.cursor or 0)
    yield from items


def _root_path(self: Any) -> Path:
    return Path(self.legacy_class.root_path(self.config))


def adapt_legacy(cls: type[Any], entry_name: str | None = None) -> type[Any]:
    """Our backend class for a legacy backend class (other classes are returned unchanged).

    Raises :class:`PluginContractError` when the legacy class is incomplete.
    """
    if not is_legacy_backend(cls):
        return cls
    if getattr(cls, "__abstractmethods__", None):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise PluginContractError(f"{cls.__module__}.{cls.__qualname__} lacks hooks: {missing}")
    name = legacy_name(entry_name or cls.__module__.split(".", 1)[0])
    policy = (
        ScopePolicy.REQUIRED
        if cls.scope_requirement is legacy.ScopeRequirement.REQUIRED
        else ScopePolicy.DISABLED
    )
    namespace: dict[str, Any] = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__ or f"{cls.sync_agent_name} (legacy API)",
        "legacy_class": cls,
        "display_name": cls.sync_agent_name,
        "name": name,
        "config_class": _config_class(cls),
        "scope_policy": policy,
        "live_sync": bool(cls.live_sync_implemented),
        "implemented": True,
    }
    base: type[Any]
    if issubclass(cls, legacy.SyncSourceFileBase):
        base = SyncSourceFileBase
        namespace.update(
            level=cls.level,
            is_single_file=cls.is_single_file,
            detect_moves=False,
            root_path=_root_path,
        )
    elif issubclass(cls, legacy.SyncSourceDatabaseBase):
        base = SyncSourceDatabaseBase
        namespace["get_new_datasets"] = _get_new_datasets
    else:
        raise PluginContractError(
            f"{cls.__qualname__} must derive from SyncSourceDatabaseBase or SyncSourceFileBase"
        )
    try:
        return type(cls.__name__, (_LegacyAdapter, base), namespace)
    except PluginContractError:
        raise
    except (TypeError, ValueError) as exc:
        raise PluginContractError(f"{cls.__qualname__}: {exc}") from exc
