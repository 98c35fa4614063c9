"""``etiket-local-server``: serve a data directory, create API tokens and scopes."""

from __future__ import annotations

from pathlib import Path

import click

from etiket_local_server import __version__
from etiket_local_server.catalog import DEFAULT_USER, Catalog

__all__ = ["main"]

DEFAULT_PORT = 8765
"""Port of ``serve`` unless ``--port`` says otherwise."""

_data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    envvar="ETIKET_LOCAL_SERVER_DATA",
    show_envvar=True,
    help="Folder holding the catalog, the signing secret and the stored files.",
)


@click.group()
@click.version_option(__version__, prog_name="etiket-local-server")
def main() -> None:
    """A local eTiKeT-compatible server (demo target, test server, self-hosting)."""


@main.command()
@_data_dir_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="Port to bind.")
@click.option(
    "--url-ttl", default=3600.0, show_default=True, type=float, help="Presigned URL lifetime (s)."
)
@click.option("--fault-error-rate", type=float, default=0.0, hidden=True)
@click.option("--fault-drop-rate", type=float, default=0.0, hidden=True)
@click.option("--fault-stall-seconds", type=float, default=0.0, hidden=True)
@click.option("--fault-stall-rate", type=float, default=0.0, hidden=True)
@click.option("--fault-token-ttl", type=float, default=None, hidden=True)
@click.option("--fault-outage", type=(float, float), default=None, hidden=True)
@click.option("--fault-seed", type=int, default=None, hidden=True)
def serve(
    data_dir: Path,
    host: str,
    port: int,
    url_ttl: float,
    fault_error_rate: float,
    fault_drop_rate: float,
    fault_stall_seconds: float,
    fault_stall_rate: float,
    fault_token_ttl: float | None,
    fault_outage: tuple[float, float] | None,
    fault_seed: int | None,
) -> None:
    """Serve DATA_DIR over HTTP until interrupted."""
    import uvicorn

    from etiket_local_server.app import create_app, is_loopback
    from etiket_local_server.faults import FaultConfig

    faults = FaultConfig(
        error_rate=fault_error_rate,
        drop_rate=fault_drop_rate,
        stall_seconds=fault_stall_seconds,
        stall_rate=fault_stall_rate,
        token_ttl_seconds=fault_token_ttl,
        outage=fault_outage,
        seed=fault_seed,
    )
    try:
        faults.validate()
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if faults != FaultConfig():
        click.echo(f"fault injection ON: {faults}", err=True)
    loopback = is_loopback(host)
    app = create_app(data_dir, faults=faults, ui_requires_auth=not loopback, url_ttl=url_ttl)
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"etiket-local-server {__version__}: http://{shown}:{port} (data: {data_dir})", err=True
    )
    if not loopback:
        click.echo("not on loopback: the web page asks for an API token", err=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        http="httptools",
        loop="asyncio",
        log_level="info",
        access_log=False,
        timeout_keep_alive=30,
    )


@main.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@_data_dir_option
@click.option("--name", default=None, help="Token name (unique per user); default: token-<n>.")
@click.option("--user", default=DEFAULT_USER, show_default=True, help="Owner (created if missing).")
def token_create(data_dir: Path, name: str | None, user: str) -> None:
    """Create an API token and print it (only the token)."""
    catalog = Catalog(data_dir)
    try:
        if name is None:
            counter = 1
            while True:
                try:
                    created = catalog.create_token(f"token-{counter}", owner=user)
                    break
                except ValueError:
                    counter += 1
        else:
            try:
                created = catalog.create_token(name, owner=user)
            except ValueError as exc:
                raise click.ClickException(str(exc)) from exc
    finally:
        catalog.close()
    click.echo(created.secret)


@main.group()
def scope() -> None:
    """Scopes."""


@scope.command("create")
@click.argument("name")
@_data_dir_option
@click.option(
    "--user", default=DEFAULT_USER, show_default=True, help="Member (created if missing)."
)
@click.option("--description", default="", help="Free-text description.")
def scope_create(name: str, data_dir: Path, user: str, description: str) -> None:
    """Create scope NAME (4-100 characters) and print its uuid."""
    if not 4 <= len(name) <= 100:
        raise click.BadParameter("a scope name has 4 to 100 characters", param_hint="NAME")
    catalog = Catalog(data_dir)
    try:
        scope_uuid = catalog.create_scope(name, owner=user, description=description)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        catalog.close()
    click.echo(scope_uuid)


@scope.command("list")
@_data_dir_option
def scope_list(data_dir: Path) -> None:
    """Print every scope as ``<uuid>  <name>``."""
    catalog = Catalog(data_dir)
    try:
        for scope_uuid, name in catalog.list_scopes():
            click.echo(f"{scope_uuid}  {name}")
    finally:
        catalog.close()
