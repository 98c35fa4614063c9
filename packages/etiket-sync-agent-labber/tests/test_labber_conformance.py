"""The core's conformance kit against the labber backend."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from etiket_sync_agent_labber import LabberSync, converted_name, natural_key
from etiket_sync_agent_labber import testing as lt

from etiket_sync_agent.testing import FileBackendConformance

_START = dt.datetime(2024, 3, 4, 10, 0, tzinfo=dt.timezone.utc)


class TestLabberSyncConformance(FileBackendConformance):
    backend = LabberSync

    def make_source(self, tmp_path: Path) -> dict[str, Any]:
        source = tmp_path / "source"
        source.mkdir(exist_ok=True)
        lt.write_database_file(source)
        self._specs: dict[str, tuple[Path, lt.LabberFileSpec]] = {}
        return {"labber_directory": str(source), "set_up": "fridge"}

    def _write(self, config: dict[str, Any], index: int, **kwargs: Any) -> tuple[str, Path]:
        when = _START + dt.timedelta(days=index, minutes=index)
        spec = lt.demo_spec(index, seed=index, creation_time=when.timestamp())
        rel = lt.labber_relpath(when, f"{spec.log_name} {index}")
        path = Path(config["labber_directory"]) / rel
        lt.write_labber_file(path, spec, **kwargs)
        key = natural_key(rel, spec.creation_time)
        self._specs[key] = (path, spec)
        return key, path

    def add_dataset(self, config: dict[str, Any], index: int) -> str:
        return self._write(config, index)[0]

    def corrupt_dataset(self, config: dict[str, Any], index: int) -> str:
        when = _START + dt.timedelta(days=index)
        rel = lt.labber_relpath(when, f"exported by hand {index}")
        lt.write_not_hdf5(Path(config["labber_directory"]) / rel)
        return rel

    def grow_live_dataset(self, config: dict[str, Any], key: str | None) -> str:
        if key is None:
            # kind 1 (2-D with traces); index 11 makes it the newest file of the source
            return self._write(config, 11, written=7)[0]
        path, spec = self._specs[key]
        written = self._written(path) + 9
        lt.append_points(path, spec, written)
        return key

    @staticmethod
    def _written(path: Path) -> int:
        import h5py

        with h5py.File(path, "r", locking=False) as f:
            return int(f["Data"].attrs["Written points"])

    def finish_live_dataset(self, config: dict[str, Any], key: str) -> None:
        path, spec = self._specs[key]
        lt.finish_log(path, spec)

    def expected_files(self, config: dict[str, Any], key: str) -> set[str]:
        _path, spec = self._specs[key]
        names = {"original", "settings", "instruments"}
        labels = [f"Log_{i + 1}" for i in range(len(spec.logs))]
        names |= {converted_name(label, labels) for label in labels}
        return names
