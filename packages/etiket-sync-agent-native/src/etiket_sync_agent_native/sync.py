"""The native backend: uploads the datasets of a local native store (see :mod:`.store`).

A database-type source: the store's SQLite catalog is the database, the catalog row id is the
cursor and the dataset uuid is the natural key (and, pinned through ``SyncItem.extra``, the
dataset's uuid on the server, so scripts know it in advance). Scope policy DISABLED: every dataset
names its scope (name or uuid), carried as the item's ``scope_identifier`` and resolved by the core
(through the source's scope mapping when one is set, else directly by name or uuid).

The newest incomplete dataset is synced live (every live interval) until it is complete or shows
no change for ``stale_after`` seconds; any later change to any dataset (a file added, metadata
updated, marked complete) changes its fingerprint, so the core syncs it again; only new or changed
files are uploaded, as new files or new versions.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from etiket_sync_agent import (
    DatasetInfo,
    FileInfo,
    ScopePolicy,
    SyncContext,
    SyncItem,
    SyncSourceDatabaseBase,
)
from etiket_sync_agent.connectors.dataset import sniff_file_type
from etiket_sync_agent.errors import ConfigError, SourceError, SyncError
from etiket_sync_agent_native.qdrive import ORIGIN as QDRIVE_ORIGIN
from etiket_sync_agent_native.qdrive import (
    QdriveCache,
    QdriveCacheError,
    default_qdrive_directory,
    describe_qdrive_dataset,
    qdrive_items,
)
from etiket_sync_agent_native.store import (
    CatalogReader,
    DatasetRecord,
    NativeStoreError,
    default_native_directory,
)

__all__ = ["GENERATOR", "NativeConfig", "NativeSync"]

GENERATOR = "etiket-sync-agent-native"
#: Catalog rows listed per discovery query.
_BATCH = 1000


@dataclasses.dataclass
class NativeConfig:
    """Configuration of a native source (field names as existing configurations use them).

    Attributes:
        native_directory: the store folder scripts write to with
            ``etiket_sync_agent_native.Dataset`` (default: ``<agent home>/native``, the same
            default the ``Dataset`` API uses).
        sync_qdrive: also sync the datasets in qdrive's local cache (read-only). Off by default
            for now: discovery on a cache of 20k datasets still takes minutes per pass.
        qdrive_directory: qdrive's data folder (default: the platform's location; skipped
            when there is no cache there).
    """

    native_directory: Path | None = None
    #: Also sync the datasets qdrive and dataQruiser keep in qdrive's local cache (issue 16).
    sync_qdrive: bool = False
    #: qdrive's data folder (holding ``sql/etiket_db.sql``); default: the platform's location.
    qdrive_directory: Path | None = None

    def validate(self) -> None:
        if self.qdrive_directory is not None:
            qdrive = Path(self.qdrive_directory).expanduser()
            if not (qdrive / "sql" / "etiket_db.sql").is_file():
                raise ConfigError(
                    "qdrive_directory",
                    f"{qdrive} holds no qdrive cache (sql/etiket_db.sql is missing)",
                )
        if self.native_directory is None:
            return
        path = Path(self.native_directory).expanduser()
        if not path.is_dir():
            raise ConfigError(
                "native_directory",
                f"{path} is not an existing folder (create it, or create a first dataset there "
                "with etiket_sync_agent_native.Dataset.create(..., directory=...))",
            )

    def root(self) -> Path:
        """The store folder this configuration points at."""
        if self.native_directory is None:
            return default_native_directory()
        return Path(self.native_directory).expanduser()


def _item(record: DatasetRecord) -> SyncItem:
    return SyncItem(
        key=record.uuid,
        cursor=record.id,
        priority=float(record.id),
        scope_identifier=record.scope,
        fingerprint=record.fingerprint,
        extra={"dataset_uuid": record.uuid},
    )


class NativeSync(SyncSourceDatabaseBase):
    """Syncs datasets created locally by scripts through ``etiket_sync_agent_native.Dataset``."""

    name: ClassVar[str] = "native"
    config_class: ClassVar[type[Any]] = NativeConfig
    scope_policy: ClassVar[ScopePolicy] = ScopePolicy.DISABLED
    live_sync: ClassVar[bool] = True
    implemented: ClassVar[bool] = True

    config: NativeConfig

    def __init__(self, config: NativeConfig) -> None:
        super().__init__(config)
        self._reader = CatalogReader(config.root())
        # issue 16: qdrive's cache, read-only; the mark is the newest modification listed so far.
        self._qdrive: QdriveCache | None = None
        if config.sync_qdrive:
            qdrive_root = config.qdrive_directory or default_qdrive_directory()
            self._qdrive = QdriveCache(Path(qdrive_root).expanduser())
        self._qdrive_after: int | None = None

    def source_identity(self) -> str:
        """The resolved store folder: two sources with the same identity are one store."""
        return str(self._reader.root.resolve())

    def _check_root(self) -> None:
        if not self._reader.root.is_dir():
            raise SourceError(f"the native store folder {self._reader.root} does not exist")

    # -- discovery -------------------------------------------------------------------------------
    def get_new_datasets(self, last_item: SyncItem | None) -> Iterator[SyncItem]:
        """Catalog rows after ``last_item.cursor``, then qdrive's datasets with something new."""
        qdrive = self._qdrive if self._qdrive is not None and self._qdrive.exists() else None
        if qdrive is None or self._reader.root.is_dir():
            yield from self._native_items(last_item)
        if qdrive is not None:
            try:
                items, self._qdrive_after = qdrive_items(qdrive, self._qdrive_after)
            except QdriveCacheError as exc:
                raise SourceError(str(exc)) from None
            yield from items

    def _native_items(self, last_item: SyncItem | None) -> Iterator[SyncItem]:
        """Catalog rows after ``last_item.cursor`` (row id), oldest first, in batches."""
        self._check_root()
        after = int(last_item.cursor) if last_item is not None and last_item.cursor else None
        try:
            if after is not None and self._reader.max_id() < after:
                # The catalog was recreated (row ids restarted): list it from the start again;
                # datasets the core already knows are recognised by their uuid.
                after = None
        except NativeStoreError as exc:
            raise SourceError(str(exc)) from None
        while True:
            try:
                records = self._reader.list_after(after, _BATCH)
            except NativeStoreError as exc:
                raise SourceError(str(exc)) from None
            for record in records:
                yield _item(record)
            if len(records) < _BATCH:
                return
            after = records[-1].id

    def get_fingerprints(self) -> Mapping[str, str]:
        """uuid → fingerprint (revision and completeness) of every dataset."""
        found: dict[str, str] = {}
        qdrive = self._qdrive if self._qdrive is not None and self._qdrive.exists() else None
        if qdrive is None or self._reader.root.is_dir():
            self._check_root()
            try:
                found.update(self._reader.fingerprints())
            except NativeStoreError as exc:
                raise SourceError(str(exc)) from None
        if qdrive is not None:
            try:
                found.update(qdrive.fingerprints())
            except QdriveCacheError as exc:
                raise SourceError(str(exc)) from None
        return found

    # -- live ------------------------------------------------------------------------------------
    def check_live_dataset(self, item: SyncItem, state: Mapping[str, Any]) -> bool:
        """Live while not complete, unless it has not changed for ``stale_after`` seconds."""
        if item.extra.get("origin") == QDRIVE_ORIGIN:
            return False  # qdrive marks each file version complete itself
        try:
            record = self._reader.get(item.key, with_files=False)
        except NativeStoreError:
            return False
        if record is None or record.complete:
            return False
        return time.time() - record.modified < self.stale_after

    # -- sync ------------------------------------------------------------------------------------
    def sync_dataset(self, item: SyncItem, ctx: SyncContext) -> None:
        """Describe the dataset and queue every file of the catalog (unchanged ones are skipped)."""
        if item.extra.get("origin") == QDRIVE_ORIGIN and self._qdrive is not None:
            describe_qdrive_dataset(self._qdrive, item, ctx)
            return
        try:
            record = self._reader.get(item.key)
        except NativeStoreError as exc:
            raise SyncError(str(exc)) from None
        if record is None:
            raise SyncError(
                f"native dataset {item.key} is no longer in the catalog {self._reader.catalog}"
            )
        ctx.set_dataset(
            DatasetInfo(
                name=record.name,
                # The native uuid is the dataset's uuid on the server too (scripts know it in
                # advance); the core looks it up before creating anything.
                uuid=record.uuid,
                collected=record.collected,
                description=record.description,
                keywords=record.keywords,
                attributes={k: str(v) for k, v in record.attributes.items()},
            )
        )
        for file in record.files:
            path = self._reader.path_of(file)
            if not path.is_file():
                ctx.add_error(
                    f"file {file.name!r} of native dataset {record.uuid} is missing from the "
                    f"store (expected at {path})"
                )
                continue
            ctx.upload_file(
                FileInfo(
                    name=file.name,
                    path=path,
                    filename=file.filename,
                    file_type=sniff_file_type(path),
                    generator=GENERATOR,
                )
            )
        ctx.state.update({"revision": record.revision, "complete": record.complete})
        if not record.files:
            ctx.add_log("the native dataset has no files (yet)", logging.INFO)
        if not record.complete and not ctx.live:
            ctx.add_log(
                "the native dataset is not marked complete (no change for "
                f"{self.stale_after:g} s, or a newer dataset exists): synced as it is; it is "
                "synced again when it changes",
                logging.INFO,
            )
