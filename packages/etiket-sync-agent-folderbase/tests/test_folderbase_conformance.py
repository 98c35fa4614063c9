"""The core's conformance kit, run against the folderbase backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from etiket_sync_agent_folderbase import FolderBaseSync
from etiket_sync_agent_folderbase.testing import make_dataset

from etiket_sync_agent.testing import FileBackendConformance


class TestFolderBaseConformance(FileBackendConformance):
    backend = FolderBaseSync

    def make_source(self, tmp_path: Path) -> dict[str, Any]:
        source = tmp_path / "source"
        source.mkdir(exist_ok=True)
        return {"root_directory": str(source), "set_up": "fridge"}

    def add_dataset(self, config: dict[str, Any], index: int) -> str:
        rel = f"batch/dataset {index:03d}"
        make_dataset(
            Path(config["root_directory"]),
            rel,
            files={"data.csv": f"x,y\n{index},1\n".encode(), "sub/raw.bin": b"\x01" * 64},
        )
        return rel

    def corrupt_dataset(self, config: dict[str, Any], index: int) -> str:
        rel = f"batch/corrupt {index:03d}"
        make_dataset(
            Path(config["root_directory"]),
            rel,
            info="dataset_name: [unclosed\n",
            files={"data.csv": b"x\n"},
        )
        return rel

    def expected_files(self, config: dict[str, Any], key: str) -> set[str]:
        return {"data.csv", "sub/raw.bin"}
