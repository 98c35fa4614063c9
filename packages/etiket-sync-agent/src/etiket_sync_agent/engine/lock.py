"""Single-instance lock: only one agent per tracking store runs at a time.

The lock is an OS-level lock on a file under the agent home (``fcntl.flock`` on POSIX,
``msvcrt.locking`` on Windows), so it is released by the kernel when the holder dies: a stale lock
from a killed process is simply taken over. The holder writes its pid into the file so that
``etiket-sync status`` and the error message can name it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType

from etiket_sync_agent.errors import EtiketSyncError

__all__ = ["AgentLock", "AgentLockedError"]


class AgentLockedError(EtiketSyncError):
    """Another agent already runs on this tracking store."""


class AgentLock:
    """Exclusive, crash-safe lock file holding the owner's pid."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def holder_pid(self) -> int | None:
        """The pid written by the current (or last) holder, if any."""
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def acquire(self) -> None:
        """Take the lock or raise :class:`AgentLockedError` naming the running agent's pid."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            pid = self.holder_pid()
            who = f" (pid {pid})" if pid else ""
            raise AgentLockedError(
                f"another etiket-sync agent{who} is already running on this tracking store "
                f"(lock file {self.path}); stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Release the lock (the pid is left in the file; it is harmless once unlocked)."""
        if self._fd is None:
            return
        try:
            if sys.platform != "win32":
                import fcntl

                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> AgentLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
