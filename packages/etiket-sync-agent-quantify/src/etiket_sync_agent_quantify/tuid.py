"""Quantify's TUIDs and experiment folder names.

A TUID (time-based unique identifier) is ``YYYYmmDD-HHMMSS-sss-xxxxxx``: the local date and time
of the run with milliseconds, and six alphanumeric characters (the start of a uuid4). Quantify
stores a run in ``<datadir>/YYYYmmDD/<tuid>`` or ``<datadir>/YYYYmmDD/<tuid>-<name>``; the name is
free text (spaces, ``=``, ``(``, ``.`` ... all occur).

Which folders quantify-core itself opens (facts from its ``data.handling``):
``locate_experiment_container(tuid)`` (used by ``load_dataset``) lists the day folder ``tuid[:8]``
and takes a folder whose name *contains* the TUID; ``get_tuids_containing`` takes every folder whose
first 26 characters are a valid TUID, whatever follows. So ``<tuid> <name>`` (a space),
``<tuid>_<name>`` and even a TUID inside the name are experiment folders too.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

__all__ = [
    "ExperimentFolder",
    "is_day_folder",
    "is_valid_tuid",
    "parse_folder_name",
    "skip_reason",
    "tuid_time",
]

_TUID_RE = re.compile(r"^\d{8}-\d{6}-\d{3}-[0-9A-Za-z]{6}$")
_TUID_SEARCH = re.compile(r"(?<![0-9A-Za-z])\d{8}-\d{6}-\d{3}-[0-9A-Za-z]{6}(?![0-9A-Za-z])")
_SEPARATORS = "-_ "
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


def _clean_name(text: str) -> str:
    """The run name around a TUID: one separator (``-``, ``_``, space) and outer spaces dropped."""
    text = text.strip()
    if text[:1] in _SEPARATORS:
        text = text[1:]
    return text.strip()


def parse_folder_name(folder_name: str, day: str | None = None) -> ExperimentFolder | None:
    """Split an experiment folder name into TUID and run name, as quantify-core finds folders.

    ``<tuid>``, ``<tuid>-<name>``, ``<tuid> <name>``, ``<tuid>_<name>`` and ``<tuid><anything>``
    (the name loses one leading separator). With ``day`` (the ``YYYYmmDD`` folder the name is in),
    a name holding a TUID of that day elsewhere (``copy of <tuid>``) is one too, since
    quantify-core's ``load_dataset`` finds it. ``None`` when the name holds no such TUID.
    """
    tuid = folder_name[:TUID_LENGTH]
    if is_valid_tuid(tuid):
        return ExperimentFolder(tuid=tuid, name=_clean_name(folder_name[TUID_LENGTH:]))
    if day is None:
        return None
    for match in _TUID_SEARCH.finditer(folder_name):
        found = match.group(0)
        if found[:8] == day and is_valid_tuid(found):
            before = folder_name[: match.start()].strip(_SEPARATORS)
            after = _clean_name(folder_name[match.end() :])
            return ExperimentFolder(tuid=found, name=" ".join(p for p in (before, after) if p))
    return None


def skip_reason(folder_name: str) -> str:
    """Why :func:`parse_folder_name` refused a folder of a day folder (for the log)."""
    if folder_name[:8].isdigit() and len(folder_name) >= TUID_LENGTH:
        return f"{folder_name[:TUID_LENGTH]!r} is not a valid TUID (YYYYmmDD-HHMMSS-sss-xxxxxx)"
    return "its name holds no TUID of this day (YYYYmmDD-HHMMSS-sss-xxxxxx)"
