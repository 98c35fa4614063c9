"""``SyncRecordManager`` for backends written for the existing agent.

A legacy hook receives one of these as ``sync_record``. Tasks, logs and errors go to the item's log
in our tracking store (through the :class:`~etiket_sync_agent.connectors.context.SyncContext` the
adapter gives it); an error recorded here fails the item after its files are uploaded, which is
what ``has_errors()`` meant to the existing agent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from etiket_sync_agent.connectors.context import SyncContext

__all__ = ["FileUploadInfo", "SyncRecordManager"]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


@dataclass
class FileUploadInfo:
    """What a legacy backend learns about one upload (filled as far as the core knows it)."""

    filename: str = ""
    file_path: str = ""
    file_m_time: float | None = None
    file_uuid: str | None = None
    version_id: int | None = None
    sync_timestamp: str = field(default_factory=_now)
    md5: str | None = None
    size: int | None = None
    status: str = "OK"
    converter: dict[str, Any] | None = None
    error: str | None = None


class SyncRecordManager:
    """Structured log of one dataset's sync (tasks nest; an error inside a task is recorded once)."""

    def __init__(self, ctx: SyncContext, sync_iteration: int = 0) -> None:
        self.ctx = ctx
        self.sync_iteration = sync_iteration
        self.logs: list[dict[str, Any]] = []
        self.files: dict[str, list[FileUploadInfo]] = {}
        self._stack: list[dict[str, Any]] = []
        self._errors = 0

    def _append(self, entry: dict[str, Any]) -> None:
        (self._stack[-1]["content"] if self._stack else self.logs).append(entry)

    @contextlib.contextmanager
    def task(self, name: str) -> Iterator[None]:
        """A named step; an exception inside is recorded (once) and re-raised."""
        entry: dict[str, Any] = {
            "type": "task",
            "name": name,
            "sync_iteration": self.sync_iteration,
            "content": [],
            "has_errors": False,
            "date": _now(),
        }
        self._append(entry)
        self._stack.append(entry)
        try:
            yield
        except Exception as exc:
            if not getattr(exc, "_legacy_recorded", False):
                self.add_error(f"{name} failed", exc, traceback.format_exc())
                with contextlib.suppress(AttributeError):
                    exc._legacy_recorded = True  # type: ignore[attr-defined]
            for open_task in self._stack:
                open_task["has_errors"] = True
            raise
        finally:
            self._stack.pop()

    def add_log(self, message: str) -> None:
        """A log line (shown in the item's log)."""
        self._append({"type": "log", "message": str(message), "date": _now()})
        self.ctx.add_log(str(message))

    def add_error(
        self, message: str, exception: BaseException | str | None = None, stacktrace: str = ""
    ) -> None:
        """Record an error: the dataset is then not fully synchronized (the item fails)."""
        text = str(message) if exception is None else f"{message}: {exception!r}"
        self._append(
            {
                "type": "error",
                "message": str(message),
                "exception": None if exception is None else repr(exception),
                "stacktrace": stacktrace,
                "date": _now(),
            }
        )
        for open_task in self._stack:
            open_task["has_errors"] = True
        self._errors += 1
        self.ctx.add_error(text)

    @contextlib.contextmanager
    def add_upload_task(self, name: str) -> Iterator[FileUploadInfo]:
        """Wrap one file's upload in task ``upload <name>``; yields its :class:`FileUploadInfo`."""
        info = FileUploadInfo()
        self.files.setdefault(name, []).append(info)
        with self.task(f"upload {name}"):
            try:
                yield info
            except Exception as exc:
                info.status = "ERROR"
                info.error = repr(exc)
                raise

    @contextlib.contextmanager
    def define_converter(
        self, file_upload_info: FileUploadInfo, helper: Any, *args: Any
    ) -> Iterator[Any]:
        """Run a converter helper's ``convert(*args)`` context in task ``convert ...``."""
        fqn = f"{type(helper).__module__}.{type(helper).__qualname__}"
        with self.task(f"convert {fqn} called"):
            try:
                with helper.convert(*args) as output:
                    file_upload_info.converter = {"method": fqn, "status": "OK", "error": None}
                    yield output
            except Exception as exc:
                file_upload_info.converter = {"method": fqn, "status": "ERROR", "error": repr(exc)}
                raise

    def has_errors(self) -> bool:
        """Whether an error was recorded during this sync."""
        return self._errors > 0

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-compatible data."""
        return {
            "version": 1,
            "sync_time": _now(),
            "files": {k: [asdict(v) for v in vs] for k, vs in self.files.items()},
            "logs": self.logs,
        }
