"""The core's conformance kit against the native backend.

The backend declares ``implemented = False`` for now, so only the contract and configuration tests
run; the behaviour tests start running (and need the fixture methods below) once it is implemented.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from etiket_sync_agent_native import NativeSync

from etiket_sync_agent.testing import DatabaseBackendConformance


class TestNativeSyncConformance(DatabaseBackendConformance):
    backend = NativeSync

    def make_source(self, tmp_path: Path) -> dict[str, Any]:
        (tmp_path / "source").mkdir(exist_ok=True)
        return {"native_directory": str(tmp_path / "source")}

    def add_dataset(self, config: dict[str, Any], index: int) -> str:
        raise NotImplementedError("lands with the native backend")

    def corrupt_dataset(self, config: dict[str, Any], index: int) -> str:
        raise NotImplementedError("lands with the native backend")
