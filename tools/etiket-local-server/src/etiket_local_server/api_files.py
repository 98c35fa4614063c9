"""File-version records and the upload protocol (``/api/v2/file/...``)."""

from __future__ import annotations

import hashlib
import logging
import math
import re
import uuid as uuid_module
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from etiket_local_server.catalog import (
    Dataset,
    FileVersion,
    Upload,
    UploadPart,
    User,
    utcnow,
)
from etiket_local_server.context import (
    ServerContext,
    authenticated,
    base_url,
    current_user,
    get_context,
    parse_body,
    query_int,
    query_str,
    query_uuid,
    require_member,
)
from etiket_local_server.errors import ApiError
from etiket_local_server.objects import WholeFileHasher
from etiket_local_server.schemas import (
    FileCreate,
    FileRankingUpdate,
    FileValidate,
    MarkImmutable,
    to_utc_naive,
)

__all__ = [
    "DEFAULT_PART_SIZE",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MIN_PART_SIZE",
    "choose_part_size",
    "routes",
]

_log = logging.getLogger(__name__)

MIB = 1024 * 1024
DEFAULT_PART_SIZE = 8 * MIB
"""Part size of a multipart upload unless the file needs larger parts."""
MIN_PART_SIZE = 5 * MIB
"""Smallest part size a client may ask for (as on S3)."""
MAX_PART_SIZE = 5 * 1024 * MIB
"""Largest part size (as on S3)."""
MAX_PARTS = 9000
"""A file never needs more parts than this; the part size grows instead."""

_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")


def choose_part_size(size: int, hint: int | None = None) -> int:
    """The part size for a file of ``size`` bytes: 8 MiB (or the clamped hint), grown in whole
    MiB so that the file never needs more than :data:`MAX_PARTS` parts."""
    part_size = DEFAULT_PART_SIZE if hint is None else min(max(hint, MIN_PART_SIZE), MAX_PART_SIZE)
    needed = math.ceil(size / MAX_PARTS)
    if part_size < needed:
        part_size = math.ceil(needed / MIB) * MIB
    return part_size


def _part_count(size: int, part_size: int) -> int:
    return max(1, math.ceil(size / part_size))


def _load_version(session: Session, user: User, file_uuid: str, version_id: int) -> FileVersion:
    version = session.scalar(
        select(FileVersion).where(
            FileVersion.uuid == file_uuid, FileVersion.version_id == version_id
        )
    )
    if version is None:
        raise ApiError(
            404, "file_not_found", f"file {file_uuid} version {version_id} does not exist"
        )
    dataset_scope = session.info["catalog"].dataset_scope(session, version.ds_uuid)
    assert dataset_scope is not None
    require_member(session, user, dataset_scope)
    return version


def _file_differences(version: FileVersion, body: FileCreate) -> list[str]:
    wanted: dict[str, Any] = {
        "ds_uuid": str(body.ds_uuid),
        "name": body.name,
        "filename": body.filename,
        "collected": to_utc_naive(body.collected),
        "type": body.type,
        "file_generator": body.file_generator or "",
    }
    stored: dict[str, Any] = {
        "ds_uuid": version.ds_uuid,
        "name": version.name,
        "filename": version.filename,
        "collected": version.collected,
        "type": version.type,
        "file_generator": version.file_generator or "",
    }
    differences = [key for key in wanted if wanted[key] != stored[key]]
    if version.immutable and body.immutable and version.size != body.size:
        differences.append("size")
    return differences


