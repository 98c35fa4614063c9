"""Request models (validated with pydantic) and the JSON shapes of PROTOCOL.md §6."""

from __future__ import annotations

import uuid as uuid_module
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from etiket_local_server.catalog import Dataset, FileVersion, Scope, User

__all__ = [
    "FILE_TYPES",
    "ApiTokenCreate",
    "DatasetCreate",
    "DatasetSearch",
    "DatasetUpdate",
    "FileCreate",
    "FileRankingUpdate",
    "FileValidate",
    "MarkImmutable",
    "ScopeCreate",
    "check_storage_name",
    "iso",
    "to_utc_naive",
]

FILE_TYPES = ("HDF5", "HDF5_NETCDF", "HDF5_CACHE", "NDARRAY", "JSON", "TEXT", "UNKNOWN")
FileType = Literal["HDF5", "HDF5_NETCDF", "HDF5_CACHE", "NDARRAY", "JSON", "TEXT", "UNKNOWN"]


def to_utc_naive(value: datetime) -> datetime:
    """Aware datetimes are converted to UTC; naive ones are taken as UTC already."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def iso(value: datetime | None) -> str | None:
    """A stored (naive UTC) datetime as ISO-8601 with a ``+00:00`` offset."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc).isoformat()


def check_storage_name(value: str, field: str) -> str:
    """Reject names that could escape a folder when a client stores the file under this name.

    Relative paths with ``/`` are allowed (``analysis/fit.json``); absolute paths, drive letters,
    ``.``, ``..`` and empty components, NUL, control and bidirectional control characters are not.
    """
    if not value:
        raise ValueError(f"{field} must not be empty")
    if "\x00" in value or any(ord(ch) < 32 for ch in value):
        raise ValueError(f"{field} must not contain NUL or control characters")
    if value.startswith(("/", "\\")) or (len(value) >= 2 and value[1] == ":"):
        raise ValueError(f"{field} must be a relative name, not an absolute path")
    bidi = sorted({f"U+{ord(ch):04X}" for ch in value if ch in _BIDI_CONTROLS})
    if bidi:
        raise ValueError(
            f"{field} must not contain bidirectional control characters ({', '.join(bidi)}): "
            "they make a name display differently from what it is"
        )
    parts = value.replace("\\", "/").split("/")
    if any(part in (".", "..") for part in parts):
        raise ValueError(f"{field} must not contain '.' or '..' path components")
    if any(part == "" for part in parts):
        raise ValueError(f"{field} must not contain empty path components ('//' or a trailing '/')")
    return value


