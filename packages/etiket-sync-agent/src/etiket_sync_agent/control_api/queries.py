"""Tracking-store queries the control API needs beyond :class:`TrackingStore`'s public methods.

Kept here, delimited, so the store module stays as it is: each function opens one session of the
store and touches only the ``sync_sources`` / ``sync_items`` tables.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import func, select, update

from etiket_sync_agent.store.models import Item, ItemState, Source
from etiket_sync_agent.store.repository import (
    DuplicateSourceError,
    ItemRecord,
    SourceRecord,
    TrackingStore,
)

__all__ = [
    "ORDER_COLUMNS",
    "bump_priority",
    "count_items",
    "list_items",
    "remove_scope_mapping",
    "reset_source_items",
    "update_source",
]

#: ``order_by`` values of ``GET /sync/items`` → tracking-store column.
ORDER_COLUMNS = {
    "id": Item.id,
    "last_update": Item.updated,
    "attempts": Item.attempts,
    "syncpriority": Item.priority,
}


def list_items(
    store: TrackingStore,
    *,
    source_id: int | None = None,
    query: str | None = None,
    is_synchronized: bool | None = None,
    priority_ids: Collection[int] | None = None,
    has_priority: bool | None = None,
    scope_identifier: str | None = None,
    order_by: str = "id",
    descending: bool = False,
    offset: int = 0,
    limit: int = 100,
) -> list[ItemRecord]:
    """Items filtered and ordered like the existing agent's ``list_sync_items``.

    ``query`` is a case-insensitive substring of the natural key (no 3-character minimum, unlike
    the existing agent's trigram index).
    """
    column = ORDER_COLUMNS[order_by]
    with store._session() as s:
        stmt = select(Item, Source.name).join(Source, Source.id == Item.source_id)
        if source_id is not None:
            stmt = stmt.where(Item.source_id == source_id)
        if query:
            escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(func.lower(Item.natural_key).like(f"%{escaped}%", escape="\\"))
        if is_synchronized is True:
            stmt = stmt.where(Item.state == ItemState.SYNCED.value)
        elif is_synchronized is False:
            stmt = stmt.where(Item.state != ItemState.SYNCED.value)
        if has_priority is not None:
            ids = list(priority_ids or ())
            stmt = stmt.where(Item.id.in_(ids) if has_priority else Item.id.not_in(ids))
        if scope_identifier is not None:
            stmt = stmt.where(Item.scope_identifier == scope_identifier)
        order = column.desc() if descending else column.asc()
        stmt = stmt.order_by(order, Item.id.desc() if descending else Item.id.asc())
        stmt = stmt.offset(offset).limit(limit)
        return [ItemRecord.of(row, name) for row, name in s.execute(stmt).all()]


def count_items(store: TrackingStore, source_id: int) -> dict[str, int]:
    """Per-state counts of one source (``total`` included)."""
    counts = store.count_by_state(source_id)
    counts["total"] = sum(counts.values())
    return counts


def update_source(
    store: TrackingStore,
    source_id: int,
    *,
    name: str | None = None,
    scope: str | None = None,
    set_scope: bool = False,
    config: Mapping[str, Any] | None = None,
) -> SourceRecord:
    """Rename a source, change its default scope or replace its (validated) config.

    Changing the scope sends every item of the source back to ``new`` (its datasets belong
    elsewhere now), as the existing agent does.
    """
    now = store.now().replace(tzinfo=None)
    with store._session() as s:
        row = s.get(Source, source_id)
        if row is None:
            raise KeyError(source_id)
        if name is not None and name != row.name:
            clash = s.scalar(select(Source.id).where(Source.name == name, Source.id != source_id))
            if clash is not None:
                raise DuplicateSourceError(f"a source named {name!r} already exists")
            row.name = name
        if set_scope and scope != row.scope:
            row.scope = scope
            s.execute(
                update(Item)
                .where(Item.source_id == source_id, Item.state != ItemState.GONE.value)
                .values(state=ItemState.NEW.value, attempts=0, next_attempt_at=None, updated=now)
            )
        if config is not None:
            row.config = dict(config)
        row.updated = now
        s.flush()
        return SourceRecord.of(row)


def remove_scope_mapping(store: TrackingStore, source_id: int, identifier: str) -> bool:
    """Forget one scope mapping; returns whether it existed."""
    with store._session() as s:
        row = s.get(Source, source_id)
        if row is None:
            raise KeyError(source_id)
        mapping = dict(row.scope_mapping or {})
        if identifier not in mapping:
            return False
        del mapping[identifier]
        row.scope_mapping = mapping
        row.updated = store.now().replace(tzinfo=None)
        return True


def reset_source_items(store: TrackingStore, source_id: int, include_successful: bool) -> int:
    """Send failed (and, with ``include_successful``, synced) items of a source back to ``new``."""
    states = [ItemState.FAILED.value, ItemState.WAITING.value]
    if include_successful:
        states.append(ItemState.SYNCED.value)
    now = store.now().replace(tzinfo=None)
    with store._session() as s:
        result = s.execute(
            update(Item)
            .where(Item.source_id == source_id, Item.state.in_(states))
            .values(
                state=ItemState.NEW.value,
                attempts=0,
                next_attempt_at=None,
                last_error=None,
                updated=now,
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)


def bump_priority(store: TrackingStore, item_id: int) -> ItemRecord:
    """Put an item ahead of every other item of its source and make it due now."""
    now = store.now().replace(tzinfo=None)
    with store._session() as s:
        row = s.get(Item, item_id)
        if row is None:
            raise KeyError(item_id)
        top = s.scalar(select(func.max(Item.priority)).where(Item.source_id == row.source_id))
        if top is None or row.priority <= top:
            row.priority = float(top or 0.0) + 1.0
        if row.state in (ItemState.FAILED.value, ItemState.LIVE.value):
            row.next_attempt_at = None
        row.updated = now
        s.flush()
        return ItemRecord.of(row)
