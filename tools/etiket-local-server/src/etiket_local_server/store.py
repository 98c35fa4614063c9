"""The object-store side: presigned PUT (upload) and GET (download) of file bytes.

No bearer token here: the HMAC-signed, expiring URL is the credential, as with S3. A PUT answers
``ETag: "<hex md5>"`` of the bytes it received (S3 style); a re-PUT of a part replaces it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import posixpath
import uuid as uuid_module
from concurrent.futures import Future
from pathlib import Path

from sqlalchemy import select
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from etiket_local_server.api_files import hasher_for
from etiket_local_server.catalog import FileVersion, Upload, UploadPart, utcnow
from etiket_local_server.context import ServerContext, get_context
from etiket_local_server.errors import ApiError, error_response
from etiket_local_server.objects import PartSink, PartTooLarge
from etiket_local_server.signing import SignatureError

__all__ = ["MAX_PART_NUMBER", "routes"]

MAX_PART_NUMBER = 10000
"""Highest part number accepted (as on S3)."""

_BATCH_BYTES = 4 * 1024 * 1024
_DOWNLOAD_CHUNK = 1024 * 1024

_log = logging.getLogger(__name__)


def _ids(request: Request) -> tuple[str, int]:
    try:
        file_uuid = str(uuid_module.UUID(request.path_params["file_uuid"]))
        version_id = int(request.path_params["version_id"])
    except ValueError as exc:
        raise ApiError(400, "bad_request", "malformed store path") from exc
    return file_uuid, version_id


def _verify(ctx: ServerContext, request: Request, method: str) -> dict[str, str] | Response:
    params = dict(request.query_params)
    try:
        ctx.signer.verify(method, request.url.path, params)
    except SignatureError as exc:
        return error_response(403, exc.code, exc.detail)
    return params


def _log_background_failure(future: Future[None] | asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        _log.warning("background hashing failed: %s", future.exception())


async def _receive_into(ctx: ServerContext, request: Request, sink: PartSink) -> str:
    """Stream the body into ``sink`` in large batches, writing in a worker thread."""
    loop = asyncio.get_running_loop()
    batch: list[bytes] = []
    batch_bytes = 0
    pending: asyncio.Future[None] | None = None
    try:
        async for chunk in request.stream():
            if not chunk:
                continue
            batch.append(chunk)
            batch_bytes += len(chunk)
            if batch_bytes >= _BATCH_BYTES:
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(ctx.executor, sink.write, batch)
                batch, batch_bytes = [], 0
        if pending is not None:
            await pending
            pending = None
        if batch:
            await loop.run_in_executor(ctx.executor, sink.write, batch)
        etag: str = await loop.run_in_executor(ctx.executor, sink.finish)
        return etag
    except BaseException:
        if pending is not None:
            try:
                await asyncio.shield(pending)
            except Exception:
                pass
        await loop.run_in_executor(ctx.executor, sink.discard)
        raise


async def put_object(request: Request) -> Response:
    """``PUT /_store/put/{file_uuid}/{version_id}?upload_id&part&expires&sig``."""
    ctx = get_context(request)
    params = _verify(ctx, request, "PUT")
    if isinstance(params, Response):
        return params
    file_uuid, version_id = _ids(request)
    upload_id = params.get("upload_id", "")
    try:
        part_number = int(params.get("part", "1"))
    except ValueError as exc:
        raise ApiError(400, "bad_request", "part must be an integer") from exc
    with ctx.catalog.session() as session:
        upload = session.get(Upload, upload_id)
        if upload is None or upload.file_uuid != file_uuid or upload.version_id != version_id:
            raise ApiError(404, "upload_not_found", f"upload {upload_id} does not exist")
        if upload.state != "active":
            raise ApiError(409, "upload_not_active", f"upload {upload_id} is {upload.state}")
        if upload_id in ctx.completing:
            raise ApiError(409, "upload_completing", f"upload {upload_id} is being completed")
        version = session.scalar(
            select(FileVersion).where(
                FileVersion.uuid == file_uuid, FileVersion.version_id == version_id
            )
        )
        if version is None:
            raise ApiError(404, "file_not_found", f"file {file_uuid} version {version_id}")
        if version.status == "secured" and version.immutable:
            raise ApiError(
                409,
                "file_already_secured",
                f"file {file_uuid} version {version_id} is secured and immutable",
            )
        single = upload.kind == "single"
        if not 1 <= part_number <= (1 if single else MAX_PART_NUMBER):
            raise ApiError(400, "bad_request", f"part number {part_number} is out of range")
        if not single:
            # the part is unfinished until its new bytes are complete (single PUTs are renamed
            # into place atomically, so their previous bytes stay valid meanwhile)
            previous = session.get(UploadPart, (upload_id, part_number))
            if previous is not None:
                session.delete(previous)
        part_size = upload.part_size
        was_announced = version.status == "announced"
        hasher = None if single else hasher_for(ctx, upload)
    if hasher is not None:
        hasher.part_started(part_number)
    ctx.in_flight[upload_id] = ctx.in_flight.get(upload_id, 0) + 1
    try:
        sink = ctx.store.open_part(
            upload_id, single=single, part_number=part_number, part_size=part_size
        )
        try:
            etag = await _receive_into(ctx, request, sink)
        except PartTooLarge as exc:
            return error_response(400, "part_too_large", str(exc))
        except ClientDisconnect:
            return Response(status_code=499)
    finally:
        remaining = ctx.in_flight.get(upload_id, 1) - 1
        if remaining:
            ctx.in_flight[upload_id] = remaining
        else:
            ctx.in_flight.pop(upload_id, None)
    size = sink.size
    with ctx.catalog.session() as session:
        upload = session.get(Upload, upload_id)
        if upload is None or upload.state != "active":
            state = upload.state if upload is not None else "gone"
            raise ApiError(409, "upload_not_active", f"upload {upload_id} was {state} meanwhile")
        previous = session.get(UploadPart, (upload_id, part_number))
        if previous is None:
            session.add(
                UploadPart(upload_id=upload_id, part_number=part_number, etag=etag, size=size)
            )
        else:
            previous.etag, previous.size, previous.uploaded = etag, size, utcnow()
        if was_announced:
            version = session.scalar(
                select(FileVersion).where(
                    FileVersion.uuid == file_uuid, FileVersion.version_id == version_id
                )
            )
            if version is not None and version.status == "announced":
                version.status = "pending"
    if hasher is not None:
        hasher.part_finished(part_number, size)
        future = asyncio.get_running_loop().run_in_executor(
            ctx.executor, hasher.advance_in_background
        )
        future.add_done_callback(_log_background_failure)
    return Response(status_code=200, headers={"ETag": f'"{etag}"'})


async def get_object(request: Request) -> Response:
    """``GET /_store/get/{file_uuid}/{version_id}?filename&expires&sig``: the stored bytes."""
    ctx = get_context(request)
    params = _verify(ctx, request, "GET")
    if isinstance(params, Response):
        return params
    file_uuid, version_id = _ids(request)
    path = ctx.store.object_path(file_uuid, version_id)
    if not path.is_file():
        raise ApiError(
            404, "object_not_found", f"no stored bytes for file {file_uuid} version {version_id}"
        )
    filename = posixpath.basename(params.get("filename", "").replace("\\", "/")) or None
    md5 = await _object_md5(ctx, file_uuid, version_id, path)
    response = FileResponse(
        path,
        media_type="application/octet-stream",
        filename=filename,
        headers={"ETag": f'"{md5}"'},  # the platform's client checks it against the bytes (§0.8)
    )
    response.chunk_size = _DOWNLOAD_CHUNK
    return response


def _md5_of_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(_DOWNLOAD_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


async def _object_md5(ctx: ServerContext, file_uuid: str, version_id: int, path: Path) -> str:
    """Hex MD5 of a stored object: from the catalog, computed (and kept) for older records."""
    with ctx.catalog.session() as session:
        version = session.scalar(
            select(FileVersion).where(
                FileVersion.uuid == file_uuid, FileVersion.version_id == version_id
            )
        )
        known = version.object_md5 if version is not None else None
        if known is None and version is not None and version.checksum_kind is None:
            known = version.md5_checksum  # validated before content checksums existed: bytes
    if known:
        return known
    md5: str = await ctx.run(_md5_of_file, path)
    with ctx.catalog.session() as session:
        version = session.scalar(
            select(FileVersion).where(
                FileVersion.uuid == file_uuid, FileVersion.version_id == version_id
            )
        )
        if version is not None:
            version.object_md5 = md5
    return md5


def routes() -> list[Route]:
    """The routes of this module."""
    return [
        Route("/_store/put/{file_uuid}/{version_id}", put_object, methods=["PUT"]),
        Route("/_store/get/{file_uuid}/{version_id}", get_object, methods=["GET"]),
    ]
