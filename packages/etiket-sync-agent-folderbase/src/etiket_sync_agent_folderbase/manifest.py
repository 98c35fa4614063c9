"""The existing agent's ``.QH_manifest.yaml``: read the dataset uuid it recorded, never write.

The existing agent writes this file into every folder it synced: ``version``, ``dataset_uuid``,
``scope_uuid``, ``dataset_sync_path`` (the folder's absolute path then), ``sync_time`` and
``files``. Its uuid is the identity of the dataset on the server, so a lab switching agents keeps
its datasets. We only read it, and we use its uuid only when the manifest belongs to this folder:

- recorded path = this folder → it is this dataset;
- recorded path gone (the folder was moved or the drive renamed) → it is this dataset, moved (the
  existing agent would make a new dataset here);
- recorded path is another folder that still holds a manifest with the same uuid → this folder is
  a copy: a new dataset, as with the existing agent.

The scope is the core's to check: a dataset found by this uuid in another scope is not adopted.
"""

from __future__ import annotations

import os
import uuid as uuid_module
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any

import yaml

__all__ = ["MANIFEST_FILE", "LegacyManifest", "manifest_uuid_for", "read_manifest"]

MANIFEST_FILE = ".QH_manifest.yaml"
#: A manifest larger than this is not one the existing agent wrote (it lists file infos only).
_MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class LegacyManifest:
    """The identity part of an existing agent's manifest."""

    dataset_uuid: str
    scope_uuid: str | None
    dataset_sync_path: str | None


def _uuid(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid_module.UUID(str(value).strip()))
    except ValueError:
        return None


def read_manifest(folder: Path) -> tuple[LegacyManifest | None, str | None]:
    """(manifest, problem): the folder's manifest if it has a usable one, else why not."""
    path = folder / MANIFEST_FILE
    try:
        if not path.is_file():
            return None, None
        if path.stat().st_size > _MAX_BYTES:
            return None, f"{MANIFEST_FILE} is larger than {_MAX_BYTES} bytes; ignored"
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{MANIFEST_FILE} cannot be read ({exc}); ignored"
    except yaml.YAMLError as exc:
        return None, f"{MANIFEST_FILE} is not valid YAML ({exc}); ignored"
    if not isinstance(raw, dict):
        return None, f"{MANIFEST_FILE} holds no mapping; ignored"
    dataset_uuid = _uuid(raw.get("dataset_uuid"))
    if dataset_uuid is None:
        return None, f"{MANIFEST_FILE} has no valid dataset_uuid; ignored"
    sync_path = raw.get("dataset_sync_path")
    return (
        LegacyManifest(
            dataset_uuid=dataset_uuid,
            scope_uuid=_uuid(raw.get("scope_uuid")),
            dataset_sync_path=str(sync_path) if sync_path else None,
        ),
        None,
    )


def _same_path(recorded: str, folder: Path) -> bool:
    """Whether a recorded absolute path names ``folder`` (case-insensitive on Windows)."""
    try:
        if Path(recorded).exists():
            return os.path.samefile(recorded, folder)
    except OSError:
        pass

    def norm(text: str) -> str:
        text = os.path.normpath(text)
        return os.path.normcase(text) if os.name == "nt" else text

    if norm(recorded) == norm(str(folder)):
        return True
    # A path written on Windows read on a POSIX host (or the reverse): compare the parts.
    return PureWindowsPath(recorded).parts == PureWindowsPath(str(folder)).parts


def manifest_uuid_for(folder: Path) -> tuple[str | None, str | None]:
    """(uuid or None, what was found): the dataset uuid the existing agent recorded for ``folder``.

    The message is ``None`` when the folder has no manifest at all.
    """
    manifest, problem = read_manifest(folder)
    if manifest is None:
        return None, problem
    recorded = manifest.dataset_sync_path
    if recorded is None or _same_path(recorded, folder):
        return manifest.dataset_uuid, f"dataset uuid {manifest.dataset_uuid} from {MANIFEST_FILE}"
    try:
        original_exists = Path(recorded).is_dir()
    except OSError:
        original_exists = False
    if original_exists:
        original, _ = read_manifest(Path(recorded))
        if original is not None and original.dataset_uuid == manifest.dataset_uuid:
            return None, (
                f"{MANIFEST_FILE} was copied from {recorded}, which still holds that dataset: "
                "this folder is a new dataset"
            )
    return manifest.dataset_uuid, (
        f"dataset uuid {manifest.dataset_uuid} from {MANIFEST_FILE} (recorded at {recorded}, "
        "which no longer holds it: the folder was moved)"
    )
