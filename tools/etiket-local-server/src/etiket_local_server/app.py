"""The ASGI application (Starlette)."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from etiket_local_server import (
    api_datasets,
    api_extras,
    api_files,
    api_identity,
    auth,
    store,
    ui,
)
from etiket_local_server.catalog import Catalog
from etiket_local_server.context import ServerContext
from etiket_local_server.errors import error_response, exception_handlers
from etiket_local_server.faults import RAW_SEND_KEY, FaultConfig, FaultInjector, FaultMiddleware
from etiket_local_server.objects import ObjectStore
from etiket_local_server.signing import DEFAULT_URL_TTL, UrlSigner, load_or_create_secret

__all__ = ["create_app", "is_loopback"]

_log = logging.getLogger(__name__)

_WORKER_THREADS = 8


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts local connections."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _LocalServerApp(Starlette):
    """Starlette, keeping the server's own ``send`` reachable for dropped-connection faults."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[RAW_SEND_KEY] = send
        await super().__call__(scope, receive, send)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    _log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "server_error", f"internal server error: {type(exc).__name__}")


async def _client_disconnected(request: Request, exc: Exception) -> Response:
    """The client went away mid-request: nothing to answer, nothing to trace back."""
    _log.info("client disconnected during %s %s", request.method, request.url.path)
    return Response(status_code=499)


def create_app(
    data_dir: Path,
    *,
    faults: FaultInjector | FaultConfig | None = None,
    ui_requires_auth: bool = False,
    url_ttl: float = DEFAULT_URL_TTL,
    access_token_ttl: float = auth.DEFAULT_ACCESS_TOKEN_TTL,
    refresh_token_ttl: float = auth.DEFAULT_REFRESH_TOKEN_TTL,
) -> Starlette:
    """The local eTiKeT server as an ASGI app over ``data_dir`` (created if missing).

    Args:
        data_dir: folder holding the catalog, the signing secret and the stored bytes.
        faults: fault injection (test only); off when None.
        ui_requires_auth: require an API token for the HTML pages (use when not on loopback).
        url_ttl: lifetime of presigned URLs in seconds.
        access_token_ttl: lifetime of access tokens from ``POST /api/v3/token`` in seconds.
        refresh_token_ttl: lifetime of refresh tokens in seconds.
    """
    data_dir = Path(data_dir)
    catalog = Catalog(data_dir)
    injector = faults if isinstance(faults, FaultInjector) else FaultInjector(faults)
    executor = ThreadPoolExecutor(_WORKER_THREADS, thread_name_prefix="etiket-store")
    ctx = ServerContext(
        catalog=catalog,
        store=ObjectStore(data_dir),
        signer=UrlSigner(load_or_create_secret(data_dir), ttl=url_ttl),
        injector=injector,
        executor=executor,
        ui_requires_auth=ui_requires_auth,
        access_token_ttl=access_token_ttl,
        refresh_token_ttl=refresh_token_ttl,
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        executor.shutdown(wait=True)
        catalog.close()

    handlers = dict(exception_handlers)
    handlers[ClientDisconnect] = _client_disconnected
    handlers[Exception] = _unexpected_error
    app = _LocalServerApp(
        routes=[
            *api_identity.routes(),
            *auth.routes(),
            *api_extras.routes(),
            *api_datasets.routes(),
            *api_files.routes(),
            *store.routes(),
            *ui.routes(),
        ],
        middleware=[Middleware(FaultMiddleware, injector=injector)],
        exception_handlers=handlers,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    return app
