"""Engine benchmarks (issue: sync engine). Prints numbers and ratios against baselines measured in
the same run; asserts nothing.

1. Detection latency: a new dataset folder among N existing files (default 100,000): seconds until
   it is queued in the tracking store, with watchdog hints vs polling only (baseline).
   Target: < 2 s with watchdog.
2. Idle CPU: the agent watching that tree for 30 s, as % of one core, vs a bare watchdog observer on
   the same tree (baseline). Target: < 2 %.
3. Idle iteration: one loop iteration with 100,000 synced items in the store vs an empty store
   (baseline). Target: < 50 ms.

Usage: python tools/bench/bench_engine.py [--quick] [--files N] [--idle-seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from etiket_sync_agent.engine.agent import Agent
from etiket_sync_agent.engine.options import EngineOptions
from etiket_sync_agent.platform import EtiketClient
from etiket_sync_agent.store import ItemSpec, open_store

FILES_PER_DATASET = 50


def build_tree(root: Path, files: int) -> None:
    for d in range(max(1, files // FILES_PER_DATASET)):
        folder = root / f"group{d // 100:03d}" / f"ds{d:05d}"
        folder.mkdir(parents=True)
        (folder / "_QH_dataset_info.yaml").write_text(f"dataset_name: ds{d}\n")
        for f in range(FILES_PER_DATASET - 1):
            (folder / f"f{f:02d}.dat").write_bytes(b"x")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def discover_all(agent: Agent) -> None:
    """Run discovery of every source without syncing anything."""
    await agent._refresh_sources()
    for runtime in list(agent._sources.values()):
        await agent._discover(runtime)


def mark_all_synced(store: Any) -> None:
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE sync_items SET state = 'synced'"))


async def detection(
    root: Path, home: Path, server: Any, token: str, scope: str, use_watchdog: bool, label: str
) -> float:
    from etiket_sync_agent_folderbase import FolderBaseSync  # noqa: F401 - needs the backend

    store = open_store(f"sqlite:///{home / f'{label}.db'}")
    store.add_source("tree", "folderbase", {"root_directory": str(root)}, scope=scope)
    options = EngineOptions(
        use_watchdog=use_watchdog,
        scan_interval=10.0,
        settle_time=0.0,
        idle_sleep=0.05,
        concurrency=1,
    )
    async with EtiketClient(server.url, token) as client:
        agent = Agent(store, client, options)
        source_id = store.get_source("tree").id
        await discover_all(agent)  # the first full scan queues every existing dataset
        new = root / "group999" / f"new-{label}"
        start = time.perf_counter()
        new.mkdir(parents=True)
        (new / "_QH_dataset_info.yaml").write_text("dataset_name: new\n")
        key = new.relative_to(root).as_posix()
        while store.get_item_by_key(source_id, key) is None:
            await agent._sleep(0.01) if use_watchdog else await asyncio.sleep(0.01)
            for runtime in list(agent._sources.values()):
                await agent._discover(runtime)
            if time.perf_counter() - start > 60:
                break
        elapsed = time.perf_counter() - start
        await agent.close()
    store.close()
    return elapsed


async def idle_cpu(
    root: Path, home: Path, server: Any, token: str, scope: str, seconds: float
) -> tuple[float, float]:
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    observer = Observer()
    observer.schedule(FileSystemEventHandler(), str(root), recursive=True)
    observer.start()
    before = cpu_seconds()
    time.sleep(seconds)
    bare = (cpu_seconds() - before) / seconds * 100
    observer.stop()
    observer.join()

    store = open_store(f"sqlite:///{home / 'idle.db'}")
    store.add_source("tree", "folderbase", {"root_directory": str(root)}, scope=scope)
    async with EtiketClient(server.url, token) as client:
        agent = Agent(store, client, EngineOptions(concurrency=1))
        await discover_all(agent)
        mark_all_synced(store)  # an agent that has caught up and now only watches
        before = cpu_seconds()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            report = await agent.iteration()
            if report.claimed == 0:
                await agent._sleep(agent.options.idle_sleep)
        ours = (cpu_seconds() - before) / seconds * 100
        await agent.close()
    store.close()
    return ours, bare


async def idle_iteration(
    home: Path, server: Any, token: str, scope: str, items: int
) -> tuple[float, float]:
    results = []
    for count in (0, items):
        store = open_store(f"sqlite:///{home / f'iter{count}.db'}")
        empty = home / f"empty{count}"
        empty.mkdir()
        record = store.add_source("tree", "folderbase", {"root_directory": str(empty)}, scope=scope)
        if count:
            specs = [
                ItemSpec(
                    natural_key=f"k{i}",
                    dataset_uuid=f"00000000-0000-0000-0000-{i:012d}",
                    path=f"k{i}",
                    fingerprint="f",
                )
                for i in range(count)
            ]
            store.upsert_items(record.id, specs)
            mark_all_synced(store)
        async with EtiketClient(server.url, token) as client:
            agent = Agent(store, client, EngineOptions(concurrency=4, use_watchdog=False))
            await agent.iteration()  # warm-up: first scan
            samples = []
            for _ in range(20):
                start = time.perf_counter()
                await agent.iteration()
                samples.append(time.perf_counter() - start)
            await agent.close()
        store.close()
        samples.sort()
        results.append(samples[len(samples) // 2] * 1000)
    return results[1], results[0]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    args = parser.parse_args()
    if args.quick:
        args.files, args.items, args.idle_seconds = 10_000, 10_000, 5.0
    from etiket_local_server.testing import start_server

    base = Path(tempfile.mkdtemp(prefix="etiket-bench-engine-"))
    try:
        server = start_server(base / "server")
        token = server.create_token("bench")
        scope = server.create_scope("bench")
        root = base / "tree"
        t0 = time.perf_counter()
        build_tree(root, args.files)
        print(f"built a tree of {args.files:,} files in {time.perf_counter() - t0:.1f} s")
        home = base / "home"
        home.mkdir()
        os.environ["ETIKET_SYNC_HOME"] = str(home)
        watch = asyncio.run(detection(root, home, server, token, scope, True, "watch"))
        poll = asyncio.run(detection(root, home, server, token, scope, False, "poll"))
        ours, bare = asyncio.run(idle_cpu(root, home, server, token, scope, args.idle_seconds))
        full, empty = asyncio.run(idle_iteration(home, server, token, scope, args.items))
        server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print()
    print(f"{'benchmark':<48}{'ours':>12}{'baseline':>12}{'ratio':>9}  target")
    print(
        f"{'new folder queued (s), watchdog vs polling':<48}{watch:>12.3f}{poll:>12.3f}"
        f"{watch / poll if poll else float('nan'):>9.3f}  < 2 s"
    )
    print(
        f"{'idle CPU (% of a core), agent vs bare watchdog':<48}{ours:>12.2f}{bare:>12.2f}"
        f"{(ours / bare) if bare else float('inf'):>9.1f}  < 2 %"
    )
    print(
        f"{f'idle iteration (ms), {args.items:,} items vs empty':<48}{full:>12.2f}{empty:>12.2f}"
        f"{full / empty if empty else float('nan'):>9.2f}  < 50 ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
