"""Folderbase: info files, walking rules, skips, suffix folders, thumbnails, converters."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import pytest
from etiket_sync_agent_folderbase import (
    FolderBaseSync,
    deterministic_zip,
    folders_overlap,
    read_info_file,
)
from etiket_sync_agent_folderbase.testing import make_dataset, make_demo_source, png_bytes

from etiket_sync_agent import FileConverter, SyncContext, SyncItem
from etiket_sync_agent.connectors.config import parse_config
from etiket_sync_agent.detect import discover_file_items
from etiket_sync_agent.errors import ConfigError, SyncError
from etiket_sync_agent.testing import tree_digest


def _backend(root: Path, **extra: Any) -> FolderBaseSync:
    return FolderBaseSync(
        parse_config(FolderBaseSync.config_class, {"root_directory": str(root), **extra})
    )


def _plan(
    backend: FolderBaseSync, key: str, tmp_path: Path, converters: dict[str, Any] | None = None
) -> SyncContext:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    lookup = (lambda name: converters[name]()) if converters is not None else None
    ctx = SyncContext(SyncItem(key=key, path=key), work, converter_lookup=lookup)
    backend.sync_dataset(SyncItem(key=key, path=key), ctx)
    return ctx


def test_info_file_fields_and_legacy_keys(tmp_path: Path) -> None:
    path = tmp_path / "info.yaml"
    path.write_text(
        "dataset_name: My run\ncreated: 2023-02-03T04:05:06\nkeywords: [a, b]\n"
        "attributes: {sample: x, n: 3, f: 1.5}\nskip: ['*.tmp']\n"
    )
    info = read_info_file(path)
    assert info.dataset_name == "My run"
    assert info.collected == dt.datetime(2023, 2, 3, 4, 5, 6)
    assert info.tags == ["a", "b"]
    assert info.attributes == {"sample": "x", "n": "3", "f": "1.5"}


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("dataset_nme: typo\n", "dataset_nme"),
        ("collected: yesterday\n", "collected"),
        ("attributes: {nested: {a: 1}}\n", "attributes.nested"),
        ("attributes: [1, 2]\n", "attributes"),
        ("thumbnails: [" + ", ".join(f"t{i}.png" for i in range(11)) + "]\n", "thumbnails"),
        ("tags: {a: 1}\n", "tags"),
        ("converters: [{module: m}]\n", "converters[0]"),
        ("converters: [csv-to-netcdf, 3]\n", "converters[1]"),
    ],
)
def test_bad_info_files_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "info.yaml"
    path.write_text(text)
    with pytest.raises(SyncError, match=re.escape(f"key '{key}'")):
        read_info_file(path)


def test_converters_by_name_module_class_string_and_mapping(tmp_path: Path) -> None:
    path = tmp_path / "info.yaml"
    path.write_text(
        "converters:\n  - csv-to-netcdf\n  - my_lab.convert:Spectra\n"
        "  - {module: my_lab.other, class: Traces}\n"
    )
    assert read_info_file(path).converters == [
        "csv-to-netcdf",
        "my_lab.convert:Spectra",
        "my_lab.other:Traces",
    ]


def test_invalid_yaml_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "info.yaml"
    path.write_text("a: [unclosed\n")
    with pytest.raises(SyncError, match="not valid YAML"):
        read_info_file(path)


def test_config_validation(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(FolderBaseSync.config_class, {"root_directory": str(tmp_path / "nope")})
    assert info.value.field == "root_directory"
    with pytest.raises(ConfigError) as info:
        parse_config(FolderBaseSync.config_class, {"root_directory": str(tmp_path), "level": 0})
    assert info.value.field == "level"


def test_files_skips_hidden_nested_and_suffix_folders(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_dataset(
        root,
        "ds",
        files={
            "a.txt": b"a",
            "sub/b.txt": b"b",
            ".hidden": b"h",
            "sub/.git/x": b"x",
            "scan.zarr/.zarray": b"{}",
            "scan.zarr/0.0": b"chunk",
            "skip.tmp": b"t",
            "nested/c.txt": b"c",
        },
        info="dataset_name: parent\nskip: ['*.tmp']\n",
    )
    make_dataset(root, "ds/nested", files={"c.txt": b"c"})
    backend = _backend(root)
    keys = sorted(i.key for i in discover_file_items(backend))
    assert keys == ["ds", "ds/nested"]
    ctx = _plan(backend, "ds", tmp_path)
    names = sorted(f.name for f in ctx.plan.files)
    assert names == ["a.txt", "scan.zarr.zip", "sub/b.txt"]
    assert ctx.plan.dataset is not None
    assert ctx.plan.dataset.name == "parent"


def test_zips_are_deterministic(tmp_path: Path) -> None:
    folder = tmp_path / "x.zarr"
    (folder / "sub").mkdir(parents=True)
    (folder / "b").write_bytes(b"2" * 1000)
    (folder / "sub" / "a").write_bytes(b"1" * 1000)
    first = deterministic_zip(folder, tmp_path / "1.zip").read_bytes()
    (folder / "b").touch()
    second = deterministic_zip(folder, tmp_path / "2.zip").read_bytes()
    assert first == second
    with zipfile.ZipFile(tmp_path / "1.zip") as archive:
        assert archive.namelist() == ["b", "sub/a"]


def test_level_n_without_info_files(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "2024" / "run1").mkdir(parents=True)
    (root / "2024" / "run1" / "data.bin").write_bytes(b"d")
    backend = _backend(root, level=2, set_up="fridge", static_attributes={"lab": "QT"})
    assert [i.key for i in discover_file_items(backend)] == ["2024/run1"]
    ctx = _plan(backend, "2024/run1", tmp_path)
    assert ctx.plan.dataset is not None
    assert ctx.plan.dataset.name == "run1"
    assert ctx.plan.dataset.attributes == {"lab": "QT", "set-up": "fridge"}


def test_thumbnails(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_dataset(
        root,
        "ds",
        files={"fig.png": png_bytes(), "plot.svg": b"<svg/>", "data.csv": b"x\n"},
        info="thumbnails: ['*.png', 'plot.svg', 'data.csv', 'missing.png']\n",
    )
    ctx = _plan(_backend(root), "ds", tmp_path)
    thumbs = {f.name: f for f in ctx.plan.files if f.name.startswith("__thumbnail")}
    assert sorted(thumbs) == ["__thumbnail_0", "__thumbnail_1"]
    assert all(f.ranking == -1 for f in thumbs.values())
    assert any("missing.png" in log.message for log in ctx.plan.logs)


class _Upper(FileConverter):
    input_type: ClassVar[str] = "txt"
    output_type: ClassVar[str] = "upper"

    def convert(self, input_path: Path, output_dir: Path) -> Path:
        out = output_dir / (input_path.name + ".upper")
        out.write_text(input_path.read_text().upper())
        return out


class _Crash(FileConverter):
    input_type: ClassVar[str] = "txt"
    output_type: ClassVar[str] = "never"

    def convert(self, input_path: Path, output_dir: Path) -> Path:
        raise ValueError("cannot parse line 3")


def test_converters_add_outputs_and_keep_originals(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_dataset(root, "ds", files={"a.txt": b"hello", "b.dat": b"x"}, info="converters: [upper]\n")
    ctx = _plan(_backend(root), "ds", tmp_path, {"upper": _Upper})
    names = sorted(f.name for f in ctx.plan.files)
    assert names == ["a.txt", "a.upper", "b.dat"]
    assert ctx.plan.file("a.upper").path.read_text() == "HELLO"
    assert ctx.plan.file("a.upper").filename == "a.upper"
    (tmp_path / "2").mkdir()
    ctx = _plan(
        _backend(root, upload_original_of_converted=False), "ds", tmp_path / "2", {"upper": _Upper}
    )
    assert sorted(f.name for f in ctx.plan.files) == ["a.upper", "b.dat"]


def test_a_crashing_converter_is_an_error_but_the_original_is_uploaded(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_dataset(root, "ds", files={"a.txt": b"hello"}, info="converters: [crash]\n")
    ctx = _plan(_backend(root), "ds", tmp_path, {"crash": _Crash})
    assert [f.name for f in ctx.plan.files] == ["a.txt"]
    assert ctx.plan.errors == ["converter 'crash' failed on a.txt: ValueError: cannot parse line 3"]


def test_an_unknown_converter_is_an_item_error_but_the_files_are_uploaded(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_dataset(root, "ds", files={"a.txt": b"hello"}, info="converters: [no-such-converter]\n")
    ctx = _plan(_backend(root), "ds", tmp_path)
    assert [f.name for f in ctx.plan.files] == ["a.txt"]
    assert len(ctx.plan.errors) == 1
    assert "no-such-converter" in ctx.plan.errors[0]


def test_overlap_and_identity(tmp_path: Path) -> None:
    assert folders_overlap(tmp_path, tmp_path / "a")
    assert folders_overlap(tmp_path / "a", tmp_path)
    assert not folders_overlap(tmp_path / "a", tmp_path / "b")
    assert _backend(tmp_path).source_identity() == str(tmp_path.resolve())


def test_demo_source_and_no_writes(tmp_path: Path) -> None:
    config = make_demo_source(tmp_path / "demo")
    before = tree_digest(tmp_path / "demo")
    backend = _backend(Path(config["root_directory"]))
    items = discover_file_items(backend)
    assert len(items) == 6
    ctx = _plan(backend, items[0].key, tmp_path)
    assert "scratch/tmp.bin" not in {f.name for f in ctx.plan.files}
    assert tree_digest(tmp_path / "demo") == before
