"""A backend written the existing agent's way (legacy API), used by the compatibility tests.

Its "database" is a folder of ``run_<n>.json`` files; ``n`` is the run id and the legacy
``sync_priority``. It imports only the module paths such backends import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from etiket_sync_agent.connectors.sync_source_abstract import (
    ScopeRequirement,
    SyncSourceDatabaseBase,
)
from etiket_sync_agent.schemas import SyncItemCreate, SyncItemSchema
from etiket_sync_agent.sync.sync_records import SyncRecordManager
from etiket_sync_agent.sync.sync_utilities import (
    DatasetInfo,
    FileInfo,
    FileType,
    SyncUtilities,
)


@dataclass
class LegacyRunsConfig:
    runs_directory: Path
    tags: list[str] = field(default_factory=list, metadata={"description": "extra keywords"})
    label: str | None = None

    def __post_init__(self) -> None:
        self.runs_directory = Path(self.runs_directory).expanduser()

    async def validate(self, current_sync_source: object = None) -> bool:
        if not self.runs_directory.is_dir():
            raise ValueError(f"{self.runs_directory} is not a folder")
        return True


def _runs(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for path in directory.glob("run_*.json"):
        try:
            found.append((int(path.stem.split("_", 1)[1]), path))
        except ValueError:
            continue
    return sorted(found)


class LegacyRunsSync(SyncSourceDatabaseBase):
    sync_agent_name = "Legacy runs"
    config_data_class = LegacyRunsConfig
    scope_requirement = ScopeRequirement.REQUIRED
    supports_scope_mapping = False
    live_sync_implemented = False
    has_owner = False

    @staticmethod
    async def get_new_datasets(
        configData: LegacyRunsConfig, last_sync_item: SyncItemSchema | None
    ) -> list[SyncItemCreate]:
        after = last_sync_item.sync_priority if last_sync_item is not None else -1
        return [
            SyncItemCreate(data_identifier=f"run-{run_id}", sync_priority=run_id)
            for run_id, _ in _runs(configData.runs_directory)
            if run_id > after
        ]

    @staticmethod
    async def check_live_dataset(
        configData: LegacyRunsConfig, syncIdentifier: SyncItemSchema, maxPriority: bool
    ) -> bool:
        return False

    @staticmethod
    async def sync_dataset_normal(
        configData: LegacyRunsConfig, syncIdentifier: SyncItemSchema, sync_record: SyncRecordManager
    ) -> None:
        run_id = int(syncIdentifier.data_identifier.split("-", 1)[1])
        path = configData.runs_directory / f"run_{run_id}.json"
        with sync_record.task("read run"):
            content = json.loads(path.read_text(encoding="utf-8"))
        sync_record.add_log(f"read run {run_id}")
        info = DatasetInfo(
            name=content["name"],
            dataset_uuid=syncIdentifier.dataset_uuid,
            alt_uid=f"legacy-run-{run_id}",
            created=None,
            keywords=list(configData.tags),
            attributes={"run_id": run_id},
        )
        await SyncUtilities.create_or_update_dataset(False, syncIdentifier, info, sync_record)
        SyncUtilities.upload_file(
            path,
            syncIdentifier,
            FileInfo(name="run", file_name=path.name, file_type=FileType.JSON),
            sync_record,
        )
        SyncUtilities.upload_json(
            {"values": content.get("values", [])},
            syncIdentifier,
            FileInfo(name="analysis/values", file_name="values.json"),
            sync_record,
        )
