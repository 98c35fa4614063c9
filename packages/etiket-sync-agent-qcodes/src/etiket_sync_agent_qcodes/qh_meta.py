"""Tags and attributes of the ``qh_meta`` instrument in a run's station snapshot.

Labs that used the existing agent add a QCoDeS instrument named ``qh_meta`` to their station; its
parameters ``tags`` (a list or set of strings) and ``attributes`` (a mapping) are recorded in every
run's snapshot under ``station.instruments.qh_meta.parameters.<name>.value``. The existing agent
turns them into dataset keywords and attributes; so do we. An attribute value that is itself a
mapping with a ``value`` key (a parameter-like entry) is reduced to that value.

Snapshots are written by many QCoDeS versions and encoders, so a set may arrive as a JSON list or as
the text of a Python literal (``"{'a', 'b'}"``); both are read, without ever evaluating code.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["QHMeta", "qh_meta_from_snapshot"]

INSTRUMENT = "qh_meta"


@dataclass
class QHMeta:
    """What the ``qh_meta`` instrument contributed to one run (empty when it is absent)."""

    tags: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    #: Problems found while reading it (the run still syncs; the backend logs these).
    problems: list[str] = field(default_factory=list)


def _literal(value: Any) -> Any:
    """A Python/JSON literal written as text (``"['a']"``, ``"{'a': 1}"``) as its value."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text or text[0] not in "[{(":
        return value
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return value


def _text(value: Any) -> str | None:
    """An attribute value as the server stores it (strings); ``None`` when there is nothing."""
    if isinstance(value, Mapping) and "value" in value:
        value = value["value"]
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return str(value)
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


def _parameter_value(parameters: Mapping[str, Any], name: str) -> Any:
    entry = parameters.get(name)
    if isinstance(entry, Mapping):
        return _literal(entry.get("value"))
    return None


def qh_meta_from_snapshot(snapshot: Any) -> QHMeta:
    """Read ``station.instruments.qh_meta`` from a parsed snapshot (any shape is tolerated)."""
    meta = QHMeta()
    if not isinstance(snapshot, Mapping):
        return meta
    station = snapshot.get("station")
    instruments = station.get("instruments") if isinstance(station, Mapping) else None
    instrument = instruments.get(INSTRUMENT) if isinstance(instruments, Mapping) else None
    if instrument is None:
        return meta
    parameters = instrument.get("parameters") if isinstance(instrument, Mapping) else None
    if not isinstance(parameters, Mapping):
        meta.problems.append("the qh_meta instrument in the snapshot has no parameters")
        return meta

    tags = _parameter_value(parameters, "tags")
    if isinstance(tags, str):
        tags = [tags]
    if isinstance(tags, (list, tuple, set, frozenset)):
        found = [str(tag).strip() for tag in tags if tag is not None and str(tag).strip()]
        meta.tags = sorted(set(found)) if isinstance(tags, (set, frozenset)) else found
    elif tags is not None:
        meta.problems.append(f"qh_meta tags are not a list: {tags!r}")

    attributes = _parameter_value(parameters, "attributes")
    if isinstance(attributes, Mapping):
        for key, value in attributes.items():
            text = _text(value)
            if text is not None:
                meta.attributes[str(key)] = text
    elif attributes is not None:
        meta.problems.append(f"qh_meta attributes are not a mapping: {attributes!r}")
    return meta
