"""The labber backend: one dataset per Labber log file.

Discovery walks the Labber data folder (``YYYY/MM/Data_MMDD/*.hdf5``, any depth is accepted) and
makes one item per ``.hdf5`` file except the ``Database.hdf5`` index at the root. The natural key is
the file's relative path plus its root attribute ``creation_time`` (``<path>@<seconds>``), so a log
that is deleted and written again under the same name is a new dataset. A file whose header cannot
be read (not HDF5, damaged, unreadable) gets the relative path alone as key and fails at sync with a
clear message; a brand-new file whose header is not written yet is skipped until it is.

Per dataset the backend uploads, under the existing agent's names, the original file (``original``,
``original.hdf5``), one converted netCDF per log (``ds_converted`` for a file with one log, else
``ds_converted_0`` for the main log, ``ds_converted_1`` for ``Log_2`` ...), ``settings``
(``settings.json``) and ``instruments`` (``instruments.json``). The dataset's ``alt_uid`` is the
existing agent's ``<log_name>_<creation time as a float>``. A file that changed recently is read from a private copy, verified against
its size and mtime, so a writer is never disturbed and a half-written state is never read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import h5py

from etiket_sync_agent import (
    DatasetInfo,
    FileInfo,
    FileType,
    ScopePolicy,
    SyncContext,
    SyncItem,
    SyncSourceFileBase,
)
from etiket_sync_agent.errors import SyncError
from etiket_sync_agent_labber.config import DATABASE_FILE, LabberConfig
from etiket_sync_agent_labber.netcdf import write_log
from etiket_sync_agent_labber.reader import (
    LabberHeader,
    LogLayout,
    attrs_dict,
    channel_table,
    check_hdf5_signature,
    group_entries,
    is_completed,
    jsonable,
    log_groups,
    log_layout,
    open_file,
    open_labber,
    private_copy,
    read_header,
    table_rows,
)

__all__ = ["GENERATOR", "LabberSync", "alt_uid_of", "converted_name", "natural_key"]

_log = logging.getLogger(__name__)

#: File generator as the existing agent records it.
GENERATOR = "Labber"
#: Logical names and download names of the files, as the existing agent uploads them.
ORIGINAL_NAME = "original"
SETTINGS_NAME = "settings"
INSTRUMENTS_NAME = "instruments"
_SUFFIXES = (".hdf5", ".h5")
#: A file whose header cannot be read yet is skipped while it is younger than this.
_HEADER_GRACE = 60.0
#: Files modified more recently than this are read from a private copy.
_COPY_WINDOW = 30.0
_TORN_READ_ATTEMPTS = 3


def natural_key(rel_path: str, creation_time: float | None) -> str:
    """``<relative path>@<creation_time>``; the path alone when the time cannot be read."""
    if creation_time is None:
        return rel_path
    return f"{rel_path}@{creation_time:.6f}"


def converted_name(label: str, labels: Sequence[str]) -> str:
    """Logical name of the converted file of log ``label`` among the file's logs ``labels``.

    As the existing agent: ``ds_converted`` when the file has one log, else ``ds_converted_<i>``
    with ``i`` the log's position (0 = the main log, 1 = ``Log_2`` ...). The download name is the
    logical name plus ``.hdf5``.
    """
    if len(labels) == 1:
        return "ds_converted"
    return f"ds_converted_{list(labels).index(label)}"


def alt_uid_of(log_name: str, creation_time: float) -> str:
    """The existing agent's ``alt_uid``: ``<log_name>_<creation time>``.

    It formats the creation time as Python prints the float ``datetime.timestamp()`` of the
    time read with ``datetime.fromtimestamp`` (so rounded to microseconds): ``Scan_1709200000.5``.
    """
    stamp = dt.datetime.fromtimestamp(creation_time, tz=dt.timezone.utc).timestamp()
    return f"{log_name}_{stamp}"


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    creation_time: float | None


class LabberSync(SyncSourceFileBase):
    """Syncs Labber HDF5 log files: one dataset per file, live while a log is being written."""

    name: ClassVar[str] = "labber"
    config_class: ClassVar[type[Any]] = LabberConfig
    scope_policy: ClassVar[ScopePolicy] = ScopePolicy.REQUIRED
    live_sync: ClassVar[bool] = True
    implemented: ClassVar[bool] = True
    level: ClassVar[int] = -1
    is_single_file: ClassVar[bool] = True

    config: LabberConfig

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._seen: dict[str, _Seen] = {}
        self._copies: dict[str, tuple[list[int], Path]] = {}
        self._tmp: Path | None = None
        self._lock = threading.Lock()

    def root_path(self) -> Path:
        return Path(self.config.labber_directory)

    def close(self) -> None:
        with self._lock:
            self._seen.clear()
            self._copies.clear()
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
                self._tmp = None

    # -- private copies --------------------------------------------------------------------------
    def _copy_dir(self) -> Path:
        with self._lock:
            if self._tmp is None:
                self._tmp = Path(tempfile.mkdtemp(prefix="etiket-labber-"))
            return self._tmp

    def _drop_copy(self, key: str) -> None:
        with self._lock:
            cached = self._copies.pop(key, None)
        if cached is not None:
            cached[1].unlink(missing_ok=True)

    def _take_copy(self, key: str, source: Path, target: Path) -> os.stat_result:
        """A verified copy of ``source`` at ``target``: the one the live check just made when the
        source has not changed since, else a fresh one. Returns the source stat it matches."""
        with self._lock:
            cached = self._copies.pop(key, None)
        if cached is not None:
            signature, copy = cached
            try:
                current = source.stat()
                if _signature(current) == signature and copy.is_file():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        os.replace(copy, target)
                    except OSError:  # another file system: copy the copy
                        shutil.copyfile(copy, target)
                        copy.unlink(missing_ok=True)
                    return current
            except OSError:
                pass
            copy.unlink(missing_ok=True)
        return private_copy(source, target)

    # -- discovery -------------------------------------------------------------------------------
    def accept_path(self, rel_path: PurePosixPath, abs_path: Path) -> bool:
        """``.hdf5``/``.h5`` files, except hidden ones and the root's ``Database.hdf5``."""
        if any(part.startswith(".") for part in rel_path.parts):
            return False
        if rel_path.suffix.lower() not in _SUFFIXES:
            return False
        return not (len(rel_path.parts) == 1 and rel_path.name.lower() == DATABASE_FILE.lower())

    def make_item(self, rel_path: PurePosixPath, abs_path: Path) -> SyncItem | None:
        """Key = relative path + ``creation_time``; priority = creation time (newest is live)."""
        rel = rel_path.as_posix()
        try:
            st = abs_path.stat()
        except OSError:
            return None  # vanished between listing and stat
        with self._lock:
            seen = self._seen.get(rel)
        if seen is not None and (seen.size, seen.mtime_ns) == (st.st_size, st.st_mtime_ns):
            creation_time = seen.creation_time
        else:
            recent = time.time() - st.st_mtime < _HEADER_GRACE
            known = seen.creation_time if seen is not None else None
            remember = True
            try:
                creation_time = _probe_creation_time(abs_path)
            except _NotYet:
                # Header unreadable (being written, or damaged). A file seen before keeps its
                # key; a new one waits while it is young.
                if known is None and recent:
                    return None
                creation_time, remember = known, known is None
            except SyncError:
                if st.st_size == 0 and recent:
                    return None
                creation_time, remember = known, known is None
            if remember:
                with self._lock:
                    self._seen[rel] = _Seen(st.st_size, st.st_mtime_ns, creation_time)
        return SyncItem(
            key=natural_key(rel, creation_time),
            path=rel,
            priority=float(creation_time if creation_time is not None else st.st_mtime),
            extra={"creation_time": creation_time},
        )

    # -- live ------------------------------------------------------------------------------------
    def check_live_dataset(self, item: SyncItem, state: Mapping[str, Any]) -> bool:
        """Live while a log is not ``Completed`` and the file keeps changing.

        A log that is not completed and shows no growth for ``stale_after`` seconds is an aborted
        run: it is synced as it is (and again should it grow).
        """
        path = self.root_path() / str(item.path)
        try:
            st = path.stat()
        except OSError:
            return False
        stale_after = float(self.config.stale_after)
        try:
            local = path
            if time.time() - st.st_mtime < _COPY_WINDOW:
                # Being written: read a verified copy, which the sync that follows reuses.
                digest = hashlib.blake2b(item.key.encode(), digest_size=12).hexdigest()
                local = self._copy_dir() / f"{digest}.hdf5"
                st = private_copy(path, local)
                with self._lock:
                    self._copies[item.key] = (_signature(st), local)
            with open_labber(local) as handle:
                completed = all(is_completed(group) for _, group in log_groups(handle))
        except (SyncError, OSError, KeyError, ValueError):
            # Unreadable right now (header being rewritten?): live while it keeps changing.
            return time.time() - st.st_mtime < stale_after
        if completed:
            return False
        signature = _signature(st)
        previous = state.get("signature")
        if previous is None:
            return time.time() - st.st_mtime < stale_after
        if list(previous) != signature:
            return True
        changed_at = float(state.get("changed_at") or 0.0)
        return time.time() - changed_at < stale_after

    # -- sync ------------------------------------------------------------------------------------
    def sync_dataset(self, item: SyncItem, ctx: SyncContext) -> None:
        """Upload the original file, a netCDF per log, ``settings.json`` and ``instruments.json``."""
        if not item.path:
            raise SyncError(f"item {item.key!r} has no path")
        path = self.root_path() / item.path
        st = _stat(path)
        check_hdf5_signature(path)
        use_copy = ctx.live or time.time() - st.st_mtime < _COPY_WINDOW
        if not use_copy:
            self._drop_copy(item.key)
        last_error: SyncError | None = None
        attempts = _TORN_READ_ATTEMPTS if use_copy else 1
        for attempt in range(attempts):
            local = path
            if use_copy:
                local = ctx.work_path(f"source/{path.name}")
                st = self._take_copy(item.key, path, local)
            try:
                self._describe(item, ctx, path, local, st, retry=attempt + 1 < attempts)
                return
            except _TornRead as exc:
                last_error = SyncError(str(exc))
                ctx.plan.files.clear()
                ctx.plan.errors.clear()
                time.sleep(0.2)
        assert last_error is not None
        raise last_error

    def _describe(
        self,
        item: SyncItem,
        ctx: SyncContext,
        source: Path,
        local: Path,
        st: os.stat_result,
        *,
        retry: bool = False,
    ) -> None:
        """Describe the dataset from ``local`` (the source or a verified copy of it).

        With ``retry``, a read error in a copy raises _TornRead so the caller copies again (the
        writer may have been half-way through a write when the copy was taken).
        """
        rel = str(item.path)
        try:
            handle = open_file(local)
        except SyncError as exc:
            if local != source:
                message = str(exc).replace(str(local), rel)
                if retry:
                    raise _TornRead(message) from None
                raise SyncError(message) from None
            raise
        try:
            header = read_header(handle)
            expected = item.extra.get("creation_time")
            if expected is None and header.creation_time is not None and item.key == rel:
                # Keyed by path while its header was unreadable; now it has its proper key.
                raise SyncError(
                    f"{rel} is readable again and is synced under its key "
                    f"{natural_key(rel, header.creation_time)!r}; this entry is obsolete"
                )
            if (
                expected is not None
                and header.creation_time is not None
                and abs(float(expected) - header.creation_time) > 1e-6
            ):
                raise SyncError(
                    f"{rel} was replaced by another log (creation time "
                    f"{header.creation_time:.6f}, this item is {float(expected):.6f}); the new "
                    "log is synced as a separate dataset"
                )
            layouts = self._layouts(handle, ctx, rel)
            labels = [label for label, _ in log_groups(handle)]
            keywords: list[str] = []
            for label, group, layout in layouts:
                keywords += _keywords(handle, group, layout)
                name = converted_name(label, labels)
                target = ctx.work_path(f"converted/{name}.hdf5")
                try:
                    summary = write_log(target, handle, group, layout, header, rel)
                except (OSError, KeyError, ValueError, TypeError, IndexError) as exc:
                    if retry:
                        raise _TornRead(f"{rel}: {label} could not be read: {exc}") from None
                    ctx.add_error(f"{rel}: converting {label} failed: {type(exc).__name__}: {exc}")
                    continue
                for warning in summary.warnings:
                    ctx.add_log(warning, logging.WARNING)
                ctx.upload_file(
                    FileInfo(
                        name=name,
                        path=target,
                        filename=f"{name}.hdf5",
                        file_type=FileType.HDF5_NETCDF,
                        generator=GENERATOR,
                    )
                )
            try:
                settings = _settings_document(handle, header, layouts, rel)
                instruments = _instruments_document(handle)
            except (KeyError, ValueError, TypeError, IndexError) as exc:
                if retry:
                    raise _TornRead(f"{rel}: settings could not be read: {exc}") from None
                ctx.add_error(f"{rel}: reading settings failed: {type(exc).__name__}: {exc}")
            else:
                ctx.upload_json(settings, SETTINGS_NAME, "settings.json", generator=GENERATOR)
                ctx.upload_json(
                    instruments, INSTRUMENTS_NAME, "instruments.json", generator=GENERATOR
                )
            completed = all(layout.completed for _, _, layout in layouts)
        except OSError as exc:
            if local != source and retry:
                raise _TornRead(f"{rel} could not be read: {exc}") from None
            raise SyncError(f"{rel} could not be read (damaged?): {exc}") from None
        finally:
            handle.close()

        ctx.upload_file(
            FileInfo(
                name=ORIGINAL_NAME,
                path=local,
                filename=f"{ORIGINAL_NAME}.hdf5",
                file_type=FileType.HDF5,
                generator=GENERATOR,
            )
        )
        # As the existing agent: every file version is dated with the log file's mtime.
        modified = dt.datetime.fromtimestamp(st.st_mtime, tz=dt.timezone.utc)
        for planned in ctx.plan.files:
            planned.collected = modified
        self._record_state(ctx, st, completed)
        if not completed and not ctx.live:
            ctx.add_log(
                "the log is not completed (aborted, or no growth for "
                f"{self.config.stale_after:g} s): synced as it is",
                logging.INFO,
            )
        collected = (
            dt.datetime.fromtimestamp(header.creation_time, tz=dt.timezone.utc)
            if header.creation_time is not None
            else dt.datetime.fromtimestamp(st.st_mtime, tz=dt.timezone.utc)
        )
        attributes = dict(self.config.static_attributes)
        attributes["set-up"] = self.config.set_up
        if header.project:
            attributes["project"] = ", ".join(header.project)
        if header.user:
            attributes["user"] = ", ".join(header.user)
        log_name = header.log_name or source.stem
        ctx.set_dataset(
            DatasetInfo(
                name=log_name,
                collected=collected,
                alt_uid=alt_uid_of(
                    log_name,
                    header.creation_time if header.creation_time is not None else st.st_mtime,
                ),
                description=header.comment.strip() or None,
                keywords=[*header.project, *header.tags, *header.user, *keywords],
                ranking=1 if header.star else 0,
                attributes=attributes,
            )
        )

    def _layouts(
        self, handle: h5py.File, ctx: SyncContext, rel: str
    ) -> list[tuple[str, h5py.Group, LogLayout]]:
        layouts: list[tuple[str, h5py.Group, LogLayout]] = []
        for label, group in log_groups(handle):
            try:
                layouts.append((label, group, log_layout(handle, label, group)))
            except SyncError as exc:
                ctx.add_error(f"{rel}: {exc}")
            except (KeyError, ValueError, TypeError, IndexError) as exc:
                ctx.add_error(f"{rel}: {label} cannot be interpreted: {type(exc).__name__}: {exc}")
        return layouts

    @staticmethod
    def _record_state(ctx: SyncContext, st: os.stat_result, completed: bool) -> None:
        now = time.time()
        signature = _signature(st)
        previous = ctx.state.get("signature")
        changed_at = ctx.state.get("changed_at")
        if previous is None or changed_at is None:
            changed_at = min(now, st.st_mtime)
        elif list(previous) != signature:
            changed_at = now
        ctx.state.update({"signature": signature, "changed_at": changed_at, "completed": completed})


