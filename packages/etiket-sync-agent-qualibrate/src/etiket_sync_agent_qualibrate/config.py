"""Configuration of a QUAlibrate source, and where QUAlibrate keeps its storage."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from etiket_sync_agent.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = ["QualibrateConfig", "default_config_file", "storage_location"]

_PROJECT_PLACEHOLDER = "${#/qualibrate/project}"


def default_config_file() -> Path:
    """``~/.qualibrate/config.toml``, where ``qualibrate-config`` writes its configuration."""
    return Path.home() / ".qualibrate" / "config.toml"


def storage_location(config_file: Path | None = None) -> Path:
    """The storage root QUAlibrate saves nodes into, read from its ``config.toml``.

    ``[qualibrate.storage] location``; a ``${#/qualibrate/project}`` in it is replaced by
    ``[qualibrate] project``; without a location, ``~/.qualibrate/user_storage/<project>``.
    Raises ConfigError (field ``qualibrate_directory``) when the file is missing or unreadable.
    """
    path = Path(config_file) if config_file is not None else default_config_file()
    try:
        with open(path, "rb") as handle:
            document: dict[str, Any] = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            "qualibrate_directory",
            f"not given, and QUAlibrate's configuration {path} does not exist; "
            "give the storage folder explicitly",
        ) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError("qualibrate_directory", f"cannot read {path}: {exc}") from None
    section = document.get("qualibrate")
    if not isinstance(section, dict):
        raise ConfigError("qualibrate_directory", f"{path} has no [qualibrate] section")
    project = section.get("project")
    storage = section.get("storage")
    location = storage.get("location") if isinstance(storage, dict) else None
    if isinstance(location, str) and location.strip():
        if _PROJECT_PLACEHOLDER in location:
            if not isinstance(project, str) or not project:
                raise ConfigError(
                    "qualibrate_directory",
                    f"{path}: the storage location names the project but no project is set",
                )
            location = location.replace(_PROJECT_PLACEHOLDER, project)
        return Path(os.path.expanduser(location))
    if isinstance(project, str) and project:
        return Path.home() / ".qualibrate" / "user_storage" / project
    raise ConfigError(
        "qualibrate_directory", f"{path} sets neither a storage location nor a project"
    )


@dataclasses.dataclass
class QualibrateConfig:
    """Configuration of a qualibrate source.

    Attributes:
        qualibrate_directory: QUAlibrate's storage folder (holding the ``YYYY-MM-DD`` day
            folders). ``None``: the ``[qualibrate.storage] location`` of
            ``~/.qualibrate/config.toml`` (read when the source starts).
        set_up: stored as the ``set-up`` attribute of every dataset.
        static_attributes: added to every dataset's attributes.
        is_server_folder: the folder is on a network drive: poll instead of watching for events.
        stale_after: seconds a node folder whose save is incomplete (a JSON file missing, a
            referenced file not on disk) may stay unchanged before it is synced as it is.
    """

    set_up: str
    qualibrate_directory: Path | None = None
    static_attributes: dict[str, str] = dataclasses.field(default_factory=dict)
    is_server_folder: bool = False
    stale_after: float = 300.0

    def storage_root(self) -> Path:
        """The storage folder: the configured one, else the one of QUAlibrate's config file."""
        if self.qualibrate_directory is not None and str(self.qualibrate_directory).strip():
            return Path(self.qualibrate_directory)
        return storage_location()

    def validate(self) -> None:
        """Refuse a missing folder, an empty set-up or a negative ``stale_after``."""
        if not self.set_up or not self.set_up.strip():
            raise ConfigError("set_up", "must name the set-up (e.g. the fridge)")
        root = self.storage_root()
        if not root.is_dir():
            raise ConfigError("qualibrate_directory", f"{root} is not an existing folder")
        if not self.stale_after >= 0:
            raise ConfigError("stale_after", f"must be >= 0 seconds, got {self.stale_after}")