async def create_file(request: Request) -> Response:
    """Create a file version (status ``announced``); identical repeats succeed (200)."""
    body = await parse_body(request, FileCreate)
    file_uuid, ds_uuid = str(body.uuid), str(body.ds_uuid)
    ctx = get_context(request)
    with ctx.catalog.session() as session:
        user = current_user(request)
        dataset = session.get(Dataset, ds_uuid)
        if dataset is None:
            raise ApiError(404, "dataset_not_found", f"dataset {ds_uuid} does not exist")
        require_member(session, user, dataset.scope_uuid)
        existing = session.scalar(
            select(FileVersion).where(
                FileVersion.uuid == file_uuid, FileVersion.version_id == body.version_id
            )
        )
        if existing is not None:
            differences = _file_differences(existing, body)
            if differences:
                raise ApiError(
                    409,
                    "file_already_exists",
                    f"file {file_uuid} version {body.version_id} already exists with a "
                    f"different {', '.join(differences)}",
                )
            return JSONResponse(ctx.file_payload(request, existing), status_code=200)
        other_dataset = session.scalar(
            select(FileVersion.ds_uuid).where(
                FileVersion.uuid == file_uuid, FileVersion.ds_uuid != ds_uuid
            )
        )
        if other_dataset is not None:
            raise ApiError(
                409,
                "file_already_exists",
                f"file uuid {file_uuid} belongs to another dataset",
            )
        now = utcnow()
        version = FileVersion(
            uuid=file_uuid,
            version_id=body.version_id,
            ds_uuid=ds_uuid,
            name=body.name,
            filename=body.filename,
            creator=user.sub,  # who is authenticated, whatever the body claims
            collected=to_utc_naive(body.collected),
            size=body.size,
            type=body.type,
            file_generator=body.file_generator,
            ranking=body.ranking,
            immutable=body.immutable,
            status="announced",
            created=now,
            modified=now,
        )
        session.add(version)
        session.flush()
        return JSONResponse(ctx.file_payload(request, version), status_code=201)


async def read_file(request: Request) -> Response:
    """``GET /file/read/?uuid&version_id?``: the version, or every version, as a list."""
    file_uuid = query_uuid(request, "uuid")
    version_id = query_int(request, "version_id", required=False)
    ctx = get_context(request)
    with ctx.catalog.session() as session:
        user = current_user(request)
        query = select(FileVersion).where(FileVersion.uuid == file_uuid)
        if version_id is not None:
            query = query.where(FileVersion.version_id == version_id)
        versions = list(session.scalars(query.order_by(FileVersion.version_id)))
        if not versions:
            which = f" version {version_id}" if version_id is not None else ""
            raise ApiError(404, "file_not_found", f"file {file_uuid}{which} does not exist")
        scope_uuid = session.info["catalog"].dataset_scope(session, versions[0].ds_uuid)
        assert scope_uuid is not None
        require_member(session, user, scope_uuid)
        return JSONResponse([ctx.file_payload(request, version) for version in versions])


async def read_file_by_name(request: Request) -> Response:
    """``GET /file/by_name/?dataset_uuid&name``: every version of that logical file (maybe [])."""
    dataset_uuid = query_uuid(request, "dataset_uuid")
    name = query_str(request, "name")
    ctx = get_context(request)
    with ctx.catalog.session() as session:
        user = current_user(request)
        dataset = session.get(Dataset, dataset_uuid)
        if dataset is None:
            raise ApiError(404, "dataset_not_found", f"dataset {dataset_uuid} does not exist")
        require_member(session, user, dataset.scope_uuid)
        versions = session.scalars(
            select(FileVersion)
            .where(FileVersion.ds_uuid == dataset_uuid, FileVersion.name == name)
            .order_by(FileVersion.uuid, FileVersion.version_id)
        )
        return JSONResponse([ctx.file_payload(request, version) for version in versions])


async def update_file(request: Request) -> Response:
    """``PATCH /file/?uuid&version_id`` with ``{"ranking": int}``."""
    file_uuid = query_uuid(request, "uuid")
    version_id = query_int(request, "version_id")
    assert file_uuid is not None
    assert version_id is not None
    body = await parse_body(request, FileRankingUpdate)
    ctx = get_context(request)
    with ctx.catalog.session() as session:
        user = current_user(request)
        version = _load_version(session, user, file_uuid, version_id)
        version.ranking = body.ranking
        version.modified = utcnow()
        return JSONResponse(ctx.file_payload(request, version))


async def mark_immutable(request: Request) -> Response:
    """``POST /file/mark_immutable/``: freeze a version (idempotent)."""
    body = await parse_body(request, MarkImmutable)
    ctx = get_context(request)
    with ctx.catalog.session() as session:
        user = current_user(request)
        version = _load_version(session, user, str(body.file_uuid), body.version_id)
        if not version.immutable:
            version.immutable = True
            version.modified = utcnow()
        return JSONResponse(ctx.file_payload(request, version))


