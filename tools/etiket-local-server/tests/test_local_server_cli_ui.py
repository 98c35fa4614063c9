"""The command line (token/scope create, list, serve) and the read-only web page."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from click.testing import CliRunner

from etiket_local_server.cli import main
from etiket_local_server.testing import error_code, start_server

if TYPE_CHECKING:
    from conftest import Api


def test_cli_token_and_scope_create_work_against_a_running_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    runner = CliRunner()
    with start_server(data_dir) as server:
        token_result = runner.invoke(main, ["token", "create", "--data-dir", str(data_dir)])
        assert token_result.exit_code == 0, token_result.output
        token = token_result.output.strip()
        assert "\n" not in token
        assert token.startswith("elt_")
        scope_result = runner.invoke(
            main, ["scope", "create", "cli made scope", "--data-dir", str(data_dir)]
        )
        assert scope_result.exit_code == 0, scope_result.output
        scope_uuid = scope_result.output.strip()

        headers = {"Authorization": f"Bearer {token}"}
        info = httpx.get(f"{server.url}/api/v3/token/userinfo", headers=headers).json()
        assert info["sub"] == "local"
        scopes = httpx.get(f"{server.url}/api/v3/scopes", headers=headers).json()
        assert [s["uuid"] for s in scopes] == [scope_uuid]

    listed = runner.invoke(main, ["scope", "list", "--data-dir", str(data_dir)])
    assert listed.output.strip() == f"{scope_uuid}  cli made scope"
    duplicate = runner.invoke(
        main, ["scope", "create", "cli made scope", "--data-dir", str(data_dir)]
    )
    assert duplicate.exit_code != 0
    assert "already exists" in duplicate.output
    short = runner.invoke(main, ["scope", "create", "abc", "--data-dir", str(data_dir)])
    assert short.exit_code != 0
    named = runner.invoke(
        main, ["token", "create", "--data-dir", str(data_dir), "--name", "ci", "--user", "robot"]
    )
    assert named.exit_code == 0
    again = runner.invoke(
        main, ["token", "create", "--data-dir", str(data_dir), "--name", "ci", "--user", "robot"]
    )
    assert again.exit_code != 0
    second = runner.invoke(main, ["token", "create", "--data-dir", str(data_dir)])
    assert second.exit_code == 0
    assert second.output.strip() != token


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_out_of_process_with_hidden_fault_option(tmp_path: Path) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "etiket_local_server",
            "serve",
            "--data-dir",
            str(tmp_path / "served"),
            "--port",
            str(port),
            "--fault-outage",
            "0",
            "3600",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/v3/")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not start"
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                time.sleep(0.05)
        assert response.status_code == 503
        assert error_code(response) == "service_unavailable"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    assert b"fault injection ON" in stderr
    help_text = CliRunner().invoke(main, ["serve", "--help"]).output
    assert "--fault" not in help_text


def test_web_page_lists_scopes_datasets_and_files(api: Api) -> None:
    data = os.urandom(2048)
    dataset = api.create_dataset(name="cooldown <script>", alt_uid="guid-7")
    file = api.create_file(dataset["uuid"], size=len(data))
    api.upload_single(file, data)
    home = httpx.get(f"{api.server.url}/")
    assert home.status_code == 200
    assert "text/html" in home.headers["content-type"]
    assert "pytest scope" in home.text
    scope_page = httpx.get(f"{api.server.url}/ui/scopes/{api.scope_uuid}")
    assert "cooldown &lt;script&gt;" in scope_page.text
    assert "<script>" not in scope_page.text
    page = httpx.get(f"{api.server.url}/ui/datasets/{dataset['uuid']}")
    assert page.status_code == 200
    assert hashlib.md5(data).hexdigest() in page.text
    assert "secured" in page.text
    assert "2.0 KiB" in page.text
    link = page.text.split('href="')[-1].split('"')[0].replace("&amp;", "&")
    assert "/_store/get/" in link
    assert httpx.get(link).content == data
    assert httpx.get(f"{api.server.url}/ui/datasets/not-a-uuid").status_code == 404


def test_web_page_needs_a_token_off_loopback(tmp_path: Path) -> None:
    with start_server(tmp_path / "data", ui_requires_auth=True) as server:
        scope_uuid = server.create_scope("private scope")
        server.create_scope("someone else's", user="other")
        denied = httpx.get(f"{server.url}/")
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"].startswith("Basic")
        token = server.create_token()
        basic = httpx.get(f"{server.url}/", auth=("anyone", token))
        assert basic.status_code == 200
        assert "private scope" in basic.text
        assert "someone else" not in basic.text
        bearer = httpx.get(
            f"{server.url}/ui/scopes/{scope_uuid}", headers={"Authorization": f"Bearer {token}"}
        )
        assert bearer.status_code == 200
        assert httpx.get(f"{server.url}/", auth=("anyone", "wrong")).status_code == 401
