"""The core's conformance kit against the quantify backend."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from etiket_sync_agent_quantify import QuantifySync
from etiket_sync_agent_quantify import testing as qt

from etiket_sync_agent.testing import FileBackendConformance

_START = dt.datetime(2024, 5, 1, 10, 0, 0, 250000)


class TestQuantifySyncConformance(FileBackendConformance):
    backend = QuantifySync

    _live: dict[str, qt.LiveRun]

    def make_source(self, tmp_path: Path) -> dict[str, Any]:
        (tmp_path / "source").mkdir(exist_ok=True)
        self._live = {}
        return {"quantify_directory": str(tmp_path / "source"), "set_up": "fridge"}

    def _root(self, config: dict[str, Any]) -> Path:
        return Path(config["quantify_directory"])

    def add_dataset(self, config: dict[str, Any], index: int) -> str:
        spec = qt.spec_2d(6, 4) if index % 2 else qt.spec_1d(21)
        tuid, _ = qt.write_experiment(
            self._root(config),
            _START + dt.timedelta(minutes=index),
            f"run {index} (amp=0.{index})",
            spec,
            salt=index,
            seed=index,
            snapshot="gz" if index == 2 else "",
        )
        return tuid

    def corrupt_dataset(self, config: dict[str, Any], index: int) -> str:
        # Older than the good runs, so it is never the live candidate.
        tuid, folder = qt.write_experiment(
            self._root(config), _START - dt.timedelta(days=1), "truncated", salt=index
        )
        data = (folder / "dataset.hdf5").read_bytes()
        (folder / "dataset.hdf5").write_bytes(data[: len(data) // 2])
        return tuid

    def grow_live_dataset(self, config: dict[str, Any], key: str | None) -> str:
        if key is None:
            run = qt.LiveRun(self._root(config), _START + dt.timedelta(hours=1), "live sweep")
            run.advance(5)
            self._live[run.tuid] = run
            return run.tuid
        self._live[key].advance(5)
        return key

    def finish_live_dataset(self, config: dict[str, Any], key: str) -> None:
        self._live[key].finish()

    def expected_files(self, config: dict[str, Any], key: str) -> set[str]:
        files = {"dataset.hdf5", "snapshot.json"}
        folder = next(self._root(config).glob(f"*/{key}*"))
        if "run 1" in folder.name:
            files.add("dataset_gridded.hdf5")
        if "run 2" in folder.name:
            files.add("snapshot.json.gz")
        return files
