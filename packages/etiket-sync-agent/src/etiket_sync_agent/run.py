"""Compatibility entry point: ``from etiket_sync_agent.run import sync_loop``."""

from __future__ import annotations

from etiket_sync_agent.engine.options import EngineOptions
from etiket_sync_agent.engine.runner import RunResult, run_agent

__all__ = ["sync_loop"]


def sync_loop(iterations: int = 0, options: EngineOptions | None = None) -> RunResult:
    """Run the sync loop: ``iterations`` passes, or forever (until SIGINT/SIGTERM) when 0."""
    return run_agent(iterations, options=options)
