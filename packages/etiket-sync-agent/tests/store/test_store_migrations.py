"""Migrations run on open; an old store is upgraded; a newer one is refused clearly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from etiket_sync_agent.store import StoreVersionError, TrackingStore, open_store


def test_a_new_store_is_created_at_head_in_wal_mode(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'sync.db'}")
    store.close()
    with sqlite3.connect(tmp_path / "sync.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision == "0001_initial"
    assert (tmp_path / "sync.db").stat().st_mode & 0o777 == 0o600


def test_an_empty_database_is_upgraded(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "old.db").close()
    store = open_store(f"sqlite:///{tmp_path / 'old.db'}")
    assert store.list_sources() == []
    store.close()


def test_a_store_from_a_newer_agent_is_refused(store_url: str) -> None:
    TrackingStore(store_url).close()
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    with pytest.raises(StoreVersionError, match="newer etiket-sync-agent"):
        TrackingStore(store_url)


def test_default_location_follows_etiket_sync_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETIKET_SYNC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ETIKET_SYNC_DB_URL", raising=False)
    open_store().close()
    assert (tmp_path / "home" / "sync.db").exists()
