"""A file-type backend written the existing agent's way: datasets are folders at depth 1."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from etiket_sync_agent.connectors.sync_source_abstract import (
    ScopeRequirement,
    SyncSourceFileBase,
)
from etiket_sync_agent.schemas import SyncItemSchema
from etiket_sync_agent.sync.sync_records import SyncRecordManager
from etiket_sync_agent.sync.sync_utilities import DatasetInfo, FileInfo, SyncUtilities


@dataclass
class LegacyFoldersConfig:
    root_directory: Path

    def __post_init__(self) -> None:
        self.root_directory = Path(self.root_directory)

    async def validate(self) -> None:
        if not self.root_directory.is_dir():
            raise ValueError(f"{self.root_directory} does not exist")


class LegacyFoldersSync(SyncSourceFileBase):
    sync_agent_name = "Legacy folders"
    config_data_class = LegacyFoldersConfig
    scope_requirement = ScopeRequirement.REQUIRED
    supports_scope_mapping = False
    live_sync_implemented = False
    has_owner = False
    level = 1
    is_single_file = False

    @staticmethod
    def root_path(configData: LegacyFoldersConfig) -> Path:
        return configData.root_directory

    @staticmethod
    async def check_live_dataset(
        configData: LegacyFoldersConfig, syncIdentifier: SyncItemSchema, maxPriority: bool
    ) -> bool:
        return False

    @staticmethod
    async def sync_dataset_normal(
        configData: LegacyFoldersConfig,
        syncIdentifier: SyncItemSchema,
        sync_record: SyncRecordManager,
    ) -> None:
        folder = configData.root_directory / syncIdentifier.data_identifier
        marker = folder / "BROKEN"
        if marker.exists():
            raise RuntimeError(f"dataset {folder.name} is marked broken")
        info = DatasetInfo(name=folder.name, alt_uid=f"folder-{folder.name}")
        SyncUtilities.create_or_update_dataset(False, syncIdentifier, info, sync_record)
        for path in sorted(folder.iterdir()):
            if path.is_file():
                SyncUtilities.upload_file(
                    path, syncIdentifier, FileInfo(name=path.name, file_name=path.name), sync_record
                )
