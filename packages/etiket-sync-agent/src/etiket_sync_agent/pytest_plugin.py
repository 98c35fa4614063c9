"""pytest plugin registered by the core (entry point ``pytest11``): fixtures for backend authors.

Kept import-light on purpose: it is loaded by every pytest run in an environment that has the core
installed, so it imports nothing heavy until a fixture is used.

Fixtures:
    ``etiket_local_server``: a local eTiKeT server on a free loopback port (needs the
        ``etiket-local-server`` package), stopped after the test.
    ``etiket_agent_harness``: an :class:`~etiket_sync_agent.testing.harness.AgentHarness`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def etiket_local_server(tmp_path: Path) -> Iterator[Any]:
    """A running local eTiKeT server with its data under ``tmp_path``."""
    try:
        from etiket_local_server.testing import start_server
    except ImportError:  # pragma: no cover - depends on the environment
        pytest.skip("etiket-local-server is not installed")
    server = start_server(tmp_path / "etiket-server")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def etiket_agent_harness(tmp_path: Path) -> Iterator[Any]:
    """An agent harness: local server, temporary tracking store, fast engine options."""
    try:
        import etiket_local_server  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the environment
        pytest.skip("etiket-local-server is not installed")
    from etiket_sync_agent.testing.harness import agent_harness

    with agent_harness(tmp_path / "harness") as harness:
        yield harness
