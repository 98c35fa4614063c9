"""The local control API the dataQruiser GUI and the qdrive SDK use (``etiket-sync api``).

Needs the ``api`` extra (``pip install etiket-sync-agent[api]``): Starlette and uvicorn. Importing
this package without them works; :func:`create_app` then raises a clear error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from etiket_sync_agent.control_api.forms import config_form

if TYPE_CHECKING:
    from etiket_sync_agent.store.repository import TrackingStore

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "config_form",
    "create_app",
    "default_state_path",
    "serve",
]

#: The existing API's port (the GUI and the SDK connect to it).
DEFAULT_PORT = 10410
#: Loopback only: the control API has no business on the network.
DEFAULT_HOST = "127.0.0.1"


def create_app(store: TrackingStore, **kwargs: Any) -> Any:
    """The control API's ASGI app (see :func:`etiket_sync_agent.control_api.app.create_app`)."""
    try:
        from etiket_sync_agent.control_api.app import create_app as _create
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            f"the control API needs the 'api' extra ({exc.name} is missing): "
            "pip install 'etiket-sync-agent[api]'"
        ) from None
    return _create(store, **kwargs)


def default_state_path() -> Path:
    """Where the API keeps viewed flags and priorities: ``<agent home>/control_api.json``."""
    from etiket_sync_agent.paths import agent_home

    return agent_home() / "control_api.json"


async def serve(
    store: TrackingStore,
    *,
    port: int = DEFAULT_PORT,
    secret: str | None = None,
    state_path: Path | None = None,
    log_dir: Path | None = None,
    scope_lister: Any = None,
    credentials: Any = None,
) -> None:
    """Serve the control API on ``127.0.0.1:<port>`` until cancelled (for ``etiket-sync api``
    and for the service, which can run it beside the agent in the same event loop)."""
    try:
        import uvicorn
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            f"the control API needs the 'api' extra ({exc.name} is missing): "
            "pip install 'etiket-sync-agent[api]'"
        ) from None
    app = create_app(
        store,
        secret=secret,
        state_path=state_path,
        log_dir=log_dir,
        scope_lister=scope_lister,
        credentials=credentials,
    )
    config = uvicorn.Config(app, host=DEFAULT_HOST, port=port, log_level="warning")
    await uvicorn.Server(config).serve()
