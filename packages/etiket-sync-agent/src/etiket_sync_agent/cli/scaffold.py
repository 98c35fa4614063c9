"""``generate_sync_agent_scaffold`` and ``generate_converter_scaffold``.

Both write a complete, installable package into a new folder (refusing to overwrite one): a
pyproject with the entry point, a documented skeleton with a worked example, a README and tests that
subclass the core's conformance kit. The generated tests pass before anything is filled in (behaviour
tests are skipped while the skeleton declares ``implemented = False``) and start checking the real
behaviour once it is declared implemented. The generated package depends on the released core by a
floor, so it works outside this repository.
"""

from __future__ import annotations

import keyword
import re
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from string import Template

import click

from etiket_sync_agent._version import __version__

__all__ = ["COMMANDS", "backend_scaffold_main", "converter_scaffold_main"]

_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_VERSION_RE = re.compile(r"^\d+(\.\d+)*([ab]|rc|\.dev|\.post)?\d*$")


def _core_floor() -> str:
    """The running core's version: generated packages need at least the API they were made for.

    A development core keeps its ``.devN`` suffix so the floor admits it (``0.4.0.dev0`` sorts
    before ``0.4.0``).
    """
    return __version__


def _template(kind: str, name: str) -> Template:
    text = (resources.files("etiket_sync_agent.scaffold_templates") / kind / name).read_text(
        encoding="utf-8"
    )
    return Template(text)


def _check_name(name: str, what: str) -> str:
    if not _NAME_RE.match(name):
        raise click.BadParameter(
            f"{name!r} is not a valid {what} name: use lower-case letters, digits and single "
            "'-' or '_' between them, starting with a letter (e.g. 'my-lab-db')",
            param_hint=what,
        )
    short = name.replace("-", "_")
    if keyword.iskeyword(short) or not short.isidentifier():
        raise click.BadParameter(
            f"{name!r} does not give a valid Python identifier", param_hint=what
        )
    return short


def _class_name(short: str, suffix: str) -> str:
    return "".join(part.capitalize() for part in short.split("_")) + suffix


def _dependencies(extra: Sequence[str]) -> str:
    deps = [f"etiket-sync-agent>={_core_floor()},<1", *extra]
    for dep in extra:
        if not dep.strip() or any(c in dep for c in "\"'\n"):
            raise click.BadParameter(
                f"invalid dependency specifier {dep!r}", param_hint="--dependency"
            )
    return "\n".join(f'    "{d}",' for d in deps)


def _write(target: Path, files: dict[str, str]) -> None:
    if target.exists():
        raise click.ClickException(f"{target} already exists; refusing to overwrite it")
    for rel, content in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise click.BadParameter(f"expected True or False, got {value!r}", param_hint="--live-sync")


@click.command("generate_sync_agent_scaffold")
@click.argument("backend")
@click.option(
    "--version", "version", default="0.0.1", show_default=True, help="Version of the new package."
)
@click.option(
    "--dependency",
    "dependencies",
    multiple=True,
    metavar="SPEC",
    help="A runtime dependency (repeatable), e.g. 'numpy>=1.24'.",
)
@click.option(
    "--base",
    type=click.Choice(["database", "file"]),
    default="database",
    show_default=True,
    help="Database-type (rows are datasets) or file-type source.",
)
@click.option(
    "--default-scope",
    type=click.Choice(["REQUIRED", "OPTIONAL", "DISABLED"]),
    default="REQUIRED",
    show_default=True,
    help="Scope policy of the backend.",
)
@click.option(
    "--live-sync",
    default="False",
    show_default=True,
    help="Whether datasets can be synced while acquired (True/False).",
)
@click.option(
    "--level",
    type=int,
    default=None,
    help="Dataset depth below the root (file base only; default -1).",
)
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create the package folder.",
)
def backend_scaffold(
    backend: str,
    version: str,
    dependencies: tuple[str, ...],
    base: str,
    default_scope: str,
    live_sync: str,
    level: int | None,
    output_dir: Path,
) -> None:
    """Generate a new backend package etiket-sync-agent-BACKEND."""
    short = _check_name(backend, "backend")
    if not _VERSION_RE.match(version):
        raise click.BadParameter(f"{version!r} is not a valid version", param_hint="--version")
    if level is not None and base != "file":
        raise click.BadParameter("--level only applies to --base file", param_hint="--level")
    if level is not None and (level == 0 or level < -1):
        raise click.BadParameter("--level must be -1 or >= 1", param_hint="--level")
    module = f"etiket_sync_agent_{short}"
    values = {
        "backend": backend,
        "short": short,
        "module": module,
        "version": version,
        "core_floor": _core_floor(),
        "dependencies": _dependencies(dependencies),
        "class_name": _class_name(short, "Sync"),
        "config_name": _class_name(short, "Config"),
        "scope_policy": default_scope,
        "live_sync": str(_bool(live_sync)),
        "level": str(-1 if level is None else level),
        "base": base,
        "what": "folders" if (level is None or level == -1) else f"entries at depth {level}",
        "scope_hint": "--scope SCOPE " if default_scope == "REQUIRED" else "",
        "first_field": "database_path" if base == "database" else "root_directory",
    }
    files = {
        "pyproject.toml": _template("backend", "pyproject.toml.tmpl").substitute(values),
        "README.md": _template("backend", "README.md.tmpl").substitute(values),
        f"{module}/__init__.py": _template("backend", "__init__.py.tmpl").substitute(values),
        f"{module}/py.typed": "",
        f"{module}/{short}_config_class.py": _template(
            "backend", f"config_{base}.py.tmpl"
        ).substitute(values),
        f"{module}/{short}_sync_class.py": _template("backend", f"sync_{base}.py.tmpl").substitute(
            values
        ),
        f"tests/test_{short}_conformance.py": _template(
            "backend", f"test_conformance_{base}.py.tmpl"
        ).substitute(values),
    }
    target = output_dir / f"etiket-sync-agent-{backend}"
    _write(target, files)
    click.echo(f"created {target}")
    click.echo(f"next: cd {target} && pip install -e '.[test]' && pytest")


