"""``etiket-sync source add`` with core-tools: the same database twice is refused; the password
is stored but never shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from etiket_sync_agent_core_tools import testing as ct

BIN = Path(sys.executable).parent


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ETIKET_SYNC_HOME": str(home)}
    env.pop("ETIKET_SYNC_DB_URL", None)
    return subprocess.run(
        [str(BIN / "etiket-sync"), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_same_database_twice_is_refused_and_password_hidden(ct_db: str, tmp_path: Path) -> None:
    ct.create_schema(ct_db)
    config = ct.config_for(ct_db)
    password = "pw-" + "x" * 12
    settings = [f"{k}={v}" for k, v in config.items() if k != "password"]
    args = [arg for s in [*settings, f"password={password}"] for arg in ("--set", s)]
    home = tmp_path / "home"
    first = _cli(home, "source", "add", "ct1", "--backend", "core-tools", *args)
    assert first.returncode == 0, first.stderr
    same_host_spelled_differently = [a.replace("127.0.0.1", "localhost") for a in args]
    second = _cli(
        home, "source", "add", "ct2", "--backend", "core-tools", *same_host_spelled_differently
    )
    assert second.returncode == 2
    assert "already syncs" in second.stderr
    shown = _cli(home, "source", "show", "ct1", "--json")
    assert password not in shown.stdout
    assert json.loads(shown.stdout)["config"]["password"] == "********"
    listed = _cli(home, "source", "list")
    assert password not in listed.stdout + listed.stderr
