"""Wire shapes of the client's models (PROTOCOL §6): aliases, datetimes, PATCH bodies."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from pydantic import ValidationError

from etiket_sync_agent.platform import (
    DatasetCreate,
    DatasetRead,
    DatasetUpdate,
    FileCreate,
    FileRead,
    FileStatus,
    FileType,
    Scope,
    UserInfo,
)

SCOPE = str(uuid.uuid4())


def test_scope_accepts_uid_or_uuid_and_archived_or_is_archived() -> None:
    a = Scope.model_validate({"uid": SCOPE, "name": "alpha", "archived": True})
    b = Scope.model_validate({"uuid": SCOPE.upper(), "name": "alpha", "is_archived": False})
    assert a.uuid == b.uuid == SCOPE
    assert a.is_archived is True
    assert b.is_archived is False
    assert a.is_restricted is True


def test_read_datetimes_are_aware() -> None:
    scope = Scope.model_validate(
        {
            "uuid": SCOPE,
            "name": "alpha",
            "created": "2024-05-01T14:00:00+02:00",
            "modified": "2024-05-01T12:00:00",  # naive: taken as UTC
        }
    )
    assert scope.created == dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc)
    assert scope.modified is not None
    assert scope.modified.utcoffset() == dt.timedelta(0)


def test_sent_datetimes_are_utc_with_offset() -> None:
    cet = dt.timezone(dt.timedelta(hours=2))
    create = DatasetCreate(
        uuid=str(uuid.uuid4()),
        collected=dt.datetime(2024, 5, 1, 14, 0, tzinfo=cet),
        name="n",
        creator="me",
        scope_uuid=SCOPE,
    )
    body = create.model_dump(mode="json")
    assert body["collected"] == "2024-05-01T12:00:00+00:00"
    naive = dt.datetime(2024, 5, 1, 14, 0)
    local = FileCreate(
        name="m",
        filename="m.h5",
        uuid=str(uuid.uuid4()),
        creator="me",
        collected=naive,
        size=3,
        type=FileType.HDF5,
        version_id=1,
        ds_uuid=create.uuid,
    ).model_dump(mode="json")
    assert local["collected"].endswith("+00:00")
    assert dt.datetime.fromisoformat(local["collected"]) == naive.astimezone()
    assert local["type"] == "HDF5"
    json.dumps(local)  # JSON-ready


def test_dataset_update_sends_every_key_unchanged_as_null() -> None:
    body = DatasetUpdate(name="renamed").model_dump(mode="json")
    assert body == {
        "alt_uid": None,
        "name": "renamed",
        "description": None,
        "notes": None,
        "keywords": None,
        "ranking": None,
        "attributes": None,
    }
    assert DatasetUpdate().is_empty()
    assert not DatasetUpdate(ranking=0).is_empty()


def test_alt_uid_must_differ_from_uuid() -> None:
    same = str(uuid.uuid4())
    with pytest.raises(ValidationError, match="alt_uid must differ"):
        DatasetCreate(
            uuid=same,
            alt_uid=same,
            collected=dt.datetime.now(),
            name="n",
            creator="c",
            scope_uuid=SCOPE,
        )


def test_request_models_reject_unknown_fields_and_bad_uuids() -> None:
    with pytest.raises(ValidationError):
        DatasetUpdate.model_validate({"nmae": "typo"})
    with pytest.raises(ValidationError, match="not a UUID"):
        DatasetCreate(
            uuid="nope", collected=dt.datetime.now(), name="n", creator="c", scope_uuid=SCOPE
        )


def test_dataset_read_with_scope_files_and_tolerated_unknowns() -> None:
    file_uuid = str(uuid.uuid4())
    read = DatasetRead.model_validate(
        {
            "uuid": str(uuid.uuid4()),
            "collected": "2024-05-01T12:00:00+00:00",
            "name": "n",
            "keywords": ["k"],
            "attributes": {"a": "b"},
            "scope": {"uid": SCOPE, "name": "alpha", "archived": False},
            "files": [
                {
                    "uuid": file_uuid,
                    "version_id": 5,
                    "name": "m",
                    "filename": "m.nc",
                    "type": "SOMETHING_NEW",
                    "status": "secured",
                    "md5_checksum": "0" * 32,
                    "S3_link": "http://store/x?sig=1",
                    "S3_validity": 1.7e9,
                    "future_field": 1,
                }
            ],
            "future_field": {"x": 1},
        }
    )
    assert read.scope is not None
    assert read.scope.uuid == SCOPE
    file = read.file_version(file_uuid, 5)
    assert file is not None
    assert file.type is FileType.UNKNOWN
    assert file.status is FileStatus.SECURED
    assert file.secured
    assert file.S3_validity == 1.7e9
    assert read.file_version(file_uuid, 6) is None


def test_user_info_and_file_read_defaults() -> None:
    assert UserInfo.model_validate({"sub": "alice"}).email is None
    file = FileRead.model_validate(
        {"uuid": str(uuid.uuid4()), "version_id": 1, "name": "n", "filename": "f"}
    )
    assert file.status is FileStatus.ANNOUNCED
    assert file.S3_link is None
