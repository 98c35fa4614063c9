"""Several OS processes claiming from one store never get the same item."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from etiket_sync_agent.store import ItemSpec, TrackingStore

_WORKER = """
import json, os, sys, time
from etiket_sync_agent.store import TrackingStore
store = TrackingStore(sys.argv[1])
worker, claimed = sys.argv[2], []
open(sys.argv[3] + "." + worker, "w").close()
while not os.path.exists(sys.argv[3]):  # start together, so the workers really compete
    time.sleep(0.01)
while True:
    batch = store.claim_items(worker, 7, 600)
    if not batch:
        break
    for item in batch:
        claimed.append(item.id)
        store.mark_synced(item.id, worker)
print(json.dumps(claimed))
"""


def _run_workers(url: str, items: int, workers: int, go: Path) -> list[list[int]]:
    store = TrackingStore(url)
    source = store.add_source("s", "x", {}).id
    store.upsert_items(source, [ItemSpec(f"k{i}", f"u{i}") for i in range(items)])
    store.close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, url, f"w{n}", str(go)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(workers)
    ]
    deadline = time.monotonic() + 120
    while len(list(go.parent.glob(go.name + ".w*"))) < workers and time.monotonic() < deadline:
        time.sleep(0.02)
    go.touch()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0
        results.append(json.loads(out))
    return results


def _check(results: list[list[int]], items: int, *, require_overlap: bool = True) -> None:
    claimed = [i for r in results for i in r]
    assert len(claimed) == len(set(claimed)), "an item was claimed twice"
    assert len(claimed) == items
    if require_overlap:
        assert sum(1 for r in results if r) >= 2, "the workers did not overlap at all"


def test_postgresql_workers_never_share_an_item(pg_url: str, tmp_path: Path) -> None:
    _check(_run_workers(pg_url, 600, 3, tmp_path / "go"), 600)


def test_sqlite_workers_never_share_an_item(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sync.db'}"
    # SQLite serialises writers (BEGIN IMMEDIATE): one worker may legitimately win every claim,
    # so only "never twice, nothing lost" is required here.
    _check(_run_workers(url, 300, 2, tmp_path / "go"), 300, require_overlap=False)
    store = TrackingStore(url)
    assert store.count_by_state() == {"synced": 300}
    store.close()
