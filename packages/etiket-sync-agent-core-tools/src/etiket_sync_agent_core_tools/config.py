"""Configuration of a core-tools source and how to connect with it.

Field names are those existing agent configurations use (``dbname``, ``user``, ``password``,
``host``, ``port``); ``password`` is a :class:`pydantic.SecretStr`, so it is stored but never shown
or logged (the dataclass ``repr`` prints ``SecretStr('**********')``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import psycopg
from pydantic import SecretStr

from etiket_sync_agent.errors import ConfigError

__all__ = [
    "APPLICATION_NAME",
    "OVERVIEW_TABLE",
    "PARAMETERS_TABLE",
    "CoreToolsConfig",
    "config_error_from_connect",
    "connect_kwargs",
    "reveal_password",
    "scrub",
    "source_identity",
]

#: Table every core-tools database has: one row per measurement.
OVERVIEW_TABLE = "global_measurement_overview"
#: Table of the current format: one row per parameter of every measurement.
PARAMETERS_TABLE = "measurement_parameters"
#: ``application_name`` of our sessions (shows up in ``pg_stat_activity``).
APPLICATION_NAME = "etiket-sync-core-tools"


@dataclasses.dataclass
class CoreToolsConfig:
    """Configuration of a core-tools source (field names as existing configurations use them).

    Attributes:
        dbname: the PostgreSQL database core-tools writes to.
        user: the PostgreSQL role to log in with (read access is enough; we never write).
        password: the role's password (secret: stored, never shown or logged).
        host: the PostgreSQL server (default ``localhost``).
        port: its port (default 5432).
        stale_after: seconds an unfinished measurement may show no growth before it is synced
            as it is (a crashed measurement never completes); it is synced again if it grows.
    """

    dbname: str
    user: str
    password: SecretStr
    host: str = "localhost"
    port: int = 5432
    stale_after: float = 300.0

    def validate(self) -> None:
        """Connect, check the database is a core-tools database; raise ConfigError naming the field."""
        if not self.dbname.strip():
            raise ConfigError("dbname", "must not be empty")
        if not self.user.strip():
            raise ConfigError("user", "must not be empty")
        if not 0 < self.port < 65536:
            raise ConfigError("port", f"must be a TCP port (1-65535), got {self.port}")
        if self.stale_after < 0:
            raise ConfigError("stale_after", f"must be >= 0 seconds, got {self.stale_after}")
        try:
            with psycopg.connect(**connect_kwargs(self)) as conn:
                conn.read_only = True
                row = conn.execute(
                    "SELECT to_regclass(%s) IS NOT NULL, has_table_privilege(current_user, "
                    "coalesce(to_regclass(%s)::oid, 0::oid), 'SELECT')",
                    (OVERVIEW_TABLE, OVERVIEW_TABLE),
                ).fetchone()
        except psycopg.Error as exc:
            raise config_error_from_connect(self, exc) from None
        exists, readable = row if row is not None else (False, False)
        if not exists:
            raise ConfigError(
                "dbname",
                f"database {self.dbname!r} on {self.host}:{self.port} has no table "
                f"{OVERVIEW_TABLE!r}: is it a core-tools database?",
            )
        if not readable:
            raise ConfigError(
                "user",
                f"role {self.user!r} may not read {OVERVIEW_TABLE!r} in database "
                f"{self.dbname!r} (grant it SELECT)",
            )


def connect_kwargs(config: CoreToolsConfig, *, connect_timeout: int = 10) -> dict[str, Any]:
    """Keyword arguments for :func:`psycopg.connect` (read-only sessions, secret revealed here only)."""
    return {
        "host": config.host,
        "port": int(config.port),
        "dbname": config.dbname,
        "user": config.user,
        "password": reveal_password(config),
        "connect_timeout": connect_timeout,
        "application_name": APPLICATION_NAME,
        # Every transaction of the session is read-only unless explicitly changed (we never do).
        "options": "-c default_transaction_read_only=on",
    }


def reveal_password(config: CoreToolsConfig) -> str:
    """The password in clear (only for handing it to libpq)."""
    password: Any = config.password
    if isinstance(password, SecretStr):
        return password.get_secret_value()
    return "" if password is None else str(password)


def source_identity(config: CoreToolsConfig) -> str:
    """A string identifying the database: two sources with the same identity are the same DB."""
    host = config.host.strip().lower()
    if host in ("localhost", "127.0.0.1", "::1", "[::1]", ""):
        host = "localhost"
    return f"postgresql://{host}:{int(config.port)}/{config.dbname}"


def _where(config: CoreToolsConfig) -> str:
    return f"{config.host}:{config.port}"


def config_error_from_connect(config: CoreToolsConfig, exc: psycopg.Error) -> ConfigError:
    """Turn a connection/query error into a ConfigError naming the field that is most likely wrong.

    The message never contains the password (libpq does not echo it; we also scrub it).
    """
    message = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc), config)
    sqlstate = getattr(exc, "sqlstate", None)
    lowered = message.lower()
    if sqlstate == "28P01" or "password authentication failed" in lowered:
        return ConfigError(
            "password", f"PostgreSQL at {_where(config)} refused the password for {config.user!r}"
        )
    if "no password supplied" in lowered or "password is required" in lowered:
        return ConfigError("password", f"PostgreSQL at {_where(config)} requires a password")
    if sqlstate == "3D000" or ("database" in lowered and "does not exist" in lowered):
        return ConfigError(
            "dbname", f"database {config.dbname!r} does not exist on {_where(config)}"
        )
    if "role" in lowered and "does not exist" in lowered:
        return ConfigError("user", f"role {config.user!r} does not exist on {_where(config)}")
    if sqlstate == "42501":
        return ConfigError("user", f"role {config.user!r} lacks a privilege: {message}")
    if sqlstate == "28000" or "pg_hba.conf" in lowered:
        return ConfigError(
            "user", f"PostgreSQL at {_where(config)} does not let {config.user!r} in: {message}"
        )
    if isinstance(exc, psycopg.OperationalError):
        return ConfigError("host", f"cannot connect to PostgreSQL at {_where(config)}: {message}")
    return ConfigError(None, f"PostgreSQL at {_where(config)}: {message}")


def scrub(text: str, config: CoreToolsConfig) -> str:
    """Remove the password from a message, should a library ever echo it."""
    secret = reveal_password(config)
    if secret and len(secret) >= 3:
        text = text.replace(secret, "********")
    return text
