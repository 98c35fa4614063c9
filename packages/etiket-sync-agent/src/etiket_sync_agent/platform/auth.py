"""Logging in: TLS trust, the OAuth2 password and refresh grants, and refreshing on expiry.

- :func:`tls_verify` turns ``--ca-bundle``/``ETIKET_SYNC_CA_BUNDLE``/``--insecure`` into what httpx
  needs. Verification is on by default; turning it off is logged as a warning on every use.
- :func:`password_login` does the password grant (``POST /api/v3/token``, PROTOCOL §3.1) and
  learns the user from userinfo. API tokens remain the recommended credential for unattended
  agents: they never expire and need no refresh.
- :class:`TokenRefresher` renews an expired access token with the refresh grant (§3.4). Refresh
  tokens are single-use, so refreshing is serialised across processes with a file lock next to
  the credentials file; inside the lock the file is read again and a token another process has
  just refreshed is adopted instead of spending the (already spent) refresh token again.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
from filelock import FileLock, Timeout

from etiket_sync_agent.platform.client import API_TIMEOUT, EtiketClient
from etiket_sync_agent.platform.credentials import (
    Credentials,
    load_credentials,
    save_credentials,
)
from etiket_sync_agent.platform.errors import AuthError, EtiketError, NetworkError, scrub

__all__ = [
    "CA_BUNDLE_ENV",
    "TokenRefresher",
    "client_for",
    "password_login",
    "refresh_grant",
    "tls_verify",
]

_log = logging.getLogger("etiket_sync_agent.platform.auth")

CA_BUNDLE_ENV = "ETIKET_SYNC_CA_BUNDLE"
"""Environment variable naming a CA bundle (PEM) to verify the server with."""

_EARLY = 30.0  # refresh this many seconds before the access token expires
_LOCK_TIMEOUT = 45.0


def tls_verify(ca_bundle: str | os.PathLike[str] | None = None, *, insecure: bool = False) -> Any:
    """The ``verify`` argument for httpx: an SSL context trusting ``ca_bundle`` (or the bundle
    named by ``ETIKET_SYNC_CA_BUNDLE``), the system's trust store by default, or ``False`` when
    ``insecure`` (logged as a warning: anyone on the network can then read the token).

    Raises ``ValueError`` when the CA bundle cannot be read.
    """
    if insecure:
        _log.warning(
            "TLS certificate verification is OFF (--insecure): the server's identity is not "
            "checked and anyone on the network path can read the token. Use --ca-bundle instead."
        )
        return False
    bundle = ca_bundle or os.environ.get(CA_BUNDLE_ENV) or None
    if bundle is None:
        return True
    path = Path(bundle).expanduser()
    try:
        return ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot use CA bundle {path}: {exc}") from exc


def _oauth_failure(response: httpx.Response, what: str) -> EtiketError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = body.get("error") if isinstance(body, dict) else None
    detail = None
    if isinstance(body, dict):
        detail = body.get("error_description") or body.get("detail")
    text = f"{what}: {response.status_code} {code or ''} {detail or ''}".strip()
    if code == "invalid_grant" or response.status_code in (400, 401):
        return AuthError(text, status=response.status_code, code=code, detail=detail)
    return EtiketError(text, status=response.status_code, code=code, detail=detail)


async def _token_grant(url: str, form: dict[str, str], *, verify: Any, what: str) -> Any:
    async with httpx.AsyncClient(timeout=API_TIMEOUT, verify=verify) as http:
        try:
            response = await http.post(f"{url.rstrip('/')}/api/v3/token", data=form)
        except httpx.TransportError as exc:
            raise NetworkError(f"{what}: cannot reach {url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise _oauth_failure(response, what)
    data = response.json()
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise EtiketError(f"{what}: the server answered no access_token")
    return data


def _expires_at(data: dict[str, Any]) -> float | None:
    expires_in = data.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        return time.time() + float(expires_in)
    return None


async def password_login(
    url: str,
    username: str,
    password: str,
    *,
    ca_bundle: str | None = None,
    insecure: bool = False,
) -> tuple[Credentials, str]:
    """Log in with a user name and password; the credentials to store and the user's ``sub``.

    Raises :class:`AuthError` for a wrong user name or password (OAuth ``invalid_grant``).
    """
    verify = tls_verify(ca_bundle, insecure=insecure)
    form = {"grant_type": "password", "username": username, "password": password, "client_id": ""}
    try:
        data = await _token_grant(url, form, verify=verify, what="password login")
    except EtiketError as exc:
        raise type(exc)(
            scrub(str(exc), [password]), status=exc.status, code=exc.code, detail=exc.detail
        ) from None
    refresh = data.get("refresh_token")
    credentials = Credentials(
        url.rstrip("/"),
        data["access_token"],
        refresh_token=refresh if isinstance(refresh, str) else None,
        expires_at=_expires_at(data),
        username=username,
        ca_bundle=ca_bundle,
        insecure=insecure,
    )
    async with EtiketClient(credentials.url, credentials.token, verify=verify) as client:
        sub = (await client.userinfo()).sub
    return credentials, sub


async def refresh_grant(credentials: Credentials) -> Credentials:
    """New tokens for ``credentials`` with the refresh grant (the refresh token is spent)."""
    if not credentials.refresh_token:
        raise AuthError("the stored credentials cannot be refreshed: log in again")
    form = {
        "grant_type": "refresh_token",
        "refresh_token": credentials.refresh_token,
        "client_id": "",
    }
    verify = tls_verify(credentials.ca_bundle, insecure=credentials.insecure)
    data = await _token_grant(credentials.url, form, verify=verify, what="token refresh")
    refresh = data.get("refresh_token")
    return credentials.with_tokens(
        data["access_token"],
        refresh if isinstance(refresh, str) else credentials.refresh_token,
        _expires_at(data),
    )


class TokenRefresher:
    """Renews the access token of a password login stored at ``path``, once per expiry.

    Use :meth:`fresh_token` before starting work and :meth:`on_unauthorized` as the client's
    ``on_unauthorized`` hook (a 401 from an expired token then refreshes and retries once).
    """

    def __init__(self, path: Path | str, credentials: Credentials) -> None:
        self.path = Path(path)
        self.credentials = credentials
        self._lock = FileLock(str(self.path.with_name(self.path.name + ".lock")))

    def _expiring(self, credentials: Credentials) -> bool:
        expires = credentials.expires_at
        return expires is not None and expires - time.time() < _EARLY

    async def fresh_token(self, *, force: bool = False) -> str:
        """A valid access token: the stored one, one another process renewed, or a new one.

        Raises :class:`AuthError` ("log in again") when the refresh token is rejected;
        :class:`NetworkError` when the server cannot be reached.
        """
        if not force and not self._expiring(self.credentials):
            return self.credentials.token
        if not self.credentials.refreshable:
            return self.credentials.token
        try:
            with self._lock.acquire(timeout=_LOCK_TIMEOUT):
                stored = load_credentials(self.path) or self.credentials
                if stored.token != self.credentials.token and not self._expiring(stored):
                    self.credentials = stored  # another process refreshed meanwhile
                    return stored.token
                try:
                    renewed = await refresh_grant(stored)
                except AuthError as exc:
                    raise AuthError(
                        f"the login expired and could not be renewed ({exc}): run "
                        "'etiket-sync login' again",
                        status=exc.status,
                        code=exc.code,
                    ) from None
                save_credentials(renewed, path=self.path)
                self.credentials = renewed
                _log.info("access token refreshed (valid until %s)", _when(renewed.expires_at))
                return renewed.token
        except Timeout as exc:
            raise NetworkError(f"timed out waiting for the token lock {exc.lock_file}") from exc

    async def on_unauthorized(self) -> str | None:
        """The client's 401 hook: refresh and hand back the new token (``None``: cannot)."""
        if not self.credentials.refreshable:
            return None
        return await self.fresh_token(force=True)


def _when(expires_at: float | None) -> str:
    if expires_at is None:
        return "revoked"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(expires_at))


def client_for(credentials: Credentials, path: Path | str, **options: Any) -> EtiketClient:
    """An :class:`EtiketClient` for stored credentials: TLS as stored (or from
    ``ETIKET_SYNC_CA_BUNDLE``) and, for a password login, the access token renewed with the
    refresh grant when the server answers 401 (the request is then repeated once)."""
    verify = tls_verify(credentials.ca_bundle, insecure=credentials.insecure)
    options.setdefault("verify", verify)
    hook = None
    if credentials.refreshable:
        hook = TokenRefresher(path, credentials).on_unauthorized
    return EtiketClient(credentials.url, credentials.token, on_unauthorized=hook, **options)
