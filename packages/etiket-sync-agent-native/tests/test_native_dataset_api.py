"""The local API scripts use: create, add files, update, complete; the store and its catalog."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import hashlib
import multiprocessing
import sqlite3
import threading
import uuid
from pathlib import Path

import pytest
from etiket_sync_agent_native import (
    CatalogReader,
    Dataset,
    DatasetCompleteError,
    DatasetNotFoundError,
    NativeStore,
    NativeStoreError,
    default_native_directory,
)
from etiket_sync_agent_native.store import CATALOG_NAME
from etiket_sync_agent_native.testing import write_datasets


def test_create_add_files_and_complete(tmp_path: Path) -> None:
    source = tmp_path / "result.hdf5"
    source.write_bytes(b"\x89HDF" + b"\x01" * 100)
    ds = Dataset.create(
        "T1 sweep",
        "my-lab",
        attributes={"sample": "chip-7", "cooldown": 3, "fridge_ok": True, "temp": 0.01},
        keywords=["T1", "T1", " qubit "],
        description="first try",
        collected=dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc),
        directory=tmp_path / "store",
    )
    uuid.UUID(ds.uuid)
    assert (ds.name, ds.scope, ds.description) == ("T1 sweep", "my-lab", "first try")
    assert ds.attributes == {"sample": "chip-7", "cooldown": 3, "fridge_ok": True, "temp": 0.01}
    assert ds.keywords == ["T1", "qubit"]
    assert ds.collected == dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
    assert not ds.is_complete

    first = ds.add_file(source)
    assert (first.name, first.version, first.size) == ("result.hdf5", 1, 104)
    assert first.md5 == hashlib.md5(source.read_bytes()).hexdigest()
    ds.add_file(b'{"a": 1}', name="analysis/fit.json")
    assert ds.path_of("analysis/fit.json").read_bytes() == b'{"a": 1}'
    assert ds.path_of("result.hdf5").read_bytes() == source.read_bytes()
    assert source.read_bytes() == b"\x89HDF" + b"\x01" * 100, "the source file was changed"

    again = ds.add_file(b"new content", name="result.hdf5")
    assert again.version == 2
    assert ds.path_of("result.hdf5").read_bytes() == b"new content"
    assert [f.name for f in ds.files] == ["result.hdf5", "analysis/fit.json"]

    ds.update(attributes={"cooldown": 4}, keywords=["extra"], description="second try")
    assert ds.attributes["cooldown"] == 4
    assert ds.attributes["sample"] == "chip-7"
    assert ds.keywords == ["T1", "qubit", "extra"]

    ds.complete()
    assert ds.is_complete
    with pytest.raises(DatasetCompleteError, match="complete"):
        ds.add_file(b"late", name="late.txt")
    with pytest.raises(DatasetCompleteError):
        ds.update(attributes={"x": 1})
    ds.complete()  # idempotent

    loaded = Dataset.load(ds.uuid, directory=tmp_path / "store")
    assert loaded.is_complete
    assert [d.uuid for d in Dataset.list_all(directory=tmp_path / "store")] == [ds.uuid]
    assert "complete" in repr(loaded)


def test_context_manager_completes_only_on_success(tmp_path: Path) -> None:
    with Dataset.create("ok", "lab", directory=tmp_path) as ds:
        ds.add_file(b"x", name="x.txt")
    assert ds.refresh().is_complete
    with pytest.raises(RuntimeError), Dataset.create("crashed", "lab", directory=tmp_path) as bad:
        raise RuntimeError("script crashed")
    assert not bad.refresh().is_complete


@pytest.mark.parametrize(
    "name", ["", "/abs.txt", "../escape.txt", "a/../../b", "dir/", "a//b", "nul\x00.txt"]
)
def test_invalid_file_names_are_refused(tmp_path: Path, name: str) -> None:
    ds = Dataset.create("n", "lab", directory=tmp_path)
    with pytest.raises(ValueError, match="invalid file name"):
        ds.add_file(b"x", name=name)
    assert ds.refresh().files == []


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="name"):
        Dataset.create(" ", "lab", directory=tmp_path)
    with pytest.raises(ValueError, match="scope"):
        Dataset.create("x", "", directory=tmp_path)
    with pytest.raises(TypeError, match="attribute 'nested'"):
        Dataset.create("x", "lab", attributes={"nested": {"a": 1}}, directory=tmp_path)  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="keywords must be a list"):
        Dataset.create("x", "lab", keywords="one", directory=tmp_path)
    ds = Dataset.create("x", "lab", directory=tmp_path)
    with pytest.raises(ValueError, match="needs a name"):
        ds.add_file(b"bytes without a name")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ds.add_file(tmp_path / "missing.bin")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        ds.add_file(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="no native dataset"):
        Dataset.load(str(uuid.uuid4()), directory=tmp_path)
    with pytest.raises(ValueError):
        Dataset.create("x", "lab", uuid="not-a-uuid", directory=tmp_path)


def test_chosen_uuid_and_duplicates(tmp_path: Path) -> None:
    chosen = str(uuid.uuid4())
    assert Dataset.create("a", "lab", uuid=chosen, directory=tmp_path).uuid == chosen
    with pytest.raises(NativeStoreError, match="already exists"):
        Dataset.create("b", "lab", uuid=chosen, directory=tmp_path)


def test_naive_collected_is_local_time(tmp_path: Path) -> None:
    naive = dt.datetime(2024, 1, 2, 3, 4, 5)
    ds = Dataset.create("a", "lab", collected=naive, directory=tmp_path)
    assert ds.collected == naive.astimezone()


def test_default_directory_is_under_the_agent_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETIKET_SYNC_HOME", str(tmp_path / "home"))
    assert default_native_directory() == tmp_path / "home" / "native"
    ds = Dataset.create("a", "lab")
    assert ds.directory == tmp_path / "home" / "native"
    assert (tmp_path / "home" / "native" / CATALOG_NAME).is_file()


def test_catalog_is_wal_and_reader_is_read_only(tmp_path: Path) -> None:
    store = NativeStore(tmp_path)
    with sqlite3.connect(store.catalog) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    Dataset.create("a", "lab", directory=tmp_path)
    reader = CatalogReader(tmp_path)
    with reader._connection() as conn, pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM datasets")
    assert len(reader.list_after(None)) == 1


def test_reader_of_a_folder_without_catalog_is_empty_and_creates_nothing(tmp_path: Path) -> None:
    reader = CatalogReader(tmp_path)
    assert reader.list_after(None) == []
    assert reader.fingerprints() == {}
    assert reader.get(str(uuid.uuid4())) is None
    assert list(tmp_path.iterdir()) == []


def test_newer_catalog_schema_is_refused(tmp_path: Path) -> None:
    store = NativeStore(tmp_path)
    with sqlite3.connect(store.catalog) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(NativeStoreError, match="schema version 99"):
        CatalogReader(tmp_path).list_after(None)
    with pytest.raises(NativeStoreError, match="upgrade"):
        NativeStore(tmp_path)


def test_concurrent_writer_processes_and_a_reader_never_see_partial_files(tmp_path: Path) -> None:
    """Three script processes write one store while a reader checks every listed file."""
    store = tmp_path / "store"
    NativeStore(store)
    reader = CatalogReader(store)
    stop = threading.Event()
    problems: list[str] = []
    checked = [0]

    def read_loop() -> None:
        while not stop.is_set():
            for record in reader.list_after(None):
                full = reader.get(record.uuid)
                assert full is not None
                for f in full.files:
                    data = reader.path_of(f).read_bytes()
                    checked[0] += 1
                    if len(data) != f.size or hashlib.md5(data).hexdigest() != f.md5:
                        problems.append(f"{record.name}/{f.name}: {len(data)} of {f.size} bytes")

    thread = threading.Thread(target=read_loop)
    thread.start()
    try:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(3, mp_context=context) as pool:
            jobs = [pool.submit(write_datasets, str(store), f"w{n}", 8, 300_000) for n in range(3)]
            uuids = [u for job in jobs for u in job.result(timeout=240)]
    finally:
        stop.set()
        thread.join()
    assert not problems, problems[:5]
    assert checked[0] > 0
    records = reader.list_after(None)
    assert sorted(r.uuid for r in records) == sorted(uuids)
    assert [r.id for r in records] == sorted(r.id for r in records)
    assert all(r.complete for r in records)
    assert not list((store / ".incoming").iterdir()), "temporary copies were left behind"


def test_a_copy_interrupted_midway_is_never_listed(tmp_path: Path) -> None:
    """A script killed while copying leaves only a temporary file, which no reader looks at."""
    ds = Dataset.create("killed", "lab", directory=tmp_path)
    (tmp_path / ".incoming" / "deadbeef.part").write_bytes(b"half a fi")
    assert CatalogReader(tmp_path).get(ds.uuid) is not None
    record = CatalogReader(tmp_path).get(ds.uuid)
    assert record is not None
    assert record.files == ()
    ds.add_file(b"whole file", name="f.bin")
    record = CatalogReader(tmp_path).get(ds.uuid)
    assert record is not None
    assert [f.name for f in record.files] == ["f.bin"]
    assert (tmp_path / record.files[0].stored).read_bytes() == b"whole file"