class _NotYet(Exception):
    """An HDF5 file whose header cannot be read yet."""


class _TornRead(Exception):
    """A private copy of a changing file could not be read; copy again."""


def _keywords(handle: h5py.File, group: h5py.Group, layout: LogLayout) -> list[str]:
    """Channel and trace names with their units, and trace setpoints (as the existing agent)."""
    units = channel_table(handle, group)
    words: list[str] = []
    names = [c for c in layout.dim_channels if c != "point"]
    names += [c.name for c in layout.columns]
    for channel in names:
        words.append(channel)
        meta = units.get(channel)
        if meta is not None and meta.unit:
            words.append(meta.unit)
    for trace in layout.traces:
        words.append(trace.name)
        meta = units.get(trace.name)
        if meta is not None and meta.unit:
            words.append(meta.unit)
        words += [trace.x_name, trace.x_unit]
    return [word for word in words if word]


def _signature(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns]


def _stat(path: Path) -> os.stat_result:
    try:
        return path.stat()
    except FileNotFoundError:
        raise SyncError(f"{path} no longer exists") from None
    except PermissionError:
        raise SyncError(f"permission denied reading {path}") from None


def _probe_creation_time(path: Path) -> float | None:
    """The root ``creation_time`` of a file; SyncError when it is not HDF5, _NotYet when the HDF5
    header cannot be read (yet)."""
    check_hdf5_signature(path)
    try:
        with h5py.File(path, "r", locking=False) as handle:
            return read_header(handle).creation_time
    except PermissionError:
        raise SyncError(f"permission denied reading {path}") from None
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise _NotYet(str(exc)) from None


