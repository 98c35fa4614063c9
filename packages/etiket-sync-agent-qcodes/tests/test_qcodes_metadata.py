"""The dataset and file records as the existing agent makes them, and the ``qh_meta`` instrument."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from etiket_sync_agent_qcodes import QCoDeSConfig, QCoDeSSync
from etiket_sync_agent_qcodes.qh_meta import qh_meta_from_snapshot
from etiket_sync_agent_qcodes.testing import QCoDeSWriter

from etiket_sync_agent.connectors import SyncContext, SyncItem
from etiket_sync_agent.connectors.dataset import FileType
from etiket_sync_agent.testing import AgentHarness, fast_options


def _station(tags: Any, attributes: Any) -> dict[str, Any]:
    """A snapshot as QCoDeS records it with the existing agent's ``QHMetaData`` instrument."""
    return {
        "station": {
            "instruments": {
                "qh_meta": {
                    "name": "qh_meta",
                    "parameters": {
                        "tags": {"name": "tags", "value": tags},
                        "attributes": {"name": "attributes", "value": attributes},
                        "IDN": {"name": "IDN", "value": None},
                    },
                },
                "dac": {"parameters": {"ch1": {"value": 0.1}}},
            },
            "parameters": {},
        }
    }


def test_qh_meta_tags_and_attributes_are_read() -> None:
    meta = qh_meta_from_snapshot(
        _station(
            ["cooldown-4", "resonator", "cooldown-4"],
            {"sample": "chip-9", "temperature": {"value": 0.012, "unit": "K"}, "n": 3},
        )
    )
    assert meta.tags == ["cooldown-4", "resonator", "cooldown-4"]
    assert meta.attributes == {"sample": "chip-9", "temperature": "0.012", "n": "3"}
    assert meta.problems == []


def test_qh_meta_written_as_python_literals_is_read_without_evaluating_code() -> None:
    meta = qh_meta_from_snapshot(_station("{'b', 'a'}", "{'x': 1}"))
    assert meta.tags == ["a", "b"]
    assert meta.attributes == {"x": "1"}
    hostile = qh_meta_from_snapshot(_station("__import__('os').getcwd()", None))
    assert hostile.tags == ["__import__('os').getcwd()"]  # a plain tag, never evaluated


@pytest.mark.parametrize(
    "snapshot",
    [None, {}, {"station": None}, {"station": {"instruments": {}}}, [1, 2], "text"],
)
def test_snapshots_without_qh_meta_give_nothing(snapshot: Any) -> None:
    meta = qh_meta_from_snapshot(snapshot)
    assert (meta.tags, meta.attributes, meta.problems) == ([], {}, [])


def test_a_malformed_qh_meta_is_reported_not_fatal() -> None:
    meta = qh_meta_from_snapshot(_station(12, ["not", "a", "mapping"]))
    assert meta.tags == []
    assert meta.attributes == {}
    assert len(meta.problems) == 2


def _sync(path: Path, guid: str, tmp_path: Path, **config: Any) -> SyncContext:
    backend = QCoDeSSync(QCoDeSConfig(database_path=path, set_up="fridge-2", **config))
    item = SyncItem(key=guid)
    ctx = SyncContext(item, tmp_path / "work")
    backend.sync_dataset(item, ctx)
    return ctx


def test_qh_meta_becomes_keywords_and_attributes_and_wins_over_static(tmp_path: Path) -> None:
    path = tmp_path / "experiments.db"
    writer = QCoDeSWriter(path)
    exp = writer.new_experiment("cooldown 4", "chip-3")
    run = writer.sweep_1d(
        exp,
        "rabi\nwith the new pulse shape\nsecond try",
        snapshot=_station(["rabi", "pulsed"], {"set-up": "fridge-B", "power": {"value": -20}}),
    )
    ctx = _sync(path, run.guid, tmp_path, static_attributes={"power": "0", "owner": "ana"})
    record = ctx.plan.dataset
    assert record is not None
    assert record.name == "rabi"
    assert record.alt_uid == run.guid
    assert record.description == (
        f"database : experiments.db | run ID : {run.run_id} | GUID : {run.guid} | "
        "exp name : cooldown 4\n\nwith the new pulse shape\nsecond try"
    )
    # sample + set-up, then static_attributes, then qh_meta (later wins).
    assert record.attributes == {
        "sample": "chip-3",
        "set-up": "fridge-B",
        "power": "-20",
        "owner": "ana",
    }
    assert set(record.keywords) == {"Gate voltage", "Current", "rabi", "pulsed"}
    measurement = ctx.plan.file("measurement")
    assert (measurement.filename, measurement.file_type, measurement.generator) == (
        "measured_data.hdf5",
        FileType.HDF5_NETCDF,
        "QCoDeS",
    )
    assert ctx.plan.file("snapshot.json").file_type == FileType.JSON


def test_the_server_shows_the_existing_agents_names(tmp_path: Path) -> None:
    path = tmp_path / "source" / "experiments.db"
    writer = QCoDeSWriter(path)
    exp = writer.new_experiment("e", "chip")
    run = writer.sweep_1d(exp, "sweep", snapshot=_station(["tagged"], {"cooldown": "7"}))
    harness = AgentHarness(tmp_path / "harness", options=fast_options())
    harness.register_backend(QCoDeSSync)
    harness.add_source("qc", QCoDeSSync, {"database_path": str(path), "set_up": "fridge"})
    try:
        harness.run_until_idle(20)
        (item,) = harness.items("qc")
        record = harness.dataset(item.dataset_uuid)
        assert record.alt_uid == run.guid
        assert "tagged" in record.keywords
        assert record.attributes["cooldown"] == "7"
        by_name = {f.name: f for f in record.files}
        assert set(by_name) == {"measurement", "snapshot.json"}
        assert by_name["measurement"].filename == "measured_data.hdf5"
        assert by_name["measurement"].type.value == "HDF5_NETCDF"
        assert by_name["measurement"].file_generator == "QCoDeS"
    finally:
        harness.close()