# ---- uploads ---------------------------------------------------------------------------------


def _refuse_if_secured(version: FileVersion) -> None:
    if version.status == "secured" and version.immutable:
        raise ApiError(
            409,
            "file_already_secured",
            f"file {version.uuid} version {version.version_id} is secured and immutable; "
            "upload a new version instead",
        )


def _part_url(
    ctx: ServerContext, request: Request, upload: Upload, part_number: int
) -> tuple[str, float]:
    path = f"/_store/put/{upload.file_uuid}/{upload.version_id}"
    signed, expires = ctx.signer.sign(
        "PUT", path, {"upload_id": upload.upload_id, "part": str(part_number)}
    )
    return f"{base_url(request)}{signed}", expires


def _mark_pending(version: FileVersion) -> None:
    if version.status == "announced":
        version.status = "pending"
        version.modified = utcnow()


async def presigned_single_part(request: Request) -> Response:
    """``GET /file/presigned_link/single_part/?file_uuid&version_id`` → ``{uuid, version_id, url}``."""
    file_uuid = query_uuid(request, "file_uuid")
    version_id = query_int(request, "version_id")
    assert file_uuid is not None
    assert version_id is not None
    ctx = get_context(request)
    with ctx.catalog.session() as session:
        user = current_user(request)
        version = _load_version(session, user, file_uuid, version_id)
        _refuse_if_secured(version)
        upload = session.scalar(
            select(Upload).where(
                Upload.file_uuid == file_uuid,
                Upload.version_id == version_id,
                Upload.kind == "single",
                Upload.state == "active",
            )
        )
        if upload is None:
            upload = Upload(
                upload_id=uuid_module.uuid4().hex,
                file_uuid=file_uuid,
                version_id=version_id,
                kind="single",
                part_size=0,
                part_count=1,
            )
            session.add(upload)
        _mark_pending(version)
        url, expires = _part_url(ctx, request, upload, 1)
        return JSONResponse(
            {
                "uuid": file_uuid,
                "version_id": version_id,
                "url": url,
                "upload_id": upload.upload_id,
                "expires": expires,
            }
        )


async def presigned_multipart(request: Request) -> Response:
    """``GET /file/presigned_link/?file_uuid&version_id[&upload_id][&part_size][&size]``.

    Starts a multipart upload (or, with ``upload_id``, hands out fresh URLs for that one) and
    answers ``{uuid, version_id, upload_id, part_size, presigned_urls}``.
    """
    file_uuid = query_uuid(request, "file_uuid")
    version_id = query_int(request, "version_id")
    assert file_uuid is not None
    assert version_id is not None
    resume_id = query_str(request, "upload_id", required=False)
    hint = query_int(request, "part_size", required=False, minimum=1)
    size_param = query_int(request, "size", required=False, minimum=0)
    ctx = get_context(request)
    with ctx.catalog.session() as session:
        user = current_user(request)
        version = _load_version(session, user, file_uuid, version_id)
        _refuse_if_secured(version)
        size = version.size if size_param is None else size_param
        if resume_id is not None:
            upload = _active_upload(session, resume_id, file_uuid, version_id)
            if upload.kind != "multipart":
                raise ApiError(409, "upload_kind_mismatch", f"upload {resume_id} is single-part")
            if size_param is not None:
                upload.part_count = max(
                    upload.part_count, _part_count(size_param, upload.part_size)
                )
        else:
            part_size = choose_part_size(size, hint)
            upload = Upload(
                upload_id=uuid_module.uuid4().hex,
                file_uuid=file_uuid,
                version_id=version_id,
                kind="multipart",
                part_size=part_size,
                part_count=_part_count(size, part_size),
            )
            session.add(upload)
        _mark_pending(version)
        urls = [_part_url(ctx, request, upload, n) for n in range(1, upload.part_count + 1)]
        return JSONResponse(
            {
                "uuid": file_uuid,
                "version_id": version_id,
                "upload_id": upload.upload_id,
                "part_size": upload.part_size,
                "presigned_urls": [url for url, _ in urls],
                "expires": urls[0][1],
            }
        )