def _settings_document(
    handle: h5py.File,
    header: LabberHeader,
    layouts: list[tuple[str, h5py.Group, LogLayout]],
    rel: str,
) -> dict[str, Any]:
    """Everything about how the measurement was set up, as JSON."""
    root_attrs = attrs_dict(handle)
    logs: list[dict[str, Any]] = []
    for label, group, layout in layouts:
        entry: dict[str, Any] = {
            "log": label,
            "group": group.name,
            "completed": layout.completed,
            "step_channels": layout.dim_channels,
            "step_dimensions": layout.dims,
            "data_shape": list(layout.data_shape) if layout.data_shape else None,
            "traces": [t.name for t in layout.traces],
        }
        data_group = group.get("Data")
        if isinstance(data_group, h5py.Group):
            entry["data_attributes"] = attrs_dict(data_group)
        if group is not handle:
            entry["attributes"] = attrs_dict(group)
            for own in ("Step list", "Log list", "Channels"):
                if own in group:
                    entry[own.lower().replace(" ", "_")] = table_rows(group[own])
            if "Step config" in group:
                entry["step_config"] = group_entries(group["Step config"])
        logs.append(entry)
    channels = channel_table(handle)
    return {
        "file": rel,
        "log_name": header.log_name,
        "creation_time": jsonable(header.creation_time),
        "creation_time_utc": (
            dt.datetime.fromtimestamp(header.creation_time, tz=dt.timezone.utc).isoformat()
            if header.creation_time is not None
            else None
        ),
        "comment": header.comment,
        "star": header.star,
        "labber_version": header.version,
        "tags": header.stored_tags
        or {"project": header.project, "tags": header.tags, "user": header.user},
        "attributes": root_attrs,
        "settings": attrs_dict(handle["Settings"]) if "Settings" in handle else {},
        "step_list": table_rows(handle.get("Step list")),
        "step_config": group_entries(handle.get("Step config")),
        "log_list": table_rows(handle.get("Log list")),
        "channels": table_rows(handle.get("Channels")),
        "units": {name: meta.unit for name, meta in channels.items()},
        "logs": logs,
    }


def _instruments_document(handle: h5py.File) -> dict[str, Any]:
    """The instruments and their configuration (every quantity's value) as JSON."""
    document: dict[str, Any] = {
        "instruments": table_rows(handle.get("Instruments")),
        "instrument_config": {
            name: entry["attributes"]
            for name, entry in group_entries(handle.get("Instrument config")).items()
        },
    }
    extra: dict[str, Any] = {}
    for label, group in log_groups(handle)[1:]:
        own: dict[str, Any] = {}
        if "Instruments" in group:
            own["instruments"] = table_rows(group["Instruments"])
        if "Instrument config" in group:
            own["instrument_config"] = {
                name: entry["attributes"]
                for name, entry in group_entries(group["Instrument config"]).items()
            }
        if own:
            extra[label] = own
    if extra:
        document["logs"] = extra
    return document
