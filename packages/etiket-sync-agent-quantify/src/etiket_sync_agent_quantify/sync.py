"""The quantify backend: one dataset per Quantify experiment folder (``YYYYmmDD/<tuid>[-<name>]``).

Experiment folders are those quantify-core opens: a name starting with a valid TUID followed by
anything (``-<name>``, `` <name>``, ...), or holding a TUID of its day folder; see
:func:`etiket_sync_agent_quantify.tuid.parse_folder_name`. A folder without ``dataset.hdf5`` (a
snapshot-only experiment) is a dataset of the files it has.

What a dataset gets:

- record: name = the folder name around the TUID (else the dataset's ``name`` attribute, else the
  TUID), ``alt_uid`` and attribute ``tuid`` = the TUID, collected = the TUID's time in the
  configured timezone, keywords = ``long_name`` (else ``name``) of every settable and gettable,
  attributes = ``static_attributes`` + ``set-up`` + ``tuid``;
- ``dataset.hdf5``: the original bytes, taken from a consistent private copy (HDF5 or netCDF3,
  recognised by its magic bytes); for grid runs (``grid_2d``) also ``dataset_gridded.hdf5`` with the
  settables as dimensions; for netCDF3 files that are not grids also ``dataset_netcdf4.hdf5``;
- ``snapshot.json`` (or ``snapshot.json.gz``/``.bz2``/``.xz``, uploaded as they are, plus the
  decompressed ``snapshot.json`` when no plain one exists), ``metadata.json`` and every other file
  of the folder (``analysis_*`` folders included) under the existing agent's dotted name
  (``analysis_X/figs/a.png`` → ``analysis_X.figs.a.png``, TUID prefixes stripped); PNG figures of
  ``analysis_*`` folders are also uploaded as thumbnails (``__thumbnail_<i>``, ranking -1, at
  most 10).

Live sync: the newest experiment folder is live while its ``dataset.hdf5`` keeps changing and
still has NaN points; it is finished once a read finds no NaN and the file then stays unchanged,
when it has not changed for ``settle_time`` seconds (an interrupted or crashed run, synced as it
is), or as soon as a newer TUID folder exists.
"""

from __future__ import annotations

import bz2
import dataclasses
import datetime as dt
import gzip
import logging
import lzma
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from etiket_sync_agent import (
    DatasetInfo,
    FileInfo,
    FileType,
    ScopePolicy,
    SyncContext,
    SyncItem,
    SyncSourceFileBase,
)
from etiket_sync_agent.connectors.dataset import sniff_file_type
from etiket_sync_agent.errors import ConfigError, SyncError
from etiket_sync_agent_quantify.convert import GridError, write_flat, write_gridded
from etiket_sync_agent_quantify.dataset import (
    CopiedDataset,
    DatasetFormat,
    DatasetReadError,
    FileSignature,
    file_digest,
    private_copy,
)
from etiket_sync_agent_quantify.names import assign_names
from etiket_sync_agent_quantify.tuid import (
    is_day_folder,
    parse_folder_name,
    skip_reason,
    tuid_time,
)

__all__ = [
    "DATASET_FILE",
    "GRIDDED_FILE",
    "NETCDF4_FILE",
    "QuantifyConfig",
    "QuantifySync",
]

_log = logging.getLogger(__name__)

DATASET_FILE = "dataset.hdf5"
GRIDDED_FILE = "dataset_gridded.hdf5"
NETCDF4_FILE = "dataset_netcdf4.hdf5"
SNAPSHOT_FILE = "snapshot.json"
_SNAPSHOT_VARIANTS: dict[str, Any] = {
    "snapshot.json.gz": gzip.open,
    "snapshot.json.bz2": bz2.open,
    "snapshot.json.xz": lzma.open,
}
_MAX_THUMBNAILS = 10
_MAX_SNAPSHOT_BYTES = 512 << 20
#: File generator as the existing agent records it.
_GENERATOR = "Quantify"


