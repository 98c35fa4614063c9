"""The qualibrate backend: one dataset per saved QUAlibrate node or workflow folder.

Layout: ``<storage>/YYYY-MM-DD/#<id>_<name>_<HHMMSS>/`` (see :mod:`etiket_sync_agent_qualibrate.node`).

What a dataset gets:

- record: name = ``metadata.name`` (else the name in the folder name), collected =
  ``created_at`` (else ``run_start``, else the folder's local date and time), description =
  ``metadata.description``, keyword = ``type_of_execution`` (``node``/``workflow``),
  ``alt_uid`` = storage root + relative folder path (the node id is unique only per storage);
  attributes ``set-up``, the source's static attributes, ``status``, ``qualibrate_id``,
  ``parents`` (earlier node ids, comma separated), ``workflow_parent_id``, ``children``, and the
  same links as relative folder paths (``parent_folders``, ``workflow_parent_folder``,
  ``children_folders``: with the storage root, the linked datasets' ``alt_uid``),
  ``outcome.<target>`` per target, ``run_start``/``run_end``, and ``parameter.<name>`` for every
  top-level parameter whose value is short;
- files: every file of the folder under its relative path (``node.json``, ``data.json``, the npz,
  netCDF and image files, ``quam_state.json`` or ``quam_state/…``); ``parameters.json`` (the
  parameter values and schema from ``node.json``); ``results.nc``, the referenced arrays and xarray
  datasets merged into one netCDF file; images also as thumbnails (``__thumbnail_<i>``, hidden).

Nothing in QUAlibrate is live: a folder is synced once its save is complete (both JSON files and
every ``./…`` reference present). A folder that stays incomplete for ``stale_after`` seconds (a
failed save) is synced as it is, with a warning naming what is missing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
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
from etiket_sync_agent.errors import SyncError
from etiket_sync_agent_qualibrate.config import QualibrateConfig
from etiket_sync_agent_qualibrate.node import (
    DATA_FILE,
    NODE_FILE,
    NodeFolder,
    NodeReadError,
    is_day_folder,
    parse_folder_name,
    parse_time,
    read_node_folder,
)
from etiket_sync_agent_qualibrate.results import collect_results, write_results_netcdf

__all__ = ["PARAMETERS_FILE", "RESULTS_FILE", "QualibrateSync"]

_log = logging.getLogger(__name__)

RESULTS_FILE = "results.nc"
PARAMETERS_FILE = "parameters.json"
_GENERATOR = "etiket-sync-agent-qualibrate"
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"}
_MAX_THUMBNAILS = 10
_MAX_PARAMETER_TEXT = 200
_NETCDF_SUFFIXES = {".h5", ".hdf5", ".nc"}


def _newest_mtime(folder: Path) -> float:
    newest = 0.0
    for current, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            try:
                newest = max(newest, os.stat(os.path.join(current, name)).st_mtime)
            except OSError:
                continue
    if newest == 0.0:
        try:
            newest = os.stat(folder).st_mtime
        except OSError:
            pass
    return newest


def _signature(folder: Path) -> tuple[int, ...] | None:
    """(mtime_ns, size) of the folder, ``node.json`` and ``data.json``; None if one is missing."""
    values: list[int] = []
    for path in (folder, folder / NODE_FILE, folder / DATA_FILE):
        try:
            st = os.stat(path)
        except OSError:
            return None
        values.extend((st.st_mtime_ns, st.st_size))
    return tuple(values)


def _describe_incomplete(node: NodeFolder) -> str:
    parts = []
    if node.node is None:
        parts.append(f"{NODE_FILE} is missing")
    if not node.has_data_file:
        parts.append(f"{DATA_FILE} is missing")
    if node.missing:
        parts.append("referenced files are missing: " + ", ".join(node.missing))
    return "; ".join(parts)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


class QualibrateSync(SyncSourceFileBase):
    """Syncs a QUAlibrate storage folder: one dataset per node/workflow folder."""

    name: ClassVar[str] = "qualibrate"
    config_class: ClassVar[type[Any]] = QualibrateConfig
    scope_policy: ClassVar[ScopePolicy] = ScopePolicy.REQUIRED
    live_sync: ClassVar[bool] = False
    implemented: ClassVar[bool] = True
    level: ClassVar[int] = 2

    config: QualibrateConfig

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._root: Path | None = None
        self._reported: set[str] = set()
        self._complete: dict[str, tuple[tuple[int, ...], float]] = {}
        self._lock = threading.Lock()

    def root_path(self) -> Path:
        if self._root is None:
            self._root = self.config.storage_root()
        return self._root

    # -- discovery -------------------------------------------------------------------------------
    def _skip_once(self, rel: str, reason: str) -> None:
        with self._lock:
            if rel in self._reported:
                return
            self._reported.add(rel)
        _log.info("qualibrate: %s skipped: %s", rel, reason)

    def accept_path(self, rel_path: PurePosixPath, abs_path: Path) -> bool:
        """Only ``YYYY-MM-DD/#<id>_<name>_<HHMMSS>`` folders are nodes; others are logged once."""
        if len(rel_path.parts) != 2 or any(p.startswith(".") for p in rel_path.parts):
            return False
        day, folder = rel_path.parts
        if not is_day_folder(day):
            self._skip_once(day, "not a YYYY-MM-DD day folder")
            return False
        if parse_folder_name(folder) is None:
            self._skip_once(rel_path.as_posix(), "not a node folder named #<id>_<name>_<HHMMSS>")
            return False
        return True

    def make_item(self, rel_path: PurePosixPath, abs_path: Path) -> SyncItem | None:
        """An item once the save is complete, or once it has been incomplete for ``stale_after``.

        A complete folder is remembered by the stat of the folder and its two JSON files, so a
        rescan of an unchanged storage reads no JSON.
        """
        rel = rel_path.as_posix()
        signature = _signature(abs_path)
        with self._lock:
            known = self._complete.get(rel)
        if known is not None and signature is not None and known[0] == signature:
            return SyncItem(key=rel, path=rel, priority=known[1])
        try:
            node = read_node_folder(abs_path)
        except NodeReadError:
            node = None  # unreadable JSON: an item, and its sync records the error
        except OSError as exc:
            _log.debug("qualibrate: %s not readable now: %s", rel, exc)
            return None
        if node is not None and not node.complete:
            age = time.time() - _newest_mtime(abs_path)
            if age < float(self.config.stale_after):
                _log.debug(
                    "qualibrate: %s is still being saved (%s)", rel, _describe_incomplete(node)
                )
                return None
        priority = 0.0
        if node is not None:
            created = self._collected(node, rel_path.parts[0])
            priority = created.timestamp()
            if node.complete and signature is not None:
                with self._lock:
                    self._complete[rel] = (signature, priority)
        return SyncItem(key=rel, path=rel, priority=priority)

    # -- sync ------------------------------------------------------------------------------------
    def sync_dataset(self, item: SyncItem, ctx: SyncContext) -> None:
        rel = str(item.path or item.key)
        folder = self.root_path() / rel
        if not folder.is_dir():
            raise SyncError(f"node folder {folder} no longer exists")
        try:
            node = read_node_folder(folder)
        except NodeReadError as exc:
            raise SyncError(f"{rel}: {exc}") from None
        if not node.complete:
            ctx.add_log(
                f"the save of this node is incomplete ({_describe_incomplete(node)}); "
                f"unchanged for {self.config.stale_after:g} s, synced as it is",
                logging.WARNING,
            )
        ctx.set_dataset(self._dataset_info(node, rel))
        files = self._list_files(folder, ctx)
        for file_rel, path in files:
            ctx.upload_file(FileInfo(name=file_rel, path=path, file_type=self._file_type(file_rel)))
        self._add_parameters(ctx, node)
        self._add_results(ctx, node)
        images = [p for r, p in files if PurePosixPath(r).suffix.lower() in _IMAGE_SUFFIXES]
        for index, path in enumerate(images[:_MAX_THUMBNAILS]):
            ctx.upload_file(
                FileInfo(name=f"__thumbnail_{index}", path=path, filename=path.name, ranking=-1)
            )

    # -- record ----------------------------------------------------------------------------------
    def _collected(self, node: NodeFolder, day: str) -> dt.datetime:
        for value in ((node.node or {}).get("created_at"), node.metadata.get("run_start")):
            parsed = parse_time(value)
            if parsed is not None:
                return parsed if parsed.tzinfo is not None else parsed.astimezone()
        local = node.name.local_time(day)
        if local is not None:
            return local.astimezone()
        return dt.datetime.fromtimestamp(_newest_mtime(node.path)).astimezone()

    def _dataset_info(self, node: NodeFolder, rel: str) -> DatasetInfo:
        meta = node.metadata
        raw = node.node or {}
        name = meta.get("name")
        if not isinstance(name, str) or not name.strip():
            name = node.name.name.strip() or f"#{node.name.node_id}"
        attributes = {str(k): str(v) for k, v in self.config.static_attributes.items()}
        attributes["set-up"] = self.config.set_up
        node_id = raw.get("id", node.name.node_id)
        attributes["qualibrate_id"] = str(node_id)
        if isinstance(node_id, int) and node_id != node.name.node_id:
            _log.warning("qualibrate: %s: node.json says id %s", rel, node_id)
        status = meta.get("status")
        if status is not None:
            attributes["status"] = str(status)
        parents = raw.get("parents")
        if isinstance(parents, list) and parents:
            attributes["parents"] = ", ".join(str(p) for p in parents)
        for key in ("workflow_parent_id", "run_start", "run_end"):
            if meta.get(key) is not None:
                attributes[key] = str(meta[key])
        linked = {
            "parent_folders": parents if isinstance(parents, list) else [],
            "workflow_parent_folder": [meta.get("workflow_parent_id")],
            "children_folders": meta.get("children") or [],
        }
        if any(v is not None for ids in linked.values() for v in ids):
            index = self._folders_by_id()
            for key, ids in linked.items():
                folders = [index[i] for i in ids if isinstance(i, int) and i in index]
                if folders:
                    attributes[key] = ", ".join(folders)
        children = meta.get("children")
        if isinstance(children, list) and children:
            attributes["children"] = ", ".join(str(c) for c in children)
        outcomes = node.node_data.get("outcomes")
        if isinstance(outcomes, dict):
            for target, outcome in outcomes.items():
                attributes[f"outcome.{target}"] = _text(outcome)
        for pname, value in self._parameter_values(node).items():
            text = _text(value)
            if len(text) <= _MAX_PARAMETER_TEXT:
                attributes[f"parameter.{pname}"] = text
        kind = meta.get("type_of_execution")
        description = meta.get("description")
        return DatasetInfo(
            name=name.strip(),
            collected=self._collected(node, PurePosixPath(rel).parts[0]),
            alt_uid=f"{self.root_path().resolve().as_posix().rstrip('/')}/{rel}",
            description=description if isinstance(description, str) and description else None,
            keywords=[str(kind)] if kind else [],
            attributes=attributes,
        )

    def _folders_by_id(self) -> dict[int, str]:
        """Node id → relative folder path of every node folder of the storage (names only)."""
        index: dict[int, str] = {}
        root = self.root_path()
        try:
            days = sorted(e.name for e in os.scandir(root) if e.is_dir() and is_day_folder(e.name))
        except OSError:
            return index
        for day in days:
            try:
                names = sorted(e.name for e in os.scandir(root / day) if e.is_dir())
            except OSError:
                continue
            for name in names:
                parsed = parse_folder_name(name)
                if parsed is not None:
                    index.setdefault(parsed.node_id, f"{day}/{name}")
        return index

    @staticmethod
    def _parameter_values(node: NodeFolder) -> dict[str, Any]:
        parameters = node.node_data.get("parameters")
        model = parameters.get("model") if isinstance(parameters, dict) else None
        if not isinstance(model, dict):
            return {}
        if node.metadata.get("type_of_execution") == "workflow":
            inner = model.get("parameters")
            return dict(inner) if isinstance(inner, dict) else {}
        return dict(model)

    # -- files -----------------------------------------------------------------------------------
    @staticmethod
    def _file_type(rel: str) -> FileType | None:
        if PurePosixPath(rel).suffix.lower() in _NETCDF_SUFFIXES:
            return FileType.HDF5_NETCDF
        return None

    def _list_files(self, folder: Path, ctx: SyncContext) -> list[tuple[str, Path]]:
        files: list[tuple[str, Path]] = []
        for current, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for file_name in sorted(names):
                if file_name.startswith("."):
                    continue
                path = Path(current) / file_name
                rel = path.relative_to(folder).as_posix()
                if not os.access(path, os.R_OK):
                    ctx.add_error(f"permission denied reading {rel}; it was not uploaded")
                    continue
                files.append((rel, path))
        return sorted(files)

    def _add_parameters(self, ctx: SyncContext, node: NodeFolder) -> None:
        parameters = node.node_data.get("parameters")
        if not isinstance(parameters, dict):
            return
        ctx.upload_json(parameters, PARAMETERS_FILE, filename=PARAMETERS_FILE, generator=_GENERATOR)

    def _add_results(self, ctx: SyncContext, node: NodeFolder) -> None:
        data_refs = [r for r in node.references if r.tree_path != "quam"]
        if not data_refs:
            return
        try:
            merged = collect_results(node.path, data_refs)
        except Exception as exc:
            ctx.add_error(f"merging the referenced data failed: {type(exc).__name__}: {exc}")
            return
        for problem in merged.problems:
            ctx.add_log(problem, logging.WARNING)
        if merged.sources == 0:
            return
        ds = merged.dataset
        ds.attrs["qualibrate_name"] = str(node.metadata.get("name", node.name.name))
        ds.attrs["qualibrate_id"] = node.name.node_id
        target = ctx.work_path(f"converted/{RESULTS_FILE}")
        try:
            write_results_netcdf(ds, target)
        except Exception as exc:
            ctx.add_error(f"writing {RESULTS_FILE} failed: {type(exc).__name__}: {exc}")
            return
        ctx.upload_file(
            FileInfo(
                name=RESULTS_FILE,
                path=target,
                filename=RESULTS_FILE,
                file_type=FileType.HDF5_NETCDF,
                generator=_GENERATOR,
            )
        )
