"""The API lab scripts use to create native datasets, with or without a server connection.

Example::

    from etiket_sync_agent_native import Dataset

    ds = Dataset.create("T1 sweep", scope="my-lab", attributes={"sample": "chip-7"},
                        keywords=["T1"])
    ds.add_file("results/sweep.hdf5")                  # copied into the local store
    ds.add_file(b'{"fit": 1.2}', name="fit.json")      # bytes need a name
    ds.complete()                                      # no more changes; final sync

or as a context manager, which marks the dataset complete when the block ends without an
exception::

    with Dataset.create("T1 sweep", scope="my-lab") as ds:
        ds.add_file("results/sweep.hdf5")

The agent's ``native`` source uploads the dataset while it is open (new files and new contents of a
file name become new files/versions on the server) and a final time once it is complete.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from etiket_sync_agent_native.store import (
    DatasetRecord,
    FileRecord,
    NativeStore,
    default_native_directory,
)

__all__ = ["Dataset", "close_stores"]

_STORES: dict[tuple[str, int], NativeStore] = {}
_STORES_LOCK = threading.Lock()


def _store(directory: Path | str | None) -> NativeStore:
    """The process's store object for a folder (opening a store checks/creates the catalog)."""
    root = Path(directory).expanduser() if directory is not None else default_native_directory()
    key = (str(root.resolve()), os.getpid())
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None or not store.catalog.is_file():
            store = _STORES[key] = NativeStore(root)
        return store


def close_stores() -> None:
    """Close this thread's catalog connections (e.g. at the end of a script; optional).

    The API keeps one connection per store open between calls; closing the last connection to a
    store folds SQLite's write-ahead log back into ``catalog.sqlite``.
    """
    with _STORES_LOCK:
        for store in _STORES.values():
            store.close()


class Dataset:
    """A native dataset in a local store (default: ``<agent home>/native``).

    Create one with :meth:`create`, reopen it with :meth:`load`; list a store's datasets with
    :meth:`list_all`. ``directory`` selects another store folder (it must match the
    ``native_directory`` of the agent's ``native`` source).
    """

    def __init__(self, store: NativeStore, record: DatasetRecord) -> None:
        self._store = store
        self._record = record

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        name: str,
        scope: str,
        *,
        attributes: Mapping[str, str | int | float | bool] | None = None,
        keywords: Sequence[str] | None = None,
        description: str | None = None,
        collected: dt.datetime | None = None,
        uuid: str | None = None,
        directory: Path | str | None = None,
    ) -> Dataset:
        """Create a new (incomplete) dataset.

        Args:
            name: the dataset's name on the server.
            scope: the server scope, by name or uuid (the agent maps it; see the docs).
            attributes: flat attributes (values become strings on the server).
            keywords: tags.
            description: free text.
            collected: the measurement time (default: now; a naive datetime is local time).
            uuid: the dataset uuid (default: a new random uuid); it is also the server's uuid.
            directory: the store folder (default: ``<agent home>/native``).
        """
        store = _store(directory)
        record = store.create_dataset(
            name=name,
            scope=scope,
            attributes=attributes,
            keywords=keywords,
            description=description,
            collected=collected,
            dataset_uuid=uuid,
        )
        return cls(store, record)

    @classmethod
    def load(cls, uuid: str, *, directory: Path | str | None = None) -> Dataset:
        """Reopen an existing dataset (raises ``DatasetNotFoundError`` when absent)."""
        store = _store(directory)
        return cls(store, store.require(uuid))

    @classmethod
    def list_all(cls, *, directory: Path | str | None = None) -> list[Dataset]:
        """Every dataset of the store, oldest first."""
        store = _store(directory)
        return [cls(store, record) for record in store.list_after(None)]

    # -- reading ---------------------------------------------------------------------------------
    def refresh(self) -> Dataset:
        """Re-read the catalog (another process may have changed the dataset)."""
        self._record = self._store.require(self._record.uuid)
        return self

    @property
    def uuid(self) -> str:
        """The dataset uuid (the same on the server)."""
        return self._record.uuid

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def scope(self) -> str:
        return self._record.scope

    @property
    def description(self) -> str | None:
        return self._record.description

    @property
    def collected(self) -> dt.datetime:
        return self._record.collected

    @property
    def attributes(self) -> dict[str, Any]:
        return dict(self._record.attributes)

    @property
    def keywords(self) -> list[str]:
        return list(self._record.keywords)

    @property
    def is_complete(self) -> bool:
        """Whether :meth:`complete` was called (as of the last read)."""
        return self._record.complete

    @property
    def files(self) -> list[FileRecord]:
        """The dataset's files (as of the last read)."""
        return list(self._record.files)

    @property
    def directory(self) -> Path:
        """The store folder."""
        return self._store.root

    def path_of(self, name: str) -> Path:
        """Where the stored copy of file ``name`` is (read it; do not modify it)."""
        for record in self._record.files:
            if record.name == name:
                return self._store.path_of(record)
        raise KeyError(f"dataset {self.uuid} has no file {name!r}")

    # -- writing ---------------------------------------------------------------------------------
    def add_file(
        self, source: Path | str | bytes | bytearray | memoryview, name: str | None = None
    ) -> FileRecord:
        """Copy a file (a path) or bytes into the store under ``name`` (default: the file name).

        ``name`` may contain ``/`` (``analysis/fit.json``). Adding a name again stores a new
        version. Raises ``DatasetCompleteError`` once the dataset is complete.
        """
        added = self._store.add_file(self._record.uuid, source, name)
        self.refresh()
        return added

    def update(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        attributes: Mapping[str, str | int | float | bool] | None = None,
        keywords: Sequence[str] | None = None,
    ) -> Dataset:
        """Change metadata before completion: attributes are merged, keywords added."""
        self._record = self._store.update_dataset(
            self._record.uuid,
            name=name,
            description=description,
            attributes=attributes,
            keywords=keywords,
        )
        return self

    def complete(self) -> Dataset:
        """Mark the dataset complete: no further changes; the agent syncs it a final time."""
        self._record = self._store.complete_dataset(self._record.uuid)
        return self

    # -- context manager -------------------------------------------------------------------------
    def __enter__(self) -> Dataset:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.complete()

    def __repr__(self) -> str:
        state = "complete" if self._record.complete else "open"
        return (
            f"Dataset(uuid={self.uuid!r}, name={self.name!r}, scope={self.scope!r}, "
            f"files={len(self._record.files)}, {state})"
        )
