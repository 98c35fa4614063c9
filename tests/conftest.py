"""Shared fixtures of the cross-package tests: real processes, real HTTP, generated data."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """The local eTiKeT server running as its own OS process."""

    url: str
    data_dir: Path
    token: str
    scope_uuid: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server_process(data_dir: Path, *extra: str) -> ServerProcess:
    data_dir.mkdir(parents=True, exist_ok=True)
    cli = str(BIN / "etiket-local-server")
    token = subprocess.run(
        [cli, "token", "create", "--data-dir", str(data_dir)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    scope = subprocess.run(
        [cli, "scope", "create", "reliability", "--data-dir", str(data_dir)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    port = free_port()
    log = open(data_dir / "server.log", "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [
            cli,
            "serve",
            "--data-dir",
            str(data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/api/v3/", timeout=1)
            break
        except httpx.HTTPError:
            if proc.poll() is not None:
                raise RuntimeError((data_dir / "server.log").read_text()) from None
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("local server did not start")
    return ServerProcess(url, data_dir, token, scope, proc)


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    server = start_server_process(tmp_path / "server")
    try:
        yield server
    finally:
        server.stop()


class AgentCLI:
    """Runs ``etiket-sync`` as a separate process with its own agent home."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = dict(os.environ)
        self.env["ETIKET_SYNC_HOME"] = str(home)
        self.env.pop("ETIKET_SYNC_DB_URL", None)

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(BIN / "etiket-sync"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"etiket-sync {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def log_in_with_folder_source(self, server: Any, root: Path, name: str = "tree") -> None:
        """``login`` to ``server`` and add a folderbase source on ``root`` in its scope."""
        self("login", "--url", server.url, "--token", server.token)
        self(
            "source",
            "add",
            name,
            "--backend",
            "folderbase",
            "--scope",
            server.scope_uuid,
            "--set",
            f"root_directory={root}",
        )

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [str(BIN / "etiket-sync"), *args],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


@pytest.fixture
def agent_cli(tmp_path: Path) -> AgentCLI:
    """``etiket-sync`` in subprocesses with a fresh agent home under tmp_path."""
    return AgentCLI(tmp_path / "home")


@pytest.fixture
def make_tree() -> object:
    """The folderbase tree generator (see :func:`make_folder_tree`)."""
    return make_folder_tree


def make_folder_tree(root: Path, count: int, *, payload: int = 20_000) -> list[str]:
    """``count`` folderbase datasets with an info file and two data files each."""
    names = []
    for i in range(count):
        folder = root / f"batch{i // 50:02d}" / f"dataset {i:04d} #ü"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "_QH_dataset_info.yaml").write_text(
            f"version: 0.1\ndataset_name: dataset {i}\ncollected: 2024-05-0{1 + i % 9}T10:00:00\n"
            f"description: generated for the reliability tests\ntags: [reliability, n{i % 7}]\n"
            f"attributes:\n  index: {i}\n"
        )
        (folder / "readme.txt").write_text(f"dataset {i}\n")
        (folder / "data.bin").write_bytes(os.urandom(payload))
        names.append(folder.relative_to(root).as_posix())
    return names
