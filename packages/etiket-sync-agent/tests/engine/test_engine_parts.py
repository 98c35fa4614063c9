"""Small engine parts: identities, the single-instance lock, scope resolution."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from etiket_sync_agent.connectors.base import ScopePolicy
from etiket_sync_agent.engine.identity import dataset_uuid_for, file_uuid_for, next_version_id
from etiket_sync_agent.engine.lock import AgentLock, AgentLockedError
from etiket_sync_agent.engine.scopes import ScopeResolver, ScopeUnresolved


def test_identities_are_deterministic() -> None:
    source = "0b6d3c3e-2d7e-4c51-8f0e-1b1f2c3d4e5f"
    assert dataset_uuid_for(source, "guid-1") == dataset_uuid_for(source, "guid-1")
    assert dataset_uuid_for(source, "guid-1") != dataset_uuid_for(source, "guid-2")
    ds = dataset_uuid_for(source, "guid-1")
    assert file_uuid_for(ds, "a.json") == file_uuid_for(ds, "a.json") != file_uuid_for(ds, "b")


def test_version_ids_always_increase() -> None:
    assert next_version_id(None, now=10.0) == 10_000
    assert next_version_id(10_000, now=10.0) == 10_001
    assert next_version_id(5, now=10.0) == 10_000


def test_lock_is_exclusive_and_names_the_holder(tmp_path: Path) -> None:
    lock = AgentLock(tmp_path / "agent.lock")
    lock.acquire()
    try:
        code = (
            "import sys; from etiket_sync_agent.engine.lock import AgentLock, AgentLockedError\n"
            f"l = AgentLock(__import__('pathlib').Path({str(tmp_path / 'agent.lock')!r}))\n"
            "try:\n    l.acquire()\nexcept AgentLockedError as e:\n    print(e); sys.exit(3)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 3
        assert f"pid {os.getpid()}" in out.stdout
    finally:
        lock.release()


def test_a_stale_lock_of_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "agent.lock"
    code = (
        "import sys, time, pathlib\n"
        "from etiket_sync_agent.engine.lock import AgentLock\n"
        f"AgentLock(pathlib.Path({str(path)!r})).acquire()\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(AgentLockedError, match=f"pid {proc.pid}"):
            AgentLock(path).acquire()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        with AgentLock(path) as lock:
            assert lock.holder_pid() == os.getpid()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_scope_resolution_per_policy() -> None:
    calls: list[str] = []
    known = {"demo": "uuid-demo", "uuid-demo": "uuid-demo", "other": "uuid-other"}

    async def lookup(name: str) -> str | None:
        calls.append(name)
        return known.get(name)

    resolver = ScopeResolver(lookup)

    async def main() -> None:
        assert await resolver.resolve(ScopePolicy.REQUIRED, "demo", None, None, {}) == "uuid-demo"
        with pytest.raises(ScopeUnresolved, match="names no scope"):
            await resolver.resolve(ScopePolicy.REQUIRED, None, None, None, {})
        assert await resolver.resolve(ScopePolicy.OPTIONAL, None, "other", None, {}) == "uuid-other"
        with pytest.raises(ScopeUnresolved, match="no default"):
            await resolver.resolve(ScopePolicy.OPTIONAL, None, None, None, {})
        mapping = {"projA": "demo"}
        assert await resolver.resolve(ScopePolicy.DISABLED, None, None, "projA", mapping) == (
            "uuid-demo"
        )
        assert await resolver.resolve(ScopePolicy.DISABLED, None, None, "other", {}) == "uuid-other"
        with pytest.raises(ScopeUnresolved, match="map-scope"):
            await resolver.resolve(ScopePolicy.DISABLED, None, None, "projB", mapping)
        with pytest.raises(ScopeUnresolved, match="does not exist"):
            await resolver.resolve(ScopePolicy.DISABLED, None, None, "projC", {"projC": "gone"})
        with pytest.raises(ScopeUnresolved, match="does not exist on the server"):
            await resolver.resolve(ScopePolicy.REQUIRED, "nope", None, None, {})

    asyncio.run(main())
    assert calls.count("demo") == 1, "answers are cached"
