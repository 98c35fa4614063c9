"""The qualibrate backend on storage folders written by the real qualibrate 1.5.1.

``tests/data`` was written by ``tools/make_fixtures.py`` (see there) with ``TZ=Europe/Amsterdam``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import time
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pytest
import xarray as xr
from etiket_sync_agent_qualibrate import QualibrateConfig, QualibrateSync, read_node_folder
from etiket_sync_agent_qualibrate.config import storage_location
from etiket_sync_agent_qualibrate.testing import NodeSpec, tiny_png, write_node

from etiket_sync_agent import SyncContext
from etiket_sync_agent.detect.scan import discover_file_items
from etiket_sync_agent.errors import ConfigError
from etiket_sync_agent.testing import AgentHarness, fast_options, tree_digest

DATA = Path(__file__).parent / "data"
MANIFEST = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))


def _folder(name: str) -> str:
    return next(rel for rel in MANIFEST["nodes"] if rel.split("_", 1)[1].rsplit("_", 1)[0] == name)


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    shutil.copytree(DATA / "storage", root)
    return root


def _state(item: Any) -> str:
    return str(getattr(item.state, "value", item.state))


def _sync(tmp_path: Path, root: Path, **config: Any) -> tuple[AgentHarness, dict[str, Any]]:
    harness = AgentHarness(tmp_path / "harness", options=fast_options())
    harness.register_backend(QualibrateSync)
    harness.add_source(
        "q", QualibrateSync, {"qualibrate_directory": str(root), "set_up": "fridge", **config}
    )
    harness.run_until_idle(60)
    return harness, {item.natural_key: item for item in harness.items("q")}


def _latest(files: list[Any], name: str) -> Any:
    versions = [f for f in files if f.name == name]
    assert versions, f"{name} never reached the server"
    return max(versions, key=lambda f: f.version_id)


def test_discovery_finds_every_node_folder(storage: Path) -> None:
    backend = QualibrateSync(QualibrateConfig(set_up="f", qualibrate_directory=storage))
    items = discover_file_items(backend)
    assert sorted(i.key for i in items) == MANIFEST["nodes"]
    # Newest first is what the engine wants: priorities follow created_at.
    by_key = {i.key: i.priority for i in items}
    assert by_key[_folder("rabi_demo")] <= by_key[_folder("n2_fit")]


def test_real_nodes_sync_with_record_files_and_merged_results(
    tmp_path: Path, storage: Path
) -> None:
    before = tree_digest(storage)
    harness, items = _sync(tmp_path, storage)
    try:
        assert {k: _state(i) for k, i in items.items()} == dict.fromkeys(
            MANIFEST["nodes"], "synced"
        )

        rabi = items[_folder("rabi_demo")]
        record = harness.dataset(rabi.dataset_uuid)
        assert record.name == "rabi_demo"
        assert record.description == "Rabi amplitude sweep (fixture)"
        node = json.loads((storage / rabi.natural_key / "node.json").read_text())
        created = dt.datetime.fromisoformat(node["created_at"])
        assert created.utcoffset() == dt.timedelta(hours=1)  # written with TZ=Europe/Amsterdam
        assert record.collected == created
        assert "node" in record.keywords
        attrs = dict(record.attributes)
        assert attrs["status"] == "finished"
        assert attrs["outcome.q1"] == "successful"
        assert attrs["outcome.q2"] == "failed"
        assert attrs["qualibrate_id"] == "1"
        assert attrs["parameter.num_points"] == "11"
        assert attrs["parameter.qubits"] == '["q1", "q2"]'
        assert attrs["set-up"] == "fridge"
        assert record.alt_uid == f"{storage.resolve().as_posix()}/{rabi.natural_key}"

        files = harness.server_files(rabi.dataset_uuid)
        names = {f.name for f in files}
        assert {
            "node.json",
            "data.json",
            "arrays.npz",
            "ds_raw.h5",
            "figures.rabi.png",
            "parameters.json",
            "results.nc",
            "__thumbnail_0",
        } <= names
        for f in files:
            assert f.md5_declared == f.md5_stored

        # results.nc: the xarray file's variables and every npz array, values unchanged.
        results = tmp_path / "results.nc"
        body = harness._downloads().get(_link(harness, rabi.dataset_uuid, "results.nc")).content
        results.write_bytes(body)
        folder = storage / rabi.natural_key
        with (
            xr.open_dataset(results, engine="h5netcdf") as merged,
            xr.open_dataset(folder / "ds_raw.h5", engine="h5netcdf") as raw,
        ):
            for name in ("I", "Q"):
                np.testing.assert_array_equal(merged[name].values, raw[name].values)
                assert merged[name].dims == raw[name].dims
            assert list(merged["qubit"].values) == ["q1", "q2"]
            assert merged["amplitude"].attrs["units"] == "V"
            with np.load(folder / "arrays.npz") as npz:
                for key in npz.files:
                    np.testing.assert_array_equal(merged[key].values, npz[key])
                    assert merged[key].attrs["qualibrate_ref"] == f"./arrays.npz#{key}"

        # A workflow: keyword, children, its nodes name it as their workflow parent.
        wf = harness.dataset(items[_folder("wf_demo")].dataset_uuid)
        assert "workflow" in wf.keywords
        wf_id = dict(wf.attributes)["qualibrate_id"]
        assert dict(wf.attributes)["children"] == ", ".join(
            str(json.loads((storage / _folder(n) / "node.json").read_text())["id"])
            for n in ("n1_sweep", "n2_fit")
        )
        assert dict(wf.attributes)["parameter.qubits"] == '["q1", "q2"]'
        fit = harness.dataset(items[_folder("n2_fit")].dataset_uuid)
        assert dict(fit.attributes)["workflow_parent_id"] == wf_id
        sweep_id = dict(harness.dataset(items[_folder("n1_sweep")].dataset_uuid).attributes)[
            "qualibrate_id"
        ]
        assert dict(fit.attributes)["parents"] == sweep_id
        # The same links as folders: with the root, the linked datasets' alt_uid.
        assert dict(fit.attributes)["parent_folders"] == _folder("n1_sweep")
        assert dict(fit.attributes)["workflow_parent_folder"] == _folder("wf_demo")
        assert dict(wf.attributes)["children_folders"] == (
            f"{_folder('n1_sweep')}, {_folder('n2_fit')}"
        )
        sweep_uuid = items[_folder("n1_sweep")].dataset_uuid
        parent_alt_uid = f"{storage.resolve().as_posix()}/{dict(fit.attributes)['parent_folders']}"
        assert harness.dataset(sweep_uuid).alt_uid == parent_alt_uid

        # QuAM state referenced from node.json is uploaded as it is.
        quam = harness.server_files(items[_folder("quam_node")].dataset_uuid)
        assert "quam_state.json" in {f.name for f in quam}
    finally:
        harness.close()
    assert tree_digest(storage) == before


def _link(harness: AgentHarness, dataset_uuid: str, name: str) -> str:
    record = harness.dataset(dataset_uuid)
    versions = [f for f in record.files if f.name == name]
    return str(max(versions, key=lambda f: f.version_id).S3_link)


def test_incomplete_save_waits_then_syncs_with_a_warning(tmp_path: Path, storage: Path) -> None:
    rel = _folder("rabi_demo")
    (storage / rel / "ds_raw.h5").unlink()
    for path in (storage / rel).iterdir():
        os.utime(path)  # just saved (copytree kept the fixture's times)
    backend = QualibrateSync(QualibrateConfig(set_up="f", qualibrate_directory=storage))
    node = read_node_folder(storage / rel)
    assert not node.complete
    assert node.missing == ["ds_raw.h5"]
    assert rel not in {i.key for i in discover_file_items(backend)}  # young: still saving

    old = time.time() - 3600
    for path in (storage / rel).iterdir():
        os.utime(path, (old, old))
    harness, items = _sync(tmp_path, storage)
    try:
        item = items[rel]
        assert _state(item) == "synced"
        logs = [r.message for r in harness.store.item_logs(item.id)]
        assert any("incomplete" in m and "ds_raw.h5" in m for m in logs), logs
        names = {f.name for f in harness.server_files(item.dataset_uuid)}
        assert "results.nc" in names
        assert "ds_raw.h5" not in names
    finally:
        harness.close()


def test_folders_that_are_not_nodes_are_skipped_and_logged_once(
    storage: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (storage / "notes").mkdir()
    (storage / "notes" / "x").mkdir()
    day = MANIFEST["nodes"][0].split("/")[0]
    (storage / day / "scratch").mkdir()
    backend = QualibrateSync(QualibrateConfig(set_up="f", qualibrate_directory=storage))
    with caplog.at_level(logging.INFO, logger="etiket_sync_agent_qualibrate"):
        discover_file_items(backend)
        discover_file_items(backend)
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert sorted(skipped) == sorted(
        [
            "qualibrate: notes skipped: not a YYYY-MM-DD day folder",
            f"qualibrate: {day}/scratch skipped: not a node folder named #<id>_<name>_<HHMMSS>",
        ]
    )


def test_writer_matches_the_real_layout(tmp_path: Path) -> None:
    """testing.write_node writes what qualibrate 1.5.1 writes (keys, order, reference forms)."""
    real = DATA / "storage" / _folder("rabi_demo")
    spec = NodeSpec(
        "rabi_demo",
        dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        node_id=1,
        parameters={"qubits": ["q1", "q2"], "num_points": 11, "max_amplitude": 0.5},
        outcomes={"q1": "successful", "q2": "failed"},
        results={
            "raw": {"q1": {"amplitudes": np.zeros(3)}},
            "ds_raw": xr.Dataset({"I": ("x", np.zeros(3))}),
            "fit": {"q1": {"success": True, "params": np.zeros(2)}},
            "figures": {"rabi": tiny_png()},
        },
    )
    ours = write_node(tmp_path, spec)
    assert PurePosixPath(ours.relative_to(tmp_path).as_posix()).parts[1].startswith("#1_rabi_demo_")
    real_node = json.loads((real / "node.json").read_text())
    our_node = json.loads((ours / "node.json").read_text())
    assert list(our_node) == list(real_node)
    assert list(our_node["metadata"]) == list(real_node["metadata"])
    assert list(our_node["data"]) == list(real_node["data"])
    ours_schema, real_schema = (n["data"]["parameters"]["schema"] for n in (our_node, real_node))
    assert ours_schema["properties"] == real_schema["properties"]  # title: the class name
    real_data = json.loads((real / "data.json").read_text())
    our_data = json.loads((ours / "data.json").read_text())
    assert our_data["ds_raw"] == real_data["ds_raw"] == "./ds_raw.h5"
    assert our_data["figures"] == real_data["figures"]
    assert our_data["raw"]["q1"]["amplitudes"] == real_data["raw"]["q1"]["amplitudes"]
    assert our_data["fit"]["q1"]["params"] == real_data["fit"]["q1"]["params"]
    assert sorted(p.name for p in ours.iterdir()) == sorted(p.name for p in real.iterdir())
    assert read_node_folder(ours).complete


def test_storage_location_from_qualibrate_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[qualibrate]\nproject = "demo"\n\n[qualibrate.storage]\ntype = "local_storage"\n'
        'location = "/data/qualibrate/${#/qualibrate/project}"\n',
        encoding="utf-8",
    )
    assert storage_location(config) == Path("/data/qualibrate/demo")
    config.write_text('[qualibrate]\nproject = "demo"\n', encoding="utf-8")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))
    assert storage_location(config) == tmp_path / ".qualibrate" / "user_storage" / "demo"
    with pytest.raises(ConfigError) as info:
        storage_location(tmp_path / "missing.toml")
    assert info.value.field == "qualibrate_directory"
    # No folder configured: the source reads QUAlibrate's own config file.
    (tmp_path / ".qualibrate").mkdir()
    (tmp_path / ".qualibrate" / "config.toml").write_text(
        f'[qualibrate]\nproject = "p"\n[qualibrate.storage]\nlocation = "{tmp_path.as_posix()}"\n',
        encoding="utf-8",
    )
    assert QualibrateConfig(set_up="f").storage_root() == tmp_path
    QualibrateConfig(set_up="f").validate()


def test_quam_state_folder_is_uploaded_under_its_relative_paths(
    tmp_path: Path, storage: Path
) -> None:
    """QuAM may save ``quam_state/{state.json, wiring.json}`` referenced as ``./quam_state``."""
    rel = _folder("quam_node")
    folder = storage / rel
    state = json.loads((folder / "quam_state.json").read_text())
    (folder / "quam_state.json").unlink()
    (folder / "quam_state").mkdir()
    (folder / "quam_state" / "state.json").write_text(json.dumps({"qubits": state["qubits"]}))
    (folder / "quam_state" / "wiring.json").write_text(json.dumps({"wiring": state["wiring"]}))
    node = json.loads((folder / "node.json").read_text())
    node["data"]["quam"] = "./quam_state"
    (folder / "node.json").write_text(json.dumps(node, indent=4))
    assert read_node_folder(folder).complete
    backend = QualibrateSync(QualibrateConfig(set_up="f", qualibrate_directory=storage))
    item = next(i for i in discover_file_items(backend) if i.key == rel)
    work = tmp_path / "work"
    work.mkdir()
    ctx = SyncContext(item, work)
    backend.sync_dataset(item, ctx)
    names = {f.name for f in ctx.plan.files}
    assert {"quam_state/state.json", "quam_state/wiring.json", "results.nc"} <= names
    assert not ctx.plan.errors


def test_rescan_of_an_unchanged_storage_reads_no_json(
    storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etiket_sync_agent_qualibrate import sync as sync_module

    calls: list[Path] = []
    real = sync_module.read_node_folder

    def counting(path: Path) -> Any:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(sync_module, "read_node_folder", counting)
    backend = QualibrateSync(QualibrateConfig(set_up="f", qualibrate_directory=storage))
    first = {i.key: i.priority for i in discover_file_items(backend)}
    assert len(calls) == len(MANIFEST["nodes"])
    calls.clear()
    assert {i.key: i.priority for i in discover_file_items(backend)} == first
    assert calls == []
    # A changed node.json is read again.
    node_json = storage / _folder("rabi_demo") / "node.json"
    node_json.write_text(node_json.read_text() + "\n")
    discover_file_items(backend)
    assert calls == [storage / _folder("rabi_demo")]
