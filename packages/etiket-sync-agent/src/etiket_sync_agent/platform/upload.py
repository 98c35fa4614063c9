"""Uploading file bytes: one PUT for small files, concurrent resumable multipart for large ones.

How a multipart upload works:

- A producer reads the file sequentially, once, in a worker thread: each part is hashed (its MD5
  is the ETag the store must answer) and fed to the whole-file MD5 in part order, then handed to
  ``part_concurrency`` senders through a small bounded queue, so memory stays at a few parts.
- Each PUT's ETag must equal the part's MD5; the whole-file MD5 goes to ``validate_upload`` and
  the server checks it against the stored bytes before the version becomes *secured*.
- The upload id, part size and every finished part go to an :class:`UploadStateStore`. On a
  restart the uploader asks the server which parts it holds (``upload_parts`` extension; when a
  server lacks it, the local record is trusted), reads the file again for the whole-file MD5, and
  sends only the parts that are missing or whose bytes differ.
- The file's size and ``mtime_ns`` are compared before and after (and its MD5 with
  ``expected_md5`` when given): a file that changed meanwhile raises :class:`FileChangedError`
  and is never validated.
- PUTs are retried with backoff and jitter on network errors, 5xx and 429; a 403 from the store
  means the presigned URL expired, and fresh URLs are requested.
- Validation checksum (PROTOCOL §0.7, §7.1): the byte MD5, except for ``HDF5_NETCDF`` files, which
  are validated with their content hash ``md5_netcdf4`` exactly as the platform's client does: a
  checksum the caller computed while writing the file (``content_checksum``), else computed from
  the finished file (needs the ``netcdf`` extra; without it, or for a file that is not readable as
  netCDF4, the byte MD5 is sent and the server accepts that too).
- Announcing (``announce=``): the version record is created only once the bytes to send are known
  (single part: read and hashed; multipart: the file is unchanged since it was planned), so a file
  that changes while it is read leaves no announced, never-uploaded version behind (D10).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import math
import os
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import httpx

from etiket_sync_agent.platform.client import (
    INTERMEDIARY_STATUSES,
    EtiketClient,
    is_retryable,
    looks_like_html,
    retry_after_seconds,
)
from etiket_sync_agent.platform.errors import (
    ChecksumMismatchError,
    ConflictError,
    ConnectionBlockedError,
    EtiketError,
    FileChangedError,
    NetworkError,
    NotFoundError,
    UploadError,
    error_for_status,
    redact_presigned,
    redact_url,
)
from etiket_sync_agent.platform.models import FileCreate, FileStatus, MultipartUpload

__all__ = [
    "DEFAULT_PART_CONCURRENCY",
    "DEFAULT_SINGLE_PART_THRESHOLD",
    "MAX_PARTS",
    "NETCDF_FILE_TYPE",
    "JsonFileStateStore",
    "MemoryStateStore",
    "UploadResult",
    "UploadState",
    "UploadStateStore",
    "Uploader",
    "put_timeout",
    "validation_checksum",
]

_log = logging.getLogger("etiket_sync_agent.platform.upload")

DEFAULT_SINGLE_PART_THRESHOLD = 8 * 1024 * 1024
"""Files up to this size go in one PUT; larger ones go multipart."""
DEFAULT_PART_CONCURRENCY = 4
"""Parts of one file in flight at once."""
MAX_PARTS = 9000
"""A multipart upload never has more parts (the server grows the part size instead)."""

_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")

NETCDF_FILE_TYPE = "HDF5_NETCDF"
"""File type validated with the content checksum ``md5_netcdf4`` (PROTOCOL §0.7)."""

_netcdf_warned = False


def validation_checksum(
    path: Path, byte_md5: str, file_type: str | None, content_checksum: str | None = None
) -> str:
    """What to send as ``md5_checksum`` when validating ``path``, as the platform's client does.

    ``HDF5_NETCDF`` files: ``content_checksum`` when the caller has it (e.g. a writer that hashed
    while writing), else ``md5_netcdf4`` of the file. Without the netCDF libraries (logged once)
    or for a file not readable as netCDF4, and for every other type: ``byte_md5``.
    """
    if file_type != NETCDF_FILE_TYPE:
        return byte_md5
    if content_checksum:
        return content_checksum.lower()
    global _netcdf_warned
    try:
        from etiket_sync_agent.netcdf import NetCDFChecksumError, md5_netcdf4
    except ImportError:
        if not _netcdf_warned:
            _netcdf_warned = True
            _log.warning(
                "netCDF files are validated with their byte MD5: install "
                "etiket-sync-agent[netcdf] for the content checksum the platform's client sends"
            )
        return byte_md5
    try:
        return md5_netcdf4(path)
    except (NetCDFChecksumError, RuntimeError) as exc:
        _log.info("%s: %s; validating with the byte MD5", path.name, exc)
        return byte_md5


@dataclass
class UploadState:
    """A multipart upload in progress: its id, part size and finished parts (number → ETag)."""

    upload_id: str
    part_size: int
    parts: dict[int, str] = field(default_factory=dict)


class UploadStateStore(Protocol):
    """Where resume data of multipart uploads is kept (the tracking store implements it).

    Calls come from the uploader's event loop; an implementation must make ``begin`` and
    ``part_done`` durable before returning if uploads are to survive a crash.
    """

    def load(self, file_uuid: str, version_id: int) -> UploadState | None:
        """The recorded upload of this file version, if any."""
        ...

    def begin(self, file_uuid: str, version_id: int, upload_id: str, part_size: int) -> None:
        """A new multipart upload started (replaces any earlier record of the version)."""
        ...

    def part_done(self, file_uuid: str, version_id: int, part_number: int, etag: str) -> None:
        """The store acknowledged one part with ``etag``."""
        ...

    def finished(self, file_uuid: str, version_id: int) -> None:
        """The server validated the upload; the record may be dropped."""
        ...


class MemoryStateStore:
    """An in-memory :class:`UploadStateStore` (tests, one-shot tools)."""

    def __init__(self) -> None:
        self.states: dict[tuple[str, int], UploadState] = {}

    def load(self, file_uuid: str, version_id: int) -> UploadState | None:
        """See :class:`UploadStateStore`."""
        state = self.states.get((file_uuid, version_id))
        if state is None:
            return None
        return UploadState(state.upload_id, state.part_size, dict(state.parts))

    def begin(self, file_uuid: str, version_id: int, upload_id: str, part_size: int) -> None:
        """See :class:`UploadStateStore`."""
        self.states[(file_uuid, version_id)] = UploadState(upload_id, part_size)

    def part_done(self, file_uuid: str, version_id: int, part_number: int, etag: str) -> None:
        """See :class:`UploadStateStore`."""
        self.states[(file_uuid, version_id)].parts[part_number] = etag

    def finished(self, file_uuid: str, version_id: int) -> None:
        """See :class:`UploadStateStore`."""
        self.states.pop((file_uuid, version_id), None)


class JsonFileStateStore:
    """An :class:`UploadStateStore` in one JSON file, rewritten atomically on every change.

    Survives the process being killed (``os.replace`` of a complete file); not meant for many
    processes writing at once.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ValueError(f"corrupt upload state file {self.path}: {exc}") from None
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)

    @staticmethod
    def _key(file_uuid: str, version_id: int) -> str:
        return f"{file_uuid}/{version_id}"

    def load(self, file_uuid: str, version_id: int) -> UploadState | None:
        """See :class:`UploadStateStore`."""
        with self._lock:
            entry = self._read().get(self._key(file_uuid, version_id))
        if entry is None:
            return None
        parts = {int(number): str(etag) for number, etag in entry.get("parts", {}).items()}
        return UploadState(str(entry["upload_id"]), int(entry["part_size"]), parts)

    def begin(self, file_uuid: str, version_id: int, upload_id: str, part_size: int) -> None:
        """See :class:`UploadStateStore`."""
        with self._lock:
            data = self._read()
            data[self._key(file_uuid, version_id)] = {
                "upload_id": upload_id,
                "part_size": part_size,
                "parts": {},
            }
            self._write(data)

    def part_done(self, file_uuid: str, version_id: int, part_number: int, etag: str) -> None:
        """See :class:`UploadStateStore`."""
        with self._lock:
            data = self._read()
            entry = data.get(self._key(file_uuid, version_id))
            if entry is None:
                raise KeyError(f"no upload recorded for file {file_uuid} version {version_id}")
            entry["parts"][str(part_number)] = etag
            self._write(data)

    def finished(self, file_uuid: str, version_id: int) -> None:
        """See :class:`UploadStateStore`."""
        with self._lock:
            data = self._read()
            if data.pop(self._key(file_uuid, version_id), None) is not None:
                self._write(data)