def _mtime_of(path: Path) -> dt.datetime | None:
    """A file's modification time, the time the existing agent gives each file version."""
    try:
        return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.timezone.utc)
    except OSError:
        return None


@dataclasses.dataclass
class QuantifyConfig:
    """Configuration of a quantify source (field names as existing configurations use them).

    Attributes:
        quantify_directory: Quantify's data directory (holding the ``YYYYmmDD`` day folders).
        set_up: stored as the ``set-up`` attribute of every dataset.
        static_attributes: added to every dataset's attributes.
        is_server_folder: the directory is on a network drive: poll, do not watch.
        timezone: IANA name (``Europe/Amsterdam``) of the clock the TUIDs were made with;
            ``None`` means this machine's local time.
        settle_time: seconds without a change of ``dataset.hdf5`` after which the newest run counts
            as finished even if it still holds NaN points (an interrupted or crashed run).
    """

    quantify_directory: Path
    set_up: str
    static_attributes: dict[str, str] = dataclasses.field(default_factory=dict)
    is_server_folder: bool = False
    timezone: str | None = None
    settle_time: float = 120.0

    def validate(self) -> None:
        if not Path(self.quantify_directory).is_dir():
            raise ConfigError(
                "quantify_directory", f"{self.quantify_directory} is not an existing folder"
            )
        if not self.set_up or not self.set_up.strip():
            raise ConfigError("set_up", "must name the set-up (e.g. the fridge)")
        check_timezone(self.timezone)
        if not self.settle_time > 0:
            raise ConfigError(
                "settle_time", f"must be a positive number of seconds, got {self.settle_time}"
            )


def check_timezone(name: str | None) -> None:
    """Raise ConfigError when ``name`` is not a known IANA timezone."""
    if name is None:
        return
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            "timezone",
            f"{name!r} is not a known timezone; use an IANA name like 'Europe/Amsterdam' "
            "(on Windows install the tzdata package)",
        ) from None


@dataclasses.dataclass
class _FolderFiles:
    files: list[tuple[str, Path]]
    unreadable: list[str]


