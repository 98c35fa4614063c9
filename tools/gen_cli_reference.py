"""Generate docs/cli-reference.md from the CLI itself (run by ``nox -s docs``).

The reference is produced by walking the click command tree, so it can never drift from the code.
``--check`` exits 1 when the committed file is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from etiket_sync_agent.cli import scaffold
from etiket_sync_agent.cli.main import _register_optional_commands, cli

OUT = Path(__file__).resolve().parents[1] / "docs" / "cli-reference.md"


def _section(command: click.Command, path: list[str], lines: list[str]) -> None:
    ctx = click.Context(command, info_name=" ".join(path))
    lines.append(f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`\n")
    lines.append("```text")
    lines.append(command.get_help(ctx).replace("\x08", ""))
    lines.append("```\n")
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                _section(sub, [*path, name], lines)


def render() -> str:
    _register_optional_commands()
    lines = [
        "# CLI reference",
        "",
        "Generated from the commands themselves by `tools/gen_cli_reference.py`; do not edit.",
        "",
    ]
    _section(cli, ["etiket-sync"], lines)
    for name, command in scaffold.COMMANDS.items():
        _section(command, [name], lines)
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run python tools/gen_cli_reference.py")
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
