"""Bad input through the whole agent: each problem is a recorded item error or a correct later
sync, the loop keeps running, and the source tree is unchanged."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from etiket_sync_agent.testing import agent_harness, tree_digest


def _folderbase() -> Any:
    from etiket_sync_agent_folderbase import FolderBaseSync

    return FolderBaseSync


def _dataset(root: Path, name: str, files: dict[str, bytes]) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "_QH_dataset_info.yaml").write_text(f"dataset_name: {name}\n")
    for rel, content in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return folder


def _states(harness: Any) -> dict[str, Any]:
    return {item.natural_key: item for item in harness.items("tree")}


def test_odd_names_empty_files_and_symlink_loops(tmp_path: Path) -> None:
    source = tmp_path / "source"
    _dataset(source, "spaces and #hash", {"a b#c.txt": b"x", "ünïcödé/δ.dat": b"y"})
    _dataset(source, "empty", {"zero.bin": b""})
    looped = _dataset(source, "loop", {"f.txt": b"z"})
    os.symlink(looped, looped / "again")
    before = tree_digest(source)
    with agent_harness(tmp_path / "h") as harness:
        harness.add_source("tree", _folderbase(), {"root_directory": str(source)})
        harness.run_until_idle()
        states = _states(harness)
        assert {k: getattr(v.state, "value", v.state) for k, v in states.items()} == {
            "spaces and #hash": "synced",
            "empty": "synced",
            "loop": "synced",
        }
        files = harness.server_files(states["empty"].dataset_uuid)
        assert [(f.name, f.size) for f in files] == [("zero.bin", 0)]
        names = {f.name for f in harness.server_files(states["spaces and #hash"].dataset_uuid)}
        assert names == {"a b#c.txt", "ünïcödé/δ.dat"}
    assert tree_digest(source) == before


def test_corrupt_yaml_is_an_item_error_and_others_sync(tmp_path: Path) -> None:
    source = tmp_path / "source"
    _dataset(source, "good", {"x.txt": b"1"})
    bad = _dataset(source, "bad", {"x.txt": b"1"})
    (bad / "_QH_dataset_info.yaml").write_text("dataset_name: [unclosed\n")
    with agent_harness(tmp_path / "h") as harness:
        harness.add_source("tree", _folderbase(), {"root_directory": str(source)})
        harness.run_until_idle()
        states = _states(harness)
        assert getattr(states["good"].state, "value", None) == "synced"
        assert getattr(states["bad"].state, "value", None) == "failed"
        assert states["bad"].last_error
        # Fixing the file makes the item sync on a later pass.
        (bad / "_QH_dataset_info.yaml").write_text("dataset_name: fixed\n")
        harness.run_until_idle()
        assert getattr(_states(harness)["bad"].state, "value", None) == "synced"


def test_unreadable_file_is_an_item_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "source"
    folder = _dataset(source, "locked", {"secret.bin": b"s", "open.txt": b"o"})
    _dataset(source, "fine", {"x.txt": b"x"})
    secret = folder / "secret.bin"
    secret.chmod(0)
    if os.access(secret, os.R_OK):
        # Root reads any file, so permission denied cannot happen for real here: make opening
        # exactly this file fail the way it does for an ordinary user.
        import builtins

        real_open = builtins.open

        def guarded_open(file: Any, *args: Any, **kwargs: Any) -> Any:
            if str(file) == str(secret):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", guarded_open)
    try:
        with agent_harness(tmp_path / "h") as harness:
            harness.add_source("tree", _folderbase(), {"root_directory": str(source)})
            harness.run_until_idle()
            states = _states(harness)
            assert getattr(states["fine"].state, "value", None) == "synced"
            item = states["locked"]
            assert getattr(item.state, "value", None) == "failed"
            assert "ermission denied" in (item.last_error or "")
            assert "secret.bin" in (item.last_error or "")
    finally:
        secret.chmod(0o644)


def test_file_deleted_between_scan_and_upload_then_synced(tmp_path: Path) -> None:
    source = tmp_path / "source"
    folder = _dataset(source, "vanishing", {"keep.txt": b"k", "gone.txt": b"g"})
    with agent_harness(tmp_path / "h") as harness:
        harness.add_source("tree", _folderbase(), {"root_directory": str(source)})
        backend_cls = _folderbase()
        original = backend_cls.sync_dataset

        def delete_then_sync(self: Any, item: Any, ctx: Any) -> None:
            original(self, item, ctx)
            (folder / "gone.txt").unlink(missing_ok=True)  # vanishes after the plan was made

        backend_cls.sync_dataset = delete_then_sync
        try:
            harness.run(1)
        finally:
            backend_cls.sync_dataset = original
        item = _states(harness)["vanishing"]
        assert getattr(item.state, "value", None) == "failed"
        assert "vanished" in (item.last_error or "")
        harness.run_until_idle()
        item = _states(harness)["vanishing"]
        assert getattr(item.state, "value", None) == "synced"
        assert {f.name for f in harness.server_files(item.dataset_uuid)} == {"keep.txt"}


def test_file_growing_during_upload_is_not_marked_done(tmp_path: Path) -> None:
    source = tmp_path / "source"
    folder = _dataset(source, "growing", {"big.bin": os.urandom(30 * 1024 * 1024)})
    stop = threading.Event()

    def grow() -> None:
        with open(folder / "big.bin", "ab") as handle:
            while not stop.is_set():
                handle.write(b"more")
                handle.flush()
                time.sleep(0.002)

    with agent_harness(tmp_path / "h") as harness:
        harness.add_source("tree", _folderbase(), {"root_directory": str(source)})
        writer = threading.Thread(target=grow)
        writer.start()
        try:
            harness.run(1)
        finally:
            stop.set()
            writer.join()
        item = _states(harness)["growing"]
        assert getattr(item.state, "value", None) == "failed", "a changing file was marked done"
        harness.run_until_idle()
        item = _states(harness)["growing"]
        assert getattr(item.state, "value", None) == "synced"
        files = harness.server_files(item.dataset_uuid)
        assert len(files) == 1
        assert files[0].size == (folder / "big.bin").stat().st_size
        assert files[0].md5_stored == files[0].md5_declared
