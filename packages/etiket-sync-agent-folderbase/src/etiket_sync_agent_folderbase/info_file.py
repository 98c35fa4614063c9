"""``_QH_dataset_info.yaml``: the optional description of a dataset folder.

Keys (all optional): ``version``, ``dataset_name``, ``collected`` (``%Y-%m-%dT%H:%M:%S``; legacy
key ``created``), ``description``, ``attributes`` (flat str/int/float values), ``tags`` (legacy
``keywords``), ``skip`` (globs on the relative POSIX path), ``converters`` (entry-point names,
``module:Class``, ``{module: ..., class: ...}``, or the existing agent's mapping
``<in>_to_<out>_converter: {module, class}``), ``thumbnails`` (paths or globs, at most 10). Unknown keys and wrong types are
errors that name the key, so a typo never silently changes what is uploaded.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from etiket_sync_agent.errors import SyncError

__all__ = ["INFO_FILE", "DatasetInfoFile", "read_info_file"]

INFO_FILE = "_QH_dataset_info.yaml"
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
_KNOWN = {
    "version",
    "dataset_name",
    "collected",
    "created",
    "description",
    "attributes",
    "tags",
    "keywords",
    "skip",
    "converters",
    "thumbnails",
}
MAX_THUMBNAILS = 10


@dataclass
class DatasetInfoFile:
    """The validated content of an info file."""

    version: str | None = None
    dataset_name: str | None = None
    collected: dt.datetime | None = None
    description: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    skip: list[str] = field(default_factory=list)
    converters: list[str] = field(default_factory=list)
    thumbnails: list[str] = field(default_factory=list)


def _bad(path: Path, key: str, problem: str) -> SyncError:
    return SyncError(f"{path}: key {key!r} {problem}")


def _string_list(path: Path, key: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise _bad(path, key, "must be a list of strings")
    return [str(v) for v in value]


def _module_class(path: Path, key: str, entry: dict[Any, Any]) -> str:
    module, cls = entry.get("module"), entry.get("class")
    if set(entry) != {"module", "class"} or not (
        isinstance(module, str) and isinstance(cls, str) and module.strip() and cls.strip()
    ):
        raise _bad(
            path, key, f"must be a mapping with the string keys module and class, got {entry!r}"
        )
    return f"{module.strip()}:{cls.strip()}"


def _converters(path: Path, value: Any) -> list[str]:
    """Converter entries as ``name`` or ``module:Class`` strings, in the order written.

    Accepted forms: a list of entry-point names, ``module:Class`` strings or ``{module, class}``
    mappings; a single such mapping; or, as the existing agent's ``generate_dataset_info`` writes
    it, a mapping ``<input>_to_<output>_converter: {module: ..., class: ...}``.
    """
    if value is None:
        return []
    if isinstance(value, dict) and set(value) != {"module", "class"}:
        names: list[str] = []
        for key, entry in value.items():
            if isinstance(entry, str) and entry.strip():
                names.append(entry.strip())
            elif isinstance(entry, dict):
                names.append(_module_class(path, f"converters.{key}", entry))
            else:
                raise _bad(
                    path,
                    f"converters.{key}",
                    f"must be a mapping with the keys module and class, got {entry!r}",
                )
        return names
    entries = value if isinstance(value, list) else [value]
    names = []
    for index, entry in enumerate(entries):
        if isinstance(entry, str) and entry.strip():
            names.append(entry.strip())
        elif isinstance(entry, dict):
            names.append(_module_class(path, f"converters[{index}]", entry))
        else:
            raise _bad(
                path,
                f"converters[{index}]",
                "must be a converter name or a mapping with the keys module and class, "
                f"got {entry!r}",
            )
    return names


def _collected(path: Path, key: str, value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, str):
        raise _bad(path, key, f"must be a time like 2024-05-01T10:00:00, got {value!r}")
    try:
        return dt.datetime.strptime(value.strip(), _TIME_FORMAT)
    except ValueError:
        try:
            return dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise _bad(
                path, key, f"must be a time like 2024-05-01T10:00:00, got {value!r}"
            ) from None


def read_info_file(path: Path) -> DatasetInfoFile:
    """Parse and validate an info file; a problem raises SyncError naming the key."""
    try:
        text = path.read_text(encoding="utf-8")
    except PermissionError:
        raise SyncError(f"permission denied reading {path}") from None
    except UnicodeDecodeError as exc:
        raise SyncError(f"{path} is not UTF-8 text: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SyncError(f"{path} is not valid YAML: {exc}") from None
    if raw is None:
        return DatasetInfoFile()
    if not isinstance(raw, dict):
        raise SyncError(f"{path} must contain a mapping of keys, not {type(raw).__name__}")
    unknown = sorted(str(k) for k in raw if k not in _KNOWN)
    if unknown:
        raise _bad(path, unknown[0], f"is unknown (known keys: {', '.join(sorted(_KNOWN))})")
    info = DatasetInfoFile()
    if raw.get("version") is not None:
        info.version = str(raw["version"])
    name = raw.get("dataset_name")
    if name is not None:
        if not isinstance(name, (str, int, float)) or not str(name).strip():
            raise _bad(path, "dataset_name", "must be a non-empty string")
        info.dataset_name = str(name).strip()
    for key in ("collected", "created"):
        if raw.get(key) is not None:
            info.collected = _collected(path, key, raw[key])
            break
    if raw.get("description") is not None:
        if not isinstance(raw["description"], str):
            raise _bad(path, "description", "must be a string")
        info.description = raw["description"]
    attributes = raw.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise _bad(path, "attributes", "must be a mapping of names to values")
    for attr_key, value in attributes.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _bad(path, f"attributes.{attr_key}", "must be a string or a number")
        info.attributes[str(attr_key)] = str(value)
    info.tags = _string_list(path, "tags", raw.get("tags", raw.get("keywords")))
    info.skip = _string_list(path, "skip", raw.get("skip"))
    info.converters = _converters(path, raw.get("converters"))
    info.thumbnails = _string_list(path, "thumbnails", raw.get("thumbnails"))
    if len(info.thumbnails) > MAX_THUMBNAILS:
        raise _bad(
            path,
            "thumbnails",
            f"lists {len(info.thumbnails)} entries; at most {MAX_THUMBNAILS} are allowed",
        )
    return info
