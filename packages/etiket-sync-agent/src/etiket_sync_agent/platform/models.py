"""Typed request and response shapes of the eTiKeT API (PROTOCOL.md §6).

- Read models ignore unknown fields and accept the spellings servers use (a scope's ``uid`` or
  ``uuid``, ``archived`` or ``is_archived``).
- Datetimes read from the server are *aware*; a naive time (which a conforming server never sends)
  is taken as UTC.
- Datetimes the client sends are converted to UTC and written as ISO-8601 with an offset
  (``2024-05-01T12:00:00+00:00``); naive inputs are taken as local time, as the reference client
  does (PROTOCOL §6.1).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid as uuid_module
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from etiket_sync_agent.connectors.dataset import FileType

__all__ = [
    "DatasetCreate",
    "DatasetRead",
    "DatasetUpdate",
    "FileCreate",
    "FileRead",
    "FileStatus",
    "FileType",
    "MultipartUpload",
    "Scope",
    "SinglePartLink",
    "UploadedPart",
    "UploadedParts",
    "UserInfo",
    "to_utc_iso",
]


def to_utc_iso(value: dt.datetime) -> str:
    """``value`` in UTC as ISO-8601 with offset; a naive value is taken as local time."""
    if value.tzinfo is None:
        value = value.astimezone()  # naive = local time (PROTOCOL §6.1)
    return value.astimezone(dt.timezone.utc).isoformat()


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


def _canonical_uuid(value: Any) -> Any:
    if isinstance(value, uuid_module.UUID):
        return str(value)
    if isinstance(value, str):
        try:
            return str(uuid_module.UUID(value))
        except ValueError:
            raise ValueError(f"not a UUID: {value!r}") from None
    return value


def _file_type(value: Any) -> Any:
    if isinstance(value, str) and value not in FileType._value2member_map_:
        return FileType.UNKNOWN
    return value


AwareDatetime = Annotated[dt.datetime, AfterValidator(_aware)]
"""A datetime read from the server: always timezone-aware."""

SentDatetime = Annotated[dt.datetime, PlainSerializer(to_utc_iso, return_type=str)]
"""A datetime the client sends: serialised as UTC ISO-8601 with offset."""

UuidStr = Annotated[str, BeforeValidator(_canonical_uuid)]
"""A UUID kept as its canonical lower-case string."""


class _Read(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Write(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserInfo(_Read):
    """``GET /api/v3/token/userinfo``: who the presented token belongs to."""

    sub: str
    email: str | None = None
    given_name: str | None = None
    family_name: str | None = None


class Scope(_Read):
    """A scope (``ScopeRead``): the permission boundary and namespace of datasets."""

    uuid: UuidStr = Field(validation_alias=AliasChoices("uuid", "uid"))
    name: str
    description: str | None = ""
    is_restricted: bool = True
    is_archived: bool = Field(
        default=False, validation_alias=AliasChoices("is_archived", "archived")
    )
    created: AwareDatetime | None = None
    modified: AwareDatetime | None = None


class FileStatus(str, enum.Enum):
    """Upload state of a file version: record created → upload in progress → validated."""

    ANNOUNCED = "announced"
    PENDING = "pending"
    SECURED = "secured"


class FileRead(_Read):
    """One version of a file as the server stores it (PROTOCOL §6.5)."""

    uuid: UuidStr
    version_id: int
    name: str
    filename: str
    creator: str | None = None
    collected: AwareDatetime | None = None
    size: int = 0
    type: Annotated[FileType, BeforeValidator(_file_type)] = FileType.UNKNOWN
    file_generator: str | None = None
    ranking: int = 0
    immutable: bool = True
    status: FileStatus = FileStatus.ANNOUNCED
    md5_checksum: str | None = None
    etag: str | None = None
    S3_link: str | None = None
    S3_validity: float | None = None
    created: AwareDatetime | None = None
    modified: AwareDatetime | None = None

    @property
    def secured(self) -> bool:
        """True once the server validated the uploaded bytes."""
        return self.status is FileStatus.SECURED


class DatasetRead(_Read):
    """A dataset with its scope and every version of every file."""

    uuid: UuidStr
    alt_uid: str | None = None
    collected: AwareDatetime
    name: str
    creator: str | None = None
    description: str | None = None
    notes: str | None = None
    keywords: list[str] = Field(default_factory=list)
    ranking: int = 0
    attributes: dict[str, str] = Field(default_factory=dict)
    scope: Scope | None = None
    files: list[FileRead] = Field(default_factory=list)
    created: AwareDatetime | None = None
    modified: AwareDatetime | None = None

    def file_version(self, file_uuid: str, version_id: int) -> FileRead | None:
        """The record of one file version of this dataset, if the server listed it."""
        for file in self.files:
            if file.uuid == file_uuid and file.version_id == version_id:
                return file
        return None


class DatasetCreate(_Write):
    """``POST /api/v2/dataset/`` body. The uuid is chosen by the client (uuid5 in the agent)."""

    uuid: UuidStr
    alt_uid: str | None = None
    collected: SentDatetime
    name: str
    creator: str
    description: str | None = None
    notes: str | None = None
    keywords: list[str] = Field(default_factory=list)
    ranking: int = 0
    scope_uuid: UuidStr
    attributes: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _alt_uid_differs(self) -> DatasetCreate:
        if self.alt_uid is not None and self.alt_uid == self.uuid:
            raise ValueError("alt_uid must differ from the dataset uuid")
        return self


class DatasetUpdate(_Write):
    """``PATCH /api/v2/dataset/`` body: every key is sent, ``None`` meaning "unchanged"."""

    alt_uid: str | None = None
    name: str | None = None
    description: str | None = None
    notes: str | None = None
    keywords: list[str] | None = None
    ranking: int | None = None
    attributes: dict[str, str] | None = None

    def is_empty(self) -> bool:
        """True when the update would change nothing."""
        return all(value is None for value in self.model_dump().values())


class FileCreate(_Write):
    """``POST /api/v2/file/`` body: one version of a file (``version_id`` is client-chosen)."""

    name: str
    filename: str
    uuid: UuidStr
    creator: str
    collected: SentDatetime
    size: int = Field(ge=0)
    type: FileType
    file_generator: str | None = None
    version_id: int
    ranking: int = 0
    ds_uuid: UuidStr
    immutable: bool = True


class SinglePartLink(_Read):
    """``GET /api/v2/file/presigned_link/single_part/``: where to PUT a whole file."""

    uuid: UuidStr
    version_id: int
    url: str


class MultipartUpload(_Read):
    """``GET /api/v2/file/presigned_link/``: a multipart upload and one URL per part."""

    uuid: UuidStr
    version_id: int
    upload_id: str
    part_size: int = Field(gt=0)
    presigned_urls: list[str]


class UploadedPart(_Read):
    """One part the server holds for a multipart upload."""

    part_number: int
    etag: str
    size: int | None = None


class UploadedParts(_Read):
    """``GET /api/v2/file/upload_parts/`` (extension): what the server holds for an upload."""

    upload_id: str | None = None
    state: str = "active"
    part_size: int | None = None
    parts: list[UploadedPart] = Field(default_factory=list)

    def by_number(self) -> dict[int, UploadedPart]:
        """The parts keyed by part number, ETags without quotes and lower-cased."""
        return {
            part.part_number: part.model_copy(update={"etag": part.etag.strip('"').lower()})
            for part in self.parts
        }
