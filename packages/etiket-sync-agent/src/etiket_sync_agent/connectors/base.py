"""The backend contract: what a sync source implements and what the core promises it.

A backend is a subclass of :class:`SyncSourceDatabaseBase` (the source is a database whose rows are
datasets; the backend lists new rows after a cursor) or :class:`SyncSourceFileBase` (the source is a
folder tree; the core walks it and makes one item per dataset folder or file). The core creates one
instance per configured source, ``Backend(config)``, and calls the hooks from worker threads, so hooks
may block on I/O. Hooks never talk HTTP or SQL to the tracking store: they describe datasets through
the :class:`~etiket_sync_agent.connectors.context.SyncContext` they are given.

Class attributes are checked when a concrete subclass is defined and again when it is loaded through
its entry point; a wrong one raises :class:`~etiket_sync_agent.errors.PluginContractError` naming the
class and the attribute.
"""

from __future__ import annotations

import abc
import enum
import inspect
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar

from etiket_sync_agent._version import PLUGIN_API_VERSION
from etiket_sync_agent.connectors.config import is_valid_config_class
from etiket_sync_agent.connectors.item import SyncItem
from etiket_sync_agent.errors import PluginContractError

if TYPE_CHECKING:
    from etiket_sync_agent.connectors.context import SyncContext

__all__ = [
    "ScopePolicy",
    "SyncSourceBase",
    "SyncSourceDatabaseBase",
    "SyncSourceFileBase",
    "check_backend_class",
    "plugin_api_compatible",
]

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class ScopePolicy(str, enum.Enum):
    """How a source's datasets get their server scope.

    - ``REQUIRED``: the source must name a scope; every dataset goes there.
    - ``OPTIONAL``: the source may name a scope; otherwise the backend's :meth:`default_scope`.
    - ``DISABLED``: the source names none; each item carries a ``scope_identifier`` (e.g. a
      core-tools project) that the source's scope mapping turns into a server scope.
    """

    REQUIRED = "REQUIRED"
    OPTIONAL = "OPTIONAL"
    DISABLED = "DISABLED"


def plugin_api_compatible(supported: Iterable[int]) -> bool:
    """Whether a plugin supporting these API major versions works with this core."""
    return int(PLUGIN_API_VERSION.split(".")[0]) in set(supported)


def _fail(cls: type, attribute: str, problem: str) -> PluginContractError:
    return PluginContractError(f"{cls.__module__}.{cls.__qualname__}.{attribute}: {problem}")


def check_backend_class(cls: type) -> None:
    """Check a concrete backend class's ClassVars; raise PluginContractError naming the problem."""
    if not isinstance(cls, type) or not issubclass(cls, SyncSourceBase):
        raise PluginContractError(
            f"{getattr(cls, '__qualname__', cls)!r} is not a subclass of "
            "SyncSourceDatabaseBase or SyncSourceFileBase"
        )
    if not (issubclass(cls, SyncSourceDatabaseBase) or issubclass(cls, SyncSourceFileBase)):
        raise PluginContractError(
            f"{cls.__module__}.{cls.__qualname__} must derive from SyncSourceDatabaseBase or "
            "SyncSourceFileBase, not SyncSourceBase directly"
        )
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise _fail(cls, "name", f"must be a lower-case identifier like 'qcodes', got {name!r}")
    if not is_valid_config_class(getattr(cls, "config_class", None)):
        raise _fail(cls, "config_class", "must be a dataclass or a pydantic model class")
    if not isinstance(getattr(cls, "scope_policy", None), ScopePolicy):
        raise _fail(cls, "scope_policy", "must be a ScopePolicy (REQUIRED, OPTIONAL or DISABLED)")
    for flag in ("live_sync", "implemented"):
        if not isinstance(getattr(cls, flag, None), bool):
            raise _fail(cls, flag, f"must be a bool, got {getattr(cls, flag, None)!r}")
    supported = getattr(cls, "plugin_api", None)
    if not isinstance(supported, tuple) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in supported
    ):
        raise _fail(cls, "plugin_api", "must be a tuple of supported API major versions, e.g. (1,)")
    if issubclass(cls, SyncSourceFileBase):
        level = getattr(cls, "level", None)
        if not isinstance(level, int) or isinstance(level, bool) or level == 0 or level < -1:
            raise _fail(cls, "level", f"must be -1 or a depth >= 1, got {level!r}")
        if not isinstance(getattr(cls, "is_single_file", None), bool):
            raise _fail(cls, "is_single_file", "must be a bool")
        if not isinstance(getattr(cls, "detect_moves", None), bool):
            raise _fail(cls, "detect_moves", "must be a bool")


class _SyncSourceMeta(abc.ABCMeta):
    """Checks concrete backend classes when they are defined."""

    def __init__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> None:
        super().__init__(name, bases, namespace)
        if not inspect.isabstract(cls) and not namespace.get("_contract_base", False):
            check_backend_class(cls)