def _active_upload(session: Session, upload_id: str, file_uuid: str, version_id: int) -> Upload:
    upload = session.get(Upload, upload_id)
    if upload is None or upload.file_uuid != file_uuid or upload.version_id != version_id:
        raise ApiError(
            404,
            "upload_not_found",
            f"upload {upload_id} does not exist for file {file_uuid} version {version_id}",
        )
    if upload.state != "active":
        raise ApiError(409, "upload_not_active", f"upload {upload_id} is {upload.state}")
    return upload


async def upload_parts(request: Request) -> Response:
    """``GET /file/upload_parts/?file_uuid&version_id&upload_id`` (extension, like S3 ListParts)."""
    file_uuid = query_uuid(request, "file_uuid")
    version_id = query_int(request, "version_id")
    upload_id = query_str(request, "upload_id")
    assert file_uuid is not None
    assert version_id is not None
    assert upload_id is not None
    ctx = get_context(request)
    with ctx.catalog.session() as session:
        user = current_user(request)
        _load_version(session, user, file_uuid, version_id)
        upload = session.get(Upload, upload_id)
        if upload is None or upload.file_uuid != file_uuid or upload.version_id != version_id:
            raise ApiError(
                404,
                "upload_not_found",
                f"upload {upload_id} does not exist for file {file_uuid} version {version_id}",
            )
        parts = session.scalars(
            select(UploadPart)
            .where(UploadPart.upload_id == upload_id)
            .order_by(UploadPart.part_number)
        )
        return JSONResponse(
            {
                "upload_id": upload_id,
                "state": upload.state,
                "part_size": upload.part_size,
                "part_count": upload.part_count,
                "parts": [
                    {"part_number": part.part_number, "etag": part.etag, "size": part.size}
                    for part in parts
                ],
            }
        )


def _check_md5(body: FileValidate) -> str:
    md5 = (body.md5_checksum or "").strip().lower()
    if not _MD5_HEX.match(md5):
        error = ApiError(422, "validation_error", "md5_checksum: must be 32 hexadecimal characters")
        error.extra = {"fields": ["md5_checksum"]}
        raise error
    return md5


def _secure(
    version: FileVersion,
    upload: Upload,
    *,
    md5: str,
    etag: str,
    size: int,
    byte_md5: str,
    kind: str,
) -> None:
    now = utcnow()
    version.status = "secured"
    version.md5_checksum = md5
    version.checksum_kind = kind
    version.object_md5 = byte_md5
    version.etag = etag
    version.stored_size = size
    version.size = size
    version.secured_at = now
    version.modified = now
    upload.state = "completed"
    upload.finished = now


def _already_secured(version: FileVersion, md5: str) -> bool:
    """True for an idempotent repeat; 409 when an immutable version gets other bytes."""
    if version.status != "secured":
        return False
    if md5 in (version.md5_checksum, version.object_md5):
        return True
    _refuse_if_secured(version)
    return False


def _refuse_busy(ctx: ServerContext, upload_id: str) -> None:
    if ctx.in_flight.get(upload_id):
        raise ApiError(409, "upload_busy", f"parts of upload {upload_id} are still being received")


