"""The tracking store on SQLite and PostgreSQL: sources, upserts, the item state machine."""

from __future__ import annotations

import datetime as dt

import pytest

from etiket_sync_agent.store import (
    DuplicateSourceError,
    InvalidTransition,
    ItemSpec,
    ItemState,
    TrackingStore,
)


def _spec(key: str, fingerprint: str | None = "f1", priority: float = 0.0) -> ItemSpec:
    return ItemSpec(
        natural_key=key,
        dataset_uuid=f"uuid-{key}",
        fingerprint=fingerprint,
        priority=priority,
        extra={"k": key},
    )


def _source(store: TrackingStore) -> int:
    return store.add_source("src", "folderbase", {"root_directory": "/data"}, scope="s").id


def test_sources_round_trip(store: TrackingStore) -> None:
    record = store.add_source("a", "qcodes", {"database_path": "/x.db"}, scope="scope-1")
    assert len(record.uuid) == 36
    with pytest.raises(DuplicateSourceError):
        store.add_source("a", "qcodes", {})
    store.set_scope_mapping("a", "projA", "scope-2")
    store.set_source_status("a", "error", "disk gone")
    again = store.get_source("a")
    assert again is not None
    assert again.scope_mapping == {"projA": "scope-2"}
    assert (again.status, again.last_error) == ("error", "disk gone")
    assert [s.name for s in store.list_sources()] == ["a"]
    assert store.remove_source("a") is True
    assert store.get_source("a") is None


def test_upsert_is_idempotent_and_detects_changes(store: TrackingStore) -> None:
    source = _source(store)
    assert store.upsert_items(source, [_spec("a"), _spec("b")]).inserted == 2
    assert store.upsert_items(source, [_spec("a"), _spec("a")]).inserted == 0
    assert store.count_by_state(source) == {"new": 2}
    [claimed] = store.claim_items("w", 1, 60, [source])
    store.mark_synced(claimed.id, "w", fingerprint=claimed.fingerprint)
    result = store.upsert_items(source, [_spec(claimed.natural_key, fingerprint="f2")])
    assert (result.inserted, result.changed) == (0, 1)
    item = store.get_item(claimed.id)
    assert item is not None
    assert item.state is ItemState.NEW
    assert item.extra == {"k": claimed.natural_key}


def test_every_transition(store: TrackingStore, clock: object) -> None:
    source = _source(store)
    store.upsert_items(
        source, [_spec(k, priority=p) for k, p in (("a", 5), ("b", 4), ("c", 3), ("d", 2))]
    )
    claimed = store.claim_items("w", 4, 60, [source])
    assert [c.natural_key for c in claimed] == ["a", "b", "c", "d"], "priority order"
    assert all(c.state is ItemState.SYNCING for c in claimed)
    a, b, c, d = (x.id for x in claimed)
    store.mark_synced(a, "w", fingerprint="f1")
    store.mark_live(b, "w", next_sync_in=30)
    when = store.mark_failed(c, "w", "boom", "Traceback ...", backoff_base=10, backoff_cap=100)
    store.mark_waiting(d, "no scope mapping")
    assert store.count_by_state(source) == {"synced": 1, "live": 1, "failed": 1, "waiting": 1}
    assert 7.5 <= (when - clock.now).total_seconds() <= 10  # type: ignore[attr-defined]
    # Not due yet: nothing to claim.
    assert store.claim_items("w", 10, 60, [source]) == []
    clock.advance(31)  # type: ignore[attr-defined]
    due = store.claim_items("w", 10, 60, [source])
    assert {x.natural_key for x in due} == {"b", "c"}
    # Outcomes require the item to be syncing and leased by the caller.
    with pytest.raises(InvalidTransition):
        store.mark_synced(a, "w")
    with pytest.raises(InvalidTransition):
        store.mark_synced(due[0].id, "someone-else")
    # Failed again: the backoff doubles.
    failed = next(x for x in due if x.natural_key == "c")
    when = store.mark_failed(failed.id, "w", "boom", None, backoff_base=10, backoff_cap=100)
    assert 15 <= (when - clock.now).total_seconds() <= 20  # type: ignore[attr-defined]
    # Live → synced at the end.
    live = next(x for x in due if x.natural_key == "b")
    store.mark_synced(live.id, "w")
    # Waiting is released by a scope mapping.
    store.set_scope_mapping("src", "projX", "scope")
    assert store.get_item(d).state is ItemState.NEW  # type: ignore[union-attr]
    # Shutdown gives items back.
    [again] = store.claim_items("w", 1, 60, [source])
    store.release_lease(again.id, "w")
    assert store.get_item(again.id).state is ItemState.NEW  # type: ignore[union-attr]
    errors = store.list_errors()
    assert [(e.natural_key, e.source_name) for e in errors] == [("c", "src")]
    assert store.item_logs(failed.id)[0].message == "boom"


