"""Items a killed agent had in flight are synced by the next agent at once, not after the lease."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from etiket_sync_agent.engine.identity import dataset_uuid_for
from etiket_sync_agent.store import ItemSpec, open_store


def test_the_next_agent_takes_over_a_killed_agents_items_at_once(
    tmp_path: Path, server_process: Any, agent_cli: Any, make_tree: Any
) -> None:
    source = tmp_path / "source"
    keys = make_tree(source, 6)
    old = time.time() - 3600  # settled folders: synced in the first iteration
    for path in source.rglob("*"):
        os.utime(path, (old, old))
    agent_cli.log_in_with_folder_source(server_process, source)
    # What a killed agent leaves behind: discovered items, leased for 15 minutes by a worker
    # that no longer exists.
    store = open_store(f"sqlite:///{agent_cli.home / 'sync.db'}")
    try:
        record = store.get_source("tree")
        assert record is not None
        store.upsert_items(
            record.id,
            [ItemSpec(natural_key=k, dataset_uuid=dataset_uuid_for(record.uuid, k)) for k in keys],
        )
        leased = store.claim_items("gone-host:4242:deadbeef", 4, 900, [record.id])
        assert len(leased) == 4
    finally:
        store.close()

    # The run may take 120 s at most: far less than the 900 s leases it must not wait for.
    result = agent_cli("run", "--until-idle", timeout=120)
    assert "synced 6" in result.stdout, result.stdout + result.stderr
    assert "4 item(s) left in flight by a stopped agent are due again" in result.stderr