@dataclass(frozen=True)
class UploadResult:
    """What an upload did.

    Attributes:
        md5: hex MD5 of the whole file (what the server verified).
        size: bytes in the file.
        parts: parts of the upload (1 for a single PUT).
        bytes_sent: bytes PUT by this call (less than ``size`` after a resume; retries of a
            part count once).
        resumed_parts: parts the server already held and that were not sent again.
        upload_id: the multipart upload id (``None`` for a single PUT).
        checksum: what was sent as ``md5_checksum`` (``md5``, or the netCDF content hash).
        already_secured: the announced version was already secured; nothing was sent.
    """

    md5: str
    size: int
    parts: int
    bytes_sent: int
    resumed_parts: int = 0
    upload_id: str | None = None
    checksum: str = ""
    already_secured: bool = False


def put_timeout(size: int) -> float:
    """Seconds allowed for a PUT of ``size`` bytes: assumes ≥ 100 kB/s, 10 s to 30 min (§7.2)."""
    return max(10.0, min(size / 100_000, 1800.0))


@dataclass(frozen=True)
class _FileStat:
    size: int
    mtime_ns: int


def _stat(path: Path, when: str) -> _FileStat:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise FileChangedError(f"{path} vanished {when} it was uploaded") from None
    return _FileStat(st.st_size, st.st_mtime_ns)


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _read_whole(path: Path) -> tuple[bytes, str]:
    data = path.read_bytes()
    return data, _md5(data)