class QuantifySync(SyncSourceFileBase):
    """Syncs Quantify data directories: one dataset per TUID experiment folder."""

    name: ClassVar[str] = "quantify"
    config_class: ClassVar[type[Any]] = QuantifyConfig
    scope_policy: ClassVar[ScopePolicy] = ScopePolicy.REQUIRED
    live_sync: ClassVar[bool] = True
    implemented: ClassVar[bool] = True
    level: ClassVar[int] = 2
    #: Reads of ``dataset.hdf5`` before a torn read is reported, and the base pause between them.
    copy_attempts: ClassVar[int] = 5
    copy_retry_delay: ClassVar[float] = 0.1

    config: QuantifyConfig

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._claims: dict[str, str] = {}
        self._claims_lock = threading.Lock()
        self._skipped: set[str] = set()

    def root_path(self) -> Path:
        return Path(self.config.quantify_directory)

    # -- discovery -------------------------------------------------------------------------------
    def accept_path(self, rel_path: PurePosixPath, abs_path: Path) -> bool:
        """Folders of ``YYYYmmDD`` day folders that quantify-core opens are experiments.

        That is a name starting with a valid TUID (``<tuid>``, ``<tuid>-<name>``, ``<tuid> <name>``
        ...) or holding a TUID of that day (see :func:`~etiket_sync_agent_quantify.tuid.parse_folder_name`).
        Any other folder of a day folder is logged once, with the reason.
        """
        if len(rel_path.parts) != 2 or any(p.startswith(".") for p in rel_path.parts):
            return False
        day, folder = rel_path.parts
        if not is_day_folder(day):
            return False
        parsed = parse_folder_name(folder, day)
        if parsed is None:
            rel = rel_path.as_posix()
            with self._claims_lock:
                first = rel not in self._skipped
                self._skipped.add(rel)
            if first:
                _log.info("quantify: %s skipped: %s", rel, skip_reason(folder))
            return False
        return True

    def make_item(self, rel_path: PurePosixPath, abs_path: Path) -> SyncItem | None:
        parsed = parse_folder_name(rel_path.name, rel_path.parent.name)
        if parsed is None:
            return None
        rel = rel_path.as_posix()
        with self._claims_lock:
            owner = self._claims.get(parsed.tuid)
            if owner is not None and owner != rel and (self.root_path() / owner).is_dir():
                _log.warning(
                    "quantify: TUID %s is used by both %s and %s; only the first is synced",
                    parsed.tuid,
                    owner,
                    rel,
                )
                return None
            self._claims[parsed.tuid] = rel
        try:
            priority = tuid_time(parsed.tuid, self.config.timezone).timestamp()
        except (ValueError, OverflowError, OSError):
            priority = 0.0
        return SyncItem(key=parsed.tuid, path=rel, priority=priority)

    # -- live ------------------------------------------------------------------------------------
    def check_live_dataset(self, item: SyncItem, state: Mapping[str, Any]) -> bool:
        """Live while ``dataset.hdf5`` changes and the last read still had NaN points."""
        folder = self._folder(item)
        settle = float(self.config.settle_time)
        now = time.time()
        try:
            st = os.stat(folder / DATASET_FILE)
        except FileNotFoundError:
            # Quantify creates the folder and writes the empty dataset right after: a young
            # folder without it is still being set up.
            try:
                return now - os.stat(folder).st_mtime < settle
            except OSError:
                return False
        except OSError:
            return False
        if now - st.st_mtime >= settle:
            return False  # finished long ago, or an interrupted run: sync it as it is
        signature = [st.st_size, st.st_mtime_ns]
        if state.get("dataset_signature") != signature:
            return True  # rewritten since our last read
        if state.get("has_nan") is False:
            return False  # complete and unchanged since
        seen_at = float(state.get("signature_seen_at") or 0.0)
        return now - seen_at < settle

    # -- sync ------------------------------------------------------------------------------------
    def sync_dataset(self, item: SyncItem, ctx: SyncContext) -> None:
        self._sync(item, ctx, live=False)

    def sync_dataset_live(self, item: SyncItem, ctx: SyncContext) -> None:
        self._sync(item, ctx, live=True)

    def _folder(self, item: SyncItem) -> Path:
        return self.root_path() / str(item.path or item.key)

    def _sync(self, item: SyncItem, ctx: SyncContext, *, live: bool) -> None:
        folder = self._folder(item)
        if not folder.is_dir():
            raise SyncError(f"experiment folder {folder} no longer exists")
        parsed = parse_folder_name(folder.name, folder.parent.name)
        if parsed is None:
            raise SyncError(f"{folder.name!r} holds no valid TUID")
        tuid = parsed.tuid
        listing = self._list_files(folder)
        for rel in listing.unreadable:
            ctx.add_error(f"permission denied reading {rel}; it was not uploaded")

        copied = self._read_dataset(folder, listing, ctx, live=live, tuid=tuid)
        dataset_name = parsed.name.strip()
        if not dataset_name and copied is not None:
            attr_name = copied.dataset.attrs.get("name")
            dataset_name = attr_name.strip() if isinstance(attr_name, str) else ""
        attributes = {str(k): str(v) for k, v in self.config.static_attributes.items()}
        attributes["set-up"] = self.config.set_up
        attributes["tuid"] = tuid
        ctx.set_dataset(
            DatasetInfo(
                name=dataset_name or tuid,
                collected=tuid_time(tuid, self.config.timezone),
                alt_uid=tuid,
                description=f"Quantify experiment {tuid} ({folder.parent.name}/{folder.name})",
                keywords=copied.dataset.keywords if copied is not None else [],
                attributes=attributes,
            )
        )
        if copied is not None:
            self._add_dataset_files(ctx, copied, live=live)
        self._add_other_files(ctx, listing)

    # -- files -----------------------------------------------------------------------------------
    def _list_files(self, folder: Path) -> _FolderFiles:
        files: list[tuple[str, Path]] = []
        unreadable: list[str] = []
        stack = [folder]
        while stack:
            current = stack.pop()
            try:
                entries = sorted(os.scandir(current), key=lambda e: e.name)
            except PermissionError:
                rel = current.relative_to(folder).as_posix()
                unreadable.append(f"{rel}/")
                continue
            except FileNotFoundError:
                if current == folder:
                    raise SyncError(
                        f"experiment folder {folder} vanished while it was read"
                    ) from None
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                path = Path(entry.path)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(path)
                elif entry.is_file(follow_symlinks=True):
                    rel = path.relative_to(folder).as_posix()
                    if not os.access(path, os.R_OK):
                        unreadable.append(rel)
                        continue
                    files.append((rel, path))
        return _FolderFiles(sorted(files), sorted(unreadable))

    def _read_dataset(
        self, folder: Path, listing: _FolderFiles, ctx: SyncContext, *, live: bool, tuid: str
    ) -> CopiedDataset | None:
        label = f"{folder.name}/{DATASET_FILE}"
        present = any(rel == DATASET_FILE for rel, _ in listing.files)
        if not present:
            if DATASET_FILE in listing.unreadable:
                return None  # already an item error
            if live:
                ctx.add_log(f"{DATASET_FILE} is not written yet", logging.INFO)
            else:
                # quantify-core writes snapshot-only experiments (no dataset) for some runs.
                ctx.add_log(
                    f"the experiment folder has no {DATASET_FILE}: synced as a dataset of the "
                    "files it has",
                    logging.INFO,
                )
            return None
        target = ctx.work_path(f"read/{DATASET_FILE}")
        try:
            copied = private_copy(
                folder / DATASET_FILE,
                target,
                label=label,
                attempts=self.copy_attempts,
                delay=self.copy_retry_delay,
            )
        except DatasetReadError as exc:
            if live:
                # The writer may be mid-rewrite; the next live sync reads it again.
                ctx.add_log(f"{exc}; will try again", logging.WARNING)
            else:
                self._upload_unreadable_original(ctx, folder, target)
                ctx.add_error(str(exc))
            return None
        previous = ctx.state.get("dataset_signature")
        signature = copied.signature.as_list()
        if previous != signature:
            ctx.state["signature_seen_at"] = time.time()
        ctx.state["dataset_signature"] = signature
        ctx.state["has_nan"] = copied.dataset.has_nan
        if copied.attempts > 1:
            ctx.add_log(f"{DATASET_FILE} was being rewritten; read it on attempt {copied.attempts}")
        tuid_attr = copied.dataset.tuid
        if tuid_attr and tuid_attr != tuid:
            ctx.add_log(
                f"{DATASET_FILE} says tuid {tuid_attr} but the folder is {tuid}",
                logging.WARNING,
            )
        return copied

    def _upload_unreadable_original(self, ctx: SyncContext, folder: Path, target: Path) -> None:
        """Keep the user's bytes on the server even when we cannot parse them (if stable)."""
        source = folder / DATASET_FILE
        try:
            before = FileSignature.of(source)
            if not target.exists() or target.stat().st_size != before.size:
                return
            same = file_digest(source) == file_digest(target)
            if not same or FileSignature.of(source) != before:
                return  # still being written: a torn copy must not become a version
        except OSError:
            return
        ctx.upload_file(
            FileInfo(
                name=DATASET_FILE,
                path=target,
                filename=DATASET_FILE,
                file_type=FileType.UNKNOWN,
            )
        )

    def _add_dataset_files(self, ctx: SyncContext, copied: CopiedDataset, *, live: bool) -> None:
        ds = copied.dataset
        is_hdf5 = ds.format is DatasetFormat.HDF5
        ctx.upload_file(
            FileInfo(
                name=DATASET_FILE,
                path=copied.path,
                filename=DATASET_FILE,
                file_type=FileType.HDF5_NETCDF if is_hdf5 else FileType.UNKNOWN,
                generator=_GENERATOR + ("" if is_hdf5 else " (netCDF3)"),
            )
        )
        if ds.is_grid:
            path = ctx.work_path(f"converted/{GRIDDED_FILE}")
            try:
                layout = write_gridded(ds, path, DATASET_FILE)
            except GridError as exc:
                ctx.add_log(f"grid run not gridded: {exc}", logging.WARNING)
            except Exception as exc:
                ctx.add_error(f"writing {GRIDDED_FILE} failed: {type(exc).__name__}: {exc}")
            else:
                for warning in layout.warnings:
                    ctx.add_log(warning, logging.WARNING)
                ctx.upload_file(
                    FileInfo(
                        name=GRIDDED_FILE,
                        path=path,
                        filename=GRIDDED_FILE,
                        file_type=FileType.HDF5_NETCDF,
                        generator=_GENERATOR,
                    )
                )
                return
        if not is_hdf5:
            path = ctx.work_path(f"converted/{NETCDF4_FILE}")
            try:
                write_flat(ds, path, DATASET_FILE)
            except Exception as exc:
                ctx.add_error(f"writing {NETCDF4_FILE} failed: {type(exc).__name__}: {exc}")
            else:
                ctx.upload_file(
                    FileInfo(
                        name=NETCDF4_FILE,
                        path=path,
                        filename=NETCDF4_FILE,
                        file_type=FileType.HDF5_NETCDF,
                        generator=_GENERATOR,
                    )
                )

    def _add_other_files(self, ctx: SyncContext, listing: _FolderFiles) -> None:
        rels = {rel for rel, _ in listing.files}
        names = assign_names(
            (rel for rel in rels if rel != DATASET_FILE),
            reserved=(DATASET_FILE, GRIDDED_FILE, NETCDF4_FILE),
        )
        thumbnails: list[Path] = []
        for rel, path in listing.files:
            if rel == DATASET_FILE:
                continue
            name = names[rel]
            if rel in _SNAPSHOT_VARIANTS:
                ctx.upload_file(
                    FileInfo(name=name, path=path, file_type=FileType.UNKNOWN, generator=_GENERATOR)
                )
                if SNAPSHOT_FILE not in rels:
                    self._add_decompressed_snapshot(ctx, rel, path)
                continue
            ctx.upload_file(
                FileInfo(
                    name=name,
                    path=path,
                    file_type=sniff_file_type(path),
                    generator=_GENERATOR,
                    collected=_mtime_of(path),
                )
            )
            parts = PurePosixPath(rel).parts
            if (
                len(parts) > 1
                and parts[0].startswith("analysis_")
                and path.suffix.lower() == ".png"
            ):
                thumbnails.append(path)
        for index, path in enumerate(thumbnails[:_MAX_THUMBNAILS]):
            ctx.upload_file(
                FileInfo(name=f"__thumbnail_{index}", path=path, filename=path.name, ranking=-1)
            )

    def _add_decompressed_snapshot(self, ctx: SyncContext, rel: str, path: Path) -> None:
        opener = _SNAPSHOT_VARIANTS[rel]
        target = ctx.work_path(f"snapshot/{SNAPSHOT_FILE}")
        try:
            with opener(path, "rb") as source, open(target, "wb") as sink:
                written = 0
                while chunk := source.read(1 << 20):
                    written += len(chunk)
                    if written > _MAX_SNAPSHOT_BYTES:
                        raise ValueError(f"decompresses to more than {_MAX_SNAPSHOT_BYTES} bytes")
                    sink.write(chunk)
        except Exception as exc:
            ctx.add_error(f"{rel} cannot be decompressed: {type(exc).__name__}: {exc}")
            return
        ctx.upload_file(
            FileInfo(
                name=SNAPSHOT_FILE,
                path=target,
                filename=SNAPSHOT_FILE,
                file_type=FileType.JSON,
                generator=_GENERATOR,
            )
        )
