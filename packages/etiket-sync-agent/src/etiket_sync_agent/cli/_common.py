"""Shared helpers of the CLI: output, errors, parsing ``--set`` values."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

import click
from rich.console import Console

__all__ = ["console", "emit_json", "err_console", "fail", "parse_set_options"]

# Pipes and CI logs get a wide console so tables are not folded into unreadable columns.
console = Console() if sys.stdout.isatty() else Console(width=200)
err_console = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=200)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print an error in red on stderr and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    sys.exit(code)


def emit_json(data: Any) -> None:
    """Print JSON for scripts (no colours, stable key order)."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def _parse_value(text: str) -> Any:
    stripped = text.strip()
    if stripped[:1] in ("{", "[") or stripped in ("null",):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"value {text!r} looks like JSON but is not: {exc}") from exc
    return text


def parse_set_options(
    pairs: Iterable[str], base: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Turn ``key=value`` strings into a config dict.

    ``a.b=value`` sets key ``b`` of the mapping ``a`` (e.g. ``static_attributes.sample=chip7``);
    values starting with ``{`` or ``[`` are parsed as JSON; everything else stays a string and is
    converted by the config class's types (``"5"`` → 5, ``"true"`` → True).
    """
    config: dict[str, Any] = {k: v for k, v in (base or {}).items()}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint="--set")
        key, value = pair.split("=", 1)
        key = key.strip()
        if not key:
            raise click.BadParameter(f"empty key in {pair!r}", param_hint="--set")
        parsed = _parse_value(value)
        if "." in key:
            head, sub = key.split(".", 1)
            target = config.setdefault(head, {})
            if not isinstance(target, dict):
                raise click.BadParameter(f"{head!r} is not a mapping", param_hint="--set")
            target[sub] = parsed
        else:
            config[key] = parsed
    return config
