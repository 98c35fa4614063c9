"""Deterministic identities: the same source item always maps to the same server records.

After a crash the agent recomputes these and finds its own dataset and file records instead of
creating second copies.
"""

from __future__ import annotations

import time
import uuid

__all__ = ["dataset_uuid_for", "file_uuid_for", "next_version_id"]

_FILE_NAMESPACE = uuid.UUID("6f1d3c1e-8e53-4b55-9a4e-0f0b6b2f5c11")


def dataset_uuid_for(source_uuid: str, natural_key: str) -> str:
    """uuid5 of (source uuid, natural key)."""
    return str(uuid.uuid5(uuid.UUID(source_uuid), natural_key))


def file_uuid_for(dataset_uuid: str, logical_name: str) -> str:
    """uuid5 of (dataset uuid, logical file name): all versions of a file share it."""
    return str(uuid.uuid5(uuid.uuid5(_FILE_NAMESPACE, dataset_uuid), logical_name))


def next_version_id(previous: int | None, now: float | None = None) -> int:
    """A new file version id: Unix time in ms, strictly larger than the previous one."""
    candidate = int((time.time() if now is None else now) * 1000)
    return candidate if previous is None or candidate > previous else previous + 1
