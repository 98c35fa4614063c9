"""Quantify datasets as the existing agent records them: alt_uid, names, types, generators."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from etiket_sync_agent_quantify import QuantifySync
from etiket_sync_agent_quantify import testing as qt
from etiket_sync_agent_quantify.names import assign_names, logical_name

from etiket_sync_agent import FileType, SyncContext
from etiket_sync_agent.connectors.config import parse_config
from etiket_sync_agent.detect import discover_file_items

WHEN = dt.datetime(2024, 3, 4, 9, 15, 7, 456000)


@pytest.mark.parametrize(
    ("rel", "name"),
    [
        ("dataset.hdf5", "dataset.hdf5"),
        ("snapshot.json", "snapshot.json"),
        ("analysis_X/figs_mpl/Line plot x0-y0.png", "analysis_X.figs_mpl.Line plot x0-y0.png"),
        ("20240304-091507-456-abcdef-fit/out.json", "fit.out.json"),
        ("analysis_X/20240304-091507-456-abcdef-processed.hdf5", "analysis_X.processed.hdf5"),
        # Only a TUID prefix with its dash is stripped, and only at the start of a component.
        ("20240304-091507-456-abcdef/a.txt", "20240304-091507-456-abcdef.a.txt"),
        ("x-20240304-091507-456-abcdef-a.txt", "x-20240304-091507-456-abcdef-a.txt"),
    ],
)
def test_logical_names_as_the_existing_agent_gives_them(rel: str, name: str) -> None:
    assert logical_name(rel) == name


def test_colliding_dotted_names_keep_both_files() -> None:
    names = assign_names(["a.b/c.json", "a/b.c.json", "a.b.c.json"], reserved=["dataset.hdf5"])
    assert sorted(names.values()) == ["a.b.c.json", "a.b/c.json", "a/b.c.json"]
    assert names["a.b.c.json"] == "a.b.c.json"
    again = assign_names(["x/dataset.hdf5", "x.dataset.hdf5"], reserved=["x.dataset.hdf5"])
    assert again == {"x.dataset.hdf5": "x.dataset.hdf5 (2)", "x/dataset.hdf5": "x/dataset.hdf5"}


def test_record_files_types_and_generators(tmp_path: Path) -> None:
    tuid, folder = qt.write_experiment(
        tmp_path, WHEN, "chevron", qt.spec_2d(5, 4), analysis=True, metadata=True
    )
    backend = QuantifySync(
        parse_config(
            QuantifySync.config_class, {"quantify_directory": str(tmp_path), "set_up": "f"}
        )
    )
    (item,) = discover_file_items(backend)
    work = tmp_path / f"work-{time.monotonic_ns()}"
    work.mkdir()
    ctx = SyncContext(item, work)
    backend.sync_dataset(item, ctx)
    record = ctx.plan.dataset
    assert record is not None
    assert record.alt_uid == folder.name[:26] == tuid
    assert record.name == "chevron"
    assert record.attributes["set-up"] == "f"
    dataset = ctx.plan.file("dataset.hdf5")
    assert (dataset.filename, dataset.file_type, dataset.generator) == (
        "dataset.hdf5",
        FileType.HDF5_NETCDF,
        "Quantify",
    )
    processed = ctx.plan.file("analysis_Basic2DAnalysis.dataset_processed.hdf5")
    assert processed.filename == "dataset_processed.hdf5"
    assert processed.file_type == FileType.HDF5_NETCDF
    qoi = ctx.plan.file("analysis_Basic2DAnalysis.quantities_of_interest.json")
    assert (qoi.filename, qoi.file_type, qoi.generator) == (
        "quantities_of_interest.json",
        FileType.JSON,
        "Quantify",
    )
    fit = ctx.plan.file("analysis_Basic2DAnalysis.fit_results.hanger_func_complex_SI.txt")
    assert fit.file_type == FileType.TEXT
    source = folder / "analysis_Basic2DAnalysis" / "fit_results" / "hanger_func_complex_SI.txt"
    assert fit.collected == dt.datetime.fromtimestamp(source.stat().st_mtime, tz=dt.timezone.utc)
    assert ctx.plan.file("snapshot.json").file_type == FileType.JSON
