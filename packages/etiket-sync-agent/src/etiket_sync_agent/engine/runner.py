"""Running the agent as a process: lock, credentials, signals, the asyncio loop."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from etiket_sync_agent import paths
from etiket_sync_agent.engine.agent import Agent
from etiket_sync_agent.engine.lock import AgentLock
from etiket_sync_agent.engine.options import EngineOptions
from etiket_sync_agent.errors import EtiketSyncError
from etiket_sync_agent.platform import EtiketClient, load_credentials
from etiket_sync_agent.store import ItemState, TrackingStore, open_store

__all__ = ["NotLoggedInError", "RunResult", "run_agent"]

_log = logging.getLogger("etiket_sync_agent.engine")


class NotLoggedInError(EtiketSyncError):
    """No server credentials stored."""


@dataclass
class RunResult:
    """Outcome of :func:`run_agent`."""

    iterations: int
    counts: dict[str, int]
    interrupted: bool

    @property
    def failed(self) -> int:
        return self.counts.get(ItemState.FAILED.value, 0)


def make_client() -> EtiketClient:
    """A client for the stored credentials (``etiket-sync login``)."""
    from etiket_sync_agent.platform.auth import client_for

    credentials = load_credentials(paths.credentials_path())
    if credentials is None:
        raise NotLoggedInError(
            "not logged in: run 'etiket-sync login --url URL' first "
            "(or 'etiket-sync demo' for a local server)"
        )
    return client_for(credentials, paths.credentials_path())


async def run_agent_async(
    store: TrackingStore,
    client: EtiketClient,
    *,
    iterations: int = 0,
    until_idle: bool = False,
    options: EngineOptions | None = None,
    install_signal_handlers: bool = True,
) -> RunResult:
    """Run the engine on an open store and client until done or stopped by a signal."""
    agent = Agent(store, client, options)
    loop = asyncio.get_running_loop()
    interrupted = False

    def on_signal() -> None:
        nonlocal interrupted
        interrupted = True
        _log.info("stop requested: finishing in-flight work")
        agent.request_stop()

    installed: list[signal.Signals] = []
    if install_signal_handlers:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, on_signal)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # Windows or not the main thread: KeyboardInterrupt still works
    try:
        done = await agent.run(iterations, until_idle=until_idle)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await agent.close()
    return RunResult(done, store.count_by_state(), interrupted)


def run_agent(
    iterations: int = 0,
    *,
    until_idle: bool = False,
    options: EngineOptions | None = None,
    store_url: str | None = None,
) -> RunResult:
    """Open the tracking store, take the single-instance lock and run the engine.

    ``iterations`` = 0 runs until SIGINT/SIGTERM (or, with ``until_idle``, until nothing is left).
    """
    store = open_store(store_url)
    lock = AgentLock(paths.lock_path()) if store.is_sqlite else None
    if lock is not None:
        lock.acquire()
    try:
        if lock is not None:
            # We are the only agent on this store: whatever is still "syncing" was in flight in
            # an agent that was killed (kill -9, power cut) and must not wait for its lease.
            released = store.release_all_leases()
            if released:
                _log.warning("%d item(s) left in flight by a stopped agent are due again", released)
        client = make_client()

        async def main() -> RunResult:
            async with client:
                return await run_agent_async(
                    store, client, iterations=iterations, until_idle=until_idle, options=options
                )

        return asyncio.run(main())
    finally:
        if lock is not None:
            lock.release()
        store.close()
