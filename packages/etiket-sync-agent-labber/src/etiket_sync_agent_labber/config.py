"""Configuration of a Labber source (field names as existing configurations spell them)."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from pathlib import Path

from etiket_sync_agent.errors import ConfigError

__all__ = ["DATABASE_FILE", "LabberConfig", "LabberDirectoryWarning"]

_log = logging.getLogger(__name__)

#: The index Labber keeps at the root of its data folder; not a dataset.
DATABASE_FILE = "Database.hdf5"


class LabberDirectoryWarning(UserWarning):
    """The configured folder does not look like a Labber data folder (it is still accepted)."""


@dataclasses.dataclass
class LabberConfig:
    """Configuration of a labber source.

    Attributes:
        labber_directory: the Labber data folder (layout ``YYYY/MM/Data_MMDD/*.hdf5``, usually with
            ``Database.hdf5`` at its root).
        set_up: stored as the ``set-up`` attribute of every dataset.
        static_attributes: added to every dataset's attributes.
        is_server_folder: the folder is on a network drive: poll instead of watching for events.
        stale_after: seconds an unfinished log (``Completed`` false) may show no growth before it
            is taken for an aborted run and synced as it is.
    """

    labber_directory: Path
    set_up: str
    static_attributes: dict[str, str] = dataclasses.field(default_factory=dict)
    is_server_folder: bool = False
    stale_after: float = 300.0

    def validate(self) -> None:
        """Refuse a missing folder; warn (do not refuse) when ``Database.hdf5`` is missing."""
        directory = Path(self.labber_directory)
        if not directory.is_dir():
            raise ConfigError("labber_directory", f"{directory} is not an existing folder")
        if not self.set_up.strip():
            raise ConfigError("set_up", "must not be empty")
        if self.stale_after < 0:
            raise ConfigError("stale_after", f"must be >= 0 seconds, got {self.stale_after}")
        if not (directory / DATABASE_FILE).is_file():
            message = (
                f"{directory} has no {DATABASE_FILE}: is it Labber's data folder? "
                "(accepted anyway; every .hdf5 log file below it is synced)"
            )
            _log.warning(message)
            warnings.warn(message, LabberDirectoryWarning, stacklevel=2)
