"""Source configurations: parsing, validation, storage and display.

A backend's ``config_class`` is a dataclass or a pydantic model. Values are validated with pydantic
(so ``"5"`` becomes ``5`` and a string becomes a :class:`~pathlib.Path` where the field says so);
afterwards the optional hook ``validate()`` (dataclasses) or ``validate_config()`` (either) runs checks
that touch the outside world (the database file exists, the server answers). Any problem is raised as
:class:`~etiket_sync_agent.errors.ConfigError` naming the field.

Fields typed :class:`pydantic.SecretStr` are secrets: stored, never shown or logged.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_type_hints

import pydantic
from pydantic import SecretStr, TypeAdapter

from etiket_sync_agent.errors import ConfigError

__all__ = [
    "config_field_names",
    "config_fields",
    "config_to_storage",
    "is_valid_config_class",
    "mask_config",
    "parse_config",
]

_MASK = "********"


def is_valid_config_class(config_class: object) -> bool:
    """Whether ``config_class`` is a dataclass or a pydantic model class."""
    if not isinstance(config_class, type):
        return False
    return dataclasses.is_dataclass(config_class) or issubclass(config_class, pydantic.BaseModel)


def config_fields(config_class: type[Any]) -> dict[str, Any]:
    """Field name → annotation of a config class (resolved type hints)."""
    try:
        hints = get_type_hints(config_class)
    except Exception:  # unresolved forward references: fall back to raw annotations
        hints = dict(getattr(config_class, "__annotations__", {}))
    if issubclass(config_class, pydantic.BaseModel):
        return {name: hints.get(name, Any) for name in config_class.model_fields}
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(config_class)}


def config_field_names(config_class: type[Any]) -> list[str]:
    """The field names of a config class, in declaration order."""
    return list(config_fields(config_class))


def _secret_fields(config_class: type[Any]) -> set[str]:
    secret: set[str] = set()
    for name, annotation in config_fields(config_class).items():
        text = repr(annotation)
        if annotation is SecretStr or "SecretStr" in text:
            secret.add(name)
    return secret


def _describe(error: Mapping[str, Any]) -> tuple[str | None, str]:
    loc = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "invalid value"))
    if error.get("type") == "missing":
        message = "is required"
    elif error.get("type") in ("unexpected_keyword_argument", "extra_forbidden"):
        message = "is not a known configuration field"
    return (loc or None), message


def parse_config(config_class: type[Any], raw: Mapping[str, Any], *, check: bool = True) -> Any:
    """Build and validate a config instance from plain values.

    ``check=False`` skips the ``validate()`` hook (used when re-loading a stored config whose
    resources may be temporarily unavailable, e.g. an unmounted share).
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(None, f"configuration must be a mapping, not {type(raw).__name__}")
    known = set(config_field_names(config_class))
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            unknown[0],
            f"is not a known configuration field (known fields: {', '.join(sorted(known))})",
        )
    try:
        instance = TypeAdapter(config_class).validate_python(dict(raw))
    except pydantic.ValidationError as exc:
        problems = [_describe(e) for e in exc.errors()]
        field, message = problems[0]
        if len(problems) > 1:
            others = "; ".join(f"{f}: {m}" if f else m for f, m in problems[1:])
            message = f"{message} (also: {others})"
        raise ConfigError(field, message) from None
    if check:
        run_validation_hook(instance)
    return instance


def run_validation_hook(instance: Any) -> None:
    """Run the config's own ``validate_config()`` / ``validate()`` hook, normalising its errors."""
    hook = getattr(instance, "validate_config", None)
    if hook is None and dataclasses.is_dataclass(instance):
        hook = getattr(instance, "validate", None)
    if hook is None or not callable(hook):
        return
    try:
        hook()
    except ConfigError:
        raise
    except (ValueError, TypeError, OSError) as exc:
        raise ConfigError(None, str(exc)) from exc


def _to_plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_to_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return json.loads(json.dumps(value, default=str))


def config_to_storage(config: Any) -> dict[str, Any]:
    """A JSON-compatible dict of a config instance, secrets revealed (for the tracking store only)."""
    if isinstance(config, pydantic.BaseModel):
        return {name: _to_plain(getattr(config, name)) for name in type(config).model_fields}
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: _to_plain(getattr(config, f.name)) for f in dataclasses.fields(config)}
    raise TypeError(f"not a config instance: {type(config).__name__}")


def mask_config(config_class: type[Any] | None, stored: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a stored config safe to show: secret fields replaced by a mask."""
    secret = _secret_fields(config_class) if config_class is not None else set()
    secret |= {k for k in stored if k.lower() in ("password", "token", "api_token", "secret")}
    return {k: (_MASK if k in secret and v not in (None, "") else v) for k, v in stored.items()}
