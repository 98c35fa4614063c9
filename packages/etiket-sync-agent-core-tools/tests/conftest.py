"""Fixtures: real PostgreSQL databases for the core-tools backend tests.

The shared server is ``ETIKET_TEST_PG_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``);
each test gets its own database, dropped afterwards. Tests needing password authentication start a
private PostgreSQL cluster (``initdb`` with scram-sha-256) when the binaries are available.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from etiket_sync_agent_core_tools import CoreToolsSync
from etiket_sync_agent_core_tools import testing as ct

from etiket_sync_agent.connectors import parse_config


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    reason = ct.postgres_unavailable_reason()
    if reason is not None:
        pytest.skip(
            f"{reason}; set ETIKET_TEST_PG_DSN to a server where tests may create databases"
        )
    return ct.admin_dsn()


@pytest.fixture
def ct_db(pg_dsn: str) -> Iterator[str]:
    """A fresh core-tools database (current schema); yields its connection string."""
    conninfo = ct.create_database("etiket_test_coretools", pg_dsn)
    try:
        ct.create_schema(conninfo)
        yield conninfo
    finally:
        ct.drop_database(conninfo, pg_dsn)


@pytest.fixture
def empty_db(pg_dsn: str) -> Iterator[str]:
    """A fresh database without any table."""
    conninfo = ct.create_database("etiket_test_coretools", pg_dsn)
    try:
        yield conninfo
    finally:
        ct.drop_database(conninfo, pg_dsn)


def backend_for(conninfo: str, **overrides: Any) -> CoreToolsSync:
    """A backend instance for a database, configured like ``etiket-sync source add`` would."""
    raw = {**ct.config_for(conninfo), **overrides}
    return CoreToolsSync(parse_config(CoreToolsSync.config_class, raw))


@dataclass
class PrivateCluster:
    """A throw-away PostgreSQL server with password authentication."""

    host: str
    port: int
    user: str
    password: str

    def dsn(self, dbname: str = "postgres", password: str | None = None) -> str:
        pw = self.password if password is None else password
        return f"postgresql://{self.user}:{pw}@{self.host}:{self.port}/{dbname}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def scram_cluster() -> Iterator[PrivateCluster]:
    """A private PostgreSQL cluster requiring a password (scram-sha-256)."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    base = Path(tempfile.mkdtemp(prefix="ct-scram-"))
    password = "Sc-" + os.urandom(6).hex()
    pwfile = base / "pw"
    pwfile.write_text(password, encoding="utf-8")
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: use the postgres account
        if shutil.which("runuser") is None:
            pytest.skip("running as root and runuser is not available to start PostgreSQL")
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
        shutil.chown(pwfile, "postgres")
    data = base / "data"
    port = _free_port()
    try:
        subprocess.run(
            [*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
             "-A", "scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"),
             "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    except (subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"could not start a private PostgreSQL cluster: {exc}")
    try:
        yield PrivateCluster("127.0.0.1", port, "postgres", password)
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(
                [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True, timeout=60,
            )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def make_backend() -> Iterator[Any]:
    """Factory ``make_backend(conninfo, **config_overrides)``; backends are closed afterwards."""
    created: list[CoreToolsSync] = []

    def make(conninfo: str, **overrides: Any) -> CoreToolsSync:
        backend = backend_for(conninfo, **overrides)
        created.append(backend)
        return backend

    yield make
    for backend in created:
        backend.close()
