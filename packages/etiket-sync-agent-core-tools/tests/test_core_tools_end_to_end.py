"""The demo source and a 200-measurement database, synced through the engine to the local server."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from etiket_sync_agent_core_tools import CoreToolsSync
from etiket_sync_agent_core_tools import testing as ct

from etiket_sync_agent.testing import AgentHarness, fast_options

pytestmark = pytest.mark.postgres


def _state(item: object) -> str:
    state = getattr(item, "state", None)
    return str(getattr(state, "value", state))


def test_demo_source_syncs_completely(pg_dsn: str, tmp_path: Path) -> None:
    started = time.perf_counter()
    config = ct.make_demo_source(tmp_path / "demo")
    assert config.pop("_demo_scope_identifiers") == ["demo"]
    elapsed = time.perf_counter() - started
    conninfo = f"postgresql://{config['user']}@{config['host']}:{config['port']}/{config['dbname']}"
    try:
        assert config["dbname"].startswith("etiket_demo_coretools_")
        assert (tmp_path / "demo" / "DATABASE.txt").exists()
        assert elapsed < 5, f"demo generation took {elapsed:.1f} s"
        before = ct.database_digest(conninfo)
        harness = AgentHarness(tmp_path / "harness", options=fast_options())
        harness.register_backend(CoreToolsSync)
        # The demo's scope is called "demo", like the measurements' project.
        harness.server.create_scope("demo")
        harness.add_source("demo-core-tools", CoreToolsSync, config)
        try:
            harness.run_until_idle(40)
            items = harness.items("demo-core-tools")
            assert len(items) == 5
            assert {_state(i) for i in items} == {"synced"}, [i.last_error for i in items]
            names = {d.name for d in harness.datasets()}
            assert "1D sweep P1 (interrupted)" in names
            assert "2D charge stability P1 P2" in names
        finally:
            harness.close()
        assert ct.database_digest(conninfo) == before
    finally:
        ct.drop_database(conninfo)


@pytest.mark.slow
def test_two_hundred_measurements_sync_completely(ct_db: str, tmp_path: Path) -> None:
    specs = ct.demo_measurements("bulk")
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    for i in range(200):
        spec = specs[i % len(specs)]
        ct.write_measurement(
            ct_db,
            spec,
            old_format=i % 5 == 0,
            seed=i,
            start_time=start + dt.timedelta(minutes=i),
        )
    before = ct.database_digest(ct_db)
    harness = AgentHarness(tmp_path / "harness", options=fast_options())
    harness.register_backend(CoreToolsSync)
    harness.add_source(
        "bulk", CoreToolsSync, ct.config_for(ct_db), scope_mapping={"bulk": harness.scope_uuid}
    )
    try:
        t0 = time.perf_counter()
        harness.run_until_idle(400)
        elapsed = time.perf_counter() - t0
        items = harness.items("bulk")
        assert len(items) == 200
        assert {_state(i) for i in items} == {"synced"}
        assert len(harness.datasets()) == 200
        print(f"200 core-tools measurements synced in {elapsed:.1f} s")
    finally:
        harness.close()
    assert ct.database_digest(ct_db) == before