_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
"""Bidirectional marks, embeddings, overrides and isolates (Unicode TR9, "Trojan Source")."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class ScopeCreate(_Strict):
    """``POST /api/v3/scopes`` body."""

    name: str = Field(min_length=4, max_length=100)
    uid: uuid_module.UUID | None = None
    description: str = ""
    is_restricted: bool = True
    is_archived: bool = False
    bucket_uuid: uuid_module.UUID | None = None


class ApiTokenCreate(_Strict):
    """``POST /api/v3/api-tokens`` body."""

    name: str = Field(min_length=3, max_length=200)


class DatasetCreate(_Strict):
    """``POST /api/v2/dataset/`` body."""

    uuid: uuid_module.UUID
    alt_uid: str | None = Field(default=None, max_length=500)
    collected: datetime
    name: str
    creator: str
    description: str | None = None
    notes: str | None = None
    keywords: list[str] = Field(default_factory=list)
    ranking: int = 0
    scope_uuid: uuid_module.UUID
    attributes: dict[str, str] = Field(default_factory=dict)


class DatasetUpdate(_Strict):
    """``PATCH /api/v2/dataset/`` body; ``null`` means unchanged."""

    alt_uid: str | None = Field(default=None, max_length=500)
    name: str | None = None
    description: str | None = None
    notes: str | None = None
    keywords: list[str] | None = None
    ranking: int | None = None
    attributes: dict[str, str] | None = None


class DatasetSearch(_Strict):
    """``POST /api/v2/datasets/search/`` body."""

    scope_uuids: list[uuid_module.UUID] | None = None
    attributes: dict[str, list[str]] = Field(default_factory=dict)
    search_query: str | None = None
    ranking: int = 0
    has_notes: bool = False
    start_date: datetime | None = None
    end_date: datetime | None = None
    time_zone: str | None = None

    @field_validator("attributes", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value


class DatasetSelection(_Strict):
    """``POST /api/v2/datasets/attributes/`` body: which datasets to collect attributes of."""

    scope_uuids: list[uuid_module.UUID] | None = None
    attributes: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("attributes", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value


class FileCreate(_Strict):
    """``POST /api/v2/file/`` body."""

    uuid: uuid_module.UUID
    version_id: int = Field(ge=0)
    name: str
    filename: str
    creator: str
    collected: datetime
    size: int = Field(ge=0)
    type: FileType
    file_generator: str | None = None
    ranking: int = 0
    ds_uuid: uuid_module.UUID
    immutable: bool = True

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return check_storage_name(value, "name")

    @field_validator("filename")
    @classmethod
    def _safe_filename(cls, value: str) -> str:
        return check_storage_name(value, "filename")


class FileRankingUpdate(_Strict):
    """``PATCH /api/v2/file/`` body."""

    ranking: int


class FileValidate(_Strict):
    """``POST /api/v2/file/validate_upload*/`` and ``/abort_upload/`` body."""

    uuid: uuid_module.UUID
    version_id: int
    md5_checksum: str | None = None
    upload_id: str = ""
    etags: list[Any] = Field(default_factory=list)

    @field_validator("upload_id", mode="before")
    @classmethod
    def _none_is_blank(cls, value: Any) -> Any:
        return "" if value is None else value

    def etag_list(self) -> list[str]:
        """The part ETags in order, quotes stripped, lowercase (strings or S3-style objects)."""
        result: list[str] = []
        for item in self.etags:
            raw = item.get("etag", item.get("ETag", "")) if isinstance(item, dict) else item
            result.append(str(raw).strip().strip('"').lower())
        return result


class MarkImmutable(_Strict):
    """``POST /api/v2/file/mark_immutable/`` body."""

    file_uuid: uuid_module.UUID
    version_id: int


# ---- responses ------------------------------------------------------------------------------


def user_read(user: User) -> dict[str, Any]:
    """``UserRead``."""
    return {
        "sub": user.sub,
        "firstname": user.firstname,
        "lastname": user.lastname,
        "email": user.email,
        "role": user.role,
        "is_enabled": user.is_enabled,
        "created": iso(user.created),
        "modified": iso(user.modified),
    }


def scope_read(scope: Scope) -> dict[str, Any]:
    """``ScopeRead`` (``uuid`` and ``uid``, ``is_archived`` and ``archived`` both present)."""
    return {
        "uuid": scope.uuid,
        "uid": scope.uuid,
        "name": scope.name,
        "description": scope.description,
        "is_restricted": scope.is_restricted,
        "is_archived": scope.is_archived,
        "archived": scope.is_archived,
        "bucket_uuid": scope.bucket_uuid,
        "created": iso(scope.created),
        "modified": iso(scope.modified),
    }


def file_read(file: FileVersion, link: tuple[str, float] | None) -> dict[str, Any]:
    """``FileRead``; ``link`` is the presigned download URL and its expiry once secured."""
    return {
        "uuid": file.uuid,
        "version_id": file.version_id,
        "ds_uuid": file.ds_uuid,
        "name": file.name,
        "filename": file.filename,
        "creator": file.creator,
        "collected": iso(file.collected),
        "size": file.size,
        "type": file.type,
        "file_generator": file.file_generator,
        "ranking": file.ranking,
        "immutable": file.immutable,
        "status": file.status,
        "md5_checksum": file.md5_checksum,
        "etag": file.etag,
        "S3_link": link[0] if link else None,
        "S3_validity": link[1] if link else None,
        "created": iso(file.created),
        "modified": iso(file.modified),
    }


def dataset_read(dataset: Dataset, files: list[dict[str, Any]]) -> dict[str, Any]:
    """``DatasetRead`` with the nested scope and every file version."""
    return {
        "uuid": dataset.uuid,
        "alt_uid": dataset.alt_uid,
        "collected": iso(dataset.collected),
        "name": dataset.name,
        "creator": dataset.creator,
        "description": dataset.description,
        "notes": dataset.notes,
        "keywords": list(dataset.keywords or []),
        "ranking": dataset.ranking,
        "attributes": dict(dataset.attributes or {}),
        "created": iso(dataset.created),
        "modified": iso(dataset.modified),
        "scope": scope_read(dataset.scope),
        "files": files,
    }
