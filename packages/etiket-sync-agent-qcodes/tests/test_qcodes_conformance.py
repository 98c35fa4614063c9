"""The core's conformance kit against the qcodes backend, on QCoDeS databases written in code."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from etiket_sync_agent_qcodes import QCoDeSSync
from etiket_sync_agent_qcodes.rundescriber import ParamSpec
from etiket_sync_agent_qcodes.testing import QCoDeSWriter, RunHandle, sweep_1d_params

from etiket_sync_agent.testing import DatabaseBackendConformance


def _writer(config: dict[str, Any]) -> QCoDeSWriter:
    return QCoDeSWriter(config["database_path"])


class TestQCoDeSSyncConformance(DatabaseBackendConformance):
    backend = QCoDeSSync

    def make_source(self, tmp_path: Path) -> dict[str, Any]:
        (tmp_path / "source").mkdir(exist_ok=True)
        path = tmp_path / "source" / "experiments.db"
        writer = QCoDeSWriter(path)
        self._exp = writer.new_experiment("conformance", "sample_c")
        self._live: dict[str, RunHandle] = {}
        return {"database_path": str(path), "set_up": "fridge"}

    def add_dataset(self, config: dict[str, Any], index: int) -> str:
        run = _writer(config).sweep_1d(self._exp, f"conformance run {index}", points=5 + index)
        return run.guid

    def grow_live_dataset(self, config: dict[str, Any], key: str | None) -> str:
        writer = _writer(config)
        if key is None:
            run = writer.new_run(
                self._exp, "live run", sweep_1d_params(), shapes={"current": (20,)}
            )
            self._live[run.guid] = run
            start = 0
        else:
            run = self._live[key]
            start = 3
        gate = np.arange(start, start + 3, dtype=float)
        writer.add_columns(run, {"gate": gate, "current": gate * 2})
        return run.guid

    def finish_live_dataset(self, config: dict[str, Any], key: str) -> None:
        writer = _writer(config)
        run = self._live.pop(key)
        gate = np.arange(6, 20, dtype=float)
        writer.add_columns(run, {"gate": gate, "current": gate * 2})
        writer.complete(run)

    def corrupt_dataset(self, config: dict[str, Any], index: int) -> str:
        writer = _writer(config)
        params = [ParamSpec("t", "numeric"), ParamSpec("trace", "array", depends_on=("t",))]
        run = writer.new_run(self._exp, "broken blobs", params)
        conn = writer.connect()
        try:
            conn.execute(
                f'INSERT INTO "{run.table}" (t, trace) VALUES (1.0, ?)', (b"not an npy blob",)
            )
            conn.commit()
        finally:
            conn.close()
        writer.complete(run)
        return run.guid

    def expected_files(self, config: dict[str, Any], key: str) -> set[str]:
        return {"measurement", "snapshot.json"}

    def source_snapshot(self, config: dict[str, Any], tmp_path: Path) -> Any:
        # The database file itself. A read-only SQLite connection to a WAL database leaves empty
        # -wal/-shm companions behind (as any reader does); they are not part of the data.
        return hashlib.md5(Path(config["database_path"]).read_bytes()).hexdigest()
