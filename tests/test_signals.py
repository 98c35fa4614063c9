"""SIGINT/SIGTERM stop the agent cleanly within 10 s, and a second agent is refused meanwhile."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from etiket_sync_agent.store import open_store


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signals_stop_the_agent_within_ten_seconds(
    tmp_path: Path, server_process: Any, agent_cli: Any, make_tree: Any, sig: signal.Signals
) -> None:
    source = tmp_path / "source"
    make_tree(source, 40, payload=200_000)
    agent_cli.log_in_with_folder_source(server_process, source)
    proc = agent_cli.popen("run")
    try:
        store_url = f"sqlite:///{agent_cli.home / 'sync.db'}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until it is busy syncing
            store = open_store(store_url)
            counts = store.count_by_state()
            store.close()
            if counts.get("synced", 0) >= 1:
                break
            time.sleep(0.1)
        second = agent_cli("run", "--once", check=False)
        assert second.returncode != 0
        assert "already running" in second.stderr
        proc.send_signal(sig)
        start = time.monotonic()
        code = proc.wait(timeout=15)
        assert time.monotonic() - start < 10
        assert code == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    store = open_store(f"sqlite:///{agent_cli.home / 'sync.db'}")
    assert store.agent_status().state == "stopped"
    assert store.count_by_state().get("syncing", 0) == 0, "in-flight items were given back"
    store.close()
    final = agent_cli("run", "--until-idle", check=False, timeout=300)
    assert final.returncode == 0, final.stderr
