"""The stored server URL and credentials (``etiket-sync login``), readable only by the user.

The file is JSON::

    {"url": ..., "token": ...,                       # always: the bearer token to send
     "refresh_token": ..., "expires_at": ...,        # password logins (OAuth2) only
     "username": ..., "ca_bundle": ..., "insecure": false}

An API token (the recommended credential of unattended agents) never expires and has no
``refresh_token``; a password login stores the access token, its expiry (Unix seconds) and the
refresh token.

The file is written atomically and privately on every OS: a temporary file in the same directory
is created with ``os.open(..., 0o600)`` (the mode applies before any byte is written; on Windows
the file inherits the ACL of the user's profile folder), flushed to disk and renamed over the old
file, so a crash never leaves a partial or world-readable credentials file behind. ``os.fchmod``
is not used: Windows has it only from Python 3.13.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

__all__ = [
    "Credentials",
    "delete_credentials",
    "load_credentials",
    "save_credentials",
    "write_private_file",
]

_OPTIONAL_STR = ("refresh_token", "username", "ca_bundle")
_POSIX_MODES = os.name != "nt"
"""Whether ``os.chmod`` sets POSIX permission bits (on Windows it only toggles read-only)."""


@dataclass(frozen=True)
class Credentials:
    """A server URL and its bearer token (plus, for password logins, how to refresh it).

    ``repr``/``str`` mask the tokens.

    Attributes:
        url: the server URL.
        token: the bearer token (an API token, or an access token of a password login).
        refresh_token: the OAuth2 refresh token of a password login (``None`` for API tokens).
        expires_at: when ``token`` expires (Unix seconds; ``None`` = never, API tokens).
        username: who logged in with a password (shown by ``status``).
        ca_bundle: a CA bundle (PEM) to verify the server with (private CAs, self-signed).
        insecure: TLS verification is off (``login --insecure``; logged loudly on every use).
    """

    url: str
    token: str
    refresh_token: str | None = None
    expires_at: float | None = None
    username: str | None = None
    ca_bundle: str | None = None
    insecure: bool = False

    def __repr__(self) -> str:
        refresh = ", refresh_token='********'" if self.refresh_token else ""
        return f"Credentials(url={self.url!r}, token='********'{refresh})"

    __str__ = __repr__

    @property
    def refreshable(self) -> bool:
        """Whether the token can be renewed (a password login with a refresh token)."""
        return bool(self.refresh_token)

    def with_tokens(
        self, token: str, refresh_token: str | None, expires_at: float | None
    ) -> Credentials:
        """A copy holding a refreshed token pair."""
        return replace(self, token=token, refresh_token=refresh_token, expires_at=expires_at)


def write_private_file(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only where the OS allows.

    Cross-platform: the temporary file is created by ``os.open`` with mode 0600 (POSIX applies
    it at creation; Windows keeps only the read-only bit and relies on the folder's ACL), then
    ``os.chmod`` narrows it where POSIX modes exist (umask cannot widen it), then it replaces
    ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, stat.S_IRUSR | stat.S_IWUSR)
    try:
        if _POSIX_MODES:
            os.chmod(tmp, stat.S_IRUSR | stat.S_IWUSR)  # before any secret is in it
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            fd = -1
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise


def save_credentials(
    url: str | Credentials, token: str | None = None, path: Path | str | None = None
) -> None:
    """Store credentials in ``path`` (mode 0600, atomic replace).

    Either ``save_credentials(url, token, path)`` (an API token) or
    ``save_credentials(credentials, path=path)``.
    """
    if isinstance(url, Credentials):
        credentials = url
    else:
        if token is None:
            raise TypeError("save_credentials(url, token, path) needs a token")
        credentials = Credentials(url, token)
    if path is None:
        raise TypeError("save_credentials needs the path of the credentials file")
    data: dict[str, Any] = {
        key: value
        for key, value in asdict(credentials).items()
        if value is not None and value is not False
    }
    data["url"] = credentials.url.rstrip("/")
    write_private_file(path, json.dumps(data))


def load_credentials(path: Path | str) -> Credentials | None:
    """The stored credentials, or ``None`` when there is no file (not logged in).

    Raises ``ValueError`` naming the file when it exists but cannot be read as credentials.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"unreadable credentials file {path}: {type(exc).__name__}") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("url"), str)
        or not isinstance(data.get("token"), str)
    ):
        raise ValueError(f"credentials file {path} lacks a string 'url' and 'token'")
    extra: dict[str, Any] = {}
    for key in _OPTIONAL_STR:
        value = data.get(key)
        if isinstance(value, str) and value:
            extra[key] = value
    expires = data.get("expires_at")
    if isinstance(expires, int | float) and not isinstance(expires, bool):
        extra["expires_at"] = float(expires)
    if data.get("insecure") is True:
        extra["insecure"] = True
    return Credentials(data["url"], data["token"], **extra)


def delete_credentials(path: Path | str) -> None:
    """Remove the credentials file (no error when there is none)."""
    Path(path).unlink(missing_ok=True)
