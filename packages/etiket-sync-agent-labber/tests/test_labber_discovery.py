"""Discovery (keys, what is a dataset), configuration, and bad input."""

from __future__ import annotations

import builtins
import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from etiket_sync_agent_labber import LabberDirectoryWarning, LabberSync, natural_key
from etiket_sync_agent_labber import sync as labber_sync
from etiket_sync_agent_labber import testing as lt

from etiket_sync_agent import SyncContext, SyncItem
from etiket_sync_agent.connectors.config import parse_config
from etiket_sync_agent.detect import discover_file_items
from etiket_sync_agent.errors import ConfigError, SyncError

WHEN = dt.datetime(2024, 2, 29, 23, 59, tzinfo=dt.timezone.utc)
LONG_AGO = WHEN.timestamp()


def _write(root: Path, name: str, kind: int = 0, offset: float = 0.0) -> tuple[str, float]:
    spec = lt.demo_spec(kind, creation_time=WHEN.timestamp() + offset)
    rel = lt.labber_relpath(WHEN, name)
    lt.write_labber_file(root / rel, spec)
    return rel, spec.creation_time


def _age(path: Path) -> None:
    os.utime(path, (LONG_AGO, LONG_AGO))


def test_keys_layout_and_priorities(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
) -> None:
    first, t1 = _write(labber_root, "scan A", offset=0.5)
    second, _t2 = _write(labber_root, "scan B", offset=60.25)
    assert first == "2024/02/Data_0229/scan A.hdf5"
    # not datasets: Labber's index, other files, hidden files
    (labber_root / "2024" / "notes.txt").write_text("n")
    (labber_root / "2024/02/Data_0229/.scan C.hdf5").write_bytes(b"x")
    items = items_of(make_backend())
    assert set(items) == {first, second}
    assert items[first].key == natural_key(first, t1) == f"{first}@{t1:.6f}"
    assert items[second].priority > items[first].priority
    assert items[first].extra["creation_time"] == t1


def test_a_log_written_again_under_the_same_name_is_a_new_key(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
) -> None:
    rel, _t1 = _write(labber_root, "scan")
    backend = make_backend()
    old_item = items_of(backend)[rel]
    rel, _t2 = _write(labber_root, "scan", offset=3600)
    new_item = items_of(backend)[rel]
    assert old_item.key != new_item.key
    with pytest.raises(SyncError, match="was replaced by another log"):
        sync_item(backend, old_item)