async def validate_single_part(request: Request) -> Response:
    """``POST /file/validate_upload/single_part/``: check the MD5 of the PUT bytes, secure."""
    body = await parse_body(request, FileValidate)
    md5 = _check_md5(body)
    file_uuid = str(body.uuid)
    ctx = get_context(request)
    async with ctx.version_lock(file_uuid, body.version_id):
        with ctx.catalog.session() as session:
            user = current_user(request)
            version = _load_version(session, user, file_uuid, body.version_id)
            if _already_secured(version, md5):
                return JSONResponse(ctx.file_payload(request, version))
            if body.upload_id:
                upload = _active_upload(session, body.upload_id, file_uuid, body.version_id)
            else:
                found = session.scalar(
                    select(Upload)
                    .where(
                        Upload.file_uuid == file_uuid,
                        Upload.version_id == body.version_id,
                        Upload.kind == "single",
                        Upload.state == "active",
                    )
                    .order_by(Upload.created.desc())
                )
                if found is None:
                    raise ApiError(
                        404,
                        "upload_not_found",
                        f"no single-part upload for file {file_uuid} version "
                        f"{body.version_id}: request a presigned link and PUT the bytes first",
                    )
                upload = found
            _refuse_busy(ctx, upload.upload_id)
            part = session.get(UploadPart, (upload.upload_id, 1))
            if part is None:
                raise ApiError(
                    409,
                    "upload_incomplete",
                    f"no bytes were uploaded for file {file_uuid} version {body.version_id}",
                )
            by_content = md5 != part.etag and version.type == NETCDF_TYPE
            if not by_content:
                _check_content(version, md5=md5, actual_md5=part.etag, size=part.size)
            else:
                _check_size(version, part.size)
            upload_id = upload.upload_id
            byte_md5 = part.etag
            ctx.completing.add(upload_id)
        try:
            if by_content:
                await _check_netcdf_content(ctx, version, upload_id, md5, byte_md5)
            await ctx.run(ctx.store.promote, upload_id, file_uuid, body.version_id, part.size)
        finally:
            ctx.completing.discard(upload_id)
        with ctx.catalog.session() as session:
            version = _reload(session, file_uuid, body.version_id)
            completed = session.get(Upload, upload_id)
            assert completed is not None
            _secure(
                version,
                completed,
                md5=md5,
                etag=byte_md5,
                size=part.size,
                byte_md5=byte_md5,
                kind=CHECKSUM_NETCDF if by_content else CHECKSUM_BYTES,
            )
            _delete_parts(session, upload_id)
            return JSONResponse(ctx.file_payload(request, version))


NETCDF_TYPE = "HDF5_NETCDF"
"""File type whose uploads may be validated by content (``md5_netcdf4``, PROTOCOL §0.7)."""
CHECKSUM_BYTES = "md5"
"""``checksum_kind`` of a version validated by the MD5 of its bytes."""
CHECKSUM_NETCDF = "md5_netcdf4"
"""``checksum_kind`` of a version validated by its netCDF content hash."""


def content_checksum(path: Path) -> str | None:
    """``md5_netcdf4`` of the file at ``path``, or ``None`` when it is not readable as netCDF4
    (or the netCDF libraries are missing); the caller then uses the byte MD5."""
    try:
        from etiket_sync_agent.netcdf import NetCDFChecksumError, md5_netcdf4
    except ImportError:  # pragma: no cover - the server depends on etiket-sync-agent[netcdf]
        _log.warning("netCDF content checksums unavailable: install etiket-sync-agent[netcdf]")
        return None
    try:
        return md5_netcdf4(path)
    except (NetCDFChecksumError, RuntimeError):
        return None


async def _check_netcdf_content(
    ctx: ServerContext, version: FileVersion, upload_id: str, md5: str, byte_md5: str
) -> None:
    """Accept ``md5`` when it is the content hash of the uploaded netCDF bytes (else 422)."""
    path = ctx.store.assembly_path(upload_id)
    content = await ctx.run(content_checksum, path)
    if content == md5:
        return
    hint = (
        f"nor their md5_netcdf4 {content}"
        if content is not None
        else "and they are not readable as netCDF4, so only the byte MD5 is accepted"
    )
    raise ApiError(
        422,
        "checksum_mismatch",
        f"file {version.uuid} version {version.version_id}: declared md5_checksum {md5} is "
        f"neither the MD5 {byte_md5} of the stored bytes {hint}",
    )


def _check_size(version: FileVersion, size: int) -> None:
    if version.immutable and size != version.size:
        raise ApiError(
            422,
            "size_mismatch",
            f"file {version.uuid} version {version.version_id} was declared with {version.size} "
            f"bytes but {size} bytes were uploaded",
        )


