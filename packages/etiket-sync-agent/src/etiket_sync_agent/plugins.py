"""Entry-point discovery shared by backends and converters.

Discovery is lazy (nothing is imported at ``import etiket_sync_agent``), cached, and refreshable.
The failure policy (CONVENTIONS §7): a plugin whose import fails for a missing module is listed as
*unavailable* with an install command; any other failure (exception on import, broken contract,
duplicate name, incompatible plugin API) marks it *broken* and logs a warning naming the entry point,
distribution, version and exception; the other plugins keep loading. Asking for a name nobody provides
raises :class:`~etiket_sync_agent.errors.BackendNotFoundError` listing the available names.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from etiket_sync_agent._version import PLUGIN_API_VERSION
from etiket_sync_agent.errors import (
    BackendNotFoundError,
    BackendUnavailableError,
    NotImplementedYetError,
    PluginContractError,
)

__all__ = ["CONNECTORS_GROUP", "CONVERTERS_GROUP", "PluginInfo", "PluginRegistry", "PluginStatus"]

#: Entry-point group of sync backends (values point at SyncSource classes).
CONNECTORS_GROUP = "etiket_sync_agent.connectors"
#: Entry-point group of file converters (values point at FileConverter classes).
CONVERTERS_GROUP = "etiket_sync_agent.converters"

_log = logging.getLogger("etiket_sync_agent.plugins")
T = TypeVar("T")


class PluginStatus(str, enum.Enum):
    AVAILABLE = "available"
    NOT_IMPLEMENTED = "not implemented yet"
    UNAVAILABLE = "unavailable"
    INCOMPATIBLE = "incompatible"
    BROKEN = "broken"


@dataclass
class PluginInfo(Generic[T]):
    """One discovered plugin and the outcome of loading it."""

    name: str
    group: str
    value: str
    distribution: str | None
    version: str | None
    status: PluginStatus
    error: str | None = None
    install_hint: str | None = None
    cls: type[T] | None = None

    @property
    def usable(self) -> bool:
        return self.status is PluginStatus.AVAILABLE


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


class PluginRegistry(Generic[T]):
    """Lazy, cached view of one entry-point group."""

    def __init__(
        self,
        group: str,
        check: Callable[[type], None],
        kind: str,
        dist_prefix: str,
        adapt: Callable[[type, str], type] | None = None,
    ) -> None:
        self.group = group
        # issue 16: turns a class written for another API (the existing agent's) into ours.
        self._adapt = adapt
        self._check = check
        self._kind = kind
        self._dist_prefix = dist_prefix
        self._lock = threading.RLock()
        self._infos: dict[str, PluginInfo[T]] | None = None
        self._extra: dict[str, type[T]] = {}

    # -- discovery -------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Forget the cache; the next lookup re-reads the installed entry points."""
        with self._lock:
            self._infos = None

    def register(self, name: str, cls: type[T]) -> None:
        """Register a class directly (tests, embedding). Checked like an entry point."""
        if self._adapt is not None:
            cls = self._adapt(cls, name)
        self._check(cls)
        with self._lock:
            self._extra[name] = cls
            self._infos = None

    def infos(self) -> list[PluginInfo[T]]:
        """Every plugin of the group with its load status, sorted by name."""
        return sorted(self._load_all().values(), key=lambda info: info.name)

    def names(self) -> list[str]:
        """Names of the usable plugins."""
        return [info.name for info in self.infos() if info.usable]

    def get(self, name: str) -> type[T]:
        """The plugin class registered under ``name`` (accepts the distribution/import name)."""
        infos = self._load_all()
        wanted = _normalise(name)
        for prefix in (self._dist_prefix,):
            if wanted.startswith(prefix):
                wanted = wanted[len(prefix) :]
        info = infos.get(wanted)
        if info is None:
            available = ", ".join(sorted(infos)) or "none"
            raise BackendNotFoundError(
                f"no {self._kind} named {name!r} is installed (available: {available}); "
                f"install one with: pip install {self._dist_prefix}{wanted}"
            )
        if info.status is PluginStatus.NOT_IMPLEMENTED and info.cls is not None:
            raise NotImplementedYetError(
                f"{self._kind} {info.name!r} ({info.distribution} {info.version}) is not "
                "implemented yet"
            )
        if not info.usable or info.cls is None:
            hint = f"; {info.install_hint}" if info.install_hint else ""
            raise BackendUnavailableError(
                f"{self._kind} {info.name!r} is {info.status.value}: {info.error}{hint}"
            )
        return info.cls

    # -- internals -------------------------------------------------------------------------------
    def _load_all(self) -> dict[str, PluginInfo[T]]:
        with self._lock:
            if self._infos is None:
                infos: dict[str, PluginInfo[T]] = {}
                for ep in sorted(entry_points(group=self.group), key=lambda e: e.name):
                    info = self._load(ep)
                    key = _normalise(ep.name)
                    if key in infos:
                        other = infos[key]
                        info.status = PluginStatus.BROKEN
                        info.error = (
                            f"duplicate name: {other.distribution} already provides {ep.name!r}"
                        )
                        info.cls = None
                        _log.warning(
                            "ignoring %s %r from %s %s: %s",
                            self._kind,
                            ep.name,
                            info.distribution,
                            info.version,
                            info.error,
                        )
                        key = f"{key} ({info.distribution})"
                    infos[key] = info
                for name, cls in self._extra.items():
                    infos[_normalise(name)] = PluginInfo(
                        name,
                        self.group,
                        f"{cls.__module__}:{cls.__qualname__}",
                        None,
                        None,
                        self._status_of(cls),
                        cls=cls,
                    )
                self._infos = infos
            return self._infos

    def _status_of(self, cls: type) -> PluginStatus:
        return (
            PluginStatus.AVAILABLE
            if getattr(cls, "implemented", True)
            else (PluginStatus.NOT_IMPLEMENTED)
        )

    def _load(self, ep: EntryPoint) -> PluginInfo[T]:
        dist = ep.dist.name if ep.dist is not None else None
        version = ep.dist.version if ep.dist is not None else None
        info: PluginInfo[T] = PluginInfo(
            ep.name, self.group, ep.value, dist, version, PluginStatus.AVAILABLE
        )
        try:
            obj = ep.load()
        except ModuleNotFoundError as exc:
            missing = exc.name or str(exc)
            info.status = PluginStatus.UNAVAILABLE
            info.error = f"missing module {missing!r}"
            info.install_hint = f"pip install --upgrade {dist or ep.name}"
            return info
        except Exception as exc:  # a broken plugin must not stop the others
            info.status = PluginStatus.BROKEN
            info.error = f"{type(exc).__name__}: {exc}"
            _log.warning(
                "could not load %s %r (entry point %s, distribution %s %s): %s",
                self._kind,
                ep.name,
                ep.value,
                dist,
                version,
                info.error,
            )
            return info
        try:
            if not isinstance(obj, type):
                raise PluginContractError(f"entry point {ep.value} is not a class")
            if self._adapt is not None:
                obj = self._adapt(obj, ep.name)
            self._check(obj)
        except PluginContractError as exc:
            info.status = PluginStatus.BROKEN
            info.error = str(exc)
            _log.warning(
                "%s %r from %s %s breaks the plugin contract: %s",
                self._kind,
                ep.name,
                dist,
                version,
                exc,
            )
            return info
        supported = tuple(getattr(obj, "plugin_api", (1,)))
        major = int(PLUGIN_API_VERSION.split(".")[0])
        if major not in supported:
            info.status = PluginStatus.INCOMPATIBLE
            info.error = (
                f"written for plugin API {', '.join(map(str, supported))}; this core speaks "
                f"{PLUGIN_API_VERSION}"
            )
            info.install_hint = f"pip install --upgrade {dist or ep.name}"
            return info
        backend_name = getattr(obj, "name", None)
        if isinstance(backend_name, str) and _normalise(backend_name) != _normalise(ep.name):
            info.status = PluginStatus.BROKEN
            info.error = f"class declares name {backend_name!r} but the entry point is {ep.name!r}"
            _log.warning("%s %r: %s", self._kind, ep.name, info.error)
            return info
        info.cls = obj
        info.status = self._status_of(obj)
        return info
