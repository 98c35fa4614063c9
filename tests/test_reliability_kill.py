"""kill -9 of the agent at random moments: nothing lost, nothing duplicated, store intact."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from etiket_sync_agent.testing import tree_digest

ROUNDS = int(os.environ.get("ETIKET_KILL_ROUNDS", "20"))
DATASETS = int(os.environ.get("ETIKET_KILL_DATASETS", "200"))


def _server_state(server: Any) -> tuple[list[dict[str, object]], Counter[tuple[str, str]]]:
    headers = {"Authorization": f"Bearer {server.token}"}
    datasets: list[dict[str, object]] = []
    offset = 0
    while True:
        page = httpx.post(
            f"{server.url}/api/v2/datasets/search/?offset={offset}&limit=500",
            json={"scope_uuids": [server.scope_uuid]},
            headers=headers,
            timeout=30,
        ).json()
        datasets.extend(page)
        if len(page) < 500:
            break
        offset += len(page)
    versions: Counter[tuple[str, str]] = Counter()
    for ds in datasets:
        for f in ds["files"]:  # type: ignore[union-attr]
            versions[(str(ds["uuid"]), str(f["name"]))] += 1  # type: ignore[index]
    return datasets, versions


def _kill_rounds(
    tmp_path: Path, server_process: Any, agent_cli: Any, make_tree: Any, rounds: int
) -> None:
    source = tmp_path / "source"
    keys = make_tree(source, DATASETS)
    before = tree_digest(source)
    agent_cli.log_in_with_folder_source(server_process, source)
    rng = random.Random(1234)
    for _ in range(rounds):
        proc = agent_cli.popen("run")
        time.sleep(rng.uniform(0.3, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    final = agent_cli("run", "--until-idle", check=False, timeout=600)
    if final.returncode != 0:
        errors = agent_cli("errors", check=False)
        pytest.fail(
            f"run --until-idle exited {final.returncode}\n--- stdout\n{final.stdout}\n"
            f"--- stderr (last 4000 chars)\n{final.stderr[-4000:]}\n"
            f"--- etiket-sync errors\n{errors.stdout}{errors.stderr}"
        )

    with sqlite3.connect(agent_cli.home / "sync.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    datasets, versions = _server_state(server_process)
    assert len(datasets) == len(keys), "a dataset is missing or duplicated on the server"
    assert len({d["uuid"] for d in datasets}) == len(datasets)
    duplicated = {k: n for k, n in versions.items() if n != 1}
    assert not duplicated, f"file versions uploaded more than once: {duplicated}"
    for ds in datasets:
        statuses = {f["status"] for f in ds["files"]}  # type: ignore[union-attr,index]
        assert statuses == {"secured"}, f"{ds['name']}: {statuses}"
        names = {f["name"] for f in ds["files"]}  # type: ignore[union-attr,index]
        assert names == {"readme.txt", "data.bin"}, names
    assert tree_digest(source) == before, "the source tree was modified"


def test_kill_9_at_random_moments_loses_and_duplicates_nothing(
    tmp_path: Path, server_process: Any, agent_cli: Any, make_tree: Any
) -> None:
    _kill_rounds(tmp_path, server_process, agent_cli, make_tree, min(ROUNDS, 20))


@pytest.mark.slow
def test_kill_9_many_rounds(
    tmp_path: Path, server_process: Any, agent_cli: Any, make_tree: Any
) -> None:
    """The long version for ``nox -s faults`` (ETIKET_KILL_ROUNDS rounds, default 100 there)."""
    _kill_rounds(tmp_path, server_process, agent_cli, make_tree, ROUNDS)
