"""Sync plain folder trees (datasets described by ``_QH_dataset_info.yaml``) to eTiKeT."""

from etiket_sync_agent_folderbase.info_file import INFO_FILE, DatasetInfoFile, read_info_file
from etiket_sync_agent_folderbase.sync import (
    FolderBaseConfig,
    FolderBaseSync,
    deterministic_zip,
    folders_overlap,
)

__all__ = [
    "INFO_FILE",
    "DatasetInfoFile",
    "FolderBaseConfig",
    "FolderBaseSync",
    "deterministic_zip",
    "folders_overlap",
    "read_info_file",
]