@click.command("generate_converter_scaffold")
@click.argument("converter")
@click.option(
    "--version", "version", default="0.0.1", show_default=True, help="Version of the new package."
)
@click.option(
    "--dependency",
    "dependencies",
    multiple=True,
    metavar="SPEC",
    help="A runtime dependency (repeatable).",
)
@click.option("--entry-name", default=None, help="Entry-point name (default: the converter name).")
@click.option(
    "--input-type", default="txt", show_default=True, help="Input file suffix without dot."
)
@click.option(
    "--output-type", default="json", show_default=True, help="Output file suffix without dot."
)
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create the package folder.",
)
def converter_scaffold(
    converter: str,
    version: str,
    dependencies: tuple[str, ...],
    entry_name: str | None,
    input_type: str,
    output_type: str,
    output_dir: Path,
) -> None:
    """Generate a new converter package etiket-sync-agent-CONVERTER-converters."""
    short = _check_name(converter, "converter")
    entry = entry_name or converter
    _check_name(entry, "entry-name")
    for value, hint in ((input_type, "--input-type"), (output_type, "--output-type")):
        if not re.match(r"^[a-z0-9][a-z0-9_.+-]*$", value):
            raise click.BadParameter(f"{value!r} is not a lower-case suffix", param_hint=hint)
    if not _VERSION_RE.match(version):
        raise click.BadParameter(f"{version!r} is not a valid version", param_hint="--version")
    module = f"etiket_sync_agent_{short}_converters"
    values = {
        "converter": converter,
        "short": short,
        "module": module,
        "version": version,
        "core_floor": _core_floor(),
        "dependencies": _dependencies(dependencies),
        "class_name": _class_name(short, "Converter"),
        "entry_name": entry,
        "input_type": input_type,
        "output_type": output_type,
    }
    files = {
        "pyproject.toml": _template("converter", "pyproject.toml.tmpl").substitute(values),
        "README.md": _template("converter", "README.md.tmpl").substitute(values),
        f"{module}/__init__.py": _template("converter", "__init__.py.tmpl").substitute(values),
        f"{module}/py.typed": "",
        f"{module}/{short}_converter.py": _template("converter", "converter.py.tmpl").substitute(
            values
        ),
        f"tests/test_{short}_converter.py": _template(
            "converter", "test_converter.py.tmpl"
        ).substitute(values),
    }
    target = output_dir / f"etiket-sync-agent-{converter}-converters"
    _write(target, files)
    click.echo(f"created {target}")
    click.echo(f"next: cd {target} && pip install -e '.[test]' && pytest")


COMMANDS: dict[str, click.Command] = {
    "generate_sync_agent_scaffold": backend_scaffold,
    "generate_converter_scaffold": converter_scaffold,
}


def _run(command: click.Command, argv: Sequence[str] | None) -> int:
    try:
        command.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        return 130
    return 0


def backend_scaffold_main(argv: Sequence[str] | None = None) -> int:
    """Console script ``generate_sync_agent_scaffold``."""
    return _run(backend_scaffold, argv if argv is not None else sys.argv[1:])


def converter_scaffold_main(argv: Sequence[str] | None = None) -> int:
    """Console script ``generate_converter_scaffold``."""
    return _run(converter_scaffold, argv if argv is not None else sys.argv[1:])
