"""The folderbase backend: any folder tree, one dataset per folder.

With ``level = -1`` (default) every folder holding a ``_QH_dataset_info.yaml`` is a dataset (nested
info files are separate datasets whose files do not belong to the parent); with ``level = n`` every
folder at depth ``n`` below the root is one, with or without an info file. Every other file below
the dataset folder is uploaded under its relative POSIX path; hidden files and folders are skipped,
as are the info file's ``skip`` globs. A sub-folder whose name has a suffix (``scan.zarr``) is one
unit: converted when a converter for its type is configured, otherwise zipped deterministically,
never walked.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import logging
import os
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from etiket_sync_agent import (
    DatasetInfo,
    FileInfo,
    FileType,
    ScopePolicy,
    SyncContext,
    SyncItem,
    SyncSourceFileBase,
)
from etiket_sync_agent.errors import ConfigError, SyncError
from etiket_sync_agent_folderbase.info_file import INFO_FILE, MAX_THUMBNAILS, read_info_file

__all__ = ["FolderBaseConfig", "FolderBaseSync", "deterministic_zip", "folders_overlap"]

_log = logging.getLogger(__name__)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_THUMBNAIL_TYPES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}


@dataclasses.dataclass
class FolderBaseConfig:
    """Configuration of a folderbase source (field names as existing configurations use them).

    Attributes:
        root_directory: the folder tree to sync.
        is_server_folder: the root is on a network drive: poll, do not watch.
        level: -1 = folders with an info file are datasets; n >= 1 = folders at depth n.
        set_up: stored as the ``set-up`` attribute of every dataset.
        static_attributes: added to every dataset's attributes.
        upload_original_of_converted: also upload the input of a converter (default yes).
    """

    root_directory: Path
    is_server_folder: bool = False
    level: int = -1
    set_up: str | None = None
    static_attributes: dict[str, str] = dataclasses.field(default_factory=dict)
    upload_original_of_converted: bool = True

    def validate(self) -> None:
        if not self.root_directory.is_dir():
            raise ConfigError("root_directory", f"{self.root_directory} is not an existing folder")
        if self.level == 0 or self.level < -1:
            raise ConfigError("level", f"must be -1 or a depth >= 1, got {self.level}")


def folders_overlap(a: Path, b: Path) -> bool:
    """Whether two source roots are the same folder or one contains the other."""
    a, b = a.resolve(), b.resolve()
    return a == b or a in b.parents or b in a.parents


def deterministic_zip(folder: Path, target: Path) -> Path:
    """Zip a folder with sorted entries and fixed timestamps: same content → same bytes."""
    entries = sorted(p for p in folder.rglob("*") if p.is_file())
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in entries:
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as source, archive.open(info, "w") as sink:
                while chunk := source.read(1 << 20):
                    sink.write(chunk)
    return target


def _skipped(rel: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        pattern = pattern.strip().lstrip("/")
        if fnmatch.fnmatchcase(rel, pattern) or fnmatch.fnmatchcase(
            rel, pattern.rstrip("/") + "/*"
        ):
            return True
        if pattern.startswith("**/") and fnmatch.fnmatchcase(rel, pattern[3:]):
            return True
        if "/" not in pattern and fnmatch.fnmatchcase(PurePosixPath(rel).name, pattern):
            return True
    return False


class FolderBaseSync(SyncSourceFileBase):
    """Syncs plain folder trees described by ``_QH_dataset_info.yaml`` files."""

    name: ClassVar[str] = "folderbase"
    config_class: ClassVar[type[Any]] = FolderBaseConfig
    scope_policy: ClassVar[ScopePolicy] = ScopePolicy.REQUIRED
    live_sync: ClassVar[bool] = False
    level: ClassVar[int] = -1

    config: FolderBaseConfig

    def root_path(self) -> Path:
        return Path(self.config.root_directory)

    def dataset_level(self) -> int:
        return int(self.config.level)

    def source_identity(self) -> str:
        return str(self.root_path().resolve())

    # -- walking one dataset ---------------------------------------------------------------------
    def _units(self, folder: Path, skip: list[str]) -> list[tuple[str, Path]]:
        """(relative name, path) of every file and suffixed folder of the dataset."""
        units: list[tuple[str, Path]] = []
        stack = [folder]
        while stack:
            current = stack.pop()
            try:
                entries = sorted(os.scandir(current), key=lambda e: e.name)
            except PermissionError:
                raise SyncError(f"permission denied listing {current}") from None
            except FileNotFoundError:
                raise SyncError(f"{current} vanished while it was read") from None
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                path = Path(entry.path)
                rel = path.relative_to(folder).as_posix()
                if _skipped(rel, skip):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if (path / INFO_FILE).exists():
                        continue  # a nested dataset: synced on its own
                    if path.suffix:
                        units.append((rel, path))  # x.zarr: one unit, never walked
                    else:
                        stack.append(path)
                elif entry.is_file(follow_symlinks=True):
                    if current == folder and entry.name == INFO_FILE:
                        continue
                    units.append((rel, path))
        return sorted(units)

    def sync_dataset(self, item: SyncItem, ctx: SyncContext) -> None:
        folder = self.root_path() / str(item.path)
        if not folder.is_dir():
            raise SyncError(f"dataset folder {folder} no longer exists")
        info_path = folder / INFO_FILE
        info = read_info_file(info_path) if info_path.exists() else read_info_file_default()
        units = self._units(folder, info.skip)
        if not units:
            ctx.add_log("the dataset folder holds no files (yet)", logging.WARNING)
        collected = info.collected
        if collected is None:
            mtimes = [p.stat().st_mtime for _, p in units if p.exists()]
            mtimes = mtimes or [folder.stat().st_mtime]
            collected = dt.datetime.fromtimestamp(min(mtimes))
        attributes = dict(self.config.static_attributes)
        if self.config.set_up:
            attributes["set-up"] = self.config.set_up
        attributes.update(info.attributes)
        ctx.set_dataset(
            DatasetInfo(
                name=info.dataset_name or folder.name,
                collected=collected,
                description=info.description,
                keywords=info.tags,
                attributes=attributes,
            )
        )
        converters = [(name, ctx.get_converter(name)) for name in info.converters]
        for rel, path in units:
            self._add_unit(ctx, rel, path, converters)
        self._add_thumbnails(ctx, folder, info.thumbnails, units)

    def _add_unit(
        self, ctx: SyncContext, rel: str, path: Path, converters: list[tuple[str, Any]]
    ) -> None:
        matching = [(name, conv) for name, conv in converters if conv.accepts(path)]
        converted = False
        for name, converter in matching:
            out_dir = ctx.work_path(f"converted/{rel}.d")
            out_dir.mkdir(parents=True, exist_ok=True)
            try:
                output = Path(converter.convert(path, out_dir))
            except Exception as exc:
                ctx.add_error(f"converter {name!r} failed on {rel}: {type(exc).__name__}: {exc}")
                continue
            converted = True
            ctx.upload_file(
                FileInfo(
                    name=f"{rel}.{converter.output_type}",
                    path=output,
                    filename=f"{path.name}.{converter.output_type}",
                    generator=f"etiket-sync-agent converter {name}",
                )
            )
        keep_original = not converted or self.config.upload_original_of_converted
        if not keep_original:
            return
        if path.is_dir():
            if converted:
                return
            archive = deterministic_zip(path, ctx.work_path(f"zipped/{rel}.zip"))
            ctx.upload_file(
                FileInfo(
                    name=f"{rel}.zip",
                    path=archive,
                    filename=f"{path.name}.zip",
                    file_type=FileType.UNKNOWN,
                )
            )
            return
        ctx.upload_file(FileInfo(name=rel, path=path))

    def _add_thumbnails(
        self, ctx: SyncContext, folder: Path, patterns: list[str], units: list[tuple[str, Path]]
    ) -> None:
        chosen: list[tuple[str, Path]] = []
        for pattern in patterns:
            matches = [(r, p) for r, p in units if fnmatch.fnmatchcase(r, pattern.lstrip("/"))]
            if not matches:
                ctx.add_log(f"thumbnail pattern {pattern!r} matches no file", logging.WARNING)
            for match in matches:
                if match not in chosen:
                    chosen.append(match)
        for index, (rel, path) in enumerate(chosen[:MAX_THUMBNAILS]):
            if path.suffix.lower() not in _THUMBNAIL_TYPES:
                ctx.add_log(f"thumbnail {rel} is not an image; ignored", logging.WARNING)
                continue
            ctx.upload_file(
                FileInfo(name=f"__thumbnail_{index}", path=path, filename=path.name, ranking=-1)
            )


def read_info_file_default() -> Any:
    """The description used for level-n datasets without an info file."""
    from etiket_sync_agent_folderbase.info_file import DatasetInfoFile

    return DatasetInfoFile()
