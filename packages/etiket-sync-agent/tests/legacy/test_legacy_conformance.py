"""A backend written for the existing agent runs through our conformance kit, adapted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from legacy_example import LegacyRunsSync

from etiket_sync_agent.connectors.legacy import adapt_legacy
from etiket_sync_agent.testing import DatabaseBackendConformance


class TestLegacyBackendConformance(DatabaseBackendConformance):
    backend = adapt_legacy(LegacyRunsSync, "legacy_runs_sync_agent")

    def make_source(self, tmp_path: Path) -> dict[str, Any]:
        (tmp_path / "source").mkdir(exist_ok=True)
        return {"runs_directory": str(tmp_path / "source")}

    def add_dataset(self, config: dict[str, Any], index: int) -> str:
        path = Path(config["runs_directory"]) / f"run_{index + 1}.json"
        path.write_text(json.dumps({"name": f"run {index + 1}", "values": [index, 2]}))
        return f"run-{index + 1}"

    def corrupt_dataset(self, config: dict[str, Any], index: int) -> str:
        path = Path(config["runs_directory"]) / f"run_{index + 1}.json"
        path.write_text("{ not json")
        return f"run-{index + 1}"

    def expected_files(self, config: dict[str, Any], key: str) -> set[str]:
        return {"run", "analysis/values"}
