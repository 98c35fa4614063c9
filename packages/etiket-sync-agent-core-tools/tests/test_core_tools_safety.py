"""Never write, validate clearly, survive PostgreSQL going away, never reveal the password."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import etiket_sync_agent_core_tools.db as ct_db_module
import psycopg
import pytest
from etiket_sync_agent_core_tools import CoreToolsConfig, CoreToolsSync
from etiket_sync_agent_core_tools import testing as ct

from etiket_sync_agent.connectors import SyncContext, SyncItem, mask_config, parse_config
from etiket_sync_agent.connectors.config import config_to_storage
from etiket_sync_agent.errors import ConfigError, SourceError

pytestmark = pytest.mark.postgres


def _populate(conninfo: str) -> list[ct.MeasurementWriter]:
    writers = [
        ct.write_measurement(conninfo, spec, old_format=i % 2 == 1, seed=i)
        for i, spec in enumerate(ct.demo_measurements())
    ]
    writers.append(
        ct.write_measurement(conninfo, ct.demo_measurements()[2], points=3, complete=False)
    )
    return writers


def _sync_all(backend: CoreToolsSync, work: Path) -> int:
    count = 0
    for item in backend.get_new_datasets(None):
        backend.get_fingerprints()
        live = backend.check_live_dataset(item, {})
        ctx = SyncContext(item, work / item.key, live=live)
        (backend.sync_dataset_live if live else backend.sync_dataset)(item, ctx)
        count += 1
    return count


# -- read-only -----------------------------------------------------------------------------------
def test_the_database_is_identical_after_syncing_everything(
    ct_db: str, make_backend: Any, tmp_path: Path
) -> None:
    _populate(ct_db)
    before = ct.database_digest(ct_db)
    assert any(k.startswith("lo ") for k in before)
    assert any("measurement_parameters" in k for k in before)
    assert _sync_all(make_backend(ct_db), tmp_path) == 5
    assert ct.database_digest(ct_db) == before


def test_sessions_are_read_only(ct_db: str, make_backend: Any) -> None:
    backend: CoreToolsSync = make_backend(ct_db)
    db = backend._db
    with db.snapshot("testing") as conn:
        assert conn.execute("SHOW transaction_read_only").fetchone() == ("on",)
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        assert conn.execute("SHOW transaction_isolation").fetchone() == ("repeatable read",)
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), db.snapshot("testing") as conn:
        conn.execute("DELETE FROM global_measurement_overview")


# -- configuration -------------------------------------------------------------------------------
def test_valid_config_passes_validation(ct_db: str) -> None:
    config = parse_config(CoreToolsConfig, ct.config_for(ct_db))
    assert config.port == 5432
    assert config.stale_after == 300


def test_database_without_core_tools_tables_is_refused(empty_db: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(CoreToolsConfig, ct.config_for(empty_db))
    assert info.value.field == "dbname"
    assert "global_measurement_overview" in str(info.value)


def test_missing_database_and_role_are_refused(pg_dsn: str) -> None:
    raw = ct.config_for(pg_dsn)
    with pytest.raises(ConfigError) as info:
        parse_config(CoreToolsConfig, {**raw, "dbname": "no_such_db_etiket_xyz"})
    assert info.value.field == "dbname"
    assert "does not exist" in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_config(CoreToolsConfig, {**raw, "user": "no_such_role_etiket_xyz"})
    assert info.value.field == "user"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_server_is_refused_naming_the_host(pg_dsn: str) -> None:
    raw = {**ct.config_for(pg_dsn), "host": "127.0.0.1", "port": _closed_port()}
    with pytest.raises(ConfigError) as info:
        parse_config(CoreToolsConfig, raw)
    assert info.value.field == "host"
    assert "cannot connect" in str(info.value)


def test_wrong_password_is_refused_and_never_shown(
    scram_cluster: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "Wr0ng-" + scram_cluster.password[::-1]
    raw = {
        "dbname": "postgres",
        "user": scram_cluster.user,
        "password": wrong,
        "host": scram_cluster.host,
        "port": scram_cluster.port,
    }
    with pytest.raises(ConfigError) as info:
        parse_config(CoreToolsConfig, raw)
    assert info.value.field == "password"
    assert wrong not in str(info.value)
    # A stored source whose password was changed later: discovery fails as a source error.
    config = parse_config(CoreToolsConfig, raw, check=False)
    backend = CoreToolsSync(config)
    with pytest.raises(SourceError) as source_info:
        list(backend.get_new_datasets(None))
    backend.close()
    assert "password authentication failed" in str(source_info.value)
    for text in (repr(config), str(config), str(source_info.value), caplog.text):
        assert wrong not in text


def test_password_authentication_end_to_end(
    scram_cluster: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = scram_cluster.dsn()
    conninfo = ct.create_database("etiket_test_coretools", admin)
    try:
        ct.create_schema(conninfo)
        writer = ct.write_measurement(conninfo, ct.demo_measurements()[0])
        raw = ct.config_for(conninfo)
        assert raw["password"] == scram_cluster.password
        config = parse_config(CoreToolsConfig, raw)
        backend = CoreToolsSync(config)
        try:
            [item] = list(backend.get_new_datasets(None))
            ctx = SyncContext(item, tmp_path / "work")
            backend.sync_dataset(item, ctx)
            assert item.key == writer.key
            assert ctx.plan.dataset is not None
        finally:
            backend.close()
        secret = scram_cluster.password
        assert secret not in repr(config)
        assert secret not in str(config)
        assert secret not in str(mask_config(CoreToolsConfig, config_to_storage(config)))
        assert secret not in caplog.text
        for planned in ctx.plan.files:
            assert secret.encode() not in planned.path.read_bytes()
    finally:
        ct.drop_database(conninfo, admin)


def test_source_identity_names_the_database() -> None:
    a = CoreToolsSync(CoreToolsConfig("db1", "u", "x", host="localhost"))  # type: ignore[arg-type]
    b = CoreToolsSync(CoreToolsConfig("db1", "v", "y", host="127.0.0.1"))  # type: ignore[arg-type]
    c = CoreToolsSync(CoreToolsConfig("db1", "u", "x", host="lab-server", port=5433))  # type: ignore[arg-type]
    assert a.source_identity() == b.source_identity() == "postgresql://localhost:5432/db1"
    assert c.source_identity() == "postgresql://lab-server:5433/db1"


# -- PostgreSQL going away -----------------------------------------------------------------------
def test_server_going_away_mid_read_is_a_source_error_and_recovers(
    ct_db: str, pg_dsn: str, make_backend: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = ct.write_measurement(ct_db, ct.demo_measurements()[1])
    backend: CoreToolsSync = make_backend(ct_db)
    dbname = ct.config_for(ct_db)["dbname"]
    original = ct_db_module.LargeObjectReader.read
    calls = {"n": 0}

    def read_then_kill(self: Any, oid: int, start: int, count: int) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # after the first chunk: the server kills our session
            with psycopg.connect(pg_dsn, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND application_name = 'etiket-sync-core-tools'",
                    (dbname,),
                )
        return original(self, oid, start, count)

    monkeypatch.setattr(ct_db_module.LargeObjectReader, "read", read_then_kill)
    item = SyncItem(key=writer.key)
    with pytest.raises(SourceError, match="lost the connection to PostgreSQL database"):
        backend.sync_dataset(item, SyncContext(item, tmp_path / "a"))
    monkeypatch.setattr(ct_db_module.LargeObjectReader, "read", original)
    ctx = SyncContext(item, tmp_path / "b")
    backend.sync_dataset(item, ctx)  # a fresh connection: works again
    assert ctx.plan.dataset is not None


def test_server_down_is_a_source_error_for_every_hook(pg_dsn: str, tmp_path: Path) -> None:
    raw = {**ct.config_for(pg_dsn), "host": "127.0.0.1", "port": _closed_port()}
    backend = CoreToolsSync(parse_config(CoreToolsConfig, raw, check=False))
    item = SyncItem(key="1")
    with pytest.raises(SourceError, match="cannot connect to PostgreSQL database"):
        list(backend.get_new_datasets(None))
    with pytest.raises(SourceError, match="cannot connect"):
        backend.get_fingerprints()
    with pytest.raises(SourceError, match="cannot connect"):
        backend.check_live_dataset(item, {})
    with pytest.raises(SourceError, match="cannot connect"):
        backend.sync_dataset(item, SyncContext(item, tmp_path / "w"))
    backend.close()


def test_table_dropped_while_running_is_a_source_error(ct_db: str, make_backend: Any) -> None:
    ct.write_measurement(ct_db, ct.demo_measurements()[0])
    backend: CoreToolsSync = make_backend(ct_db)
    assert len(list(backend.get_new_datasets(None))) == 1
    with psycopg.connect(ct_db) as conn:
        conn.execute("DROP TABLE global_measurement_overview")
    with pytest.raises(SourceError, match="refused a query while listing new measurements"):
        list(backend.get_new_datasets(None))
    # A stored source is loaded without the validation hook (the core passes check=False).
    fresh = CoreToolsSync(parse_config(CoreToolsConfig, ct.config_for(ct_db), check=False))
    try:
        with pytest.raises(SourceError, match="no table 'global_measurement_overview'"):
            list(fresh.get_new_datasets(None))
    finally:
        fresh.close()
