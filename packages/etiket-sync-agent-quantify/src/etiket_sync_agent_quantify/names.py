"""Logical file names of an experiment folder's files, as the existing agent gives them.

The existing agent names every file by its path relative to the experiment folder with any TUID
prefix (``YYYYmmDD-HHMMSS-fff-xxxxxx-``) stripped from each component and the components joined by
dots: ``snapshot.json`` stays ``snapshot.json``, ``analysis_Basic1DAnalysis/figs_mpl/Line plot.png``
becomes ``analysis_Basic1DAnalysis.figs_mpl.Line plot.png``. Files uploaded under the same names are
new versions of the same files when a lab switches agents.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath

__all__ = ["assign_names", "logical_name"]

_TUID_PREFIX = re.compile(r"^\d{8}-\d{6}-\d{3}-[a-z0-9]{6}-")


def logical_name(rel: str) -> str:
    """The existing agent's name for the file at ``rel`` (POSIX, relative to the folder)."""
    parts = [_TUID_PREFIX.sub("", part) or part for part in PurePosixPath(rel).parts]
    return ".".join(parts)


def assign_names(rels: Iterable[str], reserved: Iterable[str] = ()) -> dict[str, str]:
    """``rel`` → logical name for every file; a name already taken keeps the relative path.

    Dotted names can collide (``a.b/c.json`` and ``a/b.c.json``); the existing agent then uploads
    both as versions of one file. Here the first (in sorted order) keeps the dotted name and the
    other falls back to its relative path, so nothing overwrites anything.
    """
    taken = set(reserved)
    names: dict[str, str] = {}
    for rel in sorted(rels):
        name = logical_name(rel)
        if name in taken:
            name = rel
        counter = 2
        while name in taken:
            name = f"{rel} ({counter})"
            counter += 1
        taken.add(name)
        names[rel] = name
    return names