def test_headers_are_read_once_per_file_version(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _write(labber_root, "a")
    _write(labber_root, "b", offset=1)
    calls: list[Path] = []
    real = labber_sync._probe_creation_time

    def counting(path: Path) -> float | None:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(labber_sync, "_probe_creation_time", counting)
    backend = make_backend()
    first = items_of(backend)
    second = items_of(backend)
    assert len(calls) == 2
    assert {k: i.key for k, i in first.items()} == {k: i.key for k, i in second.items()}


def test_config_validation(tmp_path: Path, labber_root: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            LabberSync.config_class, {"labber_directory": str(tmp_path / "nope"), "set_up": "x"}
        )
    assert info.value.field == "labber_directory"
    with pytest.raises(ConfigError) as info:
        parse_config(
            LabberSync.config_class,
            {"labber_directory": str(labber_root), "set_up": "x", "stale_after": -1},
        )
    assert info.value.field == "stale_after"
    with pytest.raises(ConfigError) as info:
        parse_config(LabberSync.config_class, {"labber_directory": str(labber_root), "set_up": " "})
    assert info.value.field == "set_up"
    bare = tmp_path / "no database"
    bare.mkdir()
    with pytest.warns(LabberDirectoryWarning, match=r"no Database\.hdf5"):
        config = parse_config(
            LabberSync.config_class, {"labber_directory": str(bare), "set_up": "x"}
        )
    assert config.labber_directory == bare
    assert config.stale_after == 300.0


# -- bad input ------------------------------------------------------------------------------------
def _bad_files(root: Path) -> dict[str, Path]:
    folder = root / "2024/02/Data_0229"
    spec = lt.demo_spec(1, creation_time=WHEN.timestamp())
    files = {
        "not hdf5": lt.write_not_hdf5(folder / "export.hdf5"),
        "truncated": lt.write_truncated(folder / "cut.hdf5", spec),
        "empty": folder / "empty.hdf5",
    }
    files["empty"].write_bytes(b"")
    for path in files.values():
        _age(path)
    return files


def test_bad_files_are_items_keyed_by_path_that_fail_clearly(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
) -> None:
    files = _bad_files(labber_root)
    good, _ = _write(labber_root, "good")
    backend = make_backend()
    items = items_of(backend)
    assert set(items) == {good} | {p.relative_to(labber_root).as_posix() for p in files.values()}
    messages = {}
    for what, path in files.items():
        rel = path.relative_to(labber_root).as_posix()
        assert items[rel].key == rel, "an unreadable header gives the path alone as key"
        with pytest.raises(SyncError) as info:
            sync_item(backend, items[rel])
        messages[what] = str(info.value)
    assert "is not an HDF5 file" in messages["not hdf5"]
    assert "truncated or damaged" in messages["truncated"]
    assert "cut.hdf5" in messages["truncated"]
    assert "is empty" in messages["empty"]
    assert sync_item(backend, items[good]).plan.dataset is not None


def test_files_being_created_are_skipped_until_readable(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
) -> None:
    folder = labber_root / "2024/02/Data_0229"
    folder.mkdir(parents=True)
    (folder / "new.hdf5").write_bytes(b"")
    lt.write_truncated(folder / "half.hdf5", lt.demo_spec(0))
    backend = make_backend()
    assert items_of(backend) == {}, "fresh empty/half-written files wait for the next scan"
    _age(folder / "new.hdf5")
    _age(folder / "half.hdf5")
    assert set(items_of(backend)) == {"2024/02/Data_0229/new.hdf5", "2024/02/Data_0229/half.hdf5"}


def test_unreadable_file_is_a_clear_item_error(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rel, _ = _write(labber_root, "locked")
    secret = labber_root / rel
    _age(secret)
    secret.chmod(0)
    real_open = builtins.open

    def guarded(file: Any, *args: Any, **kwargs: Any) -> Any:
        # root reads anything: make opening this file fail as it does for an ordinary user
        if str(file) == str(secret):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    try:
        backend = make_backend()
        item = items_of(backend)[rel]
        assert item.key == rel
        with pytest.raises(SyncError, match=r"permission denied reading .*locked\.hdf5"):
            sync_item(backend, item)
    finally:
        secret.chmod(0o644)


def test_vanished_file_is_a_clear_item_error(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
) -> None:
    rel, _ = _write(labber_root, "gone")
    backend = make_backend()
    item = items_of(backend)[rel]
    (labber_root / rel).unlink()
    with pytest.raises(SyncError, match="no longer exists"):
        sync_item(backend, item)


def test_a_file_repaired_after_failing_gets_its_proper_key(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
    sync_item: Callable[..., SyncContext],
) -> None:
    folder = labber_root / "2024/02/Data_0229"
    spec = lt.demo_spec(0, creation_time=WHEN.timestamp())
    path = lt.write_truncated(folder / "copied.hdf5", spec)
    _age(path)
    backend = make_backend()
    broken = items_of(backend)["2024/02/Data_0229/copied.hdf5"]
    assert broken.key == "2024/02/Data_0229/copied.hdf5"
    lt.write_labber_file(path, spec)  # the copy is finished
    repaired = items_of(backend)["2024/02/Data_0229/copied.hdf5"]
    assert repaired.key == natural_key("2024/02/Data_0229/copied.hdf5", spec.creation_time)
    assert sync_item(backend, repaired).plan.dataset is not None
    with pytest.raises(SyncError, match="this entry is obsolete"):
        sync_item(backend, broken)


def test_a_known_log_keeps_its_key_while_its_header_is_unreadable(
    labber_root: Path,
    make_backend: Callable[..., LabberSync],
    items_of: Callable[[LabberSync], dict[str, SyncItem]],
) -> None:
    rel, created = _write(labber_root, "rewritten")
    backend = make_backend()
    assert items_of(backend)[rel].key == natural_key(rel, created)
    path = labber_root / rel
    content = path.read_bytes()
    path.write_bytes(content[:300])  # a torn moment while the writer flushes
    assert items_of(backend)[rel].key == natural_key(rel, created)
    path.write_bytes(content)
    assert items_of(backend)[rel].key == natural_key(rel, created)


def test_demo_source_and_suffixes(tmp_path: Path) -> None:
    config = lt.make_demo_source(tmp_path / "demo")
    backend = LabberSync(
        parse_config(LabberSync.config_class, {**config, "is_server_folder": True})
    )
    assert backend.is_server_folder() is True
    items = discover_file_items(backend)
    assert len(items) == 5
    assert all(item.path and item.path.count("/") == 3 for item in items)
    assert all("Data_" in (item.path or "") for item in items)
    extra = tmp_path / "demo" / "2024" / "05" / "Data_0510" / "short suffix.H5"
    lt.write_labber_file(extra, lt.demo_spec(4, creation_time=1.0e9))
    assert len(discover_file_items(backend)) == 6
