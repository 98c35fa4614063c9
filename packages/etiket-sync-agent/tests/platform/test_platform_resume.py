"""Resuming multipart uploads: after a kill -9 only the missing parts are sent again."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from etiket_sync_agent.platform import (
    EtiketClient,
    FileStatus,
    JsonFileStateStore,
    MemoryStateStore,
    Uploader,
)

MiB = 1024 * 1024
WORKER = Path(__file__).with_name("platform_resume_worker.py")


def _prepare(server: Any, token: str, scope: str, helpers: Any, path: Path) -> tuple[str, int]:
    async def main() -> tuple[str, int]:
        async with EtiketClient(server.url, token) as client:
            ds = await client.ensure_dataset(helpers.new_dataset(scope))
            record = await client.ensure_file_version(helpers.new_file(ds.uuid, path))
            return record.uuid, record.version_id

    return asyncio.run(main())


def _server_parts(
    server: Any, token: str, file_uuid: str, version: int, upload_id: str
) -> set[int]:
    answer = httpx.get(
        f"{server.url}/api/v2/file/upload_parts/",
        params={"file_uuid": file_uuid, "version_id": version, "upload_id": upload_id},
        headers={"Authorization": f"Bearer {token}"},
    )
    answer.raise_for_status()
    return {int(p["part_number"]) for p in answer.json()["parts"]}


def test_killed_mid_multipart_sends_only_missing_parts(
    etiket_server: Any, token: str, scope_uuid: str, helpers: Any, tmp_path: Path
) -> None:
    path = helpers.write_random(tmp_path / "big.bin", 80 * MiB, seed=7)  # 10 parts of 8 MiB
    state_file = tmp_path / "upload-state.json"
    file_uuid, version = _prepare(etiket_server, token, scope_uuid, helpers, path)
    command = [
        sys.executable,
        str(WORKER),
        etiket_server.url,
        token,
        str(path),
        file_uuid,
        str(version),
        str(state_file),
    ]

    first = subprocess.Popen([*command, "4"], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None
        assert first.stdout.readline().strip() == "hanging"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    assert first.returncode == -signal.SIGKILL

    saved = JsonFileStateStore(state_file).load(file_uuid, version)
    assert saved is not None, "the worker recorded its upload before being killed"
    assert len(saved.parts) >= 4
    on_server = _server_parts(etiket_server, token, file_uuid, version, saved.upload_id)
    assert set(saved.parts) <= on_server
    assert len(on_server) < 10, "the kill came before the end"
    missing = set(range(1, 11)) - on_server

    etiket_server.reset_stats()
    second = subprocess.run([*command, "0"], capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    word, md5, sent, resumed = second.stdout.split()
    assert word == "finished"
    assert md5 == helpers.md5_of(path)
    assert int(resumed) == len(on_server)
    assert int(sent) == len(missing) * 8 * MiB

    stats = etiket_server.stats()
    resent = {
        part for (uuid_, ver, part) in stats.puts_by_part if (uuid_, ver) == (file_uuid, version)
    }
    assert resent == missing, f"sent {sorted(resent)}, missing were {sorted(missing)}"
    assert stats.puts_by_version[(file_uuid, version)] == len(missing)
    assert JsonFileStateStore(state_file).load(file_uuid, version) is None

    async def check() -> Any:
        async with EtiketClient(etiket_server.url, token) as client:
            return (await client.read_file(file_uuid, version))[0]

    stored = asyncio.run(check())
    assert stored.status is FileStatus.SECURED
    assert stored.md5_checksum == md5
    assert stored.S3_link is not None
    assert (
        helpers.md5_of(path)
        == __import__("hashlib")
        .md5(httpx.get(stored.S3_link, timeout=60).content, usedforsecurity=False)
        .hexdigest()
    )


def test_without_the_upload_parts_endpoint_the_local_record_is_trusted(
    etiket_server: Any, token: str, scope_uuid: str, helpers: Any, tmp_path: Path
) -> None:
    path = helpers.write_random(tmp_path / "mid.bin", 40 * MiB, seed=8)  # 5 parts
    file_uuid, version = _prepare(etiket_server, token, scope_uuid, helpers, path)
    store = MemoryStateStore()

    class Interrupted(Exception):
        pass

    async def main() -> Any:
        async with EtiketClient(etiket_server.url, token) as client:
            acknowledged: list[int] = []

            def stop_after_two(sent: int) -> None:
                acknowledged.append(sent)
                if len(acknowledged) == 2:
                    raise Interrupted

            try:
                await Uploader(client, part_concurrency=1).upload(
                    path, file_uuid, version, resume=store, progress=stop_after_two
                )
            except Interrupted:
                pass
            state = store.load(file_uuid, version)
            assert state is not None
            assert sorted(state.parts) == [1, 2]

            async def no_extension(*_args: Any) -> None:
                return None  # what a server without the extension amounts to

            client.upload_parts = no_extension  # type: ignore[method-assign,assignment]
            etiket_server.reset_stats()
            result = await Uploader(client).upload(path, file_uuid, version, resume=store)
            [stored] = await client.read_file(file_uuid, version)
            return result, stored

    result, stored = asyncio.run(main())
    assert result.resumed_parts == 2
    assert result.bytes_sent == 3 * 8 * MiB
    parts = {
        p for (u, v, p) in etiket_server.stats().puts_by_part if (u, v) == (file_uuid, version)
    }
    assert parts == {3, 4, 5}
    assert stored.status is FileStatus.SECURED
    assert stored.md5_checksum == helpers.md5_of(path)


def test_a_vanished_upload_starts_over(
    etiket_server: Any, token: str, scope_uuid: str, helpers: Any, tmp_path: Path
) -> None:
    path = helpers.write_random(tmp_path / "mid.bin", 17 * MiB, seed=9)
    file_uuid, version = _prepare(etiket_server, token, scope_uuid, helpers, path)
    store = MemoryStateStore()
    store.begin(file_uuid, version, "0" * 32, 8 * MiB)  # an upload the server never knew
    store.part_done(file_uuid, version, 1, "f" * 32)

    async def main() -> Any:
        async with EtiketClient(etiket_server.url, token) as client:
            result = await Uploader(client).upload(path, file_uuid, version, resume=store)
            [stored] = await client.read_file(file_uuid, version)
            return result, stored

    result, stored = asyncio.run(main())
    assert result.resumed_parts == 0
    assert result.upload_id != "0" * 32
    assert stored.md5_checksum == helpers.md5_of(path)
    assert store.load(file_uuid, version) is None
