"""Request counters and test-only fault injection (off unless a :class:`FaultConfig` turns it on).

Faults apply to API requests (``/api/...``) and store PUTs (``/_store/put/...``); an outage applies
to every request. Half of the dropped connections are dropped *before* the request is handled, the
other half *after* it was handled (the client then does not know that it succeeded), which is what
makes retries and idempotency observable.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from etiket_local_server.errors import error_response

__all__ = ["RAW_SEND_KEY", "FaultConfig", "FaultInjector", "FaultMiddleware", "ServerStats"]

RAW_SEND_KEY = "etiket_local_server.raw_send"
"""Scope key under which the app keeps the ASGI server's own ``send`` callable."""


@dataclass
class FaultConfig:
    """What to break, and how often. Every field is off by default.

    Attributes:
        error_rate: fraction of API requests and PUTs answered ``500``.
        drop_rate: fraction of API requests and PUTs whose connection is closed without a response.
        stall_seconds: how long a stalled request waits before it is handled.
        stall_rate: fraction of API requests and PUTs that stall.
        token_ttl_seconds: API tokens are rejected (401) once older than this.
        outage: ``(start, duration)`` in seconds after the config took effect: ``503`` for every
            request in that window.
        seed: seed of the random generator (reproducible fault sequences).
    """

    error_rate: float = 0.0
    drop_rate: float = 0.0
    stall_seconds: float = 0.0
    stall_rate: float = 0.0
    token_ttl_seconds: float | None = None
    outage: tuple[float, float] | None = None
    seed: int | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first out-of-range field."""
        for name in ("error_rate", "drop_rate", "stall_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FaultConfig.{name} must be within [0, 1], got {value}")
        if self.stall_seconds < 0:
            raise ValueError(f"FaultConfig.stall_seconds must be >= 0, got {self.stall_seconds}")
        if self.token_ttl_seconds is not None and self.token_ttl_seconds < 0:
            raise ValueError("FaultConfig.token_ttl_seconds must be >= 0")
        if self.outage is not None and (self.outage[0] < 0 or self.outage[1] < 0):
            raise ValueError(f"FaultConfig.outage must be non-negative, got {self.outage}")


@dataclass
class ServerStats:
    """Counters since the server started (a snapshot: later requests do not change it).

    Attributes:
        api_requests: requests to ``/api/...`` (including faulted ones).
        put_requests: PUTs to presigned store URLs (including faulted ones).
        puts_by_version: PUT count per ``(file_uuid, version_id)``.
        puts_by_part: PUT count per ``(file_uuid, version_id, part_number)`` (single part = 1).
        api_by_route: request count per ``"METHOD /path"``.
        faults: injected faults by kind: ``error``, ``drop_before``, ``drop_after``, ``stall``,
            ``outage``, ``token_expired``.
    """

    api_requests: int = 0
    put_requests: int = 0
    puts_by_version: Counter[tuple[str, int]] = field(default_factory=Counter)
    puts_by_part: Counter[tuple[str, int, int]] = field(default_factory=Counter)
    api_by_route: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)

    @property
    def faults_injected(self) -> int:
        """Total number of injected faults of every kind."""
        return sum(self.faults.values())

    def copy(self) -> ServerStats:
        """A deep copy."""
        return ServerStats(
            api_requests=self.api_requests,
            put_requests=self.put_requests,
            puts_by_version=Counter(self.puts_by_version),
            puts_by_part=Counter(self.puts_by_part),
            api_by_route=Counter(self.api_by_route),
            faults=Counter(self.faults),
        )


class FaultInjector:
    """Holds the current fault config and the counters; shared by the middleware and the app."""

    def __init__(self, faults: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self._stats = ServerStats()
        self.config = FaultConfig()
        self._random = random.Random()
        self._since = time.monotonic()
        self.set(faults or FaultConfig())

    def set(self, faults: FaultConfig) -> None:
        """Replace the fault config; an outage window counts from now."""
        faults.validate()
        with self._lock:
            self.config = replace(faults)
            self._random = random.Random(faults.seed)
            self._since = time.monotonic()

    def stats(self) -> ServerStats:
        """A snapshot of the counters."""
        with self._lock:
            return self._stats.copy()

    def reset_stats(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._stats = ServerStats()

    def count_fault(self, kind: str) -> None:
        """Count one injected fault."""
        with self._lock:
            self._stats.faults[kind] += 1

    def count_request(self, *, api_route: str | None = None) -> None:
        """Count an API request (route ``"METHOD /path"``)."""
        with self._lock:
            if api_route is not None:
                self._stats.api_requests += 1
                self._stats.api_by_route[api_route] += 1

    def count_put(self, file_uuid: str, version_id: int, part_number: int) -> None:
        """Count a PUT to a presigned URL."""
        with self._lock:
            self._stats.put_requests += 1
            self._stats.puts_by_version[(file_uuid, version_id)] += 1
            self._stats.puts_by_part[(file_uuid, version_id, part_number)] += 1

    def in_outage(self) -> bool:
        """Whether now falls in the configured outage window."""
        outage = self.config.outage
        if outage is None:
            return False
        elapsed = time.monotonic() - self._since
        return outage[0] <= elapsed < outage[0] + outage[1]

    def roll(self, rate: float) -> bool:
        """True with probability ``rate``."""
        if rate <= 0.0:
            return False
        with self._lock:
            return self._random.random() < rate

    def token_expired(self, age_seconds: float) -> bool:
        """Whether a token of this age is past the configured TTL (and count it)."""
        ttl = self.config.token_ttl_seconds
        if ttl is not None and age_seconds > ttl:
            self.count_fault("token_expired")
            return True
        return False


def _connection_of(send: Send) -> Any:
    """uvicorn's request cycle behind ``send`` (None when the server is not uvicorn)."""
    cycle: Any = getattr(send, "__self__", None)
    if getattr(cycle, "transport", None) is None or not hasattr(cycle, "disconnected"):
        return None
    return cycle


