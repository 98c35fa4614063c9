"""``etiket-sync``: manage sources, log in, run the agent, see what it did."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from etiket_sync_agent import __version__, paths
from etiket_sync_agent.cli._common import console, emit_json, fail, parse_set_options
from etiket_sync_agent.connectors.base import ScopePolicy, SyncSourceBase, SyncSourceFileBase
from etiket_sync_agent.connectors.config import config_to_storage, mask_config, parse_config
from etiket_sync_agent.connectors.registry import list_backends, load_backend
from etiket_sync_agent.converters.registry import list_converters
from etiket_sync_agent.errors import ConfigError, EtiketSyncError

__all__ = ["cli", "main"]


def _store() -> Any:
    from etiket_sync_agent.store import open_store

    try:
        return open_store()
    except EtiketSyncError as exc:
        fail(str(exc))


def _ago(when: dt.datetime | None) -> str:
    if when is None:
        return "never"
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    seconds = (dt.datetime.now(dt.timezone.utc) - when).total_seconds()
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.0f} days ago"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="etiket-sync")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Sync measurement data (QCoDeS, Quantify, Labber, core-tools, folders) to eTiKeT.

    Everything the agent keeps (tracking store, credentials, logs, lock) lives under
    ETIKET_SYNC_HOME when it is set, else in the user data folder.
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# -- backends ------------------------------------------------------------------------------------
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def backends(as_json: bool) -> None:
    """List installed backends and converters with their package, version and availability."""
    rows: list[dict[str, Any]] = []
    for info in list_backends():
        cls = info.cls
        rows.append(
            {
                "kind": "backend",
                "name": info.name,
                "distribution": info.distribution,
                "version": info.version,
                "status": info.status.value,
                "error": info.error,
                "install_hint": info.install_hint,
                "type": None
                if cls is None
                else ("file" if issubclass(cls, SyncSourceFileBase) else "database"),
                "scope_policy": None if cls is None else cls.scope_policy.value,
                "live_sync": None if cls is None else cls.live_sync,
                "api": "legacy API" if getattr(cls, "legacy_api", False) else "current",
            }
        )
    for cinfo in list_converters():
        ccls = cinfo.cls
        rows.append(
            {
                "kind": "converter",
                "name": cinfo.name,
                "distribution": cinfo.distribution,
                "version": cinfo.version,
                "status": cinfo.status.value,
                "error": cinfo.error,
                "install_hint": cinfo.install_hint,
                "type": None if ccls is None else f"{ccls.input_type} → {ccls.output_type}",
                "scope_policy": None,
                "live_sync": None,
                "api": "current",
            }
        )
    if as_json:
        emit_json(rows)
        return
    table = Table(title="Installed backends and converters")
    for column in ("kind", "name", "package", "version", "type", "scope", "live", "status"):
        table.add_column(column)
    for row in rows:
        status = row["status"]
        if row["error"]:
            status += f": {row['error']}"
        if row["install_hint"]:
            status += f" ({row['install_hint']})"
        if row["api"] == "legacy API":
            status += " (legacy API)"
        colour = "green" if row["status"] == "available" else "yellow"
        table.add_row(
            row["kind"],
            row["name"],
            row["distribution"] or "",
            row["version"] or "",
            row["type"] or "",
            row["scope_policy"] or "",
            "" if row["live_sync"] is None else ("yes" if row["live_sync"] else "no"),
            f"[{colour}]{status}[/]",
        )
    console.print(table)


# -- sources -------------------------------------------------------------------------------------
@cli.group()
def source() -> None:
    """Add, list, show, validate and remove sync sources."""


def _load_backend_or_fail(name: str) -> type[SyncSourceBase]:
    try:
        return load_backend(name)
    except EtiketSyncError as exc:
        fail(str(exc))


def _check_overlaps(
    store: Any, backend_cls: type[SyncSourceBase], config: Any, skip: str | None = None
) -> None:
    """Refuse a source that duplicates or overlaps an existing one."""
    instance = backend_cls(config)
    identity = _identity(instance)
    if identity is None:
        return
    for other in store.list_sources():
        if other.name == skip:
            continue
        try:
            other_cls = load_backend(other.backend)
            other_cfg = parse_config(other_cls.config_class, other.config, check=False)
            other_identity = _identity(other_cls(other_cfg))
        except Exception:
            continue
        if other_identity is None:
            continue
        if other_identity == identity:
            fail(f"source {other.name!r} already syncs {identity}")
        both_paths = isinstance(identity, Path) and isinstance(other_identity, Path)
        if both_paths and (
            identity in other_identity.parents or other_identity in identity.parents
        ):
            fail(
                f"folder {identity} overlaps the folder {other_identity} of source "
                f"{other.name!r}; sources must not contain each other"
            )


def _identity(instance: SyncSourceBase) -> Any:
    hook = getattr(instance, "source_identity", None)
    if callable(hook):
        value = hook()
        return Path(value).resolve() if isinstance(instance, SyncSourceFileBase) else str(value)
    if isinstance(instance, SyncSourceFileBase):
        try:
            return Path(instance.root_path()).resolve()
        except Exception:
            return None
    return None


def _source_dict(record: Any, counts: dict[str, int] | None = None) -> dict[str, Any]:
    try:
        config_class = load_backend(record.backend).config_class
    except Exception:
        config_class = None
    data = {
        "name": record.name,
        "uuid": record.uuid,
        "backend": record.backend,
        "scope": record.scope,
        "scope_mapping": record.scope_mapping or {},
        "status": record.status,
        "last_error": record.last_error,
        "config": mask_config(config_class, record.config),
        "created": record.created,
        "last_sync": record.last_sync_at,
    }
    if counts is not None:
        data["items"] = counts
    return data


@source.command("add")
@click.argument("name")
@click.option(
    "--backend",
    "-b",
    "backend_name",
    required=True,
    help="Backend: native, folderbase, qcodes, quantify, labber, core-tools.",
)
@click.option("--scope", "-s", default=None, help="Server scope (name or uuid).")
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A configuration field; repeat for several (a.b=v sets key b of mapping a).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def source_add(
    name: str, backend_name: str, scope: str | None, settings: tuple[str, ...], as_json: bool
) -> None:
    """Add a source NAME syncing with BACKEND, configured with --set key=value."""
    backend_cls = _load_backend_or_fail(backend_name)
    if backend_cls.scope_policy is ScopePolicy.REQUIRED and not scope:
        fail(f"backend {backend_cls.name!r} requires a scope: add --scope NAME_OR_UUID")
    if backend_cls.scope_policy is ScopePolicy.DISABLED and scope:
        fail(
            f"backend {backend_cls.name!r} takes each dataset's scope from the data; "
            "use 'etiket-sync source map-scope' instead of --scope"
        )
    try:
        raw = parse_set_options(settings)
        config = parse_config(backend_cls.config_class, raw)
    except click.BadParameter as exc:
        fail(exc.format_message())
    except ConfigError as exc:
        fail(f"invalid configuration for backend {backend_cls.name!r}: {exc}")
    store = _store()
    if store.get_source(name) is not None:
        fail(f"a source named {name!r} already exists")
    _check_overlaps(store, backend_cls, config)
    record = store.add_source(name, backend_cls.name, config_to_storage(config), scope=scope)
    if as_json:
        emit_json(_source_dict(record))
    else:
        console.print(f"added source [bold]{name}[/] ({backend_cls.name})")


@source.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def source_list(as_json: bool) -> None:
    """List configured sources with item counts."""
    store = _store()
    data = [_source_dict(r, store.count_by_state(r.id)) for r in store.list_sources()]
    if as_json:
        emit_json(data)
        return
    table = Table(title="Sources")
    for column in (
        "name",
        "backend",
        "scope",
        "status",
        "synced",
        "pending",
        "failed",
        "last error",
    ):
        table.add_column(column)
    for row in data:
        counts = row["items"]
        pending = sum(counts.get(s, 0) for s in ("new", "syncing", "live", "waiting"))
        table.add_row(
            row["name"],
            row["backend"],
            row["scope"] or "",
            row["status"],
            str(counts.get("synced", 0)),
            str(pending),
            str(counts.get("failed", 0)),
            (row["last_error"] or "")[:80],
        )
    console.print(table)


@source.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def source_show(name: str, as_json: bool) -> None:
    """Show one source: configuration (secrets masked), scope mapping, item counts."""
    store = _store()
    record = store.get_source(name)
    if record is None:
        fail(f"no source named {name!r}")
    data = _source_dict(record, store.count_by_state(record.id))
    if as_json:
        emit_json(data)
        return
    table = Table(title=f"Source {name}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    for key in ("name", "uuid", "backend", "scope", "status", "last_error", "created", "last_sync"):
        table.add_row(key, "" if data[key] is None else str(data[key]))
    for key, value in data["config"].items():
        table.add_row(f"config.{key}", str(value))
    for key, value in data["scope_mapping"].items():
        table.add_row(f"scope map {key}", str(value))
    for key, value in sorted(data["items"].items()):
        table.add_row(f"items {key}", str(value))
    console.print(table)


@source.command("remove")
@click.argument("name")
def source_remove(name: str) -> None:
    """Remove a source and its tracking records (nothing on the server is deleted)."""
    store = _store()
    if store.get_source(name) is None:
        fail(f"no source named {name!r}")
    store.remove_source(name)
    console.print(f"removed source [bold]{name}[/]")


@source.command("validate")
@click.argument("name")
def source_validate(name: str) -> None:
    """Check a stored source's configuration against the world now (files, databases)."""
    store = _store()
    record = store.get_source(name)
    if record is None:
        fail(f"no source named {name!r}")
    backend_cls = _load_backend_or_fail(record.backend)
    try:
        parse_config(backend_cls.config_class, record.config)
    except ConfigError as exc:
        fail(f"source {name!r} is invalid: {exc}", code=1)
    console.print(f"source [bold]{name}[/] is valid")


