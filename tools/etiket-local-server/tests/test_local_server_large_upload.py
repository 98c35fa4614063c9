"""A 1 GiB multipart upload (slow: run with ``-m slow``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from conftest import Api

GIB = 1024 * 1024 * 1024
BLOCK = 1024 * 1024


def _part_blocks(part_number: int, part_size: int, total: int) -> Iterator[bytes]:
    """Deterministic, non-repeating content generated on the fly (nothing held in memory)."""
    start = (part_number - 1) * part_size
    end = min(start + part_size, total)
    for offset in range(start, end, BLOCK):
        seed = hashlib.sha256(offset.to_bytes(8, "little")).digest()
        yield (seed * (BLOCK // len(seed)))[: min(BLOCK, end - offset)]


@pytest.mark.slow
def test_one_gib_multipart_upload(api: Api) -> None:
    file = api.create_file(api.create_dataset()["uuid"], size=GIB, type="UNKNOWN")
    upload = api.start_multipart(file)
    part_size = upload["part_size"]
    urls = upload["presigned_urls"]
    assert len(urls) == GIB // part_size

    whole = hashlib.md5()
    for number in range(1, len(urls) + 1):
        for block in _part_blocks(number, part_size, GIB):
            whole.update(block)

    def put(number: int) -> str:
        response = httpx.put(
            urls[number - 1],
            content=_part_blocks(number, part_size, GIB),
            headers={"Content-Length": str(part_size)},
            timeout=120,
        )
        assert response.status_code == 200, response.text
        return str(response.headers["etag"]).strip('"')

    with ThreadPoolExecutor(4) as pool:
        etags = list(pool.map(put, range(1, len(urls) + 1)))
    done = api.validate_multipart(file, upload["upload_id"], whole.hexdigest(), etags)
    assert done.status_code == 200, done.text
    stored = api.server.object_path(file["uuid"], file["version_id"])
    assert stored.stat().st_size == GIB
    check = hashlib.md5()
    with httpx.stream("GET", done.json()["S3_link"], timeout=300) as response:
        for chunk in response.iter_bytes(BLOCK):
            check.update(chunk)
    assert check.hexdigest() == whole.hexdigest()