async def _drop_connection(cycle: Any) -> None:
    """Close the client connection without answering."""
    cycle.transport.close()
    for _ in range(10):
        if cycle.disconnected:
            break
        await asyncio.sleep(0)
    # uvicorn only writes its own 500 when it does not know the client is gone.
    cycle.disconnected = True


def _count_put(injector: FaultInjector, path: str, query_string: bytes) -> None:
    parts = path.split("/")  # "", "_store", "put", file_uuid, version_id
    if len(parts) != 5:
        return
    try:
        version_id = int(parts[4])
    except ValueError:
        return
    part_number = 1
    for key, value in parse_qsl(query_string.decode("latin-1")):
        if key == "part" and value.isdigit():
            part_number = int(value)
    injector.count_put(parts[3], version_id, part_number)


async def _swallow(_message: Message) -> None:
    return None


class FaultMiddleware:
    """ASGI middleware counting requests and injecting the configured faults."""

    def __init__(self, app: ASGIApp, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        injector = self.injector
        is_api = path.startswith("/api/")
        is_put = path.startswith("/_store/put/")
        if is_api:
            injector.count_request(api_route=f"{scope['method']} {path}")
        elif is_put:
            _count_put(injector, path, scope.get("query_string", b""))
        if injector.in_outage():
            injector.count_fault("outage")
            await error_response(
                503, "service_unavailable", "injected outage: the server is unavailable"
            )(scope, receive, send)
            return
        if not (is_api or is_put):
            await self.app(scope, receive, send)
            return
        config = injector.config
        if injector.roll(config.stall_rate) and config.stall_seconds > 0:
            injector.count_fault("stall")
            await asyncio.sleep(config.stall_seconds)
        if injector.roll(config.error_rate):
            injector.count_fault("error")
            await error_response(500, "server_error", "injected fault: internal server error")(
                scope, receive, send
            )
            return
        cycle = _connection_of(scope.get(RAW_SEND_KEY, send))
        if cycle is not None and injector.roll(config.drop_rate):
            before = injector.roll(0.5)
            if not before:
                with contextlib.suppress(Exception):
                    await self.app(scope, receive, _swallow)
            # counted before the close: the client may look at the counters as soon as it sees it
            injector.count_fault("drop_before" if before else "drop_after")
            await _drop_connection(cycle)
            return
        await self.app(scope, receive, send)
