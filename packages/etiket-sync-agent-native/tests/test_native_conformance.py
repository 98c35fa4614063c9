"""The core's conformance kit against the native backend (real store, engine and local server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from etiket_sync_agent_native import Dataset, NativeSync, close_stores
from etiket_sync_agent_native.testing import make_native_dataset

from etiket_sync_agent.testing import DatabaseBackendConformance, tree_digest

SCOPE = "native-lab"


class TestNativeSyncConformance(DatabaseBackendConformance):
    backend = NativeSync
    scope_identifiers: ClassVar[tuple[str, ...]] = (SCOPE,)

    def make_source(self, tmp_path: Path) -> dict[str, Any]:
        (tmp_path / "source").mkdir(exist_ok=True)
        return {"native_directory": str(tmp_path / "source")}

    # Each fixture method closes the script-side catalog connections at its end, as a finished
    # script would, so the "source unchanged" snapshots see the catalog file in its final state.
    def add_dataset(self, config: dict[str, Any], index: int) -> str:
        key = make_native_dataset(Path(config["native_directory"]), index, scope=SCOPE).uuid
        close_stores()
        return key

    def grow_live_dataset(self, config: dict[str, Any], key: str | None) -> str:
        directory = Path(config["native_directory"])
        if key is None:
            ds = Dataset.create("live native measurement", SCOPE, directory=directory)
        else:
            ds = Dataset.load(key, directory=directory)
        ds.add_file(f"part {len(ds.files)}\n".encode(), name=f"parts/part_{len(ds.files)}.txt")
        close_stores()
        return ds.uuid

    def finish_live_dataset(self, config: dict[str, Any], key: str) -> None:
        ds = Dataset.load(key, directory=Path(config["native_directory"]))
        ds.add_file(b'{"done": true}', name="summary.json")
        ds.complete()
        close_stores()

    def corrupt_dataset(self, config: dict[str, Any], index: int) -> str:
        ds = make_native_dataset(Path(config["native_directory"]), index, scope=SCOPE)
        ds.path_of("trace.csv").unlink()  # the store lost a file the catalog lists
        close_stores()
        return ds.uuid

    def source_snapshot(self, config: dict[str, Any], tmp_path: Path) -> Any:
        # The agent reads the WAL-mode catalog with a read-only connection, which (as any WAL
        # reader) may create SQLite's "-shm"/"-wal" side files; the catalog itself and every
        # stored file must stay byte-identical.
        digest = tree_digest(tmp_path / "source")
        return {k: v for k, v in digest.items() if not k.endswith(("-shm", "-wal"))}

    def expected_files(self, config: dict[str, Any], key: str) -> set[str]:
        return {"trace.csv", "analysis/fit.json"}
