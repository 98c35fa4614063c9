"""Folderbase and native together, end to end over HTTP, at two sizes.

The fast variant (default CI) uses a few dozen datasets; the slow variant (``nox -s faults`` or
``pytest -m slow``) is the issue's full size: 1,000 folderbase datasets with skips, converters,
thumbnails, nested info files and odd names, plus 100 native datasets. Both check that everything
syncs, that every stored byte matches, that an edit uploads exactly one new version, that a moved
folder uploads nothing, and that the source trees are unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from etiket_sync_agent.testing import AgentHarness, agent_harness, tree_digest

NATIVE_SCOPE = "native-lab"


def _tree(root: Path, count: int) -> dict[str, set[str]]:
    """A varied folderbase tree; returns the expected file names per dataset key."""
    from etiket_sync_agent_folderbase.testing import make_dataset, png_bytes

    expected: dict[str, set[str]] = {}
    odd = ["with space", "hash#and=equals", "ünïcödé (1)", "dots.in.name"]
    for i in range(count):
        rel = f"{2024 + i % 2}/{odd[i % len(odd)]} {i:04d}"
        files = {
            "notes.txt": f"dataset {i}\n".encode(),
            "raw/trace.bin": bytes([i % 256]) * (64 + i % 7),
            "scratch/tmp.bin": b"\0" * 32,
        }
        info = [f"dataset_name: scan {i}", "skip: ['scratch/**']", "tags: [scale]"]
        names = {"notes.txt", "raw/trace.bin"}
        if i % 3 == 0:
            files["sweep.csv"] = f"x (V),y (A)\n0,{i}\n1,{i + 1}\n".encode()
            info.append("converters: [csv-to-netcdf]")
            names |= {"sweep.csv", "sweep.nc"}
        if i % 5 == 0:
            files["plot.png"] = png_bytes(seed=i)
            info.append("thumbnails: ['plot.png']")
            names |= {"plot.png", "__thumbnail_0"}
        make_dataset(root, rel, info="\n".join(info) + "\n", files=files)
        expected[rel] = names
        if i % 10 == 0:  # a nested dataset: its files do not belong to the parent
            make_dataset(root, f"{rel}/nested", files={"inner.txt": b"inner"})
            expected[f"{rel}/nested"] = {"inner.txt"}
    return expected


def _native(directory: Path, count: int) -> None:
    from etiket_sync_agent_native import close_stores
    from etiket_sync_agent_native.testing import make_native_dataset

    for i in range(count):
        make_native_dataset(directory, i, scope=NATIVE_SCOPE)
    close_stores()


def _data_digest(directory: Path) -> dict[str, str]:
    """Digest of the native store's data files (its SQLite catalog and WAL files excluded)."""
    return {k: v for k, v in tree_digest(directory).items() if "catalog.sqlite" not in k}


def _state(item: Any) -> str:
    return str(getattr(item.state, "value", item.state))


def _check_source(harness: AgentHarness, source: str, expected: dict[str, set[str]] | None) -> int:
    """Every item synced, every stored byte right; returns the number of file versions."""
    items = harness.items(source)
    bad = {i.natural_key: (_state(i), i.last_error) for i in items if _state(i) != "synced"}
    assert not bad, f"{source}: not synced: {dict(list(bad.items())[:5])}"
    if expected is not None:
        assert {i.natural_key for i in items} == set(expected)
    versions = 0
    for item in items:
        files = harness.server_files(item.dataset_uuid)
        for f in files:
            assert f.md5_declared == f.md5_stored, f"{item.natural_key}/{f.name}"
        if expected is not None:
            assert {f.name for f in files} == expected[item.natural_key], item.natural_key
        versions += len(files)
    return versions


def _run(tmp_path: Path, folders: int, natives: int) -> None:
    from etiket_sync_agent_folderbase import FolderBaseSync
    from etiket_sync_agent_native import NativeSync

    tree = tmp_path / "tree"
    expected = _tree(tree, folders)
    native_dir = tmp_path / "native"
    _native(native_dir, natives)
    before_tree, before_native = tree_digest(tree), _data_digest(native_dir)

    with agent_harness(tmp_path / "h") as harness:
        harness.register_backend(FolderBaseSync)
        harness.register_backend(NativeSync)
        harness.add_source("tree", FolderBaseSync, {"root_directory": str(tree)})
        harness.add_source(
            "lab",
            NativeSync,
            {"native_directory": str(native_dir)},
            scope_mapping={NATIVE_SCOPE: harness.scope_uuid},
        )
        harness.run_until_idle(max_iterations=400)
        tree_versions = _check_source(harness, "tree", expected)
        _check_source(harness, "lab", None)
        assert len(harness.items("lab")) == natives
        assert len(harness.datasets()) == len(expected) + natives
        assert tree_digest(tree) == before_tree

        # One edited file → exactly one new version; a moved folder → nothing new.
        first = sorted(expected)[1]
        (tree / first / "notes.txt").write_bytes(b"edited\n")
        moved_from = sorted(expected)[2]
        os.rename(tree / moved_from, tree / "2024" / "moved here")
        edited_tree = tree_digest(tree)
        harness.run_until_idle(max_iterations=400)
        assert _check_source(harness, "tree", None) == tree_versions + 1
        assert len(harness.datasets()) == len(expected) + natives

        assert tree_digest(tree) == edited_tree
    assert _data_digest(native_dir) == before_native


def test_folderbase_and_native_sync_completely(tmp_path: Path) -> None:
    _run(tmp_path, folders=24, natives=6)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_folderbase_and_native_sync_completely_full_size(tmp_path: Path) -> None:
    _run(tmp_path, folders=1000, natives=100)
