"""``etiket-sync demo``: the whole agent on an embedded default, no account or server needed.

Starts the local eTiKeT server on loopback, creates a token and a scope, generates realistic sample
sources with every installed backend that ships a demo generator (``<package>.testing.
make_demo_source``), adds them as sources, syncs until everything is done with a progress display,
and prints a summary per source and the URL of the server's page. Exit code 0 only if everything
synced. The demo uses its own agent home, never the user's tracking store or credentials.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from etiket_sync_agent.cli._common import console, fail
from etiket_sync_agent.connectors.base import ScopePolicy, SyncSourceBase
from etiket_sync_agent.connectors.registry import list_backends

__all__ = ["demo"]


@dataclass
class _DemoSource:
    name: str
    backend: type[SyncSourceBase]
    config: dict[str, Any]
    started: float = 0.0
    finished: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _demo_generators(root: Path) -> tuple[list[_DemoSource], list[str]]:
    sources: list[_DemoSource] = []
    skipped: list[str] = []
    for info in list_backends():
        if not info.usable or info.cls is None:
            skipped.append(f"{info.name}: {info.status.value}")
            continue
        module_name = info.cls.__module__.split(".")[0] + ".testing"
        try:
            module = importlib.import_module(module_name)
            make = module.make_demo_source
        except (ImportError, AttributeError):
            skipped.append(f"{info.name}: ships no demo data")
            continue
        folder = root / info.name
        folder.mkdir(parents=True, exist_ok=True)
        try:
            config = make(folder)
        except Exception as exc:  # e.g. core-tools without a reachable PostgreSQL
            skipped.append(f"{info.name}: demo data not available ({exc})")
            continue
        sources.append(_DemoSource(f"demo-{info.name}", info.cls, dict(config)))
    return sources, skipped


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the server, agent home and sample data go (default: a temp dir).",
)
@click.option("--keep", is_flag=True, help="Keep the data dir afterwards (temp dirs are removed).")
@click.option(
    "--serve",
    is_flag=True,
    help="Keep the local server running after the sync so you can browse it (Ctrl-C).",
)
@click.option(
    "--timeout", default=600.0, show_default=True, help="Give up after this many seconds."
)
def demo(data_dir: Path | None, keep: bool, serve: bool, timeout: float) -> None:
    """Run the agent end to end on a local server with generated sample data."""
    try:
        from etiket_local_server.testing import start_server
    except ImportError:
        fail(
            "the demo needs the local eTiKeT server: pip install etiket-local-server "
            "(in this repository: tools/etiket-local-server)"
        )
    from etiket_sync_agent.connectors.config import config_to_storage, parse_config
    from etiket_sync_agent.engine.options import EngineOptions
    from etiket_sync_agent.platform import EtiketClient
    from etiket_sync_agent.store import open_store

    temporary = data_dir is None
    base = Path(tempfile.mkdtemp(prefix="etiket-demo-")) if data_dir is None else data_dir
    base.mkdir(parents=True, exist_ok=True)
    home = base / "agent-home"
    home.mkdir(exist_ok=True)
    os.environ["ETIKET_SYNC_HOME"] = str(home)  # never touch the user's real agent state
    console.print(f"[bold]etiket-sync demo[/] in {base}")
    server = start_server(base / "server")
    try:
        token = server.create_token("demo")
        scope_uuid = server.create_scope("demo")
        console.print(f"local eTiKeT server at [link={server.url}]{server.url}[/] (scope 'demo')")
        sources, skipped = _demo_generators(base / "sources")
        for note in skipped:
            console.print(f"[yellow]skipping[/] {note}")
        if not sources:
            fail("no backend with demo data is installed")
        store = open_store(f"sqlite:///{home / 'sync.db'}")
        for src in sources:
            identifiers = src.config.pop("_demo_scope_identifiers", None) or []
            config = parse_config(src.backend.config_class, src.config)
            scope = None if src.backend.scope_policy is ScopePolicy.DISABLED else scope_uuid
            store.add_source(src.name, src.backend.name, config_to_storage(config), scope=scope)
            for identifier in identifiers:
                store.set_scope_mapping(src.name, identifier, scope_uuid)
        options = EngineOptions(
            settle_time=0.5,
            scan_interval=5.0,
            live_interval=2.0,
            idle_sleep=0.2,
            backoff_base=1.0,
            backoff_cap=5.0,
            use_watchdog=True,
        )
        ok = asyncio.run(
            _sync_with_progress(store, EtiketClient(server.url, token), options, sources, timeout)
        )
        _print_summary(store, sources)
        console.print(f"browse the result: [link={server.url}]{server.url}[/]")
        store.close()
        if serve:
            console.print("serving; press Ctrl-C to stop")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    finally:
        server.stop()
        if temporary and not keep:
            shutil.rmtree(base, ignore_errors=True)
    if not ok:
        raise SystemExit(1)


async def _sync_with_progress(
    store: Any, client: Any, options: Any, sources: list[_DemoSource], timeout: float
) -> bool:
    from etiket_sync_agent.engine.agent import Agent

    start = time.monotonic()
    for src in sources:
        src.started = start
    async with client:
        agent = Agent(store, client, options)
        try:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                tasks = {s.name: progress.add_task(s.name, total=None) for s in sources}
                while time.monotonic() - start < timeout:
                    await agent.iteration()
                    for src in sources:
                        record = store.get_source(src.name)
                        counts = store.count_by_state(record.id)
                        total = sum(counts.values())
                        done = counts.get("synced", 0) + counts.get("failed", 0)
                        progress.update(tasks[src.name], total=max(total, 1), completed=done)
                        if total and done == total and src.finished is None:
                            src.finished = time.monotonic()
                    if agent.is_idle():
                        break
        finally:
            await agent.close()
    counts = store.count_by_state()
    return bool(counts.get("synced")) and not any(
        counts.get(s, 0) for s in ("failed", "new", "syncing", "live", "waiting")
    )


def _print_summary(store: Any, sources: list[_DemoSource]) -> None:
    table = Table(title="Demo summary")
    for column in ("source", "backend", "datasets", "failed", "files", "MB", "seconds"):
        table.add_column(column, justify="right" if column not in ("source", "backend") else "left")
    for src in sources:
        record = store.get_source(src.name)
        counts = store.count_by_state(record.id)
        files, size = store.file_totals(record.id)
        seconds = (src.finished or time.monotonic()) - src.started
        table.add_row(
            src.name,
            src.backend.name,
            str(counts.get("synced", 0)),
            str(counts.get("failed", 0)),
            str(files),
            f"{size / 1e6:.2f}",
            f"{seconds:.1f}",
        )
    console.print(table)
