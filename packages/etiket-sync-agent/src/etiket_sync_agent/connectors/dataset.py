"""How a backend describes a dataset and its files to the core.

Backends never talk HTTP or SQL. They fill in a :class:`DatasetInfo` and hand :class:`FileInfo`
objects to the :class:`~etiket_sync_agent.connectors.context.SyncContext`; the core turns these into
server records, uploads only what changed and records everything in the tracking store.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

__all__ = ["DatasetInfo", "FileInfo", "FileType", "guess_file_type", "sniff_file_type"]


class FileType(str, enum.Enum):
    """File types known to the eTiKeT server (PROTOCOL §6.5)."""

    HDF5 = "HDF5"
    HDF5_NETCDF = "HDF5_NETCDF"
    HDF5_CACHE = "HDF5_CACHE"
    NDARRAY = "NDARRAY"
    JSON = "JSON"
    TEXT = "TEXT"
    UNKNOWN = "UNKNOWN"


_SUFFIX_TYPES: dict[str, FileType] = {
    ".hdf5": FileType.HDF5,
    ".h5": FileType.HDF5,
    ".hdf": FileType.HDF5,
    ".nc": FileType.HDF5_NETCDF,
    ".npy": FileType.NDARRAY,
    ".json": FileType.JSON,
    ".txt": FileType.TEXT,
    ".md": FileType.TEXT,
    ".log": FileType.TEXT,
    ".csv": FileType.TEXT,
    ".yaml": FileType.TEXT,
    ".yml": FileType.TEXT,
    ".py": FileType.TEXT,
}


def guess_file_type(filename: str) -> FileType:
    """Guess the server file type from a file name's suffix (``UNKNOWN`` when unsure)."""
    return _SUFFIX_TYPES.get(PurePosixPath(filename).suffix.lower(), FileType.UNKNOWN)


_HDF5_SUFFIXES = frozenset({".hdf5", ".h5", ".hdf", ".nc"})


def sniff_file_type(path: Path) -> FileType:
    """The file type of an existing file: by suffix, and for HDF5 suffixes by content.

    An ``.hdf5``/``.h5``/``.hdf``/``.nc`` file is ``HDF5_NETCDF`` when it reads as netCDF4 (every
    variable has dimensions, as the existing agent tests with xarray), else ``HDF5``. Reading needs
    ``h5netcdf`` (the ``netcdf`` extra); without it the suffix decides.
    """
    path = Path(path)
    if path.suffix.lower() not in _HDF5_SUFFIXES:
        return guess_file_type(path.name)
    try:
        import h5netcdf
    except ImportError:
        return guess_file_type(path.name)
    try:
        # No HDF5 file lock: a writer that opens the file while we look must not fail.
        with h5netcdf.File(path, "r", locking=False) as nc:
            for variable in nc.variables.values():
                _ = variable.dimensions
    except Exception:  # not netCDF4, or not HDF5 at all: uploaded as plain HDF5 bytes
        return FileType.HDF5
    return FileType.HDF5_NETCDF


def _aware(value: dt.datetime) -> dt.datetime:
    """Naive datetimes are local time (as the reference client reads them); make them aware."""
    return value if value.tzinfo is not None else value.astimezone()


@dataclass
class DatasetInfo:
    """The dataset record a backend wants on the server.

    ``alt_uid`` is the identifier the acquisition tool uses (QCoDeS guid, Quantify TUID, ...); it must
    be unique within the scope. ``uuid`` is a dataset uuid the backend already knows for this dataset
    (for example one the existing agent recorded in its manifest inside a dataset folder); when set,
    the core uses it for the dataset instead of deriving one. ``collected`` is the measurement time; a naive datetime is local time.
    ``keywords`` are shown as tags, ``ranking`` is 1 for starred, -1 for hidden/crossed, else 0.
    Attribute values are strings on the server: other values are converted with ``str``.
    """

    name: str
    collected: dt.datetime
    alt_uid: str | None = None
    uuid: str | None = None
    description: str | None = None
    notes: str | None = None
    keywords: list[str] = field(default_factory=list)
    ranking: int = 0
    attributes: dict[str, str] = field(default_factory=dict)
    creator: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("DatasetInfo.name must be a non-empty string")
        if not isinstance(self.collected, dt.datetime):
            raise TypeError("DatasetInfo.collected must be a datetime")
        self.collected = _aware(self.collected)
        self.attributes = {str(k): str(v) for k, v in self.attributes.items()}
        # Keep order, drop duplicates and empties: tags are a set to the user.
        seen: dict[str, None] = {}
        for keyword in self.keywords:
            text = str(keyword).strip()
            if text:
                seen.setdefault(text, None)
        self.keywords = list(seen)
        if isinstance(self.ranking, bool) or not isinstance(self.ranking, int):
            raise TypeError("DatasetInfo.ranking must be an int")


@dataclass
class FileInfo:
    """One file of a dataset.

    ``name`` is the logical name inside the dataset (``measurement``, ``analysis/fit.json``);
    ``filename`` is the name used when downloading; ``path`` is where the bytes are now: a source file
    (read, never modified) or a file the backend wrote into ``ctx.work_dir``. A new content of the
    same ``name`` becomes a new version on the server; unchanged content is not sent again.
    ``ranking`` < 0 hides a file (thumbnails use -1). ``immutable`` versions can never be replaced.
    ``content_checksum`` is the ``md5_netcdf4`` of an ``HDF5_NETCDF`` file when the writer computed
    it while writing (hex); when ``None`` the agent computes it from the finished file.
    ``uuid`` and ``version_id`` pin the file's server identity when the backend already knows it
    (e.g. a version qdrive created locally); by default the core derives them.
    """

    name: str
    path: Path
    filename: str | None = None
    file_type: FileType | None = None
    generator: str | None = None
    ranking: int = 0
    collected: dt.datetime | None = None
    immutable: bool = True
    content_checksum: str | None = None
    uuid: str | None = None
    version_id: int | None = None

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        name = PurePosixPath(self.name.replace("\\", "/"))
        if not self.name or name.is_absolute() or ".." in name.parts or "\x00" in self.name:
            raise ValueError(
                f"invalid file name {self.name!r}: must be a relative path without '..'"
            )
        self.name = name.as_posix()
        if self.filename is None:
            self.filename = self.path.name
        if self.file_type is None:
            self.file_type = guess_file_type(self.filename)
        if self.collected is not None:
            self.collected = _aware(self.collected)