@source.command("map-scope")
@click.argument("name")
@click.argument("identifier")
@click.argument("scope")
def source_map_scope(name: str, identifier: str, scope: str) -> None:
    """Map a dataset scope IDENTIFIER (e.g. a core-tools project) of source NAME to SCOPE."""
    store = _store()
    if store.get_source(name) is None:
        fail(f"no source named {name!r}")
    store.set_scope_mapping(name, identifier, scope)
    console.print(f"{name}: datasets of {identifier!r} go to scope {scope!r}")


@source.command("pause")
@click.argument("name")
def source_pause(name: str) -> None:
    """Stop syncing a source until it is resumed."""
    store = _store()
    if store.get_source(name) is None:
        fail(f"no source named {name!r}")
    store.set_source_status(name, "paused", None)
    console.print(f"paused {name}")


@source.command("resume")
@click.argument("name")
def source_resume(name: str) -> None:
    """Resume a paused source."""
    store = _store()
    if store.get_source(name) is None:
        fail(f"no source named {name!r}")
    store.set_source_status(name, "active", None)
    console.print(f"resumed {name}")


# -- status and errors ---------------------------------------------------------------------------
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """Agent state, iterations, heartbeat; per source the item counts and last error."""
    store = _store()
    agent = store.agent_status()
    sources = [_source_dict(r, store.count_by_state(r.id)) for r in store.list_sources()]
    heartbeat = getattr(agent, "heartbeat", None)
    age = None
    if heartbeat is not None:
        hb = heartbeat if heartbeat.tzinfo else heartbeat.replace(tzinfo=dt.timezone.utc)
        age = (dt.datetime.now(dt.timezone.utc) - hb).total_seconds()
    agent_data: dict[str, Any] = {
        "state": getattr(agent, "state", None),
        "iteration": getattr(agent, "iteration", 0),
        "heartbeat": heartbeat,
        "heartbeat_age_seconds": age,
        "pid": getattr(agent, "pid", None),
    }
    data = {
        "agent": agent_data,
        "home": str(paths.agent_home()),
        "logged_in": paths.credentials_path().exists(),
        "sources": sources,
    }
    if as_json:
        emit_json(data)
        return
    a = agent_data
    console.print(
        f"agent: [bold]{a['state'] or 'never ran'}[/], iteration {a['iteration']}, "
        f"heartbeat {_ago(heartbeat)}; home {data['home']}"
    )
    table = Table(title="Sources")
    for column in (
        "name",
        "backend",
        "status",
        "new",
        "syncing",
        "live",
        "synced",
        "failed",
        "waiting",
        "gone",
        "last sync",
        "last error",
    ):
        table.add_column(column)
    for row in sources:
        c = row["items"]
        table.add_row(
            row["name"],
            row["backend"],
            row["status"],
            *(
                str(c.get(s, 0))
                for s in ("new", "syncing", "live", "synced", "failed", "waiting", "gone")
            ),
            _ago(row["last_sync"]),
            (row["last_error"] or "")[:60],
        )
    console.print(table)