class _UrlExpiredError(Exception):
    """The store answered 403: the presigned URL expired (or was revoked); get a fresh one."""

    def __init__(self, error: EtiketError) -> None:
        super().__init__(str(error))
        self.error = error


class _RetryablePutError(Exception):
    def __init__(self, error: EtiketError, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class _UploadGoneError(Exception):
    """The recorded multipart upload cannot be continued; start a new one."""


UrlSource = Callable[[str | None], Awaitable[str]]
"""Gives the URL to PUT to; called with the URL that just failed as expired (or ``None``)."""


class _PartUrls:
    """The presigned part URLs of one multipart upload, refreshed once per expiry."""

    def __init__(self, client: EtiketClient, upload: MultipartUpload, size: int) -> None:
        self._client = client
        self._upload = upload
        self._size = size
        self._urls = list(upload.presigned_urls)
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._urls)

    def source(self, number: int) -> UrlSource:
        async def url(expired: str | None) -> str:
            if expired is not None:
                async with self._lock:
                    if self._urls[number - 1] == expired:  # nobody refreshed them meanwhile
                        fresh = await self._client.presigned_multipart(
                            self._upload.uuid,
                            self._upload.version_id,
                            upload_id=self._upload.upload_id,
                            size=self._size,
                        )
                        self._urls = list(fresh.presigned_urls)
            return self._urls[number - 1]

        return url


