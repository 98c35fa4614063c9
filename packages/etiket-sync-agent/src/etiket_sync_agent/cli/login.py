"""``etiket-sync login``: store credentials for the agent (an API token, or a password login).

Secrets are never taken from the command line by default (the process list shows it to every
user of the machine): the API token, or with ``--username`` the password, is read from a hidden
prompt on a terminal, or from the first line of standard input otherwise
(``printf '%s\\n' "$TOKEN" | etiket-sync login --url ...``). ``--token VALUE`` still works but is
deprecated and warns.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from etiket_sync_agent import paths

__all__ = ["login_command", "read_secret"]

_log = logging.getLogger("etiket_sync_agent.cli")


def read_secret(prompt: str) -> str:
    """A secret from a hidden prompt (terminal) or the first line of stdin (pipe, file)."""
    stdin = sys.stdin
    if stdin is not None and not stdin.isatty():
        value = stdin.readline().rstrip("\r\n")
    else:
        value = click.prompt(prompt, hide_input=True, default="", show_default=False)
    value = value.strip()
    if not value:
        raise click.UsageError(f"no {prompt.lower()} given")
    return value


def _store(path: Path, credentials: object) -> None:
    from etiket_sync_agent.platform import save_credentials
    from etiket_sync_agent.platform.credentials import Credentials

    assert isinstance(credentials, Credentials)
    save_credentials(credentials, path=path)


def login_command(
    url: str,
    token: str | None,
    username: str | None,
    ca_bundle: str | None,
    insecure: bool,
) -> str:
    """Log in and store the credentials; return a line describing who is logged in.

    Raises ``click.ClickException`` on a failed login (nothing is stored then).
    """
    from etiket_sync_agent.platform import EtiketClient
    from etiket_sync_agent.platform.auth import password_login, tls_verify
    from etiket_sync_agent.platform.credentials import Credentials
    from etiket_sync_agent.platform.errors import EtiketError

    url = url.rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise click.BadParameter("the URL starts with https:// (or http:// for loopback tests)")
    if ca_bundle is not None and not Path(ca_bundle).expanduser().is_file():
        raise click.BadParameter(f"no such file: {ca_bundle}", param_hint="--ca-bundle")
    if insecure:
        click.echo(
            "WARNING: --insecure turns TLS certificate verification off for this server: its "
            "identity is not checked and the token can be intercepted. Prefer --ca-bundle.",
            err=True,
        )
    if url.startswith("http://"):
        click.echo(
            "note: plain http sends the token unencrypted; other eTiKeT clients refuse it "
            "(use https outside loopback tests)",
            err=True,
        )
    if token is not None and username is not None:
        raise click.UsageError("use either an API token or --username, not both")
    try:
        verify = tls_verify(ca_bundle, insecure=insecure)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ca-bundle") from exc
    try:
        if username is not None:
            password = read_secret("Password")
            credentials, sub = asyncio.run(
                password_login(url, username, password, ca_bundle=ca_bundle, insecure=insecure)
            )
            kind = "password login; the token is refreshed automatically"
        else:
            if token is None:
                token = read_secret("API token")
            secret = token

            async def check() -> str:
                async with EtiketClient(url, secret, verify=verify) as client:
                    return (await client.userinfo()).sub

            sub = asyncio.run(check())
            credentials = Credentials(url, secret, ca_bundle=ca_bundle, insecure=insecure)
            kind = "API token"
    except EtiketError as exc:
        raise click.ClickException(f"login failed: {exc}") from None
    _store(paths.credentials_path(), credentials)
    return f"logged in to {url} as {sub} ({kind})"
