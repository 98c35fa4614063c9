"""Walking a file source: which datasets exist and how they look now.

The walk uses ``os.scandir`` and never follows symlinked folders (no loops), never opens files (only
``stat``), and never writes anything. Directory listings are cached by the directory's ``mtime_ns``,
so a reconciling scan of a tree that did not change re-lists nothing; file stats are still taken for
the fingerprints (a file rewritten in place does not change its folder's mtime).

A dataset's fingerprint summarises the names, sizes and ``mtime_ns`` of every file below it: when it
changes, the dataset is synced again (only files whose content changed get new versions).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from etiket_sync_agent.connectors.base import SyncSourceFileBase
from etiket_sync_agent.connectors.item import SyncItem
from etiket_sync_agent.errors import SourceError

__all__ = [
    "DATASET_INFO_FILE",
    "FileStat",
    "ScanResult",
    "TreeScanner",
    "discover_file_items",
    "fingerprint_path",
]

#: The file that marks a folder as a dataset for level -1 sources.
DATASET_INFO_FILE = "_QH_dataset_info.yaml"


@dataclass(frozen=True)
class FileStat:
    """A file below a dataset: relative POSIX path, size and mtime in ns."""

    rel_path: str
    size: int
    mtime_ns: int


@dataclass
class _DirEntryCache:
    mtime_ns: int
    dirs: list[str]
    files: list[str]


@dataclass
class ScanResult:
    """Outcome of one scan: items plus, per key, the newest mtime seen below the dataset."""

    items: list[SyncItem] = field(default_factory=list)
    newest_mtime_ns: dict[str, int] = field(default_factory=dict)
    files_seen: int = 0
    dirs_listed: int = 0
    errors: list[str] = field(default_factory=list)


class TreeScanner:
    """Scans one file source, caching directory listings between scans."""

    def __init__(self, backend: SyncSourceFileBase) -> None:
        self.backend = backend
        self._listing: dict[str, _DirEntryCache] = {}
        self._last: ScanResult | None = None

    # -- listing ---------------------------------------------------------------------------------
    def _list(self, path: str, result: ScanResult) -> _DirEntryCache | None:
        try:
            st = os.stat(path)
        except OSError as exc:
            result.errors.append(f"{path}: {exc.strerror or exc}")
            self._listing.pop(path, None)
            return None
        cached = self._listing.get(path)
        if cached is not None and cached.mtime_ns == st.st_mtime_ns:
            return cached
        dirs: list[str] = []
        files: list[str] = []
        try:
            with os.scandir(path) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            dirs.append(entry.name)
                        elif entry.is_file(follow_symlinks=True):
                            files.append(entry.name)
                    except OSError:
                        continue
        except OSError as exc:
            result.errors.append(f"{path}: {exc.strerror or exc}")
            return None
        result.dirs_listed += 1
        dirs.sort()
        files.sort()
        entry_cache = _DirEntryCache(st.st_mtime_ns, dirs, files)
        self._listing[path] = entry_cache
        return entry_cache

    def _walk_files(
        self, top: str, rel_prefix: str, result: ScanResult, stop_at_info: bool
    ) -> Iterator[tuple[str, str]]:
        """(absolute path, relative path) of every non-hidden file below ``top``.

        With ``stop_at_info`` sub-folders holding their own dataset info file are not entered
        (nested datasets are separate datasets).
        """
        listing = self._list(top, result)
        if listing is None:
            return
        for name in listing.files:
            if not name.startswith("."):
                yield os.path.join(top, name), f"{rel_prefix}{name}"
        for name in listing.dirs:
            if name.startswith("."):
                continue
            sub = os.path.join(top, name)
            if stop_at_info:
                sub_listing = self._list(sub, result)
                if sub_listing is not None and DATASET_INFO_FILE in sub_listing.files:
                    continue
            yield from self._walk_files(sub, f"{rel_prefix}{name}/", result, stop_at_info)

    # -- fingerprints ----------------------------------------------------------------------------
    def file_stats(self, abs_path: Path, *, stop_at_info: bool = True) -> list[FileStat]:
        """Stats of every non-hidden file below a dataset folder (or of the file itself)."""
        result = ScanResult()
        return self._file_stats(str(abs_path), result, stop_at_info)

    def _file_stats(self, path: str, result: ScanResult, stop_at_info: bool) -> list[FileStat]:
        stats: list[FileStat] = []
        try:
            st = os.stat(path)
        except OSError:
            return stats
        if not stat.S_ISDIR(st.st_mode):
            return [FileStat(os.path.basename(path), st.st_size, st.st_mtime_ns)]
        for abs_file, rel in self._walk_files(path, "", result, stop_at_info):
            try:
                fst = os.stat(abs_file)
            except OSError:
                continue  # vanished between listing and stat: the next scan sees the truth
            stats.append(FileStat(rel, fst.st_size, fst.st_mtime_ns))
        result.files_seen += len(stats)
        return stats

    # -- the scan --------------------------------------------------------------------------------
    def _candidates(self, root: str, result: ScanResult) -> Iterator[tuple[str, str, bool]]:
        """(absolute path, relative path, is_file) of every candidate dataset."""
        level = self.backend.dataset_level()
        single = self.backend.is_single_file
        if level == -1:
            stack: list[tuple[str, str]] = [(root, "")]
            while stack:
                top, rel = stack.pop()
                listing = self._list(top, result)
                if listing is None:
                    continue
                if single:
                    for name in listing.files:
                        if not name.startswith("."):
                            yield os.path.join(top, name), f"{rel}{name}", True
                elif DATASET_INFO_FILE in listing.files and rel:
                    yield top, rel.rstrip("/"), False
                elif DATASET_INFO_FILE in listing.files:
                    yield top, ".", False
                for name in reversed(listing.dirs):
                    if not name.startswith("."):
                        stack.append((os.path.join(top, name), f"{rel}{name}/"))
            return
        frontier: list[tuple[str, str]] = [(root, "")]
        for depth in range(1, level + 1):
            next_frontier: list[tuple[str, str]] = []
            for top, rel in frontier:
                listing = self._list(top, result)
                if listing is None:
                    continue
                if depth == level:
                    names = listing.files if single else listing.dirs
                    for name in names:
                        if not name.startswith("."):
                            yield os.path.join(top, name), f"{rel}{name}", single
                else:
                    for name in listing.dirs:
                        if not name.startswith("."):
                            next_frontier.append((os.path.join(top, name), f"{rel}{name}/"))
            frontier = next_frontier

    def scan(self) -> ScanResult:
        """Find every dataset of the source now, with fingerprints.

        Raises :class:`SourceError` when the root is missing (an unmounted share must never look
        like "everything was deleted").
        """
        root_path = Path(self.backend.root_path())
        if not root_path.is_dir():
            raise SourceError(
                f"source folder {root_path} does not exist or is not a folder "
                "(unmounted network drive?); the source is paused until it is back"
            )
        root = str(root_path)
        result = ScanResult()
        stop_at_info = self.backend.dataset_level() == -1 and not self.backend.is_single_file
        for abs_path, rel, _is_file in self._candidates(root, result):
            rel_path = PurePosixPath(rel)
            path_obj = Path(abs_path)
            if not self.backend.accept_path(rel_path, path_obj):
                continue
            item = self.backend.make_item(rel_path, path_obj)
            if item is None:
                continue
            stats = self._file_stats(abs_path, result, stop_at_info)
            newest = max((s.mtime_ns for s in stats), default=0)
            if item.fingerprint is None:
                item.fingerprint = fingerprint_stats(stats)
            if item.path is None:
                item.path = rel_path.as_posix()
            result.items.append(item)
            result.newest_mtime_ns[item.key] = newest
        self._last = result
        return result


def fingerprint_stats(stats: list[FileStat]) -> str:
    """A short stable digest of (name, size, mtime_ns) of every file."""
    digest = hashlib.blake2b(digest_size=16)
    for entry in sorted(stats, key=lambda s: s.rel_path):
        digest.update(f"{entry.rel_path}\0{entry.size}\0{entry.mtime_ns}\n".encode())
    return f"{len(stats)}:{digest.hexdigest()}"


def fingerprint_path(path: Path) -> str:
    """Fingerprint of one file or of every file below a folder (no scanner cache)."""
    scanner = TreeScanner.__new__(TreeScanner)
    scanner._listing = {}
    return fingerprint_stats(scanner._file_stats(str(path), ScanResult(), True))


def discover_file_items(backend: SyncSourceFileBase) -> list[SyncItem]:
    """Every dataset of a file source as items with fingerprints (one uncached scan)."""
    return TreeScanner(backend).scan().items
