"""Folders the existing agent described or synced: its converters, manifests, names and types."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import h5netcdf
import h5py
import numpy as np
import pytest
import yaml
from etiket_sync_agent_folderbase import FolderBaseSync
from etiket_sync_agent_folderbase.converters import resolve_converter
from etiket_sync_agent_folderbase.manifest import MANIFEST_FILE, manifest_uuid_for
from etiket_sync_agent_folderbase.sync import description_of, file_type_of
from etiket_sync_agent_folderbase.testing import make_dataset

from etiket_sync_agent import FileType, SyncContext, SyncItem
from etiket_sync_agent.connectors.config import parse_config
from etiket_sync_agent.errors import SyncError
from etiket_sync_agent.testing import tree_digest

pytest.importorskip("etiket_sync_agent_converters")
from etiket_sync_agent_converters.testing import make_demo_zarr


def _backend(root: Path) -> FolderBaseSync:
    return FolderBaseSync(parse_config(FolderBaseSync.config_class, {"root_directory": str(root)}))


def _plan(root: Path, key: str, tmp_path: Path) -> SyncContext:
    work = tmp_path / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    ctx = SyncContext(SyncItem(key=key, path=key), work)
    _backend(root).sync_dataset(SyncItem(key=key, path=key), ctx)
    return ctx


def _legacy_info(converters: dict[str, Any], **extra: Any) -> str:
    """An info file as the existing agent's ``generate_dataset_info`` writes it (yaml.dump)."""
    content = {
        "version": "0.1",
        "dataset_name": "legacy",
        "collected": "2024-05-01T10:00:00",
        "converters": converters,
        **extra,
    }
    return yaml.safe_dump(content)


LEGACY_CSV = {
    "csv_to_hdf5_converter": {
        "module": "etiket_sync_agent_qh_converters.csv_to_hdf5",
        "class": "CSVToHDF5Converter",
    }
}
LEGACY_ZARR = {
    "zarr_to_hdf5_converter": {
        "module": "etiket_sync_agent_qh_converters.zarr_to_NETCDF4",
        "class": "ZarrToNETCDF4Converter",
    },
    "zarr_to_zip_converter": {
        "module": "etiket_sync_agent_qh_converters.zarr_to_zip",
        "class": "ZarrToZipConverter",
    },
}


# -- item 6: the existing agent's converters -----------------------------------------------------
def test_legacy_converters_run_as_our_equivalents_with_the_existing_names(tmp_path: Path) -> None:
    root = tmp_path / "root"
    folder = make_dataset(
        root,
        "run",
        info=_legacy_info({**LEGACY_CSV, **LEGACY_ZARR}),
        files={"data/sweep.csv": b"v (V),i (A)\n1,2\n3,4\n"},
    )
    expected = make_demo_zarr(folder / "scan.zarr", 2)
    ctx = _plan(root, "run", tmp_path)
    assert ctx.plan.errors == []
    names = sorted(f.name for f in ctx.plan.files)
    # data/x.csv -> data/x.hdf5; a converted zarr store is uploaded only as its conversions.
    assert names == ["data/sweep.csv", "data/sweep.hdf5", "scan.hdf5", "scan.zip"]
    converted = ctx.plan.file("data/sweep.hdf5")
    assert converted.filename == "sweep.hdf5"
    assert converted.file_type == FileType.HDF5_NETCDF
    with h5netcdf.File(converted.path, "r") as nc:
        np.testing.assert_array_equal(nc["v"][...], [1, 3])
    with h5netcdf.File(ctx.plan.file("scan.hdf5").path, "r") as nc:
        np.testing.assert_array_equal(nc["signal"][...], expected["signal"])
    assert any("csv-to-netcdf" in log.message for log in ctx.plan.logs)


def test_legacy_entry_point_names_and_dotted_forms_are_mapped() -> None:
    assert resolve_converter("csv_to_hdf5").name == "csv-to-netcdf"
    assert resolve_converter("zarr_to_NETCDF4").name == "zarr-to-netcdf"
    ref = resolve_converter("etiket_sync_agent_qh_converters.zarr_to_zip.ZarrToZipConverter")
    assert (ref.name, ref.output_type) == ("zarr-to-zip", "zip")
    # A moved module inside the package is still recognised by its class.
    assert resolve_converter("etiket_sync_agent_qh_converters.csv:CSVToHDF5Converter").name == (
        "csv-to-netcdf"
    )
    with pytest.raises(SyncError, match="existing agent's converters"):
        resolve_converter("etiket_sync_agent_qh_converters.other:Unknown")


def test_a_registered_module_class_is_used_by_its_entry_point() -> None:
    ref = resolve_converter("etiket_sync_agent_converters.csv:CSVToNetCDF")
    assert ref.name == "csv-to-netcdf"
    assert ref.output_type is None


