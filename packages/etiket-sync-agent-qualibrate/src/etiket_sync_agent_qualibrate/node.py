"""Reading one QUAlibrate node folder: its name, ``node.json``, ``data.json`` and references.

QUAlibrate saves a node (or a workflow) into ``<storage>/YYYY-MM-DD/#<id>_<name>_<HHMMSS>/``
(local date and time; the id is an integer unique only within the storage). ``node.json`` comes
first, then ``data.json`` (the results tree), then the data files. The non-JSON leaves of
``data.json`` are references relative to the folder: ``./ds_raw.h5`` (an xarray netCDF4 file),
``./arrays.npz#a.b.c`` (one key of an npz file), ``./figures.rabi.png``. ``node.json``'s
``data.quam`` may reference ``./quam_state.json`` or ``./quam_state`` the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = [
    "DATA_FILE",
    "NODE_FILE",
    "FolderName",
    "NodeFolder",
    "NodeReadError",
    "Reference",
    "is_day_folder",
    "iter_references",
    "parse_folder_name",
    "read_node_folder",
]

NODE_FILE = "node.json"
DATA_FILE = "data.json"

_DAY_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_FOLDER_RE = re.compile(r"^#(\d+)_(.*)_(\d{2})(\d{2})(\d{2})$", re.DOTALL)


class NodeReadError(Exception):
    """A node folder's JSON cannot be read or is not what QUAlibrate writes."""


@dataclass(frozen=True)
class FolderName:
    """The parts of ``#<id>_<name>_<HHMMSS>``."""

    node_id: int
    name: str
    hour: int
    minute: int
    second: int

    def local_time(self, day: str) -> dt.datetime | None:
        """The folder's date and time as a naive (local) datetime, if valid."""
        match = _DAY_RE.match(day)
        if match is None:
            return None
        try:
            return dt.datetime(
                int(match[1]), int(match[2]), int(match[3]), self.hour, self.minute, self.second
            )
        except ValueError:
            return None


def is_day_folder(name: str) -> bool:
    """Whether ``name`` is a valid ``YYYY-MM-DD`` date."""
    match = _DAY_RE.match(name)
    if match is None:
        return False
    try:
        dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return False
    return True


def parse_folder_name(name: str) -> FolderName | None:
    """Parse ``#<id>_<name>_<HHMMSS>``; ``None`` when ``name`` is not a node folder."""
    match = _FOLDER_RE.match(name)
    if match is None:
        return None
    hour, minute, second = int(match[3]), int(match[4]), int(match[5])
    if hour > 23 or minute > 59 or second > 60:
        return None
    return FolderName(int(match[1]), match[2], hour, minute, second)


@dataclass(frozen=True)
class Reference:
    """A ``./…`` leaf: where it sits in the tree, the file, and the npz key after ``#``."""

    tree_path: str
    file: str
    key: str | None

    @property
    def text(self) -> str:
        """The reference as written (``./file#key``)."""
        return f"./{self.file}" + (f"#{self.key}" if self.key is not None else "")


def _reference(tree_path: str, value: str) -> Reference | None:
    if not value.startswith("./") or len(value) <= 2:
        return None
    target, _, key = value[2:].partition("#")
    rel = PurePosixPath(target)
    if not target or rel.is_absolute() or ".." in rel.parts:
        return None
    return Reference(tree_path, rel.as_posix(), key or None)


def iter_references(tree: Any, prefix: str = "") -> Iterator[Reference]:
    """Every ``./…`` string leaf of a JSON tree (dict keys joined with ``.``, list indices too)."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from iter_references(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from iter_references(value, f"{prefix}.{index}" if prefix else str(index))
    elif isinstance(tree, str):
        ref = _reference(prefix, tree)
        if ref is not None:
            yield ref


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO 8601 time as QUAlibrate writes it (with offset); ``None`` when absent/invalid."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        # Python 3.10 only understands 0, 3 or 6 fraction digits.
        match = re.match(r"^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(.*)$", text)
        if match is None:
            return None
        fraction = (match[2] or "0")[:6].ljust(6, "0")
        try:
            return dt.datetime.fromisoformat(f"{match[1]}.{fraction}{match[3]}")
        except ValueError:
            return None


@dataclass
class NodeFolder:
    """What a node folder holds (JSON parsed; data files only checked for presence)."""

    path: Path
    name: FolderName
    node: dict[str, Any] | None
    data: Any
    has_data_file: bool
    references: list[Reference] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def metadata(self) -> dict[str, Any]:
        """``node.json``'s ``metadata`` (empty when absent)."""
        value = (self.node or {}).get("metadata")
        return value if isinstance(value, dict) else {}

    @property
    def node_data(self) -> dict[str, Any]:
        """``node.json``'s ``data`` (parameters, outcomes, quam; empty when absent)."""
        value = (self.node or {}).get("data")
        return value if isinstance(value, dict) else {}

    @property
    def complete(self) -> bool:
        """Both JSON files are there and every reference resolves."""
        return self.node is not None and self.has_data_file and not self.missing


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise NodeReadError(f"{path.name} is not UTF-8 text: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise NodeReadError(f"{path.name} is not valid JSON: {exc}") from None


def read_node_folder(path: Path) -> NodeFolder:
    """Read ``node.json`` and ``data.json`` of a node folder and check its references.

    Raises NodeReadError for a folder name that is not ``#<id>_<name>_<HHMMSS>``, for JSON that
    does not parse, and for a ``node.json`` that is not an object. A missing JSON file is not an
    error (``node``/``data`` are ``None``; see :attr:`NodeFolder.complete`).
    """
    name = parse_folder_name(path.name)
    if name is None:
        raise NodeReadError(
            f"{path.name!r} is not a QUAlibrate node folder (#<id>_<name>_<HHMMSS>)"
        )
    node: dict[str, Any] | None = None
    data: Any = None
    node_path = path / NODE_FILE
    data_path = path / DATA_FILE
    if node_path.is_file():
        parsed = _read_json(node_path)
        if not isinstance(parsed, dict):
            raise NodeReadError(f"{NODE_FILE} must hold a JSON object")
        node = parsed
    has_data = data_path.is_file()
    if has_data:
        data = _read_json(data_path)
    folder = NodeFolder(path=path, name=name, node=node, data=data, has_data_file=has_data)
    refs = list(iter_references(data)) if has_data else []
    quam = folder.node_data.get("quam")
    if isinstance(quam, str):
        ref = _reference("quam", quam)
        if ref is not None:
            refs.append(ref)
    folder.references = refs
    missing: dict[str, None] = {}
    for ref in refs:
        if not (path / ref.file).exists():
            missing.setdefault(ref.file, None)
    folder.missing = list(missing)
    return folder
