"""Testing tools for backend authors (install the ``[testing]`` extra).

- :class:`DatabaseBackendConformance`, :class:`FileBackendConformance`: the conformance kit.
- :class:`AgentHarness` / :func:`agent_harness`: a local server + tracking store + engine for
  end-to-end tests; :func:`fast_options`: engine options without waiting.
- :func:`tree_digest`: MD5 of every file below a folder (prove a source is unchanged).
- pytest fixtures ``etiket_local_server`` and ``etiket_agent_harness`` (registered automatically
  through the ``pytest11`` entry point).

Names are imported lazily, so ``tree_digest`` works without pytest or the local server.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "AgentHarness",
    "BackendConformance",
    "DatabaseBackendConformance",
    "FileBackendConformance",
    "agent_harness",
    "fast_options",
    "tree_digest",
]

_WHERE = {
    "AgentHarness": "harness",
    "agent_harness": "harness",
    "fast_options": "harness",
    "BackendConformance": "conformance",
    "DatabaseBackendConformance": "conformance",
    "FileBackendConformance": "conformance",
    "tree_digest": "tree",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
