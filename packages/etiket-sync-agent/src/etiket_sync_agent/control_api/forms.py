"""Config forms for UIs, generated from a backend's config class (dataclass or pydantic model).

The shape is the one the dataQruiser GUI reads from the existing agent's
``GET /api/v1/sync/sources/connectors``: one ``{name, description, type, is_required, default}`` per
field, with the type vocabulary ``string, integer, float, boolean, path, dir_path, file_path, list,
dict``. Two quirks of the existing agent are not copied: a field with a default is *not* required,
and ``list[...]`` fields are reported as ``list``.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import types
import typing
from pathlib import Path
from typing import Any, Union

import pydantic

from etiket_sync_agent.connectors.config import config_fields

__all__ = ["FIELD_TYPES", "config_form", "field_type"]

#: The type vocabulary of the existing agent's connector forms.
FIELD_TYPES = (
    "string",
    "integer",
    "float",
    "boolean",
    "path",
    "dir_path",
    "file_path",
    "list",
    "dict",
)

_MISSING = object()


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin is Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        if len(args) == 1:
            return args[0], optional
        return (args[0] if args else Any), optional
    return annotation, False


def field_type(name: str, annotation: Any) -> str:
    """The form type of one field (paths are typed by the field name's suffix, as upstream)."""
    base, _ = _strip_optional(annotation)
    origin = typing.get_origin(base) or base
    if origin is typing.Annotated:
        base = typing.get_args(base)[0]
        origin = typing.get_origin(base) or base
    if isinstance(origin, type):
        if issubclass(origin, bool):
            return "boolean"
        if issubclass(origin, enum.Enum):
            return "string"
        if issubclass(origin, int):
            return "integer"
        if issubclass(origin, float):
            return "float"
        if issubclass(origin, Path):
            if name.endswith(("_directory", "_dir", "_folder")):
                return "dir_path"
            if name.endswith(("_path", "_file")):
                return "file_path"
            return "path"
        if issubclass(origin, (list, tuple, set, frozenset)):
            return "list"
        if issubclass(origin, dict):
            return "dict"
    return "string"


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, pydantic.SecretStr):
        return None
    if isinstance(value, (list, tuple, set)):
        return [_json_default(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_default(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _docstring_descriptions(config_class: type[Any]) -> dict[str, str]:
    """Field descriptions from a Google-style ``Attributes:`` section of the class docstring."""
    doc = config_class.__doc__ or ""
    found: dict[str, str] = {}
    match = re.search(r"^\s*(Attributes|Fields):\s*$", doc, re.MULTILINE)
    if not match:
        return found
    current: str | None = None
    indent: int | None = None
    for line in doc[match.end() :].splitlines():
        if not line.strip():
            continue
        width = len(line) - len(line.lstrip())
        entry = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(\([^)]*\))?:\s*(.*)$", line)
        if entry and (indent is None or width <= indent):
            indent = width
            current = entry.group(1)
            found[current] = entry.group(3).strip()
        elif current is not None and indent is not None and width > indent:
            found[current] = f"{found[current]} {line.strip()}".strip()
        else:
            break
    return found


def config_form(config_class: type[Any]) -> list[dict[str, Any]]:
    """The form description of a config class, one dict per field, in declaration order."""
    hints = config_fields(config_class)
    from_doc = _docstring_descriptions(config_class)
    form: list[dict[str, Any]] = []
    if isinstance(config_class, type) and issubclass(config_class, pydantic.BaseModel):
        for name, info in config_class.model_fields.items():
            annotation = hints.get(name, Any)
            _, optional = _strip_optional(annotation)
            has_default = not info.is_required()
            value = info.get_default(call_default_factory=True) if has_default else None
            form.append(
                {
                    "name": name,
                    "description": info.description or from_doc.get(name),
                    "type": field_type(name, annotation),
                    "is_required": not (optional or has_default),
                    "default": _json_default(value),
                }
            )
        return form
    for f in dataclasses.fields(config_class):
        annotation = hints.get(f.name, Any)
        _, optional = _strip_optional(annotation)
        default: Any = _MISSING
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        description = f.metadata.get("description") if f.metadata else None
        form.append(
            {
                "name": f.name,
                "description": description or from_doc.get(f.name),
                "type": field_type(f.name, annotation),
                "is_required": not (optional or default is not _MISSING),
                "default": None if default is _MISSING else _json_default(default),
            }
        )
    return form
