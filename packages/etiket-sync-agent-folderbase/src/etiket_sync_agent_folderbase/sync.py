"""The folderbase backend: any folder tree, one dataset per folder.

With ``level = -1`` (default) every folder holding a ``_QH_dataset_info.yaml`` is a dataset (nested
info files are separate datasets whose files do not belong to the parent); with ``level = n`` every
folder at depth ``n`` below the root is one, with or without an info file. Every other file below
the dataset folder is uploaded under its relative POSIX path; hidden files and folders are skipped,
as are the info file's ``skip`` globs. A ``*.zarr`` sub-folder, or a suffixed sub-folder a configured
converter accepts, is one unit: converted when a converter for its type is configured, otherwise
zipped deterministically, never walked.

Names, types and descriptions follow the existing agent (logical name = relative POSIX path,
converted files named with the input's suffix replaced, HDF5 files typed ``HDF5_NETCDF`` when they
are netCDF-readable), and the dataset uuid the existing agent recorded in ``.QH_manifest.yaml`` is
reused (read only; see :mod:`etiket_sync_agent_folderbase.manifest`).
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
from etiket_sync_agent.connectors.dataset import sniff_file_type
from etiket_sync_agent.errors import ConfigError, SyncError
from etiket_sync_agent_folderbase.converters import resolve_converter
from etiket_sync_agent_folderbase.info_file import INFO_FILE, MAX_THUMBNAILS, read_info_file
from etiket_sync_agent_folderbase.manifest import manifest_uuid_for

__all__ = [
    "FolderBaseConfig",
    "FolderBaseSync",
    "description_of",
    "deterministic_zip",
    "file_type_of",
    "folders_overlap",
]

_log = logging.getLogger(__name__)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_THUMBNAIL_TYPES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}
#: Suffixed folders that are one unit even without a converter (zipped).
_UNIT_FOLDER_SUFFIXES = {".zarr"}


def file_type_of(path: Path) -> FileType:
    """The file type the existing agent gives a dataset file, or a better one.

    HDF5 files (``.hdf5``, ``.h5``, ``.nc``) are ``HDF5_NETCDF`` when they read as netCDF4, else
    ``HDF5``; ``.json`` is ``JSON``, ``.txt`` ``TEXT``. Other suffixes use the core's table (text
    formats such as ``.csv`` are ``TEXT`` where the existing agent says ``UNKNOWN``).
    """
    return sniff_file_type(path)


def description_of(description: str | None, name: str, folder: Path) -> str:
    """The existing agent's description: the info file's text and the folder's path, or a default."""
    if description:
        return f"{description}\n\nDataset source path: {folder}"
    return f"Dataset {name} from FileBaseGeneric"


def _mtime_of(path: Path) -> dt.datetime | None:
    """A file's modification time, the time the existing agent gives each file version."""
    try:
        return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.timezone.utc)
    except OSError:
        return None


def _converted_name(rel: str, output_type: str) -> str:
    """``data/x.csv`` → ``data/x.hdf5`` (a suffix-less path gets the suffix appended)."""
    path = PurePosixPath(rel)
    return path.with_suffix(f".{output_type}").as_posix() if path.suffix else f"{rel}.{output_type}"


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
    def _units(
        self, folder: Path, skip: list[str], converters: list[tuple[Any, Any]] | None = None
    ) -> list[tuple[str, Path]]:
        """(relative name, path) of every file and unit folder (``x.zarr``) of the dataset."""
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
                    if path.suffix.lower() in _UNIT_FOLDER_SUFFIXES or any(
                        conv.accepts(path) for _, conv in converters or ()
                    ):
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
        converters = self._converters(ctx, info.converters)
        units = self._units(folder, info.skip, converters)
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
        known_uuid, reason = manifest_uuid_for(folder)
        if reason is not None:
            ctx.add_log(reason)
        name = info.dataset_name or folder.name
        ctx.set_dataset(
            DatasetInfo(
                name=name,
                collected=collected,
                uuid=known_uuid,
                description=description_of(info.description, name, folder.absolute()),
                keywords=info.tags,
                attributes=attributes,
            )
        )
        taken = {rel for rel, _ in units}
        for rel, path in units:
            self._add_unit(ctx, rel, path, converters, taken)
        self._add_thumbnails(ctx, folder, info.thumbnails, units)

    @staticmethod
    def _converters(ctx: SyncContext, specs: list[str]) -> list[tuple[Any, Any]]:
        """(reference, converter instance) per usable entry; problems are item errors."""
        loaded: list[tuple[Any, Any]] = []
        for spec in specs:
            try:
                ref = resolve_converter(spec)
            except Exception as exc:
                ctx.add_error(f"converter {spec!r} cannot be used: {exc}")
                continue
            if ref.name != spec:
                ctx.add_log(f"converter {spec!r}: using the installed converter {ref.name!r}")
            try:
                loaded.append((ref, ctx.get_converter(ref.name)))
            except Exception as exc:
                hint = (
                    f" (it stands for the existing agent's {spec!r}; install "
                    "etiket-sync-agent-converters)"
                    if ref.name != spec and ref.output_type is not None
                    else ""
                )
                ctx.add_error(f"converter {spec!r} cannot be used: {exc}{hint}")
        return loaded

    def _add_unit(
        self,
        ctx: SyncContext,
        rel: str,
        path: Path,
        converters: list[tuple[Any, Any]],
        taken: set[str],
    ) -> None:
        matching = [(ref, conv) for ref, conv in converters if conv.accepts(path)]
        converted = False
        for ref, converter in matching:
            out_dir = ctx.work_path(f"converted/{rel}.d")
            out_dir.mkdir(parents=True, exist_ok=True)
            try:
                output = Path(converter.convert(path, out_dir))
            except Exception as exc:
                ctx.add_error(
                    f"converter {ref.spec!r} failed on {rel}: {type(exc).__name__}: {exc}"
                )
                continue
            converted = True
            suffix = ref.output_type or converter.output_type
            name = _converted_name(rel, suffix)
            if name in taken:
                # The dataset holds a file of that name already: keep both, name ours apart.
                name = f"{rel}.{suffix}"
                ctx.add_log(
                    f"{_converted_name(rel, suffix)} exists in the folder; the output of "
                    f"{ref.spec!r} on {rel} is uploaded as {name}",
                    logging.WARNING,
                )
            taken.add(name)
            ctx.upload_file(
                FileInfo(
                    name=name,
                    path=output,
                    filename=PurePosixPath(name).name,
                    file_type=file_type_of(output),
                    generator=f"etiket-sync-agent converter {ref.name}",
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
        ctx.upload_file(
            FileInfo(name=rel, path=path, file_type=file_type_of(path), collected=_mtime_of(path))
        )

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
