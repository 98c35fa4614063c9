"""Injected faults on the real local server: retries finish every upload, nothing is duplicated;
401s are handled once; outages are ridden out with backoff."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from etiket_sync_agent.platform import (
    AuthError,
    EtiketClient,
    FileStatus,
    RetryPolicy,
    Uploader,
)


def test_two_hundred_uploads_through_errors_and_dropped_connections(
    etiket_server: Any, token: str, scope_uuid: str, helpers: Any, tmp_path: Path
) -> None:
    from etiket_local_server.testing import FaultConfig

    paths = [
        helpers.write_random(tmp_path / f"f{i:03d}.bin", 10 * 1024, seed=i) for i in range(200)
    ]
    retry = RetryPolicy(attempts=12, base=0.02, cap=0.3)

    async def main() -> tuple[Any, list[list[Any]]]:
        async with EtiketClient(etiket_server.url, token, retry=retry) as client:
            etiket_server.set_faults(FaultConfig(error_rate=0.05, drop_rate=0.05, seed=1234))
            ds = await client.ensure_dataset(helpers.new_dataset(scope_uuid))
            uploader = Uploader(client)
            gate = asyncio.Semaphore(16)

            async def one(path: Path) -> str:
                async with gate:
                    record = await client.ensure_file_version(helpers.new_file(ds.uuid, path))
                    result = await uploader.upload(path, record.uuid, record.version_id)
                    assert result.md5 == helpers.md5_of(path)
                    return record.uuid

            uuids = await asyncio.gather(*(one(p) for p in paths))
            etiket_server.set_faults(FaultConfig())
            versions = [await client.read_file(u) for u in uuids]
            dataset = await client.get_dataset(ds.uuid)
            return dataset, versions

    dataset, versions = asyncio.run(main())
    stats = etiket_server.stats()
    assert stats.faults["error"] > 0
    assert stats.faults["drop_before"] + stats.faults["drop_after"] > 0
    assert all(len(v) == 1 for v in versions), "a file got more than one version"
    assert all(v[0].status is FileStatus.SECURED for v in versions)
    assert len(dataset.files) == 200
    by_name = {f.name: f for f in dataset.files}
    assert len(by_name) == 200
    for path in paths:
        assert by_name[path.name].md5_checksum == helpers.md5_of(path)


def test_a_401_triggers_one_token_refresh(etiket_server: Any, token: str) -> None:
    from etiket_local_server.testing import FaultConfig

    refreshes: list[str] = []

    async def refresh() -> str:
        new = str(etiket_server.create_token("refreshed"))
        refreshes.append(new)
        return new

    async def main() -> None:
        async with EtiketClient(etiket_server.url, token, on_unauthorized=refresh) as client:
            assert (await client.userinfo()).sub == "local"
            etiket_server.set_faults(FaultConfig(token_ttl_seconds=0.3))
            await asyncio.sleep(0.5)  # the first token is now expired
            assert (await client.userinfo()).sub == "local"
            assert len(refreshes) == 1

    asyncio.run(main())


def test_a_401_without_refresh_is_raised_at_once(etiket_server: Any) -> None:
    async def main() -> None:
        async with EtiketClient(etiket_server.url, "not-a-token") as client:
            with pytest.raises(AuthError) as info:
                await client.list_scopes()
            assert info.value.status == 401
            assert info.value.code == "token_invalid"

    asyncio.run(main())
    assert etiket_server.stats().api_by_route["GET /api/v3/scopes"] == 1, "401 is not retried"


def test_an_outage_is_ridden_out_with_backoff(etiket_server: Any, token: str) -> None:
    from etiket_local_server.testing import FaultConfig

    async def main() -> float:
        retry = RetryPolicy(attempts=20, base=0.05, cap=0.3)
        async with EtiketClient(etiket_server.url, token, retry=retry) as client:
            etiket_server.set_faults(FaultConfig(outage=(0.0, 1.0)))
            start = time.monotonic()
            assert (await client.userinfo()).sub == "local"
            return time.monotonic() - start

    elapsed = asyncio.run(main())
    assert elapsed >= 0.9
    assert etiket_server.stats().faults["outage"] >= 2
