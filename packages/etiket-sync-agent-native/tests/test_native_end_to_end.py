"""End to end over HTTP: 100 native datasets, some written while the agent runs (slow)."""

from __future__ import annotations

import collections
import threading
import time
from pathlib import Path

import pytest
from etiket_sync_agent_native import Dataset, NativeSync
from etiket_sync_agent_native.testing import make_native_dataset

from etiket_sync_agent.testing import AgentHarness, fast_options, tree_digest

COUNT = 100


@pytest.mark.slow
def test_hundred_native_datasets_sync_completely(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    harness = AgentHarness(tmp_path / "harness", options=fast_options())
    harness.register_backend(NativeSync)
    try:
        harness.add_source(
            "native",
            NativeSync,
            {"native_directory": str(store)},
            scope_mapping={"lab-a": harness.scope_uuid},
        )
        uuids = [
            make_native_dataset(store, i, scope="lab-a" if i % 2 else harness.scope_name).uuid
            for i in range(COUNT // 2)
        ]
        errors: list[BaseException] = []

        def script() -> None:  # a lab script writing while the agent syncs
            try:
                for i in range(COUNT // 2, COUNT):
                    uuids.append(make_native_dataset(store, i, scope="lab-a").uuid)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        writer = threading.Thread(target=script)
        writer.start()
        while writer.is_alive():
            harness.run(2)
        writer.join()
        assert not errors, errors
        started = time.monotonic()
        harness.run_until_idle(200)
        print(f"\nrun_until_idle after the writer: {time.monotonic() - started:.1f} s")

        items = {i.natural_key: i for i in harness.items("native")}
        assert set(items) == set(uuids)
        states = collections.Counter(
            str(getattr(i.state, "value", i.state)) for i in items.values()
        )
        assert states == {"synced": COUNT}, [i.last_error for i in items.values() if i.last_error]
        assert len(harness.datasets()) == COUNT
        total = 0
        for key in uuids:
            files = harness.server_files(key)
            assert {f.name for f in files} == {"trace.csv", "analysis/fit.json"}, key
            assert all(f.md5_declared == f.md5_stored for f in files), key
            total += len(files)
        assert total == 2 * COUNT

        # Editing one file of one dataset (still open) uploads exactly one new version.
        before = tree_digest(store)
        live = Dataset.create("late dataset", "lab-a", directory=store)
        live.add_file(b"first\n", name="log.txt")
        harness.run(3)
        state = {i.natural_key: i for i in harness.items("native")}[live.uuid].state
        assert str(getattr(state, "value", state)) == "live"
        live.add_file(b"first\nsecond\n", name="log.txt")
        live.complete()
        harness.run_until_idle(50)
        log_versions = [f for f in harness.server_files(live.uuid) if f.name == "log.txt"]
        assert len(log_versions) == 2
        versions = sum(len(f.files) for f in harness.datasets() if str(f.uuid) != live.uuid)
        assert versions == total, "other datasets got new file versions"
        harness.run(3)
        assert len(harness.datasets()) == COUNT + 1
        after = tree_digest(store)
        assert {k: v for k, v in after.items() if k in before and "sqlite" not in k} == {
            k: v for k, v in before.items() if "sqlite" not in k
        }, "the agent changed stored files"
    finally:
        harness.close()
