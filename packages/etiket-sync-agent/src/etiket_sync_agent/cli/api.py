"""``etiket-sync api``: serve the local control API the dataQruiser GUI and the qdrive SDK use."""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import os
import secrets
from collections.abc import Awaitable, Callable

import click

from etiket_sync_agent import paths
from etiket_sync_agent.cli._common import console, fail

__all__ = ["api"]

SECRET_ENV = "ETIKET_SYNC_API_SECRET"


def _scope_lister() -> Callable[[], Awaitable[list[tuple[str, str]]]] | None:
    """An async ``[(uuid, name)]`` lister of the server's scopes, when logged in."""
    from etiket_sync_agent.platform import EtiketClient, load_credentials

    creds = load_credentials(paths.credentials_path())
    if creds is None:
        return None

    async def list_scopes() -> list[tuple[str, str]]:
        async with EtiketClient(creds.url, creds.token) as client:
            return [(str(s.uuid), s.name) for s in await client.list_scopes()]

    return list_scopes


def _credentials() -> tuple[str, str] | None:
    """The agent's login, read at each call (a later ``etiket-sync login`` is picked up)."""
    from etiket_sync_agent.platform import load_credentials

    creds = load_credentials(paths.credentials_path())
    return None if creds is None else (creds.url, creds.token)


@click.command("api")
@click.option("--port", default=10410, show_default=True, help="TCP port (the GUI uses 10410).")
@click.option(
    "--require-secret",
    is_flag=True,
    help=f"Changes (POST/PATCH/DELETE) need the local secret ({SECRET_ENV} or a generated one, "
    "printed at start) in the X-Etiket-Sync-Secret header. The dataQruiser GUI sends none, so "
    "leave this off when the GUI manages the agent.",
)
def api(port: int, require_secret: bool) -> None:
    """Serve the local control API on 127.0.0.1 (never on other interfaces).

    Same routes, shapes and errors as the existing agent's API under /api/v1, so the dataQruiser
    GUI and the qdrive SDK can manage this agent. Installing connectors through it is refused:
    install them with pip.
    """
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ModuleNotFoundError as exc:
        fail(
            f"the control API needs the 'api' extra ({exc.name} is missing): "
            "pip install 'etiket-sync-agent[api]'"
        )
    from etiket_sync_agent.control_api import DEFAULT_HOST, default_state_path, serve
    from etiket_sync_agent.store import open_store

    secret: str | None = None
    if require_secret:
        secret = os.environ.get(SECRET_ENV) or secrets.token_urlsafe(24)
        if not os.environ.get(SECRET_ENV):
            console.print(f"local secret for changes: [bold]{secret}[/]")
    log_dir = paths.log_dir()
    handler = logging.handlers.RotatingFileHandler(
        log_dir / "api.log", maxBytes=10 * 1024 * 1024, backupCount=1, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    for name in ("etiket_sync_agent", "uvicorn", "uvicorn.error"):
        logging.getLogger(name).addHandler(handler)
    store = open_store()
    console.print(f"control API on http://{DEFAULT_HOST}:{port}/api/v1")
    try:
        asyncio.run(
            serve(
                store,
                port=port,
                secret=secret,
                state_path=default_state_path(),
                log_dir=log_dir,
                scope_lister=_scope_lister(),
                credentials=_credentials,
            )
        )
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
        handler.close()
