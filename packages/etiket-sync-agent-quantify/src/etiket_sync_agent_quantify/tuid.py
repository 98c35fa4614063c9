"""Quantify's TUIDs and experiment folder names.

A TUID (time-based unique identifier) is ``YYYYmmDD-HHMMSS-sss-xxxxxx``: the local date and time
of the run with milliseconds, and six alphanumeric characters (the start of a uuid4). Quantify
stores a run in ``<datadir>/YYYYmmDD/<tuid>`` or ``<datadir>/YYYYmmDD/<tuid>-<name>``; the name is
free text (spaces, ``=``, ``(``, ``.`` ... all occur).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

__all__ = ["ExperimentFolder", "is_day_folder", "is_valid_tuid", "parse_folder_name", "tuid_time"]

_TUID_RE = re.compile(r"^\d{8}-\d{6}-\d{3}-[0-9A-Za-z]{6}$")
TUID_LENGTH = 26


def is_valid_tuid(text: str) -> bool:
    """Whether ``text`` is a well-formed TUID with a real date and time."""
    if len(text) != TUID_LENGTH or not _TUID_RE.match(text):
        return False
    try:
        dt.datetime.strptime(text[:19], "%Y%m%d-%H%M%S-%f")
    except ValueError:
        return False
    return True


def is_day_folder(name: str) -> bool:
    """Whether ``name`` is a Quantify day folder (``YYYYmmDD``)."""
    if len(name) != 8 or not name.isdigit():
        return False
    try:
        dt.datetime.strptime(name, "%Y%m%d")
    except ValueError:
        return False
    return True


def tuid_time(tuid: str, timezone: str | None = None) -> dt.datetime:
    """The (aware) time a TUID encodes, read as local time of ``timezone`` (None = this machine)."""
    naive = dt.datetime.strptime(tuid[:19], "%Y%m%d-%H%M%S-%f")
    if timezone:
        return naive.replace(tzinfo=ZoneInfo(timezone))
    return naive.astimezone()


@dataclass(frozen=True)
class ExperimentFolder:
    """A parsed experiment folder name: the TUID and the (possibly empty) run name."""

    tuid: str
    name: str


def parse_folder_name(folder_name: str) -> ExperimentFolder | None:
    """Split ``<tuid>[-<name>]``; ``None`` when the folder is not a Quantify experiment folder."""
    tuid = folder_name[:TUID_LENGTH]
    if not is_valid_tuid(tuid):
        return None
    rest = folder_name[TUID_LENGTH:]
    if rest and not rest.startswith("-"):
        return None  # e.g. "<tuid>x": not how Quantify names folders
    return ExperimentFolder(tuid=tuid, name=rest[1:])
