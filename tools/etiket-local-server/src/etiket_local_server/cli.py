"""``etiket-local-server``: serve a data directory, create API tokens and scopes."""

from __future__ import annotations

import sys
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
@click.option(
    "--certfile",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="TLS certificate (PEM, with any intermediates): serve HTTPS.",
)
@click.option(
    "--keyfile",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Private key of --certfile (PEM).",
)
@click.option(
    "--self-signed",
    is_flag=True,
    help="Serve HTTPS with a self-signed certificate for --host and localhost, made under "
    "DATA_DIR/tls on first use and reused after; prints its path and SHA-256 fingerprint.",
)
@click.option(
    "--access-token-ttl",
    default=3600.0,
    show_default=True,
    type=float,
    help="Lifetime (s) of access tokens from password logins.",
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
    certfile: Path | None,
    keyfile: Path | None,
    self_signed: bool,
    access_token_ttl: float,
    fault_error_rate: float,
    fault_drop_rate: float,
    fault_stall_seconds: float,
    fault_stall_rate: float,
    fault_token_ttl: float | None,
    fault_outage: tuple[float, float] | None,
    fault_seed: int | None,
) -> None:
    """Serve DATA_DIR over HTTP (loopback) or HTTPS until interrupted.

    Other eTiKeT clients (the platform's own client, qdrive, the existing agent) only talk HTTPS:
    use --certfile/--keyfile, or --self-signed, for a server they should reach.
    """
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
    if self_signed and (certfile or keyfile):
        raise click.UsageError("use either --self-signed or --certfile/--keyfile, not both")
    if (certfile is None) != (keyfile is None):
        raise click.UsageError("--certfile and --keyfile go together")
    if self_signed:
        from etiket_local_server.tls import ensure_self_signed

        made = ensure_self_signed(data_dir, [host])
        certfile, keyfile = made.certfile, made.keyfile
        click.echo(
            f"{'created' if made.created else 'reusing'} self-signed certificate {made.certfile} "
            f"for {', '.join(made.hosts)}\n  SHA-256 fingerprint {made.fingerprint}\n"
            f"  clients: etiket-sync login --ca-bundle {made.certfile} ...",
            err=True,
        )
    loopback = is_loopback(host)
    app = create_app(
        data_dir,
        faults=faults,
        ui_requires_auth=not loopback,
        url_ttl=url_ttl,
        access_token_ttl=access_token_ttl,
    )
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if certfile else "http"
    click.echo(
        f"etiket-local-server {__version__}: {scheme}://{shown}:{port} (data: {data_dir})",
        err=True,
    )
    if not loopback:
        click.echo("not on loopback: the web page asks for an API token", err=True)
        if not certfile:
            click.echo(
                "WARNING: plain HTTP off loopback sends tokens and passwords in clear text; "
                "use --self-signed or --certfile/--keyfile",
                err=True,
            )

    uvicorn.run(
        app,
        host=host,
        port=port,
        http="httptools",
        loop="asyncio",
        log_level="info",
        access_log=False,
        timeout_keep_alive=30,
        ssl_certfile=str(certfile) if certfile is not None else None,
        ssl_keyfile=str(keyfile) if keyfile is not None else None,
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


@main.group()
def user() -> None:
    """Users who log in with a password (``etiket-sync login --username``)."""


def _read_password(confirm: bool) -> str:
    if not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("no password on stdin")
        return password
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    return value


@user.command("add")
@click.argument("name")
@_data_dir_option
@click.option(
    "--role",
    type=click.Choice(["user", "scope_admin", "admin", "superuser"]),
    default="user",
    show_default=True,
)
@click.option("--email", default=None, help="E-mail address (shown in userinfo).")
@click.option("--replace", is_flag=True, help="Set a new password for an existing user.")
def user_add(name: str, data_dir: Path, role: str, email: str | None, replace: bool) -> None:
    """Create user NAME with a password read from a hidden prompt (or the first line of stdin).

    The password is hashed with argon2id; it is never stored, printed or logged.
    """
    from etiket_local_server.auth import add_user

    password = _read_password(confirm=True)
    catalog = Catalog(data_dir)
    try:
        add_user(catalog, name, password, role=role, email=email, replace=replace)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        catalog.close()
    click.echo(f"user {name!r} {'updated' if replace else 'added'}", err=True)


@user.command("list")
@_data_dir_option
def user_list(data_dir: Path) -> None:
    """Print every user: name, role, whether it has a password, its API tokens."""
    from etiket_local_server.auth import list_users

    catalog = Catalog(data_dir)
    try:
        for row in list_users(catalog):
            flags = [row.role, "password" if row.has_password else "no password"]
            if not row.is_enabled:
                flags.append("disabled")
            flags.append(f"{row.api_tokens} API token{'s' if row.api_tokens != 1 else ''}")
            click.echo(f"{row.sub}  ({', '.join(flags)})")
    finally:
        catalog.close()


@user.command("remove")
@click.argument("name")
@_data_dir_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def user_remove(name: str, data_dir: Path, yes: bool) -> None:
    """Remove user NAME: its password, API tokens, sessions and scope memberships.

    Datasets and files the user uploaded stay.
    """
    from etiket_local_server.auth import remove_user

    if name == DEFAULT_USER:
        raise click.ClickException(f"the built-in user {DEFAULT_USER!r} cannot be removed")
    if not yes:
        click.confirm(f"remove user {name!r} and revoke its tokens?", abort=True)
    catalog = Catalog(data_dir)
    try:
        remove_user(catalog, name)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        catalog.close()
    click.echo(f"user {name!r} removed", err=True)
