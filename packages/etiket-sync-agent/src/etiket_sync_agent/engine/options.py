"""Tunable settings of the sync engine (all have sensible defaults)."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field

__all__ = ["EngineOptions"]


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class EngineOptions:
    """Settings of one agent process.

    Attributes:
        concurrency: datasets synced at the same time.
        file_concurrency: files of one dataset uploaded at the same time.
        part_concurrency: parts of one multipart upload in flight.
        live_interval: seconds between two syncs of a live dataset.
        scan_interval: seconds between reconciling scans of a file source (watchdog events trigger
            earlier, targeted scans).
        settle_time: a dataset folder modified more recently than this waits (still being written).
        fingerprint_interval: seconds between checks of database sources for metadata changes.
        backoff_base, backoff_cap: retry delays of failed items (exponential with jitter).
        idle_retries: with ``until_idle``, a failed item is retried this many times before the
            run counts it as failed and may end (a server blip must not fail a scripted sync).
        idle_retry_delay: with ``until_idle``, the backoff base of those retries (seconds; the
            smaller of this and ``backoff_base`` is used).
        source_retry: seconds before a source in error is tried again.
        idle_sleep: pause between iterations when nothing is due.
        lease_seconds: how long a claimed item is reserved for this worker.
        shutdown_grace: seconds in-flight work may take to finish after SIGINT/SIGTERM.
        use_watchdog: use file-system events as hints (sources with ``is_server_folder`` never do).
    """

    concurrency: int = 4
    file_concurrency: int = 4
    part_concurrency: int = 4
    live_interval: float = 30.0
    scan_interval: float = 60.0
    settle_time: float = 5.0
    fingerprint_interval: float = 60.0
    backoff_base: float = 10.0
    backoff_cap: float = 3600.0
    idle_retries: int = 2
    idle_retry_delay: float = 2.0
    source_retry: float = 30.0
    idle_sleep: float = 2.0
    lease_seconds: float = 900.0
    shutdown_grace: float = 8.0
    use_watchdog: bool = True
    worker_id: str = field(default_factory=_worker_id)
