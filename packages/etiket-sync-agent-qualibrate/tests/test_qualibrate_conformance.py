"""The core's conformance kit against the qualibrate backend."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
from etiket_sync_agent_qualibrate import QualibrateSync
from etiket_sync_agent_qualibrate.testing import NodeSpec, tiny_png, write_node

from etiket_sync_agent.testing import FileBackendConformance

_START = dt.datetime(2025, 3, 4, 10, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))


class TestQualibrateSyncConformance(FileBackendConformance):
    backend = QualibrateSync

    def make_source(self, tmp_path: Path) -> dict[str, Any]:
        (tmp_path / "source").mkdir(exist_ok=True)
        return {"qualibrate_directory": str(tmp_path / "source"), "set_up": "fridge"}

    def _root(self, config: dict[str, Any]) -> Path:
        return Path(config["qualibrate_directory"])

    def add_dataset(self, config: dict[str, Any], index: int) -> str:
        x = np.linspace(0, 1, 5 + index)
        spec = NodeSpec(
            f"node_{index}",
            _START + dt.timedelta(minutes=index),
            node_id=index + 1,
            parents=[index] if index else [],
            parameters={"qubits": ["q1"], "points": 5 + index},
            outcomes={"q1": "successful"},
            results={"raw": {"x": x, "y": x**2}, "fit": {"ok": True}, "fig": tiny_png()},
        )
        folder = write_node(self._root(config), spec)
        return folder.relative_to(self._root(config)).as_posix()

    def corrupt_dataset(self, config: dict[str, Any], index: int) -> str:
        spec = NodeSpec("broken", _START - dt.timedelta(days=1), node_id=100 + index)
        folder = write_node(self._root(config), spec)
        (folder / "node.json").write_text('{"created_at": "2025-', encoding="utf-8")
        return folder.relative_to(self._root(config)).as_posix()

    def expected_files(self, config: dict[str, Any], key: str) -> set[str]:
        folder = self._root(config) / key
        assert json.loads((folder / "data.json").read_text())["raw"]["x"].startswith("./")
        return {
            "node.json",
            "data.json",
            "arrays.npz",
            "fig.png",
            "parameters.json",
            "results.nc",
            "__thumbnail_0",
        }


def test_demo_source_syncs(tmp_path: Path) -> None:
    from etiket_sync_agent_qualibrate.testing import make_demo_source

    from etiket_sync_agent.testing import AgentHarness, fast_options

    config = make_demo_source(tmp_path / "source")
    harness = AgentHarness(tmp_path / "harness", options=fast_options())
    harness.register_backend(QualibrateSync)
    harness.add_source("demo", QualibrateSync, config)
    try:
        harness.run_until_idle(30)
        items = harness.items("demo")
        assert len(items) == 4
        assert all(str(getattr(i.state, "value", i.state)) == "synced" for i in items)
    finally:
        harness.close()
