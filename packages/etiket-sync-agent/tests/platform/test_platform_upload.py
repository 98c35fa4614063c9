"""Uploads through the Uploader against the real local server: the stored bytes are the source's."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from etiket_sync_agent.platform import (
    EtiketClient,
    FileChangedError,
    FileStatus,
    MemoryStateStore,
    Uploader,
    put_timeout,
)

MiB = 1024 * 1024


def _download_md5(url: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with httpx.stream("GET", url, timeout=120) as response:
        response.raise_for_status()
        for block in response.iter_bytes(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@pytest.mark.parametrize(
    ("size", "parts"),
    [(0, 1), (1, 1), (7 * MiB, 1), (100 * MiB, 13)],
    ids=["0B", "1B", "7MiB", "100MiB-multipart"],
)
def test_upload_stores_the_source_bytes(
    etiket_server: Any,
    token: str,
    scope_uuid: str,
    helpers: Any,
    tmp_path: Path,
    size: int,
    parts: int,
) -> None:
    path = helpers.write_random(tmp_path / "data.bin", size, seed=size)
    source_md5 = helpers.md5_of(path)
    seen: list[int] = []

    async def main() -> Any:
        async with EtiketClient(etiket_server.url, token) as client:
            ds = await client.ensure_dataset(helpers.new_dataset(scope_uuid))
            record = await client.ensure_file_version(helpers.new_file(ds.uuid, path))
            assert record.status is FileStatus.ANNOUNCED
            etiket_server.reset_stats()
            result = await Uploader(client).upload(
                path, record.uuid, record.version_id, progress=seen.append
            )
            [stored] = await client.read_file(record.uuid, record.version_id)
            return record, result, stored

    record, result, stored = asyncio.run(main())
    assert (result.md5, result.size, result.parts, result.bytes_sent) == (
        source_md5,
        size,
        parts,
        size,
    )
    assert sum(seen) == size
    stats = etiket_server.stats()
    assert stats.puts_by_version[(record.uuid, record.version_id)] == parts  # no retries needed
    assert stored.status is FileStatus.SECURED
    assert stored.md5_checksum == source_md5
    assert stored.size == size
    assert stored.S3_link is not None
    assert _download_md5(stored.S3_link) == source_md5


def test_multipart_with_a_small_threshold_and_concurrency(
    etiket_server: Any, token: str, scope_uuid: str, helpers: Any, tmp_path: Path
) -> None:
    path = helpers.write_random(tmp_path / "mid.bin", 20 * MiB + 12345, seed=3)

    async def main() -> Any:
        async with EtiketClient(etiket_server.url, token) as client:
            ds = await client.ensure_dataset(helpers.new_dataset(scope_uuid))
            record = await client.ensure_file_version(helpers.new_file(ds.uuid, path))
            store = MemoryStateStore()
            uploader = Uploader(client, single_part_threshold=1 * MiB, part_concurrency=2)
            result = await uploader.upload(path, record.uuid, record.version_id, resume=store)
            assert store.load(record.uuid, record.version_id) is None, "finished() drops the state"
            [stored] = await client.read_file(record.uuid, record.version_id)
            return result, stored

    result, stored = asyncio.run(main())
    assert result.parts == 3  # the server's 8 MiB parts
    assert result.upload_id is not None
    assert stored.md5_checksum == helpers.md5_of(path)
    assert stored.status is FileStatus.SECURED


def test_a_file_changed_during_multipart_upload_is_not_validated(
    etiket_server: Any, token: str, scope_uuid: str, helpers: Any, tmp_path: Path
) -> None:
    path = helpers.write_random(tmp_path / "growing.bin", 24 * MiB, seed=4)
    store = MemoryStateStore()

    async def main() -> Any:
        async with EtiketClient(etiket_server.url, token) as client:
            ds = await client.ensure_dataset(helpers.new_dataset(scope_uuid))
            record = await client.ensure_file_version(helpers.new_file(ds.uuid, path))
            touched: list[int] = []

            def progress(sent: int) -> None:
                if not touched:  # the measurement rewrites the file after the first part
                    touched.append(sent)
                    with open(path, "r+b") as handle:
                        handle.write(b"changed!")
                    os.utime(path, ns=(1, 1))

            with pytest.raises(FileChangedError, match="changed while it was uploaded"):
                await Uploader(client, part_concurrency=1).upload(
                    path, record.uuid, record.version_id, resume=store, progress=progress
                )
            [stored] = await client.read_file(record.uuid, record.version_id)
            return stored

    stored = asyncio.run(main())
    assert stored.status is not FileStatus.SECURED
    assert stored.md5_checksum is None


def test_a_single_part_file_with_other_content_than_planned_is_not_validated(
    etiket_server: Any, token: str, scope_uuid: str, helpers: Any, tmp_path: Path
) -> None:
    path = tmp_path / "small.json"
    path.write_bytes(b'{"a": 1}')

    async def main() -> None:
        async with EtiketClient(etiket_server.url, token) as client:
            ds = await client.ensure_dataset(helpers.new_dataset(scope_uuid))
            record = await client.ensure_file_version(helpers.new_file(ds.uuid, path))
            with pytest.raises(FileChangedError, match="expected content"):
                await Uploader(client).upload(
                    path, record.uuid, record.version_id, expected_md5="0" * 32
                )
            [stored] = await client.read_file(record.uuid, record.version_id)
            assert stored.status is not FileStatus.SECURED
            # with the right hash it goes through
            result = await Uploader(client).upload(
                path, record.uuid, record.version_id, expected_md5=helpers.md5_of(path)
            )
            assert result.md5 == helpers.md5_of(path)

    asyncio.run(main())


def test_an_expired_presigned_url_is_requested_again(
    etiket_server: Any, token: str, scope_uuid: str, helpers: Any, tmp_path: Path
) -> None:
    single = helpers.write_random(tmp_path / "one.bin", 1000, seed=5)
    multi = helpers.write_random(tmp_path / "two.bin", 17 * MiB, seed=6)

    async def main() -> None:
        async with EtiketClient(etiket_server.url, token) as client:
            ds = await client.ensure_dataset(helpers.new_dataset(scope_uuid))
            real_single = client.presigned_single_part
            real_multi = client.presigned_multipart
            handed: list[str] = []

            def spoil(url: str) -> str:
                # a signature the store rejects with 403, as for an expired URL
                return url.replace("sig=", "sig=0") if len(handed) == 1 else url

            async def single_link(file_uuid: str, version_id: int) -> Any:
                link = await real_single(file_uuid, version_id)
                handed.append("single")
                return link.model_copy(update={"url": spoil(link.url)})

            async def multi_link(file_uuid: str, version_id: int, **kw: Any) -> Any:
                upload = await real_multi(file_uuid, version_id, **kw)
                handed.append("multi")
                return upload.model_copy(
                    update={"presigned_urls": [spoil(u) for u in upload.presigned_urls]}
                )

            client.presigned_single_part = single_link  # type: ignore[method-assign]
            client.presigned_multipart = multi_link  # type: ignore[method-assign]
            for path in (single, multi):
                handed.clear()
                record = await client.ensure_file_version(helpers.new_file(ds.uuid, path))
                result = await Uploader(client).upload(path, record.uuid, record.version_id)
                assert len(handed) == 2, "one refresh after the 403"
                [stored] = await client.read_file(record.uuid, record.version_id)
                assert stored.status is FileStatus.SECURED
                assert stored.md5_checksum == result.md5 == helpers.md5_of(path)

    asyncio.run(main())


def test_put_timeout_follows_the_protocol() -> None:
    assert put_timeout(0) == 10.0
    assert put_timeout(5_000_000) == 50.0
    assert put_timeout(10**12) == 1800.0