@cli.command()
@click.option("--source", "source_name", default=None, help="Only this source.")
@click.option("--limit", default=50, show_default=True, help="At most this many items.")
@click.option("--traceback", "show_tb", is_flag=True, help="Show tracebacks.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def errors(source_name: str | None, limit: int, show_tb: bool, as_json: bool) -> None:
    """Items that failed or wait (e.g. for a scope mapping), with their errors."""
    store = _store()
    source_id = None
    if source_name is not None:
        record = store.get_source(source_name)
        if record is None:
            fail(f"no source named {source_name!r}")
        source_id = record.id
    rows = store.list_errors(source_id=source_id, limit=limit)
    data = [
        {
            "source": getattr(r, "source_name", None),
            "key": r.natural_key,
            "state": r.state.value if hasattr(r.state, "value") else r.state,
            "attempts": r.attempts,
            "next_attempt": r.next_attempt_at,
            "error": r.last_error,
            "traceback": r.last_traceback,
        }
        for r in rows
    ]
    source_errors = [
        {"source": s.name, "error": s.last_error}
        for s in store.list_sources()
        if s.last_error and (source_name is None or s.name == source_name)
    ]
    if as_json:
        emit_json({"items": data, "sources": source_errors})
        return
    for s in source_errors:
        console.print(f"[bold red]source {s['source']}[/]: {s['error']}")
    if not data and not source_errors:
        console.print("no errors")
        return
    for row in data:
        console.print(
            f"[bold]{row['source']}[/] {row['key']} [{row['state']}, "
            f"{row['attempts']} attempts]: {row['error']}"
        )
        if show_tb and row["traceback"]:
            console.print(row["traceback"], highlight=False, markup=False)


# -- login ---------------------------------------------------------------------------------------
@cli.command()
@click.option("--url", required=True, help="eTiKeT server URL, e.g. https://etiket.example.org")
@click.option(
    "--username",
    default=None,
    help="Log in with this user's password (read from a hidden prompt or stdin) instead of "
    "an API token.",
)
@click.option(
    "--ca-bundle",
    type=click.Path(dir_okay=False),
    default=None,
    envvar="ETIKET_SYNC_CA_BUNDLE",
    show_envvar=True,
    help="CA bundle (PEM) that signed the server's certificate (private CA, self-signed).",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Do not verify the server's TLS certificate (unsafe; logged loudly).",
)
@click.option(
    "--token",
    default=None,
    help="DEPRECATED, unsafe: the API token on the command line is visible to every user of "
    "the machine. Leave it out: the token is read from a hidden prompt or stdin.",
)
def login(
    url: str, username: str | None, ca_bundle: str | None, insecure: bool, token: str | None
) -> None:
    """Store credentials for the agent: an API token (recommended for unattended agents, read
    from a hidden prompt or stdin) or, with --username, a password login (refreshed
    automatically). Stored with mode 0600."""
    from etiket_sync_agent.cli.login import login_command

    if token is not None:
        console.print(
            "[yellow]warning:[/] --token puts the token in the process list; pipe it in or "
            "type it at the prompt instead"
        )
    console.print(login_command(url, token, username, ca_bundle, insecure), highlight=False)


@cli.command()
def logout() -> None:
    """Forget the stored server credentials."""
    from etiket_sync_agent.platform import delete_credentials

    delete_credentials(paths.credentials_path())
    console.print("logged out")


# -- run -----------------------------------------------------------------------------------------
@cli.command()
@click.option("--once", is_flag=True, help="One iteration, then exit.")
@click.option("--iterations", type=int, default=0, help="This many iterations (0 = forever).")
@click.option(
    "--until-idle",
    is_flag=True,
    help="Exit once nothing is left to sync and nothing is live; a failed dataset gets two "
    "quick retries first (exit 1 if any still failed).",
)
@click.option("--concurrency", type=int, default=None, help="Datasets synced at the same time.")
def run(once: bool, iterations: int, until_idle: bool, concurrency: int | None) -> None:
    """Run the sync agent (forever unless --once/--iterations/--until-idle)."""
    from etiket_sync_agent.engine.options import EngineOptions
    from etiket_sync_agent.engine.runner import run_agent

    options = EngineOptions()
    if concurrency:
        options.concurrency = concurrency
    if not any(logging.getLogger().handlers):
        logging.basicConfig(level=logging.INFO)
    try:
        result = run_agent(1 if once else iterations, until_idle=until_idle, options=options)
    except EtiketSyncError as exc:
        fail(str(exc))
    console.print(
        f"{result.iterations} iterations; items: "
        + ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items()))
    )
    if until_idle and result.failed:
        sys.exit(1)


def _register_optional_commands() -> None:
    from etiket_sync_agent.cli import demo as demo_module

    cli.add_command(demo_module.demo)
    from etiket_sync_agent.cli.api import api as api_command  # issue 16: control API

    cli.add_command(api_command)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``etiket-sync`` and ``python -m etiket_sync_agent``."""
    _register_optional_commands()
    try:
        cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="etiket-sync",
            standalone_mode=False,
        )
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0
