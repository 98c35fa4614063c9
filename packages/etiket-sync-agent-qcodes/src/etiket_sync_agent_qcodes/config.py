"""Configuration of a QCoDeS source and its validation."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

from etiket_sync_agent.errors import ConfigError

__all__ = ["QCoDeSConfig", "check_qcodes_database"]


def check_qcodes_database(path: Path) -> None:
    """Raise ConfigError (field ``database_path``) unless ``path`` is a readable QCoDeS database."""
    from etiket_sync_agent_qcodes.reader import DatabaseUnavailable, QCoDeSDatabase

    field = "database_path"
    if not path.exists():
        raise ConfigError(field, f"{path} does not exist")
    if path.is_dir():
        raise ConfigError(field, f"{path} is a folder, not a QCoDeS .db file")
    try:
        with QCoDeSDatabase(path) as database:
            missing = database.missing_tables()
    except DatabaseUnavailable as exc:
        raise ConfigError(field, str(exc)) from None
    except sqlite3.Error as exc:
        raise ConfigError(field, f"{path} is not a readable SQLite database ({exc})") from None
    if missing:
        raise ConfigError(
            field,
            f"{path} is an SQLite database but not a QCoDeS one: table(s) "
            f"{', '.join(missing)} missing",
        )


@dataclasses.dataclass
class QCoDeSConfig:
    """Configuration of a qcodes source (field names as existing configurations use them).

    Attributes:
        database_path: the QCoDeS SQLite file (``experiments.db``); opened read-only.
        set_up: the measurement set-up, added to every dataset as the ``set-up`` attribute.
        static_attributes: extra attributes added to every dataset of this source.
        stale_after: seconds the newest unfinished run may show no growth before it is synced as
            it is (a crashed kernel never completes its run); it is synced again if it grows.
    """

    database_path: Path
    set_up: str
    static_attributes: dict[str, str] = dataclasses.field(default_factory=dict)
    stale_after: float = 300.0

    def validate(self) -> None:
        """Check the fields; raise ConfigError naming the offending one."""
        if not str(self.set_up).strip():
            raise ConfigError("set_up", "must not be empty")
        if self.stale_after < 0:
            raise ConfigError("stale_after", f"must be >= 0 seconds, got {self.stale_after}")
        for key in self.static_attributes:
            if not str(key).strip():
                raise ConfigError("static_attributes", "attribute names must not be empty")
        check_qcodes_database(Path(self.database_path).expanduser())