def test_a_module_named_by_a_data_file_is_never_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "imported"
    code = tmp_path / "code"
    code.mkdir()
    (code / "lab_payload_i12b.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('x')\n"
    )
    monkeypatch.syspath_prepend(str(code))
    root = tmp_path / "root"
    make_dataset(
        root,
        "run",
        info=_legacy_info(
            {"txt_to_x_converter": {"module": "lab_payload_i12b", "class": "Converter"}}
        ),
        files={"a.txt": b"hello"},
    )
    ctx = _plan(root, "run", tmp_path)
    assert not marker.exists()
    assert "lab_payload_i12b" not in sys.modules
    assert [f.name for f in ctx.plan.files] == ["a.txt"], "the files are still uploaded"
    (error,) = ctx.plan.errors
    assert "not an installed converter" in error
    assert "etiket_sync_agent.converters" in error


def test_a_converted_name_taken_by_a_real_file_keeps_both(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_dataset(
        root,
        "run",
        info=_legacy_info(LEGACY_CSV),
        files={"x.csv": b"a,b\n1,2\n", "x.hdf5": b"not converted"},
    )
    ctx = _plan(root, "run", tmp_path)
    names = sorted(f.name for f in ctx.plan.files)
    assert names == ["x.csv", "x.csv.hdf5", "x.hdf5"]
    assert ctx.plan.file("x.hdf5").path.read_bytes() == b"not converted"


# -- item 2: the manifest's uuid, read only ------------------------------------------------------
def _write_manifest(folder: Path, dataset_uuid: str, sync_path: Path | str | None) -> bytes:
    content: dict[str, Any] = {
        "version": 0.1,
        "dataset_uuid": dataset_uuid,
        "scope_uuid": str(uuid.uuid4()),
        "sync_time": "2024-05-01T10:00:00",
        "files": {"a.txt": [{"filename": "a.txt", "status": "OK"}]},
    }
    if sync_path is not None:
        content["dataset_sync_path"] = str(sync_path)
    (folder / MANIFEST_FILE).write_text(yaml.safe_dump(content))
    return (folder / MANIFEST_FILE).read_bytes()


def test_the_manifest_uuid_is_the_datasets_and_the_folder_is_not_written(tmp_path: Path) -> None:
    root = tmp_path / "root"
    folder = make_dataset(root, "run", files={"a.txt": b"a"})
    known = str(uuid.uuid4())
    _write_manifest(folder, known.upper(), folder)  # any uuid spelling
    plain = make_dataset(root, "plain", files={"b.txt": b"b"})
    before = tree_digest(root)
    ctx = _plan(root, "run", tmp_path)
    assert ctx.plan.dataset is not None
    assert ctx.plan.dataset.uuid == known
    assert MANIFEST_FILE not in {f.name for f in ctx.plan.files}
    other = _plan(root, "plain", tmp_path)
    assert other.plan.dataset is not None
    assert other.plan.dataset.uuid is None
    assert tree_digest(root) == before
    assert not (plain / MANIFEST_FILE).exists()


def test_a_copied_folder_is_a_new_dataset_a_moved_one_keeps_its_uuid(tmp_path: Path) -> None:
    root = tmp_path / "root"
    original = make_dataset(root, "run", files={"a.txt": b"a"})
    known = str(uuid.uuid4())
    _write_manifest(original, known, original)
    shutil.copytree(original, root / "copy")
    assert manifest_uuid_for(original)[0] == known
    copied, reason = manifest_uuid_for(root / "copy")
    assert copied is None
    assert reason is not None
    assert "copied" in reason
    # The original is moved away (or the drive was renamed): the folder holding it is the dataset.
    moved = root / "moved"
    original.rename(moved)
    assert manifest_uuid_for(moved)[0] == known


def test_a_windows_path_in_the_manifest_is_compared_by_parts(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    known = str(uuid.uuid4())
    _write_manifest(folder, known, r"Z:\data\elsewhere\run")
    assert manifest_uuid_for(folder)[0] == known  # recorded path absent: the folder moved
    _write_manifest(folder, known, None)
    assert manifest_uuid_for(folder)[0] == known


@pytest.mark.parametrize(
    "text", ["dataset_uuid: not-a-uuid\n", "[1, 2]\n", "a: [unclosed\n", "scope_uuid: x\n"]
)
def test_a_broken_manifest_is_logged_and_ignored(tmp_path: Path, text: str) -> None:
    root = tmp_path / "root"
    folder = make_dataset(root, "run", files={"a.txt": b"a"})
    (folder / MANIFEST_FILE).write_text(text)
    ctx = _plan(root, "run", tmp_path)
    assert ctx.plan.dataset is not None
    assert ctx.plan.dataset.uuid is None
    assert any(MANIFEST_FILE in log.message for log in ctx.plan.logs)
    assert ctx.plan.errors == []


# -- item 3: names, types, descriptions ---------------------------------------------------------
def test_descriptions_as_the_existing_agent_writes_them(tmp_path: Path) -> None:
    root = tmp_path / "root"
    folder = make_dataset(
        root, "a/run", info="dataset_name: R1\ndescription: Transmission\n", files={"x.txt": b"x"}
    )
    ctx = _plan(root, "a/run", tmp_path)
    assert ctx.plan.dataset is not None
    assert ctx.plan.dataset.description == (
        f"Transmission\n\nDataset source path: {folder.absolute()}"
    )
    make_dataset(root, "b", info="dataset_name: R2\n", files={"x.txt": b"x"})
    ctx = _plan(root, "b", tmp_path)
    assert ctx.plan.dataset is not None
    assert ctx.plan.dataset.description == "Dataset R2 from FileBaseGeneric"
    assert description_of(None, "n", folder) == "Dataset n from FileBaseGeneric"


def test_file_types_per_suffix_and_content(tmp_path: Path) -> None:
    netcdf = tmp_path / "trace.h5"
    with h5netcdf.File(netcdf, "w") as nc:
        nc.dimensions = {"t": 3}
        nc.create_variable("t", ("t",), float)[:] = [0.0, 1.0, 2.0]
    plain = tmp_path / "raw.hdf5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.arange(3)
    broken = tmp_path / "broken.nc"
    broken.write_bytes(b"not hdf5 at all")
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "c.bin").write_bytes(b"c")
    assert file_type_of(netcdf) == FileType.HDF5_NETCDF
    assert file_type_of(plain) == FileType.HDF5
    assert file_type_of(broken) == FileType.HDF5
    assert file_type_of(tmp_path / "a.json") == FileType.JSON
    assert file_type_of(tmp_path / "b.txt") == FileType.TEXT
    assert file_type_of(tmp_path / "c.bin") == FileType.UNKNOWN


def test_names_are_relative_paths_and_suffixed_folders_are_walked(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_dataset(
        root,
        "run",
        files={"analysis/fit.json": b"{}", "v1.2/notes.txt": b"n", "scan.zarr/.zarray": b"{}"},
    )
    ctx = _plan(root, "run", tmp_path)
    files = {f.name: f for f in ctx.plan.files}
    assert sorted(files) == ["analysis/fit.json", "scan.zarr.zip", "v1.2/notes.txt"]
    assert files["analysis/fit.json"].filename == "fit.json"
    assert files["analysis/fit.json"].file_type == FileType.JSON


def test_a_legacy_converter_without_ours_installed_says_what_to_install(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_dataset(root, "run", info=_legacy_info(LEGACY_CSV), files={"x.csv": b"a\n1\n"})
    work = tmp_path / "work-missing"
    work.mkdir()

    def missing(name: str) -> Any:
        raise LookupError(f"no converter named {name!r} is installed")

    ctx = SyncContext(SyncItem(key="run", path="run"), work, converter_lookup=missing)
    _backend(root).sync_dataset(SyncItem(key="run", path="run"), ctx)
    assert [f.name for f in ctx.plan.files] == ["x.csv"]
    (error,) = ctx.plan.errors
    assert "csv-to-netcdf" in error
    assert "install etiket-sync-agent-converters" in error


def test_files_are_dated_with_their_mtime(tmp_path: Path) -> None:
    root = tmp_path / "root"
    folder = make_dataset(root, "run", files={"a.txt": b"a"})
    stamp = 1_700_000_000.0
    os.utime(folder / "a.txt", (stamp, stamp))
    ctx = _plan(root, "run", tmp_path)
    assert ctx.plan.file("a.txt").collected == dt.datetime.fromtimestamp(stamp, tz=dt.timezone.utc)


def test_a_full_info_file_as_generate_dataset_info_writes_it(tmp_path: Path) -> None:
    """Every key, empty ones as YAML nulls/empties, converters as its mapping."""
    text = yaml.safe_dump(
        {
            "version": "0.1",
            "dataset_name": "Rabi 7",
            "collected": "2024-05-01T10:00:00",
            "description": None,
            "attributes": {"sample": "chip-7", "power": -20, "f": 5.5},
            "tags": ["rabi"],
            "converters": {},
            "skip": None,
            "thumbnails": [],
        }
    )
    root = tmp_path / "root"
    make_dataset(root, "run", info=text, files={"a.txt": b"a"})
    ctx = _plan(root, "run", tmp_path)
    record = ctx.plan.dataset
    assert record is not None
    assert (record.name, record.description) == ("Rabi 7", "Dataset Rabi 7 from FileBaseGeneric")
    assert record.attributes == {"sample": "chip-7", "power": "-20", "f": "5.5"}
    assert record.keywords == ["rabi"]
    assert [f.name for f in ctx.plan.files] == ["a.txt"]
    assert ctx.plan.errors == []
