"""``SyncUtilities``, ``DatasetInfo`` and ``FileInfo`` of the existing agent's backend API.

Legacy backends describe a dataset with :meth:`SyncUtilities.create_or_update_dataset` and its
files with :meth:`SyncUtilities.upload_file` (and the xarray/JSON/thumbnail helpers). Here these
calls are recorded on the :class:`~etiket_sync_agent.connectors.context.SyncContext` behind the
``sync_record``; the core uploads after the hook returns (only content that changed, as new
versions of the same logical file).

Every helper can be called plainly or awaited (the existing agent's helpers were called both
ways by connector authors): the returned value is usable directly and is also awaitable.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid as uuid_module
from collections.abc import Generator
from pathlib import Path
from typing import Any, Generic, TypeVar

from etiket_sync_agent.connectors.dataset import DatasetInfo as _DatasetInfo
from etiket_sync_agent.connectors.dataset import FileInfo as _FileInfo
from etiket_sync_agent.connectors.dataset import FileType
from etiket_sync_agent.sync.sync_records.manager import SyncRecordManager

__all__ = ["IMAGE_SUFFIXES", "DatasetInfo", "FileInfo", "FileType", "SyncUtilities"]

T = TypeVar("T")

#: Image suffixes accepted as thumbnails.
IMAGE_SUFFIXES = {
    ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ico", ".raw", ".wbmp"
}  # fmt: skip


class _Done(Generic[T]):
    """A finished result that may also be awaited (``await SyncUtilities.upload_file(...)``)."""

    def __init__(self, value: T) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, T]:
        return self.value
        yield  # pragma: no cover - makes this a generator

    def __bool__(self) -> bool:
        return bool(self.value)


@dataclasses.dataclass
class DatasetInfo:
    """The existing agent's dataset description (``created`` is the measurement time)."""

    name: str
    dataset_uuid: uuid_module.UUID | str | None = None
    scope_uuid: uuid_module.UUID | str | None = None
    created: dt.datetime | None = None
    alt_uid: str | None = None
    description: str | None = None
    keywords: list[str] = dataclasses.field(default_factory=list)
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)
    ranking: int = 0
    creator: str | None = None

    def to_core(self) -> _DatasetInfo:
        """Our :class:`~etiket_sync_agent.connectors.dataset.DatasetInfo`."""
        return _DatasetInfo(
            name=self.name,
            collected=self.created or dt.datetime.now(dt.timezone.utc),
            alt_uid=self.alt_uid,
            uuid=str(self.dataset_uuid) if self.dataset_uuid else None,
            description=self.description,
            keywords=list(self.keywords or []),
            ranking=int(self.ranking or 0),
            attributes={str(k): str(v) for k, v in (self.attributes or {}).items()},
            creator=self.creator or None,
        )


@dataclasses.dataclass
class FileInfo:
    """The existing agent's file description (``name`` logical, ``file_name`` on disk)."""

    name: str
    file_name: str
    created: dt.datetime | None = None
    file_type: FileType | str | None = None
    creator: str | None = None
    file_generator: str | None = None
    immutable_on_completion: bool = True
    ranking: int = 0

    def to_core(self, path: Path, filename: str | None = None) -> _FileInfo:
        """Our :class:`~etiket_sync_agent.connectors.dataset.FileInfo` for the bytes at ``path``."""
        kind = FileType(self.file_type) if self.file_type else None
        return _FileInfo(
            name=self.name,
            path=path,
            filename=filename or self.file_name,
            file_type=kind,
            generator=self.file_generator,
            ranking=int(self.ranking or 0),
            collected=self.created,
            immutable=bool(self.immutable_on_completion),
        )


def _record(sync_record: Any) -> SyncRecordManager:
    if not isinstance(sync_record, SyncRecordManager):
        raise TypeError("pass the sync_record the hook received")
    return sync_record


class SyncUtilities:
    """What a legacy backend calls to describe a dataset (see the module docstring)."""

    @staticmethod
    def create_or_update_dataset(
        live_mode: bool, sync_item: Any, ds_info: DatasetInfo, sync_record: Any, *args: Any
    ) -> _Done[None]:
        """Declare the dataset record (identity: the item's uuid, else ``alt_uid`` in scope)."""
        record = _record(sync_record)
        with record.task("Creating or updating dataset on remote server"):
            record.ctx.set_dataset(ds_info.to_core())
        return _Done(None)

    @staticmethod
    def upload_file(
        file_path: Path | str, sync_item: Any, file_info: FileInfo, sync_record: Any
    ) -> _Done[None]:
        """Queue a file (empty files are skipped with a log line, as the existing agent does)."""
        record = _record(sync_record)
        path = Path(file_path)
        with record.add_upload_task(file_info.name) as info:
            info.filename = file_info.file_name
            info.file_path = str(path)
            if path.is_file() and path.stat().st_size == 0:
                record.add_log(f"file {path} is empty: not uploaded")
                return _Done(None)
            st = path.stat()
            info.size = st.st_size
            info.file_m_time = st.st_mtime
            record.ctx.upload_file(file_info.to_core(path))
        return _Done(None)

    @staticmethod
    def upload_xarray(
        xarray_object: Any, sync_item: Any, file_info: FileInfo, sync_record: Any
    ) -> _Done[None]:
        """Write an xarray Dataset as HDF5-netCDF (``<name>.h5``) and queue it."""
        record = _record(sync_record)
        with record.add_upload_task(file_info.name):
            filename = file_info.file_name or f"{file_info.name.rsplit('/', 1)[-1]}.h5"
            if not filename.endswith((".h5", ".hdf5", ".nc")):
                filename = f"{filename}.h5"
            queued = record.ctx.upload_xarray(
                xarray_object, file_info.name, filename, generator=file_info.file_generator
            )
            queued.collected = file_info.to_core(queued.path).collected
            queued.ranking = int(file_info.ranking or 0)
        return _Done(None)

    @staticmethod
    def upload_json(
        json_object: Any, sync_item: Any, file_info: FileInfo, sync_record: Any
    ) -> _Done[None]:
        """Write ``json_object`` as ``<name>.json`` and queue it."""
        record = _record(sync_record)
        with record.add_upload_task(file_info.name):
            filename = file_info.file_name or f"{file_info.name.rsplit('/', 1)[-1]}.json"
            queued = record.ctx.upload_json(
                json_object, file_info.name, filename, generator=file_info.file_generator
            )
            queued.ranking = int(file_info.ranking or 0)
        return _Done(None)

    @staticmethod
    def add_thumbnail(
        thumbnail_id: int | str, image_path: Path | str, sync_item: Any, sync_record: Any
    ) -> _Done[bool]:
        """Queue an image as hidden file ``__thumbnail_<id>`` (ranking -1). Returns success.

        The image is uploaded as it is (the existing agent re-encoded it to a ~100 kB JPEG; the
        core has no imaging dependency). A bad suffix or missing file is recorded as an error.
        """
        record = _record(sync_record)
        path = Path(image_path)
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            record.add_error(f"thumbnail {path} is not an existing image file")
            return _Done(False)
        record.ctx.upload_file(
            _FileInfo(
                name=f"__thumbnail_{thumbnail_id}",
                path=path,
                filename=path.name,
                file_type=FileType.UNKNOWN,
                generator="etiket_sync_agent",
                ranking=-1,
            )
        )
        return _Done(True)
