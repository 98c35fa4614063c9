"""Alias module of :mod:`etiket_sync_agent.schemas` (legacy import path)."""

from etiket_sync_agent.schemas import SyncItemCreate, SyncItemSchema

__all__ = ["SyncItemCreate", "SyncItemSchema"]
