"""File bytes on local disk, stored under ids only (never under client-supplied names).

Layout under the data directory::

    objects/<uuid[:2]>/<file uuid>/<version_id>   secured bytes of one file version
    uploads/<upload_id>/data                      bytes of an upload in progress

A single-part PUT streams into ``uploads/<id>/data.<random>.tmp``, is fsynced and renamed to
``data``. A multipart part is written at its offset (``(n - 1) * part_size``) into
``uploads/<id>/data`` (its writeback starts at once), so completing an upload never copies bytes:
validation only hashes what is not hashed yet, truncates, fsyncs and renames ``data`` into
``objects/``.
While parts arrive, :class:`WholeFileHasher` extends the whole-file MD5 over the contiguous prefix of
finished parts in a worker thread, so validating a large upload hashes little more than its tail.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import secrets
import shutil
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import cast

__all__ = ["ObjectStore", "PartSink", "PartTooLarge", "WholeFileHasher"]

_READ_BLOCK = 8 * 1024 * 1024


class PartTooLarge(Exception):
    """More bytes arrived for a part than the upload's part size allows."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        func = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    func.restype = ctypes.c_int
    return cast("Callable[[int, int, int, int], int]", func)


_SYNC_FILE_RANGE = _load_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a range to disk now, without waiting (Linux only).

    Keeps dirty pages few, so the fsync at the end of a PUT or at validation is short and a large
    upload never hits the kernel's dirty-page throttling.
    """
    if _SYNC_FILE_RANGE is not None and length > 0:
        _SYNC_FILE_RANGE(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def _write_all(fd: int, data: bytes | bytearray | memoryview, offset: int | None) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view) if offset is None else os.pwrite(fd, view, offset)
        view = view[written:]
        if offset is not None:
            offset += written


class PartSink:
    """Receives the body of one PUT (called from worker threads, one call at a time)."""

    def __init__(
        self, path: Path, *, offset: int | None, max_size: int | None, single: bool
    ) -> None:
        self._final = path
        self._single = single
        self._max_size = max_size
        self._md5 = hashlib.md5()
        self.size = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        if single:
            self._path = path.with_name(f"{path.name}.{secrets.token_hex(6)}.tmp")
            self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self._offset: int | None = None
        else:
            self._path = path
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._offset = offset or 0

    def write(self, chunks: list[bytes]) -> None:
        """Hash and write a batch of body chunks."""
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if self._max_size is not None and self.size + len(data) > self._max_size:
            raise PartTooLarge(f"part exceeds the upload's part size of {self._max_size} bytes")
        self._md5.update(data)
        offset = None if self._offset is None else self._offset + self.size
        _write_all(self._fd, data, offset)
        _start_writeback(self._fd, (self._offset or 0) + self.size, len(data))
        self.size += len(data)

    def finish(self) -> str:
        """Complete the PUT and return the hex MD5 of its bytes.

        A single PUT is fsynced and renamed into place. A part is not fsynced on its own (its
        writeback is already under way): :meth:`ObjectStore.promote` fsyncs the whole file before
        it is secured, and the whole-file MD5 is checked then, so a part lost in a power cut can
        only make that check fail, never secure wrong bytes.
        """
        try:
            if self._single:
                os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._fd = -1
        if self._single:
            os.replace(self._path, self._final)
        return self._md5.hexdigest()

    def discard(self) -> None:
        """Give up: close, and remove a single PUT's temporary file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._single:
            try:
                os.unlink(self._path)
            except FileNotFoundError:
                pass


