"""Start the server in-process (tests, the agent's demo): uvicorn in a background thread.

Importable without pytest. Example::

    with start_server(tmp_path / "server") as server:
        token = server.create_token()
        scope = server.create_scope("demo scope")
        httpx.get(f"{server.url}/api/v3/token/userinfo", headers={"Authorization": f"Bearer {token}"})
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import ssl
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from etiket_local_server.app import create_app, is_loopback
from etiket_local_server.catalog import DEFAULT_USER, Catalog
from etiket_local_server.faults import FaultConfig, FaultInjector, ServerStats

__all__ = ["FaultConfig", "LocalServer", "ServerStats", "error_code", "start_server"]

_START_TIMEOUT = 20.0


def error_code(response: Any) -> str | None:
    """The error code of an error answer (an ``httpx.Response``): the ``error`` key for the
    platform's codes, ``reason`` for this server's own (see :mod:`etiket_local_server.errors`)."""
    body = response.json()
    code = body.get("error", body.get("reason"))
    return code if isinstance(code, str) else None


class LocalServer:
    """A running in-process server. Use as a context manager or call :meth:`stop`."""

    def __init__(
        self,
        *,
        url: str,
        data_dir: Path,
        server: uvicorn.Server,
        thread: threading.Thread,
        injector: FaultInjector,
        catalog: Catalog,
        ca_bundle: Path | None = None,
        fingerprint: str | None = None,
    ) -> None:
        self.url = url
        """Base URL, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        self.data_dir = data_dir
        """The data directory (catalog, secret, stored bytes)."""
        self.ca_bundle = ca_bundle
        """With ``tls=True``: the self-signed certificate to trust (``verify=`` of httpx)."""
        self.fingerprint = fingerprint
        """With ``tls=True``: the SHA-256 fingerprint of the certificate."""
        self._server = server
        self._thread = thread
        self._injector = injector
        self._catalog = catalog

    def create_token(self, name: str = "test", *, user: str = DEFAULT_USER) -> str:
        """A new API token for ``user`` (created if missing); token names are unique per user,
        so a repeated name gets a numeric suffix."""
        candidate, counter = name, 1
        while True:
            try:
                return self._catalog.create_token(candidate, owner=user).secret
            except ValueError:
                counter += 1
                candidate = f"{name}-{counter}"

    def create_scope(self, name: str, *, user: str = DEFAULT_USER) -> str:
        """Create a scope with ``user`` as member; return its uuid."""
        return self._catalog.create_scope(name, owner=user)

    def add_user(self, user: str, password: str, *, role: str = "user") -> None:
        """Create ``user`` with a password (for the OAuth2 password grant)."""
        from etiket_local_server.auth import add_user

        add_user(self._catalog, user, password, role=role)

    def add_scope_member(self, scope_uuid: str, user: str) -> None:
        """Give ``user`` access to a scope."""
        self._catalog.add_scope_member(scope_uuid, user)

    def stats(self) -> ServerStats:
        """A snapshot of the request and fault counters."""
        return self._injector.stats()

    def reset_stats(self) -> None:
        """Zero the request and fault counters."""
        self._injector.reset_stats()

    def set_faults(self, faults: FaultConfig) -> None:
        """Change fault injection at run time (an outage window counts from now)."""
        self._injector.set(faults)

    def object_path(self, file_uuid: str, version_id: int) -> Path:
        """Where the secured bytes of a file version are stored."""
        return self.data_dir / "objects" / file_uuid[:2] / file_uuid / str(int(version_id))

    def stop(self) -> None:
        """Stop serving and wait for the server thread (idempotent)."""
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._catalog.close()

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _answers(host: str, port: int, context: ssl.SSLContext | None = None) -> bool:
    connection: http.client.HTTPConnection
    if context is None:
        connection = http.client.HTTPConnection(host, port, timeout=2)
    else:
        connection = http.client.HTTPSConnection(host, port, timeout=2, context=context)
    try:
        connection.request("GET", "/api/v3/")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def start_server(
    data_dir: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    faults: FaultConfig | None = None,
    *,
    ui_requires_auth: bool | None = None,
    tls: bool = False,
    access_token_ttl: float | None = None,
) -> LocalServer:
    """Start a server on ``host:port`` (0 = a free port) over ``data_dir``; return once it answers.

    Fault injection is off unless ``faults`` is given. The web page needs a token unless the
    server is bound to loopback (``ui_requires_auth`` overrides that choice). With ``tls`` the
    server speaks HTTPS with the data directory's self-signed certificate
    (:attr:`LocalServer.ca_bundle`). ``access_token_ttl`` shortens the life of access tokens from
    the password grant (tests of refreshing).
    """
    data_dir = Path(data_dir)
    if faults is not None:
        faults.validate()
    injector = FaultInjector()  # faults start once the server answers (the probe is not faulted)
    if ui_requires_auth is None:
        ui_requires_auth = not is_loopback(host)
    options: dict[str, Any] = {}
    if access_token_ttl is not None:
        options["access_token_ttl"] = access_token_ttl
    app = create_app(data_dir, faults=injector, ui_requires_auth=ui_requires_auth, **options)
    tls_options: dict[str, Any] = {}
    probe_context: ssl.SSLContext | None = None
    certificate = None
    if tls:
        from etiket_local_server.tls import ensure_self_signed

        certificate = ensure_self_signed(data_dir, [host])
        tls_options = {
            "ssl_certfile": str(certificate.certfile),
            "ssl_keyfile": str(certificate.keyfile),
        }
        probe_context = ssl.create_default_context(cafile=str(certificate.certfile))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says so, and without it every keep-alive answer waits ~40 ms (delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        http="httptools",
        loop="asyncio",
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        **tls_options,
    )
    server = uvicorn.Server(config)

    def serve() -> None:
        asyncio.run(server.serve(sockets=[sock]))

    thread = threading.Thread(target=serve, name=f"etiket-local-server:{bound_port}", daemon=True)
    thread.start()
    url_host = f"[{host}]" if ":" in host else host
    deadline = time.monotonic() + _START_TIMEOUT
    while not (server.started and _answers(host, bound_port, probe_context)):
        if not thread.is_alive():
            sock.close()
            raise RuntimeError(f"the local server on {host}:{bound_port} failed to start")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the local server on {host}:{bound_port} did not answer in time")
        time.sleep(0.01)
    injector.reset_stats()  # the readiness probe above is not the caller's traffic
    if faults is not None:
        injector.set(faults)
    scheme = "https" if tls else "http"
    return LocalServer(
        url=f"{scheme}://{url_host}:{bound_port}",
        data_dir=data_dir,
        server=server,
        thread=thread,
        injector=injector,
        catalog=Catalog(data_dir),
        ca_bundle=certificate.certfile if certificate is not None else None,
        fingerprint=certificate.fingerprint if certificate is not None else None,
    )
