"""File-system events as hints.

Events only say "something below this source changed, scan it soon": the scan itself decides what
changed (events can be lost, coalesced or missing entirely on network drives, so they are never the
source of truth). The watcher runs watchdog's observer thread and wakes the engine's loop through an
:class:`asyncio.Event`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

__all__ = ["ChangeWatcher"]

_log = logging.getLogger("etiket_sync_agent.detect")


class ChangeWatcher:
    """Watches source roots and remembers which sources saw events since the last look."""

    def __init__(self) -> None:
        from watchdog.observers import Observer

        self._observer: Any = Observer()
        self._observer.daemon = True
        self._watches: dict[int, Any] = {}
        self._hinted: set[int] = set()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        #: Set whenever any watched source changes; the engine waits on it between iterations.
        self.changed = asyncio.Event()
        self._started = False

    def _signal(self, source_id: int) -> None:
        with self._lock:
            self._hinted.add(source_id)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self.changed.set)
            except RuntimeError:  # loop closed meanwhile
                pass

    def watch(self, source_id: int, root: Path) -> bool:
        """Start watching ``root`` recursively; False (polling only) if that is impossible."""
        from watchdog.events import FileSystemEvent, FileSystemEventHandler

        watcher = self

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return
                watcher._signal(source_id)

        self.unwatch(source_id)
        try:
            self._watches[source_id] = self._observer.schedule(
                _Handler(), str(root), recursive=True
            )
            if not self._started:
                self._observer.start()
                self._started = True
        except (OSError, RuntimeError) as exc:
            _log.warning("cannot watch %s (%s); relying on periodic scans", root, exc)
            return False
        return True

    def unwatch(self, source_id: int) -> None:
        """Stop watching a source."""
        watch = self._watches.pop(source_id, None)
        if watch is not None:
            try:
                self._observer.unschedule(watch)
            except (KeyError, ValueError, RuntimeError):
                pass

    def take_hint(self, source_id: int) -> bool:
        """Whether the source saw events since the last call (and forget them)."""
        with self._lock:
            hinted = source_id in self._hinted
            self._hinted.discard(source_id)
            if not self._hinted:
                self.changed.clear()
        return hinted

    def stop(self) -> None:
        """Stop the observer thread."""
        if self._started:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._started = False
