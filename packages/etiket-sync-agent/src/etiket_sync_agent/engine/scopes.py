"""Turning a source's scope setting or an item's scope identifier into a server scope uuid."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from etiket_sync_agent.connectors.base import ScopePolicy

__all__ = ["ScopeResolver", "ScopeUnresolved"]


class ScopeUnresolved(Exception):
    """No server scope for an item yet: the item waits with this reason visible."""


@dataclass
class _Cached:
    uuid: str | None
    at: float


class ScopeResolver:
    """Resolves scope names/uuids through the server, caching answers for ``ttl`` seconds.

    ``lookup`` maps a scope name or uuid to the server's uuid (``None`` if no such scope).
    """

    def __init__(self, lookup: Callable[[str], Awaitable[str | None]], ttl: float = 60.0) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._cache: dict[str, _Cached] = {}

    def forget(self) -> None:
        """Drop cached answers (after a scope mapping changed)."""
        self._cache.clear()

    async def _find(self, name_or_uuid: str) -> str | None:
        cached = self._cache.get(name_or_uuid)
        now = time.monotonic()
        if cached is not None and now - cached.at < self._ttl:
            return cached.uuid
        found = await self._lookup(name_or_uuid)
        self._cache[name_or_uuid] = _Cached(found, now)
        return found

    async def resolve(
        self,
        policy: ScopePolicy,
        source_scope: str | None,
        default_scope: str | None,
        scope_identifier: str | None,
        mapping: Mapping[str, str],
    ) -> str:
        """The scope uuid for an item, or raise :class:`ScopeUnresolved` with the reason."""
        if policy is ScopePolicy.REQUIRED:
            wanted = source_scope
            if not wanted:
                raise ScopeUnresolved("the source names no scope (required by its backend)")
        elif policy is ScopePolicy.OPTIONAL:
            wanted = source_scope or default_scope
            if not wanted:
                raise ScopeUnresolved("the source names no scope and its backend has no default")
        else:
            if not scope_identifier:
                raise ScopeUnresolved("the backend gave this dataset no scope identifier")
            wanted = mapping.get(scope_identifier, scope_identifier)
            found = await self._find(wanted)
            if found is None:
                if scope_identifier in mapping:
                    raise ScopeUnresolved(
                        f"scope identifier {scope_identifier!r} is mapped to scope {wanted!r}, "
                        "which does not exist on the server"
                    )
                raise ScopeUnresolved(
                    f"no scope mapping for identifier {scope_identifier!r}: add one with "
                    f"'etiket-sync source map-scope <source> {scope_identifier!r} <scope>'"
                )
            return found
        found = await self._find(wanted)
        if found is None:
            raise ScopeUnresolved(f"scope {wanted!r} does not exist on the server")
        return found
