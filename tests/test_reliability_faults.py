"""A failing server (errors, dropped connections, an outage): everything syncs once it recovers."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from etiket_sync_agent.testing import agent_harness, fast_options, tree_digest

OUTAGE = float(os.environ.get("ETIKET_OUTAGE_SECONDS", "4"))


def _folderbase() -> Any:
    from etiket_sync_agent_folderbase import FolderBaseSync

    return FolderBaseSync


def _versions(harness: Any) -> Counter[tuple[str, str]]:
    versions: Counter[tuple[str, str]] = Counter()
    for ds in harness.datasets():
        for f in ds.files:
            versions[(str(ds.uuid), f.name)] += 1
    return versions


def _sync_through_faults(tmp_path: Path, make_tree: Any, faults: Any, count: int) -> None:
    source = tmp_path / "source"
    keys = make_tree(source, count, payload=5_000)
    before = tree_digest(source)
    with agent_harness(
        tmp_path / "h", options=fast_options(backoff_base=0.2, backoff_cap=1.0, concurrency=8)
    ) as harness:
        harness.add_source("tree", _folderbase(), {"root_directory": str(source)})
        harness.server.set_faults(faults)
        harness.run_until_idle(max_iterations=400)
        from etiket_local_server.testing import FaultConfig

        harness.server.set_faults(FaultConfig())
        counts = harness.store.count_by_state()
        # Items that failed during the faults are retried after their backoff: keep going.
        for _ in range(200):
            if counts.get("synced", 0) == len(keys):
                break
            harness.run(1)
            counts = harness.store.count_by_state()
        assert counts.get("synced", 0) == len(keys), counts
        datasets = harness.datasets()
        assert len(datasets) == len(keys)
        duplicated = {k: n for k, n in _versions(harness).items() if n != 1}
        assert not duplicated, duplicated
        stats = harness.server.stats()
        assert stats.faults_injected > 0, "the fault injection did not trigger"
    assert tree_digest(source) == before


def test_five_percent_errors_and_dropped_connections(tmp_path: Path, make_tree: Any) -> None:
    from etiket_local_server.testing import FaultConfig

    _sync_through_faults(
        tmp_path, make_tree, FaultConfig(error_rate=0.05, drop_rate=0.05, seed=7), 60
    )


def test_an_outage_then_recovery(tmp_path: Path, make_tree: Any) -> None:
    from etiket_local_server.testing import FaultConfig

    _sync_through_faults(tmp_path, make_tree, FaultConfig(outage=(0.0, OUTAGE), seed=3), 30)


@pytest.mark.slow
def test_a_thirty_second_outage(tmp_path: Path, make_tree: Any) -> None:
    from etiket_local_server.testing import FaultConfig

    _sync_through_faults(tmp_path, make_tree, FaultConfig(outage=(0.5, 30.0), seed=5), 200)
