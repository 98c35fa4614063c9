"""The stored server URL and API token (``etiket-sync login``), readable only by the user.

The file is JSON ``{"url": ..., "token": ...}`` with mode 0600. It is written atomically: a
temporary file in the same directory is created, restricted to 0600 *before* the token is written
into it, flushed to disk and renamed over the old file, so a crash never leaves a partial or
world-readable credentials file behind.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Credentials", "delete_credentials", "load_credentials", "save_credentials"]


@dataclass(frozen=True)
class Credentials:
    """A server URL and its bearer token. ``repr``/``str`` mask the token."""

    url: str
    token: str

    def __repr__(self) -> str:
        return f"Credentials(url={self.url!r}, token='********')"

    __str__ = __repr__


def save_credentials(url: str, token: str, path: Path | str) -> None:
    """Store ``url`` and ``token`` in ``path`` (mode 0600, atomic replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, stat.S_IRUSR | stat.S_IWUSR)  # private before any secret is in it
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"url": url.rstrip("/"), "token": token}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    return Credentials(data["url"], data["token"])


def delete_credentials(path: Path | str) -> None:
    """Remove the credentials file (no error when there is none)."""
    Path(path).unlink(missing_ok=True)