def _check_content(version: FileVersion, *, md5: str, actual_md5: str, size: int) -> None:
    if actual_md5 != md5:
        raise ApiError(
            422,
            "checksum_mismatch",
            f"file {version.uuid} version {version.version_id}: declared md5_checksum {md5} "
            f"but the stored bytes have MD5 {actual_md5}",
        )
    if version.immutable and size != version.size:
        raise ApiError(
            422,
            "size_mismatch",
            f"file {version.uuid} version {version.version_id} was declared with {version.size} "
            f"bytes but {size} bytes were uploaded",
        )


def _reload(session: Session, file_uuid: str, version_id: int) -> FileVersion:
    version = session.scalar(
        select(FileVersion).where(
            FileVersion.uuid == file_uuid, FileVersion.version_id == version_id
        )
    )
    assert version is not None, f"file {file_uuid} version {version_id} vanished"
    return version


def _delete_parts(session: Session, upload_id: str) -> None:
    session.execute(delete(UploadPart).where(UploadPart.upload_id == upload_id))


def hasher_for(ctx: ServerContext, upload: Upload) -> WholeFileHasher:
    """The upload's whole-file hasher, created on first use."""
    hasher = ctx.hashers.get(upload.upload_id)
    if hasher is None:
        hasher = WholeFileHasher(ctx.store.assembly_path(upload.upload_id), upload.part_size)
        ctx.hashers[upload.upload_id] = hasher
    return hasher


async def validate_multipart(request: Request) -> Response:
    """``POST /file/validate_upload/``: complete a multipart upload (parts 1..N, ETags, MD5)."""
    body = await parse_body(request, FileValidate)
    md5 = _check_md5(body)
    etags = body.etag_list()
    file_uuid = str(body.uuid)
    ctx = get_context(request)
    async with ctx.version_lock(file_uuid, body.version_id):
        with ctx.catalog.session() as session:
            user = current_user(request)
            version = _load_version(session, user, file_uuid, body.version_id)
            if _already_secured(version, md5):
                return JSONResponse(ctx.file_payload(request, version))
            if not body.upload_id:
                error = ApiError(422, "validation_error", "upload_id: required for multipart")
                error.extra = {"fields": ["upload_id"]}
                raise error
            upload = _active_upload(session, body.upload_id, file_uuid, body.version_id)
            if upload.kind != "multipart":
                raise ApiError(
                    409,
                    "upload_kind_mismatch",
                    f"upload {upload.upload_id} is single-part: use validate_upload/single_part/",
                )
            if not etags:
                error = ApiError(422, "validation_error", "etags: at least one part is required")
                error.extra = {"fields": ["etags"]}
                raise error
            _refuse_busy(ctx, upload.upload_id)
            parts = {
                part.part_number: part
                for part in session.scalars(
                    select(UploadPart).where(UploadPart.upload_id == upload.upload_id)
                )
            }
            count = len(etags)
            missing = [n for n in range(1, count + 1) if n not in parts]
            if missing:
                raise ApiError(
                    409,
                    "upload_incomplete",
                    f"upload {upload.upload_id} is missing parts {_ranges(missing)}",
                )
            for number, etag in enumerate(etags, start=1):
                if parts[number].etag != etag:
                    raise ApiError(
                        422,
                        "etag_mismatch",
                        f"part {number}: the client sent ETag {etag} but the stored part has "
                        f"{parts[number].etag}",
                    )
            for number in range(1, count):
                if parts[number].size != upload.part_size:
                    raise ApiError(
                        422,
                        "part_size_mismatch",
                        f"part {number} has {parts[number].size} bytes; every part but the last "
                        f"must have exactly {upload.part_size}",
                    )
            total = (count - 1) * upload.part_size + parts[count].size
            if version.immutable and total != version.size:
                raise ApiError(
                    422,
                    "size_mismatch",
                    f"file {file_uuid} version {body.version_id} was declared with "
                    f"{version.size} bytes but the parts hold {total}",
                )
            hasher = hasher_for(ctx, upload)
            for number in range(1, count + 1):
                hasher.part_finished(number, parts[number].size)
            upload_id = upload.upload_id
            version_type = version.type
            ctx.completing.add(upload_id)
        try:
            actual = await ctx.run(hasher.digest, count)
            by_content = actual != md5 and version_type == NETCDF_TYPE
            if by_content:
                await _check_netcdf_content(ctx, version, upload_id, md5, actual)
            elif actual != md5:
                raise ApiError(
                    422,
                    "checksum_mismatch",
                    f"file {file_uuid} version {body.version_id}: declared md5_checksum {md5} "
                    f"but the uploaded parts have MD5 {actual}",
                )
            await ctx.run(ctx.store.promote, upload_id, file_uuid, body.version_id, total)
        finally:
            ctx.completing.discard(upload_id)
        ctx.hashers.pop(upload_id, None)
        multipart_etag = (
            hashlib.md5(b"".join(bytes.fromhex(etag) for etag in etags)).hexdigest() + f"-{count}"
        )
        with ctx.catalog.session() as session:
            version = _reload(session, file_uuid, body.version_id)
            completed = session.get(Upload, upload_id)
            assert completed is not None
            _secure(
                version,
                completed,
                md5=md5,
                etag=multipart_etag,
                size=total,
                byte_md5=actual,
                kind=CHECKSUM_NETCDF if by_content else CHECKSUM_BYTES,
            )
            _delete_parts(session, upload_id)
            return JSONResponse(ctx.file_payload(request, version))


