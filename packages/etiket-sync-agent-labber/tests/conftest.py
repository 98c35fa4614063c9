"""Shared fixtures of the labber backend tests: a Labber data folder and a direct sync helper."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from etiket_sync_agent_labber import LabberSync
from etiket_sync_agent_labber import testing as lt

from etiket_sync_agent import SyncContext, SyncItem
from etiket_sync_agent.connectors.config import parse_config
from etiket_sync_agent.detect import discover_file_items

Backend = Callable[..., LabberSync]
Sync = Callable[..., SyncContext]


@pytest.fixture
def labber_root(tmp_path: Path) -> Path:
    """An empty Labber data folder holding only ``Database.hdf5``."""
    root = tmp_path / "Labber Data"
    root.mkdir()
    lt.write_database_file(root)
    return root


@pytest.fixture
def make_backend(labber_root: Path) -> Backend:
    """``make_backend(**config overrides)`` → a LabberSync on ``labber_root``."""

    def make(**extra: Any) -> LabberSync:
        raw = {"labber_directory": str(labber_root), "set_up": "fridge-3", **extra}
        return LabberSync(parse_config(LabberSync.config_class, raw))

    return make


@pytest.fixture
def items_of() -> Callable[[LabberSync], dict[str, SyncItem]]:
    """Discovered items of a backend by relative path."""

    def items(backend: LabberSync) -> dict[str, SyncItem]:
        return {str(item.path): item for item in discover_file_items(backend)}

    return items


@pytest.fixture
def sync_item(tmp_path: Path) -> Sync:
    """``sync_item(backend, item, live=False, state=None)`` → the SyncContext the hook filled."""
    counter = itertools.count()

    def run(
        backend: LabberSync,
        item: SyncItem,
        *,
        live: bool = False,
        state: dict[str, Any] | None = None,
    ) -> SyncContext:
        work = tmp_path / f"work-{next(counter)}"
        work.mkdir()
        ctx = SyncContext(item, work, source_name="labber-test", live=live, state=state)
        if live:
            backend.sync_dataset_live(item, ctx)
        else:
            backend.sync_dataset(item, ctx)
        return ctx

    return run
