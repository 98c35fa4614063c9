"""Presigned store URLs: HMAC-SHA256 over method, path and query, with an expiry.

The URL is the credential (as with S3): the store endpoints need no bearer token. The secret is
32 random bytes kept in ``<data_dir>/secret.key`` (mode 0600), so URLs survive a server restart and
a different data directory never accepts them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlencode

__all__ = ["DEFAULT_URL_TTL", "SignatureError", "UrlSigner", "load_or_create_secret"]

DEFAULT_URL_TTL = 3600.0
"""Default lifetime of a presigned URL, in seconds."""

_SECRET_FILE = "secret.key"


class SignatureError(Exception):
    """A presigned URL is tampered with, incomplete or expired (``code`` says which)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def load_or_create_secret(data_dir: Path) -> bytes:
    """The data directory's signing secret, created on first use."""
    path = Path(data_dir) / _SECRET_FILE
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        secret = secrets.token_bytes(32)
        tmp = path.with_name(f"{_SECRET_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, secret)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            # Another process may have won the race; keep whichever secret landed first.
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        secret = path.read_bytes()
    if len(secret) < 16:
        raise ValueError(f"signing secret {path} is too short; delete it to make a new one")
    return secret


class UrlSigner:
    """Signs and verifies ``(method, path, params)`` triples."""

    def __init__(self, secret: bytes, ttl: float = DEFAULT_URL_TTL) -> None:
        self._secret = secret
        self.ttl = ttl

    def _signature(self, method: str, path: str, params: Mapping[str, str]) -> str:
        canonical = "&".join(f"{key}={params[key]}" for key in sorted(params) if key != "sig")
        message = f"{method.upper()}\n{path}\n{canonical}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign(
        self, method: str, path: str, params: Mapping[str, str] | None = None
    ) -> tuple[str, float]:
        """``path?query`` with ``expires`` and ``sig`` added, and the expiry (Unix seconds)."""
        expires = int(time.time() + self.ttl)
        signed = dict(params or {})
        signed["expires"] = str(expires)
        signed["sig"] = self._signature(method, path, signed)
        return f"{path}?{urlencode(signed)}", float(expires)

    def verify(self, method: str, path: str, params: Mapping[str, str]) -> None:
        """Raise :class:`SignatureError` unless the signature matches and has not expired."""
        given = params.get("sig")
        expires = params.get("expires")
        if not given or not expires:
            raise SignatureError("signature_missing", "the URL carries no expires/sig parameters")
        expected = self._signature(method, path, params)
        if not hmac.compare_digest(given, expected):
            raise SignatureError(
                "signature_invalid", "the URL signature does not match (tampered or foreign URL)"
            )
        try:
            deadline = int(expires)
        except ValueError as exc:
            raise SignatureError("signature_invalid", "the URL expiry is not a number") from exc
        if time.time() > deadline:
            raise SignatureError("url_expired", f"the presigned URL expired at {deadline}")