class Uploader:
    """Uploads the bytes of file versions through presigned URLs, then has the server verify them.

    Args:
        client: the API client (its connection pool and retry policy are used for PUTs too).
        single_part_threshold: files up to this many bytes go in one PUT.
        part_concurrency: parts of one file in flight at once.
        read_ahead: parts read and hashed ahead of the senders (memory ≈
            ``(part_concurrency + read_ahead + 1) * part_size``).
    """

    def __init__(
        self,
        client: EtiketClient,
        *,
        single_part_threshold: int = DEFAULT_SINGLE_PART_THRESHOLD,
        part_concurrency: int = DEFAULT_PART_CONCURRENCY,
        read_ahead: int = 2,
    ) -> None:
        self.client = client
        self.single_part_threshold = max(0, single_part_threshold)
        self.part_concurrency = max(1, part_concurrency)
        self.read_ahead = max(1, read_ahead)

    async def upload(
        self,
        path: Path | str,
        file_uuid: str,
        version_id: int,
        *,
        resume: UploadStateStore | None = None,
        progress: Callable[[int], None] | None = None,
        expected_md5: str | None = None,
        file_type: str | None = None,
        content_checksum: str | None = None,
        announce: FileCreate | None = None,
    ) -> UploadResult:
        """Upload ``path`` as the bytes of ``(file_uuid, version_id)`` and validate them.

        Without ``announce`` the version record must exist
        (:meth:`EtiketClient.ensure_file_version`); with it, the record is created here, only once
        the bytes to send are known (a file that changes while it is read is then never
        announced), and a version found already secured is not sent again
        (``already_secured``). ``resume`` keeps multipart progress across restarts;
        ``progress`` is called with the byte count of every part (or file) the store
        acknowledged; ``expected_md5`` (hex) is the byte MD5 the caller planned the version with,
        and a file whose bytes no longer match it is not validated. ``file_type`` and
        ``content_checksum`` choose the validation checksum (:func:`validation_checksum`).

        Raises:
            FileChangedError: the file changed (size, mtime, or content vs ``expected_md5``)
                while it was read or sent; nothing was validated.
            UploadError: the bytes could not be stored after the retries.
            EtiketError: an API call failed (see the hierarchy).
        """
        path = Path(path)
        if announce is not None:
            file_type = file_type or announce.type
        before = _stat(path, "before")
        size = before.size
        if announce is not None and announce.immutable and size != announce.size:
            raise FileChangedError(
                f"{path} has {size} bytes, not the {announce.size} it was planned with; "
                "it was not announced"
            )
        state = resume.load(file_uuid, version_id) if resume is not None else None
        if size <= self.single_part_threshold and state is None:
            data, md5 = await asyncio.to_thread(_read_whole, path)
            if len(data) != size:
                raise FileChangedError(
                    f"{path} changed size while it was read ({size} → {len(data)}); "
                    "nothing was announced or sent"
                )
            self._check_unchanged(path, before, md5, expected_md5)
            if announce is not None and await self._announce_secured(announce):
                return UploadResult(md5, size, 1, 0, checksum=md5, already_secured=True)
            await self._single(path, file_uuid, version_id, data, md5)
            if progress is not None:
                progress(size)
            self._check_unchanged(path, before, md5, expected_md5)
            checksum = await asyncio.to_thread(
                validation_checksum, path, md5, file_type, content_checksum
            )
            await self.client.validate_single_part(file_uuid, version_id, checksum)
            return UploadResult(md5, size, 1, size, checksum=checksum)
        if announce is not None:
            self._check_unchanged(path, before, None, None)
            if await self._announce_secured(announce):
                return UploadResult(expected_md5 or "", size, 0, 0, already_secured=True)
        opened: list[str] = []
        try:
            md5, upload_id, etags, sent, resumed = await self._multipart(
                path, file_uuid, version_id, size, state, resume, progress, opened
            )
            self._check_unchanged(path, before, md5, expected_md5)
        except FileChangedError:
            # the stored parts hold bytes that no longer exist: free them (best effort)
            for stale in opened:
                with contextlib.suppress(EtiketError):
                    await self.client.abort_upload(file_uuid, version_id, stale)
            raise
        checksum = await asyncio.to_thread(
            validation_checksum, path, md5, file_type, content_checksum
        )
        await self.client.validate_multipart(file_uuid, version_id, checksum, upload_id, etags)
        if resume is not None:
            resume.finished(file_uuid, version_id)
        return UploadResult(md5, size, len(etags), sent, resumed, upload_id, checksum=checksum)

    async def _announce_secured(self, announce: FileCreate) -> bool:
        """Create (or find) the version record; True when it is already secured."""
        remote = await self.client.ensure_file_version(announce)
        return remote.status == FileStatus.SECURED

    @staticmethod
    def _check_unchanged(
        path: Path, before: _FileStat, md5: str | None, expected_md5: str | None
    ) -> None:
        after = _stat(path, "after")
        if after != before:
            raise FileChangedError(
                f"{path} changed while it was uploaded (size {before.size} → {after.size}, "
                f"mtime_ns {before.mtime_ns} → {after.mtime_ns}); it was not marked done"
            )
        if md5 is not None and expected_md5 is not None and expected_md5.lower() != md5:
            raise FileChangedError(
                f"{path} no longer has the expected content (MD5 {md5}, expected "
                f"{expected_md5.lower()}); it was not marked done"
            )

    # -- single part -----------------------------------------------------------------------------
    async def _single(
        self, path: Path, file_uuid: str, version_id: int, data: bytes, md5: str
    ) -> None:
        current: str | None = None

        async def url(expired: str | None) -> str:
            nonlocal current
            if current is None or current == expired:
                current = (await self.client.presigned_single_part(file_uuid, version_id)).url
            return current

        await self._send(url, data, md5, f"{path.name} (file {file_uuid} v{version_id})")

    # -- one PUT with retries --------------------------------------------------------------------
    async def _send(self, url_source: UrlSource, data: bytes, md5: str, label: str) -> None:
        """PUT ``data`` until the store acknowledges it with the right ETag."""
        attempts = max(1, self.client.retry.attempts)
        expired: str | None = None
        last: EtiketError | None = None
        for attempt in range(attempts):
            url = await url_source(expired)
            expired = None
            try:
                await self._put_once(url, data, md5, label)
                return
            except _UrlExpiredError as exc:
                _log.info("%s: presigned URL rejected (%s), requesting a fresh one", label, exc)
                expired, last = url, exc.error
            except _RetryablePutError as exc:
                last = exc.error
                if attempt + 1 < attempts:
                    delay = self.client.retry.delay(attempt, exc.retry_after)
                    _log.info(
                        "%s: %s; retry %d/%d in %.2f s",
                        label,
                        exc,
                        attempt + 1,
                        attempts - 1,
                        delay,
                    )
                    await asyncio.sleep(delay)
        assert last is not None
        if isinstance(last, ChecksumMismatchError):
            raise last
        raise UploadError(
            f"{label}: not stored after {attempts} attempts; last error: {last}",
            status=last.status,
            code=last.code,
            detail=last.detail,
        ) from last

    async def _put_once(self, url: str, data: bytes, md5: str, label: str) -> None:
        headers = {
            "Content-Type": "application/octet-stream",
            "x-ms-blob-type": "BlockBlob",  # required by Azure, ignored by S3 (§7.2)
            "Content-Length": str(len(data)),
        }
        try:
            response = await self.client.http.put(
                url, content=data, headers=headers, timeout=put_timeout(len(data))
            )
        except httpx.TransportError as exc:
            error = NetworkError(
                redact_presigned(f"PUT {redact_url(url)} ({label}): {type(exc).__name__}: {exc}")
            )
            raise _RetryablePutError(error, None) from exc
        status = response.status_code
        if status in (200, 201):
            self._verify_answer(response, data, md5, url, label)
            return
        if status in INTERMEDIARY_STATUSES and looks_like_html(response):
            # never the store (stores speak XML or JSON): give up at once (§7.5)
            raise ConnectionBlockedError(
                f"PUT {redact_url(url)} ({label}) → {status}: an HTML page from a proxy, VPN "
                "or firewall answered instead of the object store",
                status=status,
            )
        body: Any = response.text
        with contextlib.suppress(ValueError):
            body = response.json()
        answer = error_for_status(status, body, "PUT", url)
        if status == 403:
            raise _UrlExpiredError(answer)
        if is_retryable(answer):
            raise _RetryablePutError(answer, retry_after_seconds(response))
        raise UploadError(
            f"{label}: {answer}", status=status, code=answer.code, detail=answer.detail
        )

    @staticmethod
    def _verify_answer(
        response: httpx.Response, data: bytes, md5: str, url: str, label: str
    ) -> None:
        content_md5 = response.headers.get("content-md5")
        if content_md5:  # Azure answers base64(MD5)
            expected = base64.b64encode(bytes.fromhex(md5)).decode("ascii")
            if content_md5.strip() != expected:
                raise _RetryablePutError(
                    ChecksumMismatchError(
                        f"PUT {redact_url(url)} ({label}): the store's Content-MD5 "
                        f"{content_md5} differs from the sent bytes' {expected}"
                    ),
                    None,
                )
            return
        etag = response.headers.get("etag", "").strip().strip('"').lower()
        if _MD5_HEX.match(etag) and etag != md5:
            raise _RetryablePutError(
                ChecksumMismatchError(
                    f"PUT {redact_url(url)} ({label}): the store's ETag {etag} differs from the "
                    f"MD5 {md5} of the {len(data)} bytes sent"
                ),
                None,
            )

    # -- multipart -------------------------------------------------------------------------------
    async def _open_multipart(
        self,
        file_uuid: str,
        version_id: int,
        size: int,
        state: UploadState | None,
        resume: UploadStateStore | None,
    ) -> tuple[MultipartUpload, dict[int, tuple[str, int | None]]]:
        """The upload to continue (or a new one) and the parts already stored: n → (ETag, size)."""
        if state is not None:
            try:
                listed = await self.client.upload_parts(file_uuid, version_id, state.upload_id)
                if listed is not None and listed.state != "active":
                    raise _UploadGoneError(f"upload {state.upload_id} is {listed.state}")
                upload = await self.client.presigned_multipart(
                    file_uuid, version_id, upload_id=state.upload_id, size=size
                )
                if upload.upload_id != state.upload_id or upload.part_size != state.part_size:
                    raise _UploadGoneError(f"the server replaced upload {state.upload_id}")
            except (NotFoundError, ConflictError, _UploadGoneError) as exc:
                _log.info(
                    "file %s v%d: cannot resume (%s); starting over", file_uuid, version_id, exc
                )
            else:
                known: dict[int, tuple[str, int | None]]
                if listed is None:  # no upload_parts endpoint: trust the local record
                    known = {n: (etag.strip('"').lower(), None) for n, etag in state.parts.items()}
                else:
                    known = {n: (p.etag, p.size) for n, p in listed.by_number().items()}
                return upload, known
        upload = await self.client.presigned_multipart(file_uuid, version_id, size=size)
        if resume is not None:
            resume.begin(file_uuid, version_id, upload.upload_id, upload.part_size)
        return upload, {}

    async def _multipart(
        self,
        path: Path,
        file_uuid: str,
        version_id: int,
        size: int,
        state: UploadState | None,
        resume: UploadStateStore | None,
        progress: Callable[[int], None] | None,
        opened: list[str],
    ) -> tuple[str, str, list[str], int, int]:
        """Send the missing parts; (whole MD5, upload id, ETags in order, bytes sent, resumed).

        The upload id is appended to ``opened`` as soon as it is known.
        """
        upload, known = await self._open_multipart(file_uuid, version_id, size, state, resume)
        opened.append(upload.upload_id)
        part_size = upload.part_size
        part_count = max(1, math.ceil(size / part_size))
        if part_count > MAX_PARTS:
            raise UploadError(
                f"{path.name}: {part_count} parts of {part_size} bytes exceed the limit of "
                f"{MAX_PARTS}"
            )
        urls = _PartUrls(self.client, upload, size)
        if len(urls) < part_count:
            raise UploadError(
                f"{path.name}: the server handed out {len(urls)} part URLs for {part_count} parts"
            )
        whole = hashlib.md5(usedforsecurity=False)
        etags: dict[int, str] = {}
        queue: asyncio.Queue[tuple[int, bytes, str | None] | None] = asyncio.Queue(self.read_ahead)
        senders = min(self.part_concurrency, part_count)
        totals = {"sent": 0, "resumed": 0}

        def read_part(handle: BinaryIO, number: int) -> tuple[bytes, str | None]:
            expected = part_size if number < part_count else size - part_size * (part_count - 1)
            data = handle.read(expected)
            if len(data) != expected:
                raise FileChangedError(f"{path} shrank while it was uploaded (part {number})")
            whole.update(data)  # parts are read in order, so this is the whole-file MD5
            # a part that may already be stored is hashed here to decide; the others are
            # hashed by their sender, in parallel with the reading of the next parts
            return data, (_md5(data) if number in known else None)

        async def produce(handle: BinaryIO) -> None:
            for number in range(1, part_count + 1):
                reading = asyncio.ensure_future(asyncio.to_thread(read_part, handle, number))
                try:
                    data, md5 = await asyncio.shield(reading)
                except asyncio.CancelledError:
                    with contextlib.suppress(BaseException):
                        await reading  # the thread must be done with the file before it closes
                    raise
                stored = known.get(number)
                if (
                    stored is not None
                    and md5 is not None
                    and stored[0] == md5
                    and stored[1] in (None, len(data))
                ):
                    etags[number] = md5
                    totals["resumed"] += 1
                    continue
                await queue.put((number, data, md5))
            if await asyncio.to_thread(handle.read, 1):
                raise FileChangedError(f"{path} grew while it was uploaded")
            for _ in range(senders):
                await queue.put(None)

        async def send() -> None:
            while (job := await queue.get()) is not None:
                number, data, known_md5 = job
                md5 = known_md5 if known_md5 is not None else await asyncio.to_thread(_md5, data)
                label = f"part {number}/{part_count} of {path.name}"
                await self._send(urls.source(number), data, md5, label)
                etags[number] = md5
                totals["sent"] += len(data)
                if resume is not None:
                    resume.part_done(file_uuid, version_id, number, md5)
                if progress is not None:
                    progress(len(data))

        with open(path, "rb") as handle:
            tasks = [asyncio.ensure_future(produce(handle))]
            tasks += [asyncio.ensure_future(send()) for _ in range(senders)]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    failure = task.exception()
                    if failure is not None:
                        raise failure
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        ordered = [etags[number] for number in range(1, part_count + 1)]
        return whole.hexdigest(), upload.upload_id, ordered, totals["sent"], totals["resumed"]
