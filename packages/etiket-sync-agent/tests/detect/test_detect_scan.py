"""The core's walk of file sources: levels, single files, fingerprints, caching, safety."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path, PurePosixPath

import pytest

from etiket_sync_agent import ScopePolicy, SyncItem, SyncSourceFileBase
from etiket_sync_agent.detect import DATASET_INFO_FILE, TreeScanner, discover_file_items
from etiket_sync_agent.errors import SourceError
from etiket_sync_agent.testing import tree_digest


@dataclasses.dataclass
class _Cfg:
    root: Path
    level: int = -1
    single: bool = False


class _Files(SyncSourceFileBase):
    name = "scan-test"
    config_class = _Cfg
    scope_policy = ScopePolicy.OPTIONAL

    def root_path(self) -> Path:
        return Path(self.config.root)

    def dataset_level(self) -> int:
        return int(self.config.level)

    def sync_dataset(self, item: SyncItem, ctx: object) -> None:
        raise AssertionError("not called")


class _SingleFiles(_Files):
    name = "scan-test-single"
    is_single_file = True


def _write(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_level_minus_one_finds_info_folders_and_nested_ones(tmp_path: Path) -> None:
    _write(tmp_path / "a" / DATASET_INFO_FILE)
    _write(tmp_path / "a" / "data.csv")
    _write(tmp_path / "a" / "inner" / DATASET_INFO_FILE)
    _write(tmp_path / "a" / "inner" / "more.txt")
    _write(tmp_path / "b" / "c" / DATASET_INFO_FILE)
    _write(tmp_path / "not-a-dataset" / "file.txt")
    _write(tmp_path / ".hidden" / DATASET_INFO_FILE)
    keys = sorted(i.key for i in discover_file_items(_Files(_Cfg(tmp_path))))
    assert keys == ["a", "a/inner", "b/c"]


def test_nested_dataset_files_do_not_change_the_parent_fingerprint(tmp_path: Path) -> None:
    _write(tmp_path / "a" / DATASET_INFO_FILE)
    _write(tmp_path / "a" / "inner" / DATASET_INFO_FILE)
    before = {i.key: i.fingerprint for i in discover_file_items(_Files(_Cfg(tmp_path)))}
    _write(tmp_path / "a" / "inner" / "new.txt")
    after = {i.key: i.fingerprint for i in discover_file_items(_Files(_Cfg(tmp_path)))}
    assert before["a"] == after["a"]
    assert before["a/inner"] != after["a/inner"]


def test_level_n_lists_folders_at_depth_n(tmp_path: Path) -> None:
    _write(tmp_path / "20240101" / "20240101-101010-000-abcdef-run" / "dataset.hdf5")
    _write(tmp_path / "20240101" / "20240101-111111-000-abcdef" / "dataset.hdf5")
    _write(tmp_path / "20240101" / "stray.txt")
    keys = sorted(i.key for i in discover_file_items(_Files(_Cfg(tmp_path, level=2))))
    assert keys == [
        "20240101/20240101-101010-000-abcdef-run",
        "20240101/20240101-111111-000-abcdef",
    ]


def test_single_file_sources_yield_files(tmp_path: Path) -> None:
    _write(tmp_path / "2024" / "01" / "Data_0101" / "log one.hdf5")
    _write(tmp_path / "2024" / "01" / "Data_0101" / ".tmp.hdf5")
    _write(tmp_path / "Database.hdf5")
    items = discover_file_items(_SingleFiles(_Cfg(tmp_path, level=-1)))
    assert sorted(i.key for i in items) == ["2024/01/Data_0101/log one.hdf5", "Database.hdf5"]
    at_depth = discover_file_items(_SingleFiles(_Cfg(tmp_path, level=4)))
    assert [i.key for i in at_depth] == ["2024/01/Data_0101/log one.hdf5"]


def test_fingerprint_changes_with_content_not_with_a_rescan(tmp_path: Path) -> None:
    data = _write(tmp_path / "a" / DATASET_INFO_FILE)
    scanner = TreeScanner(_Files(_Cfg(tmp_path)))
    first = scanner.scan().items[0].fingerprint
    assert scanner.scan().items[0].fingerprint == first
    data.write_text("changed content")
    os.utime(data, ns=(1, 2_000_000_000))
    assert scanner.scan().items[0].fingerprint != first


def test_unchanged_directories_are_not_listed_again(tmp_path: Path) -> None:
    for i in range(5):
        _write(tmp_path / f"d{i}" / DATASET_INFO_FILE)
    scanner = TreeScanner(_Files(_Cfg(tmp_path)))
    assert scanner.scan().dirs_listed >= 6
    assert scanner.scan().dirs_listed == 0
    _write(tmp_path / "d9" / DATASET_INFO_FILE)
    again = scanner.scan()
    assert 1 <= again.dirs_listed <= 2
    assert len(again.items) == 6


def test_missing_root_is_a_source_error_not_an_empty_tree(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        discover_file_items(_Files(_Cfg(tmp_path / "unmounted")))


def test_symlink_loops_are_not_followed(tmp_path: Path) -> None:
    _write(tmp_path / "a" / DATASET_INFO_FILE)
    os.symlink(tmp_path, tmp_path / "a" / "loop")
    items = discover_file_items(_Files(_Cfg(tmp_path)))
    assert [i.key for i in items] == ["a"]


def test_odd_names_and_unreadable_folders(tmp_path: Path) -> None:
    _write(tmp_path / "spaces and #hash ünïcode" / DATASET_INFO_FILE)
    locked = tmp_path / "locked"
    _write(locked / "x" / DATASET_INFO_FILE)
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as a user that ignores permissions")
        result = TreeScanner(_Files(_Cfg(tmp_path))).scan()
        assert [i.key for i in result.items] == ["spaces and #hash ünïcode"]
        assert any("locked" in e for e in result.errors)
    finally:
        locked.chmod(0o755)


def test_accept_and_make_item_hooks_are_used(tmp_path: Path) -> None:
    class OnlyHdf5(_SingleFiles):
        name = "scan-test-hdf5"

        def accept_path(self, rel_path: PurePosixPath, abs_path: Path) -> bool:
            return rel_path.suffix == ".hdf5"

        def make_item(self, rel_path: PurePosixPath, abs_path: Path) -> SyncItem | None:
            if abs_path.stat().st_size == 0:
                return None  # header not written yet: try later
            return SyncItem(key=f"k:{rel_path.name}", priority=1.0)

    _write(tmp_path / "a.hdf5")
    _write(tmp_path / "b.txt")
    _write(tmp_path / "empty.hdf5", "")
    items = discover_file_items(OnlyHdf5(_Cfg(tmp_path)))
    assert [(i.key, i.path) for i in items] == [("k:a.hdf5", "a.hdf5")]
    assert items[0].fingerprint


def test_scanning_never_writes(tmp_path: Path) -> None:
    _write(tmp_path / "a" / DATASET_INFO_FILE, "name: x")
    before = tree_digest(tmp_path)
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    TreeScanner(_Files(_Cfg(tmp_path))).scan()
    assert tree_digest(tmp_path) == before
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == mtimes
