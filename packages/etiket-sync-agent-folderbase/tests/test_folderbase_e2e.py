"""Folderbase end to end over HTTP: moved folders and edited files upload only what changed."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from etiket_sync_agent_folderbase import FolderBaseSync
from etiket_sync_agent_folderbase.testing import make_dataset

from etiket_sync_agent.testing import AgentHarness, tree_digest


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[AgentHarness]:
    h = AgentHarness(tmp_path / "h")
    h.register_backend(FolderBaseSync)
    try:
        yield h
    finally:
        h.close()


def _versions(harness: AgentHarness) -> set[tuple[str, str, int]]:
    """Every secured (dataset, file name, version) on the server."""
    return {
        (f.dataset_uuid, f.name, f.version_id)
        for ds in harness.datasets()
        for f in harness.server_files(str(ds.uuid))
    }


def _sync(harness: AgentHarness) -> None:
    """Run until idle and require every item to be synced."""
    harness.run_until_idle()
    states = {i.natural_key: (i.state, i.last_error) for i in harness.items("fb")}
    assert all(str(getattr(s, "value", s)) == "synced" for s, _ in states.values()), states


def _tree(root: Path, count: int) -> None:
    for i in range(count):
        make_dataset(
            root,
            f"run {i:02d}/ds {i:02d}",
            files={"data.csv": f"x,y\n{i},2\n".encode(), "raw/trace.bin": bytes([i]) * 256},
        )


def test_moving_a_dataset_folder_uploads_nothing_new(harness: AgentHarness, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    _tree(root, 3)
    harness.add_source("fb", FolderBaseSync, {"root_directory": str(root)})
    _sync(harness)
    before = _versions(harness)
    uuids = {i.natural_key: i.dataset_uuid for i in harness.items("fb")}
    assert len(before) == 3 * 2
    assert len(harness.datasets()) == 3

    # Move one dataset into another folder and rename another in place (os.rename keeps mtimes).
    (root / "archive").mkdir()
    os.rename(root / "run 00/ds 00", root / "archive/ds 00")
    os.rename(root / "run 01/ds 01", root / "run 01/ds 01 (renamed)")
    digest = tree_digest(root)
    _sync(harness)

    assert _versions(harness) == before, "a moved dataset was uploaded again"
    assert len(harness.datasets()) == 3
    after = {i.natural_key: i.dataset_uuid for i in harness.items("fb")}
    assert after == {
        "archive/ds 00": uuids["run 00/ds 00"],
        "run 01/ds 01 (renamed)": uuids["run 01/ds 01"],
        "run 02/ds 02": uuids["run 02/ds 02"],
    }
    assert tree_digest(root) == digest, "the agent wrote into the source tree"

    # Later edits of the moved dataset reach the same server dataset.
    (root / "archive/ds 00/data.csv").write_bytes(b"x,y\n0,3\n")
    _sync(harness)
    new = _versions(harness) - before
    assert new == {(uuids["run 00/ds 00"], "data.csv", v) for _, _, v in new}
    assert len(new) == 1


def test_a_copy_is_a_new_dataset_and_a_move_of_an_unchanged_twin_is_not_confused(
    harness: AgentHarness, tmp_path: Path
) -> None:
    root = tmp_path / "tree"
    _tree(root, 1)
    harness.add_source("fb", FolderBaseSync, {"root_directory": str(root)})
    _sync(harness)
    # copytree keeps mtimes (copy2), so the copy has the same fingerprint; the original still
    # exists, so the copy is a second dataset, not a move.
    shutil.copytree(root / "run 00/ds 00", root / "copy of ds 00")
    _sync(harness)
    keys = {i.natural_key for i in harness.items("fb")}
    assert keys == {"run 00/ds 00", "copy of ds 00"}
    assert len(harness.datasets()) == 2


def test_editing_one_file_uploads_exactly_one_new_version(
    harness: AgentHarness, tmp_path: Path
) -> None:
    root = tmp_path / "tree"
    _tree(root, 2)
    harness.add_source("fb", FolderBaseSync, {"root_directory": str(root)})
    _sync(harness)
    before = _versions(harness)
    target = root / "run 01/ds 01/raw/trace.bin"
    target.write_bytes(b"\x07" * 300)
    _sync(harness)
    new = _versions(harness) - before
    assert len(new) == 1
    ((dataset_uuid, name, _),) = new
    assert name == "raw/trace.bin"
    item = {i.natural_key: i for i in harness.items("fb")}["run 01/ds 01"]
    assert dataset_uuid == item.dataset_uuid
    # Touching a file without changing its bytes uploads nothing (the MD5 is unchanged).
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    _sync(harness)
    assert _versions(harness) - before == new


def test_a_failed_dataset_that_is_deleted_is_retired_and_comes_back(
    harness: AgentHarness, tmp_path: Path
) -> None:
    root = tmp_path / "tree"
    _tree(root, 1)
    make_dataset(root, "broken", info="dataset_name: [unclosed\n", files={"a.txt": b"a"})
    harness.add_source("fb", FolderBaseSync, {"root_directory": str(root)})
    harness.run_until_idle()
    states = {i.natural_key: str(getattr(i.state, "value", i.state)) for i in harness.items("fb")}
    assert states == {"run 00/ds 00": "synced", "broken": "failed"}

    shutil.rmtree(root / "broken")
    harness.run(2)
    items = {i.natural_key: i for i in harness.items("fb")}
    assert str(getattr(items["broken"].state, "value", items["broken"].state)) == "gone"
    assert str(getattr(items["run 00/ds 00"].state, "value", "")) == "synced"
    logs = [r.message for r in harness.store.item_logs(items["broken"].id)]
    assert any("no longer at the source" in m for m in logs)

    make_dataset(root, "broken", files={"a.txt": b"fixed"})
    _sync(harness)
    files = harness.server_files(items["broken"].dataset_uuid)
    assert [(f.name, f.size) for f in files] == [("a.txt", 5)]
