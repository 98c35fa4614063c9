"""The existing agent's sync-item models, for backends written for it (the "legacy API").

``SyncItemCreate`` is what a legacy ``get_new_datasets`` returns; ``SyncItemSchema`` is the item a
legacy hook receives. Fields the core does not track (owner, sync record) keep their defaults.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["SyncItemCreate", "SyncItemSchema"]


class SyncItemCreate(BaseModel):
    """A dataset found by a legacy backend's discovery."""

    model_config = ConfigDict(extra="ignore")

    data_identifier: str
    sync_priority: float
    scope_identifier: str | None = None
    dataset_uuid: uuid.UUID | None = None
    owner: str | None = None


class SyncItemSchema(BaseModel):
    """The item a legacy hook receives (``data_identifier``, ``dataset_uuid``, ...)."""

    model_config = ConfigDict(extra="ignore")

    id: int = 0
    sync_source_id: int = 0
    data_identifier: str
    dataset_uuid: uuid.UUID | None = None
    scope_identifier: str | None = None
    scope_uuid: uuid.UUID | None = None
    owner: str | None = None
    sync_priority: float = 0.0
    has_priority: bool = False
    synchronized: bool = False
    attempts: int = 0
    sync_record: dict[str, Any] | None = None
    last_update: dt.datetime | None = None
