"""pytest fixtures for suites that need a running local server.

Use: ``from etiket_local_server.pytest_fixtures import local_server`` in a test module or
``conftest.py``; the fixture yields a :class:`~etiket_local_server.testing.LocalServer` on a free
loopback port with a fresh data directory, stopped after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from etiket_local_server.testing import LocalServer, start_server

__all__ = ["local_server"]


@pytest.fixture
def local_server(tmp_path: Path) -> Iterator[LocalServer]:
    """A local eTiKeT server on 127.0.0.1 (fault injection off), function-scoped."""
    with start_server(tmp_path / "etiket-local-server") as server:
        yield server