class WholeFileHasher:
    """MD5 of a multipart upload's assembly file, extended over contiguous finished parts."""

    def __init__(self, path: Path, part_size: int) -> None:
        self._path = path
        self._part_size = part_size
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._md5 = hashlib.md5()
        self._next = 1
        self._generation = 0
        self._hashing: int | None = None
        self._done: dict[int, int] = {}

    def part_started(self, part_number: int) -> None:
        """A part is being (re)written: forget it, and restart hashing if it was covered."""
        with self._lock:
            self._done.pop(part_number, None)
            if part_number < self._next or part_number == self._hashing:
                self._generation += 1
                self._md5 = hashlib.md5()
                self._next = 1

    def part_finished(self, part_number: int, size: int) -> None:
        """A part's bytes are complete and durable."""
        with self._lock:
            self._done[part_number] = size

    def _hash_region(self, md5: hashlib._Hash, offset: int, size: int) -> None:
        with open(self._path, "rb", buffering=0) as handle:
            handle.seek(offset)
            remaining = size
            while remaining > 0:
                block = handle.read(min(_READ_BLOCK, remaining))
                if not block:
                    raise OSError(f"{self._path} is shorter than its recorded parts")
                md5.update(block)
                remaining -= len(block)

    def _advance(self, last_part: int | None) -> None:
        while True:
            with self._lock:
                number = self._next
                size = self._done.get(number)
                if size is None or (last_part is not None and number > last_part):
                    return
                md5 = self._md5.copy()
                generation = self._generation
                self._hashing = number
            try:
                self._hash_region(md5, (number - 1) * self._part_size, size)
            finally:
                with self._lock:
                    self._hashing = None
            with self._lock:
                if generation == self._generation and self._done.get(number) == size:
                    self._md5 = md5
                    self._next = number + 1

    def advance_in_background(self) -> None:
        """Hash what is contiguous now, unless another thread is already doing so."""
        if not self._run_lock.acquire(blocking=False):
            return
        try:
            self._advance(None)
        finally:
            self._run_lock.release()

    def digest(self, last_part: int) -> str:
        """Hex MD5 of parts ``1..last_part`` (all must be finished)."""
        with self._run_lock:
            self._advance(last_part)
            with self._lock:
                if self._next != last_part + 1:
                    raise OSError(f"part {self._next} of {self._path} is not finished")
                return self._md5.hexdigest()


class ObjectStore:
    """Paths and file operations of the byte store of one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.objects = Path(data_dir) / "objects"
        self.uploads = Path(data_dir) / "uploads"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.uploads.mkdir(parents=True, exist_ok=True)

    def object_path(self, file_uuid: str, version_id: int) -> Path:
        """Where the secured bytes of a file version live (ids only: uuid and integer)."""
        return self.objects / file_uuid[:2] / file_uuid / str(int(version_id))

    def assembly_path(self, upload_id: str) -> Path:
        """The data file of an upload in progress."""
        if not upload_id.isalnum():
            raise ValueError(f"invalid upload id {upload_id!r}")
        return self.uploads / upload_id / "data"

    def open_part(
        self, upload_id: str, *, single: bool, part_number: int, part_size: int
    ) -> PartSink:
        """A sink for one PUT body (part ``part_number`` at its offset, or the single object)."""
        path = self.assembly_path(upload_id)
        if single:
            return PartSink(path, offset=None, max_size=None, single=True)
        return PartSink(
            path, offset=(part_number - 1) * part_size, max_size=part_size, single=False
        )

    def promote(self, upload_id: str, file_uuid: str, version_id: int, size: int) -> Path:
        """Truncate an upload's data to ``size``, fsync it and rename it into ``objects/``."""
        source = self.assembly_path(upload_id)
        with open(source, "r+b") as handle:
            if os.fstat(handle.fileno()).st_size != size:
                handle.truncate(size)
            os.fsync(handle.fileno())
        target = self.object_path(file_uuid, version_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        _fsync_dir(target.parent)
        self.remove_upload(upload_id)
        return target

    def stored_size(self, upload_id: str) -> int:
        """Current size of an upload's data file (0 when absent)."""
        try:
            return self.assembly_path(upload_id).stat().st_size
        except FileNotFoundError:
            return 0

    def md5_of_upload(self, upload_id: str) -> str:
        """Hex MD5 of an upload's whole data file."""
        md5 = hashlib.md5()
        with open(self.assembly_path(upload_id), "rb", buffering=0) as handle:
            while block := handle.read(_READ_BLOCK):
                md5.update(block)
        return md5.hexdigest()

    def remove_upload(self, upload_id: str) -> None:
        """Delete an upload's folder and everything in it."""
        shutil.rmtree(self.uploads / upload_id, ignore_errors=True)