class SyncSourceBase(metaclass=_SyncSourceMeta):
    """What every backend has in common. Subclass one of the two concrete bases, not this one."""

    _contract_base: ClassVar[bool] = True

    #: Backend name used in configs and on the command line (also its entry-point name).
    name: ClassVar[str]
    #: Dataclass or pydantic model describing the source's configuration.
    config_class: ClassVar[type[Any]]
    #: How datasets get their scope (see :class:`ScopePolicy`).
    scope_policy: ClassVar[ScopePolicy]
    #: Whether the backend can sync a dataset while it is still being acquired.
    live_sync: ClassVar[bool] = False
    #: False while the hooks are still the scaffold's skeleton: listed as "not implemented yet",
    #: and the conformance kit skips the behaviour tests.
    implemented: ClassVar[bool] = True
    #: Major versions of the plugin API this backend was written for.
    plugin_api: ClassVar[tuple[int, ...]] = (1,)
    #: Seconds a live dataset may show no growth before it is synced as it is (crashed run).
    stale_after: ClassVar[float] = 300.0

    def __init__(self, config: Any) -> None:
        self.config = config

    # -- hooks -------------------------------------------------------------------------------
    def default_scope(self) -> str | None:
        """The scope (name or uuid) used by an OPTIONAL-policy source that names none."""
        return None

    def check_live_dataset(self, item: SyncItem, state: Mapping[str, Any]) -> bool:
        """Whether ``item`` is still being acquired and should be synced live.

        ``state`` is what the previous sync stored in ``ctx.state`` (e.g. the last seen row count),
        so a backend can tell growth from a run that stalled. Only called when ``live_sync``.
        """
        return False

    @abc.abstractmethod
    def sync_dataset(self, item: SyncItem, ctx: SyncContext) -> None:
        """Describe a dataset that is complete (or stale) through ``ctx``.

        Call ``ctx.set_dataset(DatasetInfo(...))`` once and ``ctx.upload_file(...)`` per file.
        Raise :class:`~etiket_sync_agent.errors.SyncError` with a clear message for expected failures.
        """

    def sync_dataset_live(self, item: SyncItem, ctx: SyncContext) -> None:
        """Describe a dataset that is still being acquired. Defaults to :meth:`sync_dataset`.

        Called repeatedly while the dataset is live; files uploaded here become new versions when
        their content changed. Read without disturbing the writer.
        """
        self.sync_dataset(item, ctx)

    def close(self) -> None:
        """Release resources (connections, caches). Called when the source is removed or on exit."""


class SyncSourceDatabaseBase(SyncSourceBase):
    """A source whose datasets are rows of a database (QCoDeS, core-tools)."""

    _contract_base: ClassVar[bool] = True

    @abc.abstractmethod
    def get_new_datasets(self, last_item: SyncItem | None) -> Iterable[SyncItem]:
        """Items after ``last_item`` (by ``cursor``), oldest first; all items when ``None``.

        The core stores the largest cursor it has seen and passes that item back next time.
        """

    def get_fingerprints(self) -> Mapping[str, str] | None:
        """Current fingerprints of items whose metadata may change after sync (natural key → str).

        Items whose stored fingerprint differs are synced again (e.g. a run starred later).
        ``None`` (the default) means the backend does not track such changes.
        """
        return None


class SyncSourceFileBase(SyncSourceBase):
    """A source whose datasets are folders or files below a root folder (Quantify, Labber, ...).

    The core walks :meth:`root_path` and makes one item per dataset: with ``level == -1`` every
    folder holding a ``_QH_dataset_info.yaml``; with ``level == n`` the entries at depth ``n``;
    with ``is_single_file`` the files at that depth (or every file with ``level == -1``).
    The core never writes into the source folders.
    """

    _contract_base: ClassVar[bool] = True

    level: ClassVar[int] = -1
    is_single_file: ClassVar[bool] = False
    #: Recognise a dataset moved inside the root (same relative file names, sizes and mtimes,
    #: old place gone) and keep its server record instead of uploading it again.
    detect_moves: ClassVar[bool] = True

    @abc.abstractmethod
    def root_path(self) -> Path:
        """The folder the core walks."""

    def dataset_level(self) -> int:
        """The level to walk at; defaults to the ``level`` ClassVar (override to read the config)."""
        return self.level

    def is_server_folder(self) -> bool:
        """Whether the root is on a network drive (polling only, no file-system events)."""
        return bool(getattr(self.config, "is_server_folder", False))

    def accept_path(self, rel_path: PurePosixPath, abs_path: Path) -> bool:
        """Whether a candidate folder/file at the dataset level is a dataset (default: yes,
        except hidden names)."""
        return not any(part.startswith(".") for part in rel_path.parts)

    def make_item(self, rel_path: PurePosixPath, abs_path: Path) -> SyncItem | None:
        """Turn an accepted path into an item (default: key = the relative path).

        Return ``None`` to skip it for now (e.g. a file whose header is not written yet).
        """
        return SyncItem(key=rel_path.as_posix(), path=rel_path.as_posix())
