"""``etiket-sync`` as users run it: separate processes sharing one agent home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent


class CLI:
    def __init__(self, home: Path) -> None:
        self.env = {**os.environ, "ETIKET_SYNC_HOME": str(home)}
        self.env.pop("ETIKET_SYNC_DB_URL", None)

    def __call__(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(BIN / "etiket-sync"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    return CLI(tmp_path / "home")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def test_backends_lists_the_installed_connectors(cli: CLI) -> None:
    # The whole workspace's listing (six connectors, the converters) is checked in tests/.
    rows = cli.json("backends")
    backends = {r["name"]: r for r in rows if r["kind"] == "backend"}
    assert backends["folderbase"]["status"] == "available"
    assert backends["folderbase"]["distribution"] == "etiket-sync-agent-folderbase"
    assert "folderbase" in cli("backends").stdout


def test_a_source_survives_a_restart_and_can_be_removed(cli: CLI, data: Path) -> None:
    cli(
        "source",
        "add",
        "tree",
        "--backend",
        "folderbase",
        "--scope",
        "my-scope",
        "--set",
        f"root_directory={data}",
        "--set",
        "static_attributes.sample=chip 7",
    )
    [listed] = cli.json("source", "list")  # a new process reads what the first one stored
    assert (listed["name"], listed["backend"], listed["scope"]) == (
        "tree",
        "folderbase",
        "my-scope",
    )
    shown = cli.json("source", "show", "tree")
    assert shown["config"]["root_directory"] == str(data)
    assert shown["config"]["static_attributes"] == {"sample": "chip 7"}
    assert shown["config"]["level"] == -1
    cli("source", "validate", "tree")
    cli("source", "remove", "tree")
    assert cli.json("source", "list") == []


def test_package_names_are_accepted_as_backend_names(cli: CLI, data: Path) -> None:
    cli(
        "source",
        "add",
        "t",
        "--backend",
        "etiket_sync_agent_folderbase",
        "--scope",
        "s",
        "--set",
        f"root_directory={data}",
    )
    assert cli.json("source", "show", "t")["backend"] == "folderbase"


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ([], "root_directory"),
        (["root_directory=/definitely/not/here"], "root_directory"),
        (["root_directory={data}", "level=0"], "level"),
        (["root_directory={data}", "level=deep"], "level"),
        (["root_directory={data}", "no_such_field=1"], "no_such_field"),
    ],
)
def test_invalid_config_is_refused_naming_the_field(
    cli: CLI, data: Path, settings: list[str], field: str
) -> None:
    args = [arg for s in settings for arg in ("--set", s.format(data=data))]
    result = cli("source", "add", "t", "--backend", "folderbase", "--scope", "s", *args, code=2)
    assert field in result.stderr
    assert cli.json("source", "list") == []


def test_scope_rules_duplicates_and_overlaps(cli: CLI, data: Path) -> None:
    result = cli(
        "source", "add", "t", "--backend", "folderbase", "--set", f"root_directory={data}", code=2
    )
    assert "requires a scope" in result.stderr
    cli(
        "source",
        "add",
        "t",
        "--backend",
        "folderbase",
        "--scope",
        "s",
        "--set",
        f"root_directory={data}",
    )
    result = cli(
        "source",
        "add",
        "t",
        "--backend",
        "folderbase",
        "--scope",
        "s",
        "--set",
        f"root_directory={data}",
        code=2,
    )
    assert "already exists" in result.stderr
    (data / "inner").mkdir()
    result = cli(
        "source",
        "add",
        "u",
        "--backend",
        "folderbase",
        "--scope",
        "s",
        "--set",
        f"root_directory={data / 'inner'}",
        code=2,
    )
    assert "overlaps" in result.stderr
    result = cli("source", "add", "v", "--backend", "nope", code=2)
    assert "folderbase" in result.stderr, "the error lists what is available"


def test_unimplemented_backends_say_so(cli: CLI, data: Path) -> None:
    rows = {r["name"]: r for r in cli.json("backends") if r["kind"] == "backend"}
    pending = [name for name, row in rows.items() if row["status"] == "not implemented yet"]
    for name in pending:
        result = cli("source", "add", "x", "--backend", name, "--scope", "s", code=2)
        assert "not implemented yet" in result.stderr


def test_status_and_errors_as_json(cli: CLI, data: Path) -> None:
    cli(
        "source",
        "add",
        "tree",
        "--backend",
        "folderbase",
        "--scope",
        "s",
        "--set",
        f"root_directory={data}",
    )
    status = cli.json("status")
    assert status["agent"]["iteration"] == 0
    assert status["logged_in"] is False
    assert [s["name"] for s in status["sources"]] == ["tree"]
    assert cli.json("errors") == {"items": [], "sources": []}
    cli("source", "map-scope", "tree", "projA", "scope-a")
    assert cli.json("source", "show", "tree")["scope_mapping"] == {"projA": "scope-a"}
    cli("source", "pause", "tree")
    assert cli.json("source", "show", "tree")["status"] == "paused"
    cli("source", "resume", "tree")


def test_python_dash_m_works(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "etiket_sync_agent", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "source" in result.stdout
    assert "run" in result.stdout


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Any]:
    from etiket_local_server.testing import start_server

    srv = start_server(tmp_path / "server")
    yield srv
    srv.stop()


def test_login_stores_the_token_privately_and_never_prints_it(
    cli: CLI, server: Any, tmp_path: Path
) -> None:
    token = server.create_token()
    result = cli("login", "--url", server.url, "--token", token)
    assert "local" in result.stdout
    assert token not in result.stdout + result.stderr
    credentials = tmp_path / "home" / "credentials.json"
    assert credentials.stat().st_mode & 0o777 == 0o600
    status = cli("status", "--json")
    assert token not in status.stdout
    assert json.loads(status.stdout)["logged_in"] is True
    bad = cli("login", "--url", server.url, "--token", "wrong-token", code=1)
    assert "wrong-token" not in bad.stdout + bad.stderr
    cli("logout")
    assert not credentials.exists()


def test_run_without_login_explains_what_to_do(cli: CLI) -> None:
    result = cli("run", "--once", code=2)
    assert "etiket-sync login" in result.stderr
