"""A file-type backend written for the existing agent runs through our conformance kit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from legacy_folders import LegacyFoldersSync

from etiket_sync_agent.connectors.legacy import adapt_legacy
from etiket_sync_agent.testing import FileBackendConformance


class TestLegacyFileBackendConformance(FileBackendConformance):
    backend = adapt_legacy(LegacyFoldersSync, "legacy_folders_sync_agent")

    def make_source(self, tmp_path: Path) -> dict[str, Any]:
        (tmp_path / "source").mkdir(exist_ok=True)
        return {"root_directory": str(tmp_path / "source")}

    def add_dataset(self, config: dict[str, Any], index: int) -> str:
        folder = Path(config["root_directory"]) / f"set_{index}"
        folder.mkdir()
        (folder / "data.txt").write_text(f"dataset {index}\n")
        (folder / "meta.json").write_text(f'{{"index": {index}}}')
        return f"set_{index}"

    def corrupt_dataset(self, config: dict[str, Any], index: int) -> str:
        key = self.add_dataset(config, index)
        (Path(config["root_directory"]) / key / "BROKEN").write_text("x")
        return key

    def expected_files(self, config: dict[str, Any], key: str) -> set[str]:
        return {"data.txt", "meta.json"}