def test_expired_leases_are_claimed_again(store: TrackingStore, clock: object) -> None:
    source = _source(store)
    store.upsert_items(source, [_spec("a")])
    [first] = store.claim_items("crashed-worker", 1, 60, [source])
    assert store.claim_items("w2", 1, 60, [source]) == []
    clock.advance(61)  # type: ignore[attr-defined]
    [second] = store.claim_items("w2", 1, 60, [source])
    assert second.id == first.id
    with pytest.raises(InvalidTransition):
        store.mark_synced(first.id, "crashed-worker")
    store.mark_synced(second.id, "w2")


def test_changes_while_syncing_send_the_item_back(store: TrackingStore) -> None:
    source = _source(store)
    store.upsert_items(source, [_spec("a", "f1")])
    [item] = store.claim_items("w", 1, 60, [source])
    store.upsert_items(source, [_spec("a", "f2")])  # the source changed during the sync
    store.mark_synced(item.id, "w", fingerprint="f1")
    assert store.get_item(item.id).state is ItemState.NEW  # type: ignore[union-attr]


def test_per_source_limit_keeps_claims_fair(store: TrackingStore) -> None:
    big = store.add_source("big", "x", {}).id
    small = store.add_source("small", "x", {}).id
    store.upsert_items(big, [_spec(f"b{i}", priority=100) for i in range(50)])
    store.upsert_items(small, [_spec("s0", priority=0)])
    claimed = store.claim_items("w", 4, 60, [big, small], per_source_limit=2)
    assert sum(1 for c in claimed if c.source_id == small) == 1


def test_file_versions_and_resume_data(store: TrackingStore) -> None:
    source = _source(store)
    store.upsert_items(source, [_spec("a")])
    [item] = store.claim_items("w", 1, 60, [source])
    planned = store.plan_file_version(
        item.id,
        name="data.h5",
        filename="data.h5",
        file_uuid="fu",
        version_id=1000,
        size=10,
        mtime_ns=5,
        md5="0" * 32,
    )
    store.set_upload(planned.id, "up-1", 8 * 1024 * 1024)
    store.add_finished_part(planned.id, 1, "etag1")
    store.add_finished_part(planned.id, 2, "etag2")
    latest = store.get_latest_file(item.id, "data.h5")
    assert latest is not None
    assert (latest.status, latest.upload_id, latest.finished_parts) == (
        "uploading",
        "up-1",
        {"1": "etag1", "2": "etag2"},
    )
    store.mark_file_done(planned.id)
    store.plan_file_version(
        item.id,
        name="data.h5",
        filename="data.h5",
        file_uuid="fu",
        version_id=2000,
        size=11,
        mtime_ns=6,
        md5="1" * 32,
    )
    assert store.get_latest_file(item.id, "data.h5").version_id == 2000  # type: ignore[union-attr]
    assert len(store.list_files(item.id)) == 2
    assert store.file_totals(source) == (1, 10)


def test_agent_status_and_iterations(store: TrackingStore) -> None:
    assert store.agent_status().iteration == 0
    assert store.bump_iteration() == 1
    assert store.bump_iteration() == 2
    store.heartbeat("running")
    status = store.agent_status()
    assert status.state == "running"
    assert status.heartbeat is not None
    assert status.heartbeat.tzinfo is dt.timezone.utc


def test_many_items(store: TrackingStore) -> None:
    source = _source(store)
    result = store.upsert_items(source, [_spec(f"k{i}") for i in range(20_000)])
    assert result.inserted == 20_000
    assert store.count_by_state(source) == {"new": 20_000}
    assert len(store.claim_items("w", 100, 60, [source])) == 100


def test_release_all_leases_makes_a_killed_agents_items_due_at_once(store: TrackingStore) -> None:
    source = _source(store)
    store.upsert_items(source, [_spec("a"), _spec("b"), _spec("c")])
    ghost = store.claim_items("host:1:dead", 2, 900, [source])
    assert len(ghost) == 2
    # Without the release only the unleased item is due; the others wait out the 900 s lease.
    assert [r.natural_key for r in store.claim_items("peek", 5, 1, [source])] == ["c"]
    store.release_lease(store.get_item_by_key(source, "c").id, "peek")  # type: ignore[union-attr]
    assert store.release_all_leases() == 2
    assert store.count_by_state(source) == {"new": 3}
    again = store.claim_items("me", 5, 900, [source])
    assert sorted(r.natural_key for r in again) == ["a", "b", "c"]
