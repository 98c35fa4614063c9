"""The API token never appears in messages, reprs or logs; the credentials file is private."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from etiket_sync_agent.platform import (
    AuthError,
    Credentials,
    EtiketClient,
    EtiketError,
    NetworkError,
    NotFoundError,
    RetryPolicy,
    Uploader,
    delete_credentials,
    load_credentials,
    save_credentials,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_token_absent_from_errors_reprs_and_logs(
    etiket_server: Any,
    token: str,
    scope_uuid: str,
    helpers: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from etiket_local_server.testing import FaultConfig

    wrong = "wrong-" + token[::-1]
    failures: list[BaseException] = []

    async def main() -> None:
        fast = RetryPolicy(attempts=3, base=0.01, cap=0.02)
        async with EtiketClient(etiket_server.url, wrong, retry=fast) as client:
            assert token not in repr(client)
            assert wrong not in repr(client)
            with pytest.raises(AuthError) as auth:
                await client.userinfo()
            failures.append(auth.value)
        async with EtiketClient(etiket_server.url, token, retry=fast) as client:
            with pytest.raises(NotFoundError) as missing:
                await client.create_file(
                    helpers.new_file("00000000-0000-4000-8000-000000000000", tmp_path / "x")
                )
            failures.append(missing.value)
            etiket_server.set_faults(FaultConfig(error_rate=1.0))
            with pytest.raises(EtiketError) as server_error:
                await client.list_scopes()
            failures.append(server_error.value)
            etiket_server.set_faults(FaultConfig(drop_rate=1.0))
            with pytest.raises(NetworkError) as dropped:
                await client.list_scopes()
            failures.append(dropped.value)
            etiket_server.set_faults(FaultConfig())
            ds = await client.ensure_dataset(helpers.new_dataset(scope_uuid))
            path = helpers.write_random(tmp_path / "f.bin", 100)
            record = await client.ensure_file_version(helpers.new_file(ds.uuid, path))
            etiket_server.set_faults(FaultConfig(error_rate=1.0))
            with pytest.raises(EtiketError) as upload:
                await Uploader(client).upload(path, record.uuid, record.version_id)
            failures.append(upload.value)
        async with EtiketClient(f"http://127.0.0.1:{_free_port()}", token, retry=fast) as client:
            with pytest.raises(NetworkError) as refused:
                await client.userinfo()
            failures.append(refused.value)

    (tmp_path / "x").write_bytes(b"x")
    with caplog.at_level(logging.DEBUG):  # every logger, httpx and httpcore included
        asyncio.run(main())
    assert len(failures) == 6
    for failure in failures:
        for secret in (token, wrong):
            assert secret not in str(failure)
            assert secret not in repr(failure)
            assert secret not in str(getattr(failure, "detail", ""))
    assert caplog.records, "the scenario logs something"
    for secret in (token, wrong):
        assert secret not in caplog.text


def test_credentials_file_is_private_and_masked(tmp_path: Path) -> None:
    path = tmp_path / "home" / "credentials.json"
    secret = "tok_" + "q" * 40
    old_umask = os.umask(0)  # even a permissive umask must not widen the file
    try:
        save_credentials("https://etiket.example.org/", secret, path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"url": "https://etiket.example.org", "token": secret}
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"], "no temp file left"
    loaded = load_credentials(path)
    assert loaded == Credentials("https://etiket.example.org", secret)
    assert secret not in repr(loaded)
    assert secret not in str(loaded)
    assert "********" in repr(loaded)

    save_credentials("https://other.example.org", "tok_second_token", path)  # replace atomically
    assert load_credentials(path) == Credentials("https://other.example.org", "tok_second_token")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    delete_credentials(path)
    assert load_credentials(path) is None
    delete_credentials(path)  # idempotent

    path.write_text("{not json")
    with pytest.raises(ValueError, match="unreadable credentials file"):
        load_credentials(path)
    path.write_text('{"url": "x"}')
    with pytest.raises(ValueError, match="lacks"):
        load_credentials(path)
