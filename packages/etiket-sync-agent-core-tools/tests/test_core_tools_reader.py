"""Reading core-tools measurements exactly: both formats, shapes, NaN padding, units, metadata."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import h5netcdf
import h5py
import numpy as np
import pytest
from etiket_sync_agent_core_tools import CoreToolsSync
from etiket_sync_agent_core_tools import testing as ct

from etiket_sync_agent.connectors import FileType, SyncContext, SyncItem
from etiket_sync_agent.errors import SyncError

pytestmark = pytest.mark.postgres


def _sync(backend: CoreToolsSync, key: str, work: Path, **kwargs: Any) -> SyncContext:
    ctx = SyncContext(SyncItem(key=key), work / f"{key}-{len(list(work.glob('*')))}", **kwargs)
    backend.sync_dataset(ctx.item, ctx)
    return ctx


def _nc(ctx: SyncContext) -> h5netcdf.File:
    return h5netcdf.File(ctx.plan.file("measurement").path, "r")


TRACE_SPEC = ct.MeasurementSpec(
    "traces",
    [ct.Axis("vP1", "virtual P1", "mV", [-1.0, 0.0, 1.0, 2.0])],
    [
        ct.Getter(
            "digitizer",
            [
                ct.Output(
                    "I", "I channel", "mV", [ct.Axis("t", "time", "ns", [0.0, 2.0, 4.0, 6.0, 8.0])]
                ),
                ct.Output("Q", "Q channel", "mV", [ct.Axis("t", "time", "ns", [0.0, 3.0, 6.0])]),
            ],
        ),
        ct.Getter("SD1", [ct.Output("SD1", "sensor", "nA")]),
    ],
    keywords=["vP1", "I", "Q"],
)


@pytest.mark.parametrize("old_format", [False, True], ids=["current", "old"])
def test_every_demo_measurement_is_read_exactly(
    ct_db: str, make_backend: Any, tmp_path: Path, old_format: bool
) -> None:
    specs = ct.demo_measurements()
    writers = [
        ct.write_measurement(ct_db, s, old_format=old_format, seed=i) for i, s in enumerate(specs)
    ]
    backend = make_backend(ct_db)
    for spec, writer in zip(specs, writers, strict=False):
        ctx = _sync(backend, writer.key, tmp_path)
        expected = ct.expected_arrays(spec)
        with _nc(ctx) as f:
            for getter in spec.getters:
                for output in getter.outputs:
                    var = f.variables[output.name]
                    np.testing.assert_array_equal(var[...], expected[output.name])
                    assert var.attrs["units"] == output.unit
                    assert var.attrs["long_name"] == output.label
                    names = [a.name for a in spec.sweeps] + [a.name for a in output.local_axes]
                    assert list(var.dimensions) == names
            for axis in spec.sweeps:
                np.testing.assert_array_equal(f.variables[axis.name][...], axis.values)
                assert f.variables[axis.name].attrs["units"] == axis.unit
                assert f.variables[axis.name].attrs["long_name"] == axis.label
            assert f.attrs["uuid"] == writer.uuid
            assert f.attrs["completed"] == 1
            expected_format = "per-measurement table" if old_format else "measurement_parameters"
            assert f.attrs["core_tools_format"] == expected_format


def test_multi_parameter_local_axes_and_shared_sweep(
    ct_db: str, make_backend: Any, tmp_path: Path
) -> None:
    writer = ct.write_measurement(ct_db, TRACE_SPEC, seed=3)
    ctx = _sync(make_backend(ct_db), writer.key, tmp_path)
    expected = ct.expected_arrays(TRACE_SPEC)
    with _nc(ctx) as f:
        # Two local axes named "t" with different lengths/values become t and t_2.
        assert f.variables["I"].dimensions == ("vP1", "t")
        assert f.variables["Q"].dimensions == ("vP1", "t_2")
        np.testing.assert_array_equal(f.variables["t"][...], [0, 2, 4, 6, 8])
        np.testing.assert_array_equal(f.variables["t_2"][...], [0, 3, 6])
        # The sweep of the second getter is an identical copy: one shared dimension.
        assert f.variables["SD1"].dimensions == ("vP1",)
        assert f.dimensions["vP1"].size == 4
        for name in ("I", "Q", "SD1"):
            np.testing.assert_array_equal(f.variables[name][...], expected[name])
        assert f.variables["I"].attrs["name_global"] == "digitizer"
        assert f.variables["Q"].attrs["nth_set"] == 1


@pytest.mark.parametrize("old_format", [False, True], ids=["current", "old"])
def test_unfinished_measurement_is_padded_with_nan_to_its_shape(
    ct_db: str, make_backend: Any, tmp_path: Path, old_format: bool
) -> None:
    spec = ct.demo_measurements()[1]  # 2-D sweep 20 x 10, two getters
    writer = ct.write_measurement(ct_db, spec, points=37, complete=False, old_format=old_format)
    ctx = _sync(make_backend(ct_db), writer.key, tmp_path)
    expected = ct.expected_arrays(spec)
    with _nc(ctx) as f:
        data = f.variables["SD1_current"][...]
        assert data.shape == (20, 10)
        flat_expected = expected["SD1_current"].ravel()
        np.testing.assert_array_equal(data.ravel()[:37], flat_expected[:37])
        assert np.isnan(data.ravel()[37:]).all()
        # The outer sweep axis is known only for the rows reached (4 rows started: 0..3).
        p1 = f.variables["P1"][...]
        np.testing.assert_array_equal(p1[:4], spec.sweeps[0].values[:4])
        assert np.isnan(p1[4:]).all()
        np.testing.assert_array_equal(f.variables["P2"][...], spec.sweeps[1].values)
        assert f.attrs["completed"] == 0
        assert f.variables["SD1_current"].attrs["write_cursor"] == 37
    assert ctx.state["written"] == [6, 6 * 37]  # 2 getters x (output + 2 sweep copies)
    assert any("not completed" in log.message for log in ctx.plan.logs)


def test_dataset_record_keywords_ranking_attributes_and_json_files(
    ct_db: str, make_backend: Any, tmp_path: Path
) -> None:
    spec = ct.demo_measurements()[1]
    start = dt.datetime(2024, 3, 5, 14, 30, 12, tzinfo=dt.timezone.utc)
    writer = ct.write_measurement(ct_db, spec, start_time=start)
    backend = make_backend(ct_db)
    ctx = _sync(backend, writer.key, tmp_path)
    info = ctx.plan.dataset
    assert info is not None
    assert info.name == spec.exp_name
    assert info.alt_uid == str(writer.uuid)
    assert info.ranking == 1
    assert info.keywords == ["P1", "P2", "SD1_current", "SD2_current"]
    assert info.attributes == {
        "sample": spec.sample,
        "set-up": spec.set_up,
        "project": spec.project,
    }
    # TIMESTAMP without time zone written by to_timestamp() in the server's zone (UTC here).
    assert info.collected.replace(tzinfo=None) == start.replace(tzinfo=None)
    # The existing agent's description template, file name and generator.
    assert info.description == (
        f"database : {backend.config.dbname} | id : {writer.id} | ct_uuid : {writer.uuid}"
    )
    files = {f.name: f for f in ctx.plan.files}
    assert set(files) == {"measurement", "snapshot.json", "metadata.json"}
    assert files["measurement"].file_type is FileType.HDF5_NETCDF
    assert files["measurement"].filename == "measured_data.hdf5"
    assert {f.generator for f in files.values()} == {"core-tools"}
    assert json.loads(files["snapshot.json"].path.read_text()) == spec.snapshot
    meta = json.loads(files["metadata.json"].path.read_text())
    assert meta["metadata"] == spec.metadata
    assert meta["uuid"] == writer.uuid
    assert meta["starred"] is True
    assert meta["completed"] is True
    assert meta["measured_parameters"] == {"SD1_current": ["P1", "P2"], "SD2_current": ["P1", "P2"]}


def test_dict_keywords_and_scope_column(pg_dsn: str, make_backend: Any, tmp_path: Path) -> None:
    conninfo = ct.create_database("etiket_test_coretools", pg_dsn)
    try:
        ct.create_schema(conninfo, scope_column=True)
        spec = ct.demo_measurements()[3]
        spec.scope = "my-scope"
        scoped = ct.write_measurement(conninfo, spec)
        unscoped = ct.write_measurement(conninfo, ct.demo_measurements("other-project")[0])
        backend = make_backend(conninfo)
        items = {i.key: i for i in backend.get_new_datasets(None)}
        assert items[scoped.key].scope_identifier == "my-scope"
        assert items[unscoped.key].scope_identifier == "other-project"
        ctx = _sync(backend, scoped.key, tmp_path)
        assert ctx.plan.dataset is not None
        assert ctx.plan.dataset.keywords == ["calibration"]
        with _nc(ctx) as f:
            assert f.variables["SD1_current"].shape == ()
            assert f.variables["SD1_current"][...] == ct.expected_arrays(spec)["SD1_current"]
    finally:
        ct.drop_database(conninfo, pg_dsn)


def test_legacy_database_without_measurement_parameters(
    pg_dsn: str, make_backend: Any, tmp_path: Path
) -> None:
    conninfo = ct.create_database("etiket_test_coretools", pg_dsn)
    try:
        ct.create_schema(conninfo, legacy=True)
        spec = ct.demo_measurements()[2]
        writer = ct.write_measurement(conninfo, spec, old_format=True, points=5, complete=False)
        backend = make_backend(conninfo)
        [item] = list(backend.get_new_datasets(None))
        # 5 rows: ch1, ch2, their time axes (written at once) and the vSD sweep (5 points)
        assert item.fingerprint is not None
        assert item.fingerprint.endswith(f"w5:{2 * 5 * 50 + 2 * 50 + 5}")
        ctx = _sync(backend, writer.key, tmp_path)
        with _nc(ctx) as f:
            ch1 = f.variables["ch1"][...]
            assert ch1.shape == (8, 50)
            np.testing.assert_array_equal(ch1[:5], ct.expected_arrays(spec)["ch1"][:5])
            assert np.isnan(ch1[5:]).all()
    finally:
        ct.drop_database(conninfo, pg_dsn)


def test_missing_large_object_is_an_item_error(
    ct_db: str, make_backend: Any, tmp_path: Path
) -> None:
    good = ct.write_measurement(ct_db, ct.demo_measurements()[0])
    bad = ct.write_measurement(ct_db, ct.demo_measurements()[1])
    oid = ct.break_large_object(ct_db, bad.uuid)
    backend = make_backend(ct_db)
    with pytest.raises(SyncError, match=f"large object .*{oid}"):
        _sync(backend, bad.key, tmp_path)
    # The pooled connection is still usable for the next dataset.
    assert _sync(backend, good.key, tmp_path).plan.dataset is not None


def test_missing_old_format_table_is_an_item_error(
    ct_db: str, make_backend: Any, tmp_path: Path
) -> None:
    writer = ct.write_measurement(ct_db, ct.demo_measurements()[0], old_format=True)
    import psycopg

    with psycopg.connect(ct_db) as conn:
        conn.execute(f"DROP TABLE {writer.table}")
    with pytest.raises(SyncError, match=r"parameter table .* does not exist"):
        _sync(make_backend(ct_db), writer.key, tmp_path)


def test_unknown_measurement_is_an_item_error(
    ct_db: str, make_backend: Any, tmp_path: Path
) -> None:
    with pytest.raises(SyncError, match="no longer in"):
        _sync(make_backend(ct_db), "123456789", tmp_path)


def test_output_is_byte_identical_when_nothing_changed(
    ct_db: str, make_backend: Any, tmp_path: Path
) -> None:
    writer = ct.write_measurement(ct_db, TRACE_SPEC, points=2, complete=False)
    backend = make_backend(ct_db)

    def digests() -> dict[str, str]:
        ctx = _sync(backend, writer.key, tmp_path)
        return {f.name: hashlib.md5(f.path.read_bytes()).hexdigest() for f in ctx.plan.files}

    first = digests()
    assert digests() == first
    writer.advance(1)
    grown = digests()
    assert grown["measurement"] != first["measurement"]
    assert grown["snapshot.json"] == first["snapshot.json"]


def test_large_measurement_streams_in_chunks(ct_db: str, make_backend: Any, tmp_path: Path) -> None:
    spec = ct.MeasurementSpec(
        "big 2D",
        [
            ct.Axis("x", "x", "mV", list(np.linspace(0, 1, 300))),
            ct.Axis("y", "y", "mV", list(np.linspace(0, 1, 200))),
        ],
        [
            ct.Getter(
                "dig",
                [ct.Output("amp", "amplitude", "V", [ct.Axis("t", "t", "s", list(range(40)))])],
            )
        ],
    )
    writer = ct.write_measurement(ct_db, spec, points=300 * 200 - 7, complete=False)
    backend = make_backend(ct_db)
    import etiket_sync_agent_core_tools.db as db

    calls: list[int] = []
    original = db.LargeObjectReader.read

    def counting(self: db.LargeObjectReader, oid: int, start: int, count: int) -> Any:
        calls.append(count)
        return original(self, oid, start, count)

    db.LargeObjectReader.read = counting  # type: ignore[method-assign]
    try:
        ctx = _sync(backend, writer.key, tmp_path)
    finally:
        db.LargeObjectReader.read = original  # type: ignore[method-assign]
    assert max(calls) <= db.CHUNK_VALUES
    assert len(calls) > 2
    with h5py.File(ctx.plan.file("measurement").path) as f:
        amp = f["amp"][...]
    expected = ct.expected_arrays(spec)["amp"]
    np.testing.assert_array_equal(amp.reshape(-1, 40)[:-7], expected.reshape(-1, 40)[:-7])
    assert np.isnan(amp.reshape(-1, 40)[-7:]).all()


def test_xarray_opens_the_file_with_coordinates(
    ct_db: str, make_backend: Any, tmp_path: Path
) -> None:
    xr = pytest.importorskip("xarray")
    spec = ct.demo_measurements()[1]
    writer = ct.write_measurement(ct_db, spec)
    ctx = _sync(make_backend(ct_db), writer.key, tmp_path)
    with xr.open_dataset(ctx.plan.file("measurement").path, engine="h5netcdf") as ds:
        assert set(ds.data_vars) == {"SD1_current", "SD2_current"}
        assert ds["SD1_current"].dims == ("P1", "P2")
        np.testing.assert_array_equal(ds["P1"].values, spec.sweeps[0].values)
        np.testing.assert_array_equal(
            ds["SD2_current"].values, ct.expected_arrays(spec)["SD2_current"]
        )
        assert ds["SD2_current"].attrs["units"] == "nA"
