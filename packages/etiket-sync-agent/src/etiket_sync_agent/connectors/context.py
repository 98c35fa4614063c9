"""The small API the core gives a backend while it describes one dataset.

A hook receives a :class:`SyncContext`. It records the dataset record and the files; the core
uploads them after the hook returns (concurrently, sending only content that changed) and commits
the result to the tracking store. Generated files (converted netCDF, JSON) go into
:attr:`SyncContext.work_dir`, a private folder the core removes afterwards.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from etiket_sync_agent.connectors.dataset import DatasetInfo, FileInfo, FileType
from etiket_sync_agent.connectors.item import SyncItem

__all__ = ["LogRecord", "SyncContext", "SyncPlan", "XarrayLike"]

_logger = logging.getLogger("etiket_sync_agent.sync")


class XarrayLike(Protocol):
    """Anything with xarray's ``to_netcdf`` (we do not import xarray in the core)."""

    def to_netcdf(self, path: Any, *args: Any, **kwargs: Any) -> Any: ...


@dataclass
class LogRecord:
    """A log line a backend attached to an item."""

    level: int
    message: str


@dataclass
class SyncPlan:
    """What a hook described: the dataset record, its files and log lines."""

    dataset: DatasetInfo | None = None
    files: list[FileInfo] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)
    #: Problems that must fail the item *after* the planned files were uploaded.
    errors: list[str] = field(default_factory=list)

    def file(self, name: str) -> FileInfo:
        """The planned file with logical name ``name`` (KeyError when absent)."""
        for planned in self.files:
            if planned.name == name:
                return planned
        raise KeyError(f"no planned file named {name!r}; planned: {[f.name for f in self.files]}")


class SyncContext:
    """Handed to ``sync_dataset``/``sync_dataset_live``; collects a :class:`SyncPlan`.

    Attributes:
        item: the item being synced (``dataset_uuid`` filled in).
        source_name: the configured source's name (for messages).
        work_dir: an empty private folder for generated files.
        live: True when called through ``sync_dataset_live``.
        state: a JSON-serialisable dict persisted per item between syncs (e.g. row counts seen);
            the previous value is visible here and in ``check_live_dataset``.
    """

    def __init__(
        self,
        item: SyncItem,
        work_dir: Path,
        *,
        source_name: str = "",
        live: bool = False,
        state: Mapping[str, Any] | None = None,
        converter_lookup: Callable[[str], Any] | None = None,
    ) -> None:
        self.item = item
        self.work_dir = Path(work_dir)
        self.source_name = source_name
        self.live = live
        self.state: dict[str, Any] = dict(state or {})
        self.plan = SyncPlan()
        self._converter_lookup = converter_lookup

    # -- dataset -------------------------------------------------------------------------------
    def set_dataset(self, info: DatasetInfo) -> None:
        """Declare the dataset record (call once; a second call replaces the first)."""
        if not isinstance(info, DatasetInfo):
            raise TypeError("set_dataset expects a DatasetInfo")
        self.plan.dataset = info

    # -- files ---------------------------------------------------------------------------------
    def upload_file(self, file: FileInfo) -> FileInfo:
        """Queue a file for upload under its logical name (a later call with the same name wins)."""
        if not isinstance(file, FileInfo):
            raise TypeError("upload_file expects a FileInfo")
        self.plan.files = [f for f in self.plan.files if f.name != file.name]
        self.plan.files.append(file)
        return file

    def upload_json(
        self, data: Any, name: str, filename: str | None = None, *, generator: str | None = None
    ) -> FileInfo:
        """Write ``data`` as JSON into the work dir and queue it."""
        filename = filename or (
            name.rsplit("/", 1)[-1] + ("" if name.endswith(".json") else ".json")
        )
        path = self._work_path(filename)
        path.write_text(json.dumps(data, indent=1, sort_keys=True, default=str), encoding="utf-8")
        return self.upload_file(
            FileInfo(
                name=name,
                path=path,
                filename=filename,
                file_type=FileType.JSON,
                generator=generator,
            )
        )

    def upload_xarray(
        self,
        dataset: XarrayLike,
        name: str,
        filename: str | None = None,
        *,
        generator: str | None = None,
    ) -> FileInfo:
        """Write an xarray Dataset as HDF5-netCDF (``h5netcdf`` engine) and queue it."""
        filename = filename or f"{name.rsplit('/', 1)[-1]}.hdf5"
        path = self._work_path(filename)
        dataset.to_netcdf(path, engine="h5netcdf", invalid_netcdf=True)
        return self.upload_file(
            FileInfo(
                name=name,
                path=path,
                filename=filename,
                file_type=FileType.HDF5_NETCDF,
                generator=generator,
            )
        )

    def work_path(self, relative: str) -> Path:
        """A path inside the work dir for a generated file (parent folders created)."""
        return self._work_path(relative)

    def _work_path(self, relative: str) -> Path:
        path = (self.work_dir / relative).resolve()
        if self.work_dir.resolve() not in path.parents:
            raise ValueError(f"{relative!r} leaves the work dir")
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    # -- logs and converters -------------------------------------------------------------------
    def add_log(self, message: str, level: int = logging.INFO) -> None:
        """Attach a log line to the item (shown by ``etiket-sync errors``/``status``)."""
        self.plan.logs.append(LogRecord(level, message))
        _logger.log(level, "[%s] %s: %s", self.source_name, self.item.key, message)

    def add_error(self, message: str) -> None:
        """Record a problem that fails the item, but only after the planned files are uploaded.

        Use it when part of a dataset cannot be produced (a converter crashed) while the rest,
        e.g. the original file, should still reach the server. Raise SyncError instead when
        nothing should be uploaded.
        """
        self.plan.errors.append(message)
        self.add_log(message, logging.ERROR)

    def get_converter(self, name: str) -> Any:
        """An instance of the converter registered under ``name`` (entry point or module:Class)."""
        if self._converter_lookup is None:
            from etiket_sync_agent.converters.registry import load_converter

            return load_converter(name)()
        return self._converter_lookup(name)
