"""Discovery (cursor, batches, late commits), fingerprints and the live/stale logic."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import etiket_sync_agent_core_tools.sync as ct_sync
import psycopg
import pytest
from etiket_sync_agent_core_tools import CoreToolsSync
from etiket_sync_agent_core_tools import testing as ct

from etiket_sync_agent.connectors import SyncContext, SyncItem
from etiket_sync_agent.testing import AgentHarness, fast_options

pytestmark = pytest.mark.postgres


def _one_d(name: str, n: int = 12) -> ct.MeasurementSpec:
    return ct.MeasurementSpec(
        name,
        [ct.Axis("P1", "Plunger 1", "mV", [float(i) for i in range(n)])],
        [ct.Getter("SD1", [ct.Output("SD1_current", "Sensor current", "nA")])],
        project="live-project",
    )


def test_discovery_is_oldest_first_in_batches_and_continues_after_the_cursor(
    ct_db: str, make_backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ct_sync, "BATCH", 3)
    writers = [ct.write_measurement(ct_db, _one_d(f"m{i}"), seed=i) for i in range(7)]
    backend = make_backend(ct_db)
    items = list(backend.get_new_datasets(None))
    assert [i.key for i in items] == [w.key for w in writers]
    assert [i.cursor for i in items] == sorted(i.cursor for i in items)
    assert all(i.priority == float(i.cursor or 0) for i in items)
    assert list(backend.get_new_datasets(items[-1])) == []
    later = ct.write_measurement(ct_db, _one_d("later"))
    assert [i.key for i in backend.get_new_datasets(items[-1])] == [later.key]


def test_a_measurement_committed_after_a_newer_one_is_not_missed(
    ct_db: str, make_backend: Any
) -> None:
    first = ct.write_measurement(ct_db, _one_d("first"))
    backend = make_backend(ct_db)
    [item] = list(backend.get_new_datasets(None))
    # Set-up A registers a measurement (gets the next id) but commits only later; set-up B's
    # measurement gets a higher id and commits first.
    slow = psycopg.connect(ct_db)
    try:
        found = slow.execute(
            "INSERT INTO global_measurement_overview (uuid, exp_name, set_up, project, sample, "
            "creasted_by, start_time, sync_location, exp_data_location) VALUES "
            "(42, 'slow', 'A', 'p', 's', 'u', now(), 'New measurement_parameters', '') RETURNING id"
        ).fetchone()
        assert found is not None
        fast = ct.write_measurement(ct_db, _one_d("fast"))
        newer = list(backend.get_new_datasets(item))
        assert [i.key for i in newer] == [fast.key]
        assert int(found[0]) < (newer[0].cursor or 0)
        slow.commit()
    finally:
        slow.close()
    late = list(backend.get_new_datasets(newer[0]))
    assert [i.key for i in late] == ["42"]
    assert list(backend.get_new_datasets(newer[0])) == []
    assert first.key != "42"


def test_fingerprints_change_with_starred_name_and_growth(ct_db: str, make_backend: Any) -> None:
    done = ct.write_measurement(ct_db, _one_d("done"))
    running = ct.write_measurement(ct_db, _one_d("running"), points=3, complete=False)
    backend = make_backend(ct_db)
    items = {i.key: i.fingerprint for i in backend.get_new_datasets(None)}
    first = dict(backend.get_fingerprints())
    assert first == items
    assert dict(backend.get_fingerprints()) == first
    ct.set_starred(ct_db, done.uuid, True)
    starred = dict(backend.get_fingerprints())
    assert starred[done.key] != first[done.key]
    assert starred[running.key] == first[running.key]
    ct.set_starred(ct_db, done.uuid, True, exp_name="renamed")
    renamed = dict(backend.get_fingerprints())
    assert renamed[done.key] != starred[done.key]
    running.advance(2)
    grown = dict(backend.get_fingerprints())
    assert grown[running.key] != renamed[running.key]
    assert grown[done.key] == renamed[done.key]
    running.finish()
    assert dict(backend.get_fingerprints())[running.key] != grown[running.key]


def test_live_while_growing_then_stale_then_live_again_then_done(
    ct_db: str, make_backend: Any, tmp_path: Path
) -> None:
    writer = ct.write_measurement(ct_db, _one_d("live"), points=2, complete=False)
    backend: CoreToolsSync = make_backend(ct_db, stale_after=0.4)
    item = SyncItem(key=writer.key)
    state: dict[str, Any] = {}

    def sync(live: bool) -> dict[str, Any]:
        ctx = SyncContext(item, tmp_path / f"w{time.monotonic_ns()}", live=live, state=state)
        (backend.sync_dataset_live if live else backend.sync_dataset)(item, ctx)
        return ctx.state

    assert backend.check_live_dataset(item, state) is True  # never synced: live
    state = sync(True)
    assert state["written"] == [2, 4]
    assert backend.check_live_dataset(item, state) is True  # no growth yet, not stale
    writer.advance(3)
    assert backend.check_live_dataset(item, state) is True  # grew
    state = sync(True)
    assert state["written"] == [2, 10]
    time.sleep(0.5)
    assert backend.check_live_dataset(item, state) is False  # stale: synced as it is
    stale_state = sync(False)
    assert stale_state["changed_at"] == state["changed_at"]
    writer.advance(1)
    assert backend.check_live_dataset(item, stale_state) is True  # the crashed run came back
    writer.finish()
    assert backend.check_live_dataset(item, stale_state) is False  # completed


def test_agent_syncs_a_running_measurement_live_and_its_final_state(
    ct_db: str, tmp_path: Path
) -> None:
    ct.write_measurement(ct_db, _one_d("earlier"))
    crashed = ct.write_measurement(ct_db, _one_d("crashed"), points=4, complete=False)
    running = ct.write_measurement(ct_db, _one_d("running"), points=2, complete=False)
    harness = AgentHarness(tmp_path / "harness", options=fast_options())
    harness.register_backend(CoreToolsSync)
    harness.add_source(
        "ct",
        CoreToolsSync,
        {**ct.config_for(ct_db), "stale_after": 30},
        scope_mapping={"live-project": harness.scope_uuid},
    )
    try:
        harness.run(2)
        items = {i.natural_key: i for i in harness.items("ct")}
        assert getattr(items[running.key].state, "value", items[running.key].state) == "live"
        # The older unfinished run is not the newest: synced as it is.
        assert getattr(items[crashed.key].state, "value", items[crashed.key].state) == "synced"
        first = harness.server_files(items[running.key].dataset_uuid)
        running.advance(5)
        harness.run(2)
        grown = harness.server_files(items[running.key].dataset_uuid)
        assert len(grown) > len(first)
        running.finish()
        harness.run_until_idle(30)
        items = {i.natural_key: i for i in harness.items("ct")}
        assert getattr(items[running.key].state, "value", items[running.key].state) == "synced"
        assert len(harness.server_files(items[running.key].dataset_uuid)) > len(grown)
        # Starring a synced measurement re-syncs it with ranking 1.
        ct.set_starred(ct_db, running.uuid, True)
        harness.run_until_idle(30)
        record = harness.dataset(items[running.key].dataset_uuid)
        assert record.ranking == 1
        # The crashed run grows again (someone resumed it): it is synced again.
        before = len(harness.server_files(items[crashed.key].dataset_uuid))
        crashed.advance(3)
        harness.run_until_idle(30)
        assert len(harness.server_files(items[crashed.key].dataset_uuid)) > before
    finally:
        harness.close()
