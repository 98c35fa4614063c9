"""Scopes, datasets and file versions through EtiketClient against the real local server."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from etiket_sync_agent.platform import (
    AuthError,
    ConflictError,
    DatasetUpdate,
    EtiketClient,
    FileStatus,
    SyncEtiketClient,
    ValidationFailedError,
    run_sync,
)


def test_userinfo_and_scopes(etiket_server: Any, token: str, scope_uuid: str) -> None:
    async def main() -> None:
        async with EtiketClient(etiket_server.url, token) as client:
            assert (await client.userinfo()).sub == "local"
            scopes = await client.list_scopes()
            assert [(s.uuid, s.name) for s in scopes] == [(scope_uuid, "client test scope")]
            by_name = await client.find_scope("client test scope")
            by_uuid = await client.find_scope(scope_uuid)
            assert by_name is not None
            assert by_uuid is not None
            assert by_name.uuid == by_uuid.uuid == scope_uuid
            assert await client.find_scope("no such scope") is None
            assert await client.find_scope(str(uuid.uuid4())) is None
            assert await client.get_scope(str(uuid.uuid4())) is None

            created = await client.create_scope("second scope", description="made by the client")
            assert created.name == "second scope"
            fetched = await client.get_scope(created.uuid)
            assert fetched is not None
            assert fetched.description == "made by the client"
            assert not fetched.is_archived
            filtered = await client.list_scopes(name="second scope")
            assert created.uuid in [s.uuid for s in filtered]
            assert len(await client.list_scopes()) == 2

    asyncio.run(main())


def test_dataset_create_read_alt_uid_update(
    etiket_server: Any, token: str, scope_uuid: str, helpers: Any
) -> None:
    async def main() -> None:
        async with EtiketClient(etiket_server.url, token) as client:
            create = helpers.new_dataset(scope_uuid, notes="first notes")
            made = await client.create_dataset(create)
            assert made.uuid == create.uuid
            read = await client.get_dataset(create.uuid)
            assert read is not None
            assert read.scope is not None
            assert read.scope.uuid == scope_uuid
            assert read.collected == helpers.COLLECTED
            assert read.collected.tzinfo is not None
            assert (read.name, read.keywords, read.attributes) == (
                "sweep",
                ["gate", "sweep"],
                {"sample": "S1", "setup": "fridge-2"},
            )
            assert read.files == []
            assert (await client.get_dataset(create.uuid, scope_uuid)) is not None
            by_alt = await client.get_dataset_by_alt_uid(create.alt_uid, scope_uuid)
            assert by_alt is not None
            assert by_alt.uuid == create.uuid
            assert await client.get_dataset_by_alt_uid("unknown", scope_uuid) is None
            assert await client.get_dataset(str(uuid.uuid4())) is None

            # PATCH: only the given fields change, the nulls leave the others alone
            await client.update_dataset(create.uuid, DatasetUpdate(name="renamed", ranking=1))
            after = await client.get_dataset(create.uuid)
            assert after is not None
            assert (after.name, after.ranking, after.notes, after.keywords) == (
                "renamed",
                1,
                "first notes",
                ["gate", "sweep"],
            )

            with pytest.raises(ConflictError) as conflict:
                await client.create_dataset(create)  # same uuid, other content now
            assert conflict.value.code is not None
            clash = helpers.new_dataset(scope_uuid, alt_uid=create.alt_uid)
            with pytest.raises(ConflictError):
                await client.create_dataset(clash)  # alt_uid taken in this scope

            found = await client.search_datasets(scope_uuids=[scope_uuid])
            assert [d.uuid for d in found] == [create.uuid]
            assert await client.search_datasets(search_query="renamed") != []

    asyncio.run(main())


def test_ensure_dataset_is_idempotent_and_updates(
    etiket_server: Any, token: str, scope_uuid: str, helpers: Any
) -> None:
    async def main() -> None:
        async with EtiketClient(etiket_server.url, token) as client:
            create = helpers.new_dataset(scope_uuid)
            first = await client.ensure_dataset(create)
            etiket_server.reset_stats()
            again = await client.ensure_dataset(create)
            assert again.uuid == first.uuid
            routes = etiket_server.stats().api_by_route
            assert routes.get("POST /api/v2/dataset/", 0) == 0, "re-ensure must not re-create"
            assert routes.get("PATCH /api/v2/dataset/", 0) == 0, "nothing changed"

            changed = create.model_copy(
                update={"name": "renamed", "keywords": ["new"], "attributes": {"sample": "S2"}}
            )
            updated = await client.ensure_dataset(changed)
            assert (updated.name, updated.keywords, updated.attributes) == (
                "renamed",
                ["new"],
                {"sample": "S2"},
            )
            # the record exists already when another process created it between read and create
            racing = helpers.new_dataset(scope_uuid)
            await client.create_dataset(racing)
            assert (await client.ensure_dataset(racing)).uuid == racing.uuid

            other_scope = await client.create_scope("another scope")
            moved = create.model_copy(update={"scope_uuid": other_scope.uuid})
            with pytest.raises(ConflictError, match="scope"):
                await client.ensure_dataset(moved)
            assert len(await client.search_datasets()) == 2

    asyncio.run(main())


def test_file_versions(
    etiket_server: Any, token: str, scope_uuid: str, helpers: Any, tmp_path: Path
) -> None:
    source = tmp_path / "measured_data.hdf5"
    source.write_bytes(b"version one")

    async def main() -> None:
        async with EtiketClient(etiket_server.url, token) as client:
            ds = await client.ensure_dataset(helpers.new_dataset(scope_uuid))
            v1 = helpers.new_file(ds.uuid, source, name="measurement", version_id=1_700_000_000_000)
            first = await client.create_file(v1)
            assert first.status is FileStatus.ANNOUNCED
            assert (first.uuid, first.version_id, first.size) == (v1.uuid, v1.version_id, 11)
            # ensure: same content → same record, nothing duplicated
            assert (await client.ensure_file_version(v1)).version_id == v1.version_id
            assert (await client.ensure_file_version(v1)).uuid == v1.uuid
            # a new content is a new version of the same file
            source.write_bytes(b"version two, longer")
            v2 = helpers.new_file(ds.uuid, source, name="measurement", version_id=1_700_000_000_999)
            assert v2.uuid == v1.uuid
            await client.ensure_file_version(v2)
            versions = await client.read_file(v1.uuid)
            assert [v.version_id for v in versions] == [v1.version_id, v2.version_id]
            assert [v.size for v in versions] == [11, 19]
            assert [v.version_id for v in await client.read_file(v1.uuid, v2.version_id)] == [
                v2.version_id
            ]
            by_name = await client.files_by_name(ds.uuid, "measurement")
            assert {v.version_id for v in by_name} == {v1.version_id, v2.version_id}
            assert await client.files_by_name(ds.uuid, "nothing") == []
            assert await client.read_file(str(uuid.uuid4())) == []
            dataset = await client.get_dataset(ds.uuid)
            assert dataset is not None
            assert len(dataset.files) == 2

            # the same (uuid, version) with other content is a conflict, not a silent success
            clash = v2.model_copy(update={"size": 5})
            with pytest.raises(ConflictError, match="size"):
                await client.ensure_file_version(clash)

            mutable = helpers.new_file(ds.uuid, source, name="live", version_id=1)
            mutable = mutable.model_copy(update={"immutable": False})
            record = await client.ensure_file_version(mutable)
            assert record.immutable is False
            await client.mark_immutable(record.uuid, record.version_id)
            [frozen] = await client.read_file(record.uuid, record.version_id)
            assert frozen.immutable is True
            await client.set_file_ranking(record.uuid, record.version_id, -1)
            [ranked] = await client.read_file(record.uuid, record.version_id)
            assert ranked.ranking == -1

            bad = v1.model_copy(update={"ds_uuid": str(uuid.uuid4()), "uuid": str(uuid.uuid4())})
            with pytest.raises(Exception) as missing:
                await client.ensure_file_version(bad)
            assert "dataset" in str(missing.value)

    asyncio.run(main())


def test_validation_errors_name_the_field(etiket_server: Any, token: str) -> None:
    async def main() -> None:
        async with EtiketClient(etiket_server.url, token) as client:
            with pytest.raises(ValidationFailedError) as info:
                await client.create_scope("abc")  # names need 4+ characters
            assert "name" in str(info.value)

    asyncio.run(main())


def test_sync_facade_for_the_cli(etiket_server: Any, token: str, scope_uuid: str) -> None:
    with SyncEtiketClient(etiket_server.url, token) as client:
        assert client.userinfo().sub == "local"
        scope = client.find_scope(scope_uuid)
        assert scope is not None
        assert scope.name == "client test scope"
        assert [s.uuid for s in client.list_scopes()] == [scope_uuid]
        assert "token='********'" in repr(client)
        assert token not in repr(client)
    assert run_sync(etiket_server.url, token, lambda c: c.userinfo()).sub == "local"
    with pytest.raises(AuthError):
        run_sync(etiket_server.url, "wrong-token", lambda c: c.userinfo())