def _ranges(numbers: list[int]) -> str:
    spans: list[str] = []
    start = prev = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == prev + 1:
            prev = number
            continue
        spans.append(str(start) if start == prev else f"{start}-{prev}")
        if number is not None:
            start = prev = number
    return ", ".join(spans)


async def abort_upload(request: Request) -> Response:
    """``POST /file/abort_upload/``: abort ``upload_id`` (or every active upload of the version)."""
    body = await parse_body(request, FileValidate)
    file_uuid = str(body.uuid)
    ctx = get_context(request)
    async with ctx.version_lock(file_uuid, body.version_id):
        with ctx.catalog.session() as session:
            user = current_user(request)
            version = _load_version(session, user, file_uuid, body.version_id)
            if body.upload_id:
                uploads = [_active_upload(session, body.upload_id, file_uuid, body.version_id)]
            else:
                uploads = list(
                    session.scalars(
                        select(Upload).where(
                            Upload.file_uuid == file_uuid,
                            Upload.version_id == body.version_id,
                            Upload.state == "active",
                        )
                    )
                )
            now = utcnow()
            aborted = []
            for upload in uploads:
                upload.state = "aborted"
                upload.finished = now
                _delete_parts(session, upload.upload_id)
                ctx.hashers.pop(upload.upload_id, None)
                aborted.append(upload.upload_id)
            if version.status == "pending":
                still_active = session.scalar(
                    select(Upload.upload_id).where(
                        Upload.file_uuid == file_uuid,
                        Upload.version_id == body.version_id,
                        Upload.state == "active",
                    )
                )
                if still_active is None:
                    version.status = "announced"
                    version.modified = now
        for upload_id in aborted:
            await ctx.run(ctx.store.remove_upload, upload_id)
        return JSONResponse({"aborted": aborted})


def routes() -> list[Route]:
    """The routes of this module."""
    return [
        Route("/api/v2/file/", authenticated(create_file), methods=["POST"]),
        Route("/api/v2/file/", authenticated(update_file), methods=["PATCH"]),
        Route("/api/v2/file/read/", authenticated(read_file), methods=["GET"]),
        Route("/api/v2/file/by_name/", authenticated(read_file_by_name), methods=["GET"]),
        Route("/api/v2/file/mark_immutable/", authenticated(mark_immutable), methods=["POST"]),
        Route(
            "/api/v2/file/presigned_link/single_part/",
            authenticated(presigned_single_part),
            methods=["GET"],
        ),
        Route("/api/v2/file/presigned_link/", authenticated(presigned_multipart), methods=["GET"]),
        Route("/api/v2/file/upload_parts/", authenticated(upload_parts), methods=["GET"]),
        Route(
            "/api/v2/file/validate_upload/single_part/",
            authenticated(validate_single_part),
            methods=["POST"],
        ),
        Route("/api/v2/file/validate_upload/", authenticated(validate_multipart), methods=["POST"]),
        Route("/api/v2/file/abort_upload/", authenticated(abort_upload), methods=["POST"]),
    ]
