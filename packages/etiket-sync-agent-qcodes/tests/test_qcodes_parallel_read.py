"""The ranged, parallel reader and the incremental writer agree with the simple paths.

``QCoDeSDatabase.read_trees`` reads a large completed run in id ranges with a helper process;
``read_tree`` (one query per tree, no helper) is the reference. ``export_run`` writes dependents as
they are read; writing everything in one go at the end is the reference. Data are generated here:
NULLs, QCoDeS' ``'nan'`` text, ints (also beyond 2**53), infinities, -0.0, text that numpy
cannot read, blobs, different setpoints per dependent, non-numeric trees, live runs.
"""

from __future__ import annotations

import hashlib
import io
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5netcdf
import numpy as np
import pytest
from etiket_sync_agent_qcodes import _rowhelper, export, reader
from etiket_sync_agent_qcodes.export import export_run
from etiket_sync_agent_qcodes.reader import QCoDeSDatabase, RunRow
from etiket_sync_agent_qcodes.rundescriber import ParamSpec
from etiket_sync_agent_qcodes.testing import QCoDeSWriter, RunHandle

Trees = list[tuple[list[str], list[str]]]

PARAMS = [
    ParamSpec("a", "numeric", "A", "V"),
    ParamSpec("b", "numeric", "B", "V"),
    ParamSpec("c", "numeric", "C", "s"),
    ParamSpec("d1", "numeric", "D1", "A", depends_on=("a", "b")),
    ParamSpec("d2", "numeric", "D2", "A", depends_on=("a", "b")),
    ParamSpec("d3", "numeric", "D3", "A", depends_on=("c",)),
    ParamSpec("z", "complex", "Z", "V", depends_on=("c",)),
    ParamSpec("s", "text", "S", "", depends_on=("a",)),
]
TREES: Trees = [
    (["d1", "a", "b"], ["numeric"] * 3),
    (["d2", "a", "b"], ["numeric"] * 3),
    (["d3", "c"], ["numeric"] * 2),
    (["z", "c"], ["complex", "numeric"]),
    (["s", "a"], ["text", "numeric"]),
]
#: Odd values a numeric column may hold: what SQLite hands back must come out the same way.
ODD: list[Any] = [
    None,
    "nan",
    2**53 + 1,
    -(2**62) - 3,
    7,
    -0.0,
    float("inf"),
    float("-inf"),
    5e-324,
    1.7976931348623157e308,
    "1.5",
]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _mixed_run(
    path: Path, rows: int, *, complete: bool = True, odd: bool = True, seed: int = 1
) -> RunHandle:
    """A run whose dependents are written in separate, interleaved rows (as QCoDeS does)."""
    writer = QCoDeSWriter(path)
    exp = writer.new_experiment("mixed")
    run = writer.new_run(exp, "mixed", PARAMS)
    rng = np.random.default_rng(seed)
    records: list[tuple[Any, ...]] = []
    for i in range(rows):
        a, b, c = float(i // 7), float(rng.normal()), float(i) * 0.5
        for dep in ("d1", "d2"):
            records.append((dep, a, b, None, float(rng.normal())))
        records.append(("d3", None, None, c, float(rng.normal())))
        if i % 5 == 0:
            records.append(("z", None, None, c, complex(i, -i)))
        if i % 9 == 0:
            records.append(("s", a, None, None, f"state {i}"))
    if odd:
        for k, value in enumerate(ODD):
            records.insert(3 * k + 1, ("d1", value, value, None, value if value is not None else 1))
            records.insert(5 * k + 2, ("d3", None, None, value, float(k)))
        for k in range(0, len(records), 97):  # big ints only: the helper converts these
            records.insert(k, ("d2", 2**53 + 1, -(2**62) - 3, None, 2**60 + k))
        records.insert(11, ("d2", "abc", 1.0, None, 2.0))  # text numpy cannot read
        records.insert(17, ("d2", 3.0, b"\x00\x01", None, 4.0))  # a blob
    conn = writer.connect()
    try:
        for dep, a, b, c, value in records:
            if dep == "z":
                buffer = io.BytesIO()
                np.save(buffer, np.array([value]))
                value = sqlite3.Binary(buffer.getvalue())
            conn.execute(
                f'INSERT INTO "{run.table}" (a, b, c, "{dep}") VALUES (?, ?, ?, ?)',
                (a, b, c, value),
            )
        conn.commit()
    finally:
        conn.close()
    if complete:
        writer.complete(run)
    return run


def _same(expected: np.ndarray[Any, Any], got: np.ndarray[Any, Any]) -> bool:
    if expected.dtype != got.dtype or expected.shape != got.shape:
        return False
    if expected.dtype.kind == "f":
        return bool(
            np.array_equal(expected, got, equal_nan=True)
            and np.array_equal(np.signbit(expected), np.signbit(got))
        )
    if expected.dtype.kind == "c":
        return bool(np.array_equal(expected, got, equal_nan=True))
    return [repr(v) for v in expected.tolist()] == [repr(v) for v in got.tolist()]


def _assert_same_trees(
    expected: list[dict[str, np.ndarray[Any, Any]]], got: list[dict[str, np.ndarray[Any, Any]]]
) -> None:
    assert len(expected) == len(got)
    for want, have in zip(expected, got, strict=True):
        assert list(want) == list(have)
        for name in want:
            assert _same(want[name], have[name]), name


def _simple(database: QCoDeSDatabase, run: RunRow, trees: Trees) -> list[dict[str, Any]]:
    return [database.read_tree(run, columns, types) for columns, types in trees]


class _Spy:
    """Counts helper starts and the blocks helpers delivered."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started: list[reader._Helper] = []
        self.delivered = 0
        start, read = reader._Helper.start, reader._Helper.read
        spy = self

        def counting_start(uri: str, busy_timeout: float) -> reader._Helper | None:
            helper = start(uri, busy_timeout)
            if helper is not None:
                spy.started.append(helper)
            return helper

        def counting_read(self: reader._Helper, queries: Any) -> Any:
            results = read(self, queries)
            spy.delivered += sum(r is not None for r in results)
            return results

        monkeypatch.setattr(reader._Helper, "start", staticmethod(counting_start))
        monkeypatch.setattr(reader._Helper, "read", counting_read)


@pytest.fixture
def slow_main(monkeypatch: pytest.MonkeyPatch) -> None:
    """The main thread reads slowly, so a helper surely gets work even on tiny data."""
    read_block = reader._read_block

    def slow(*args: Any) -> Any:
        threading.Event().wait(0.003)
        return read_block(*args)

    monkeypatch.setattr(reader, "_read_block", slow)


@pytest.mark.parametrize("range_ids", [1, 7, 1000, 10**9])
def test_ranged_parallel_read_equals_the_simple_path(tmp_path: Path, range_ids: int) -> None:
    path = tmp_path / "mixed.db"
    run = _mixed_run(path, rows=300)
    before = _md5(path)
    with QCoDeSDatabase(path) as database:
        row = database.run_by_guid(run.guid)
        assert row is not None
        expected = _simple(database, row, TREES)
        got = list(database.read_trees(row, TREES, parallel=True, range_ids=range_ids))
        sequential = list(database.read_trees(row, TREES, parallel=False))
    _assert_same_trees(expected, got)
    _assert_same_trees(expected, sequential)
    assert _md5(path) == before
    # The odd values went through as SQLite gave them (ints rounded like float() does).
    d1 = expected[0]["d1"]
    assert float(2**53 + 1) in d1
    assert float(-(2**62) - 3) in d1
    assert 1.5 in d1
    assert np.isinf(d1).sum() == 2
    assert np.isnan(d1).any()


def test_the_helper_delivers_and_its_values_are_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slow_main: None
) -> None:
    path = tmp_path / "plain.db"
    run = _mixed_run(path, rows=400, odd=False)
    spy = _Spy(monkeypatch)
    with QCoDeSDatabase(path) as database:
        row = database.run_by_guid(run.guid)
        assert row is not None
        expected = _simple(database, row, TREES)
        got = list(database.read_trees(row, TREES, parallel=True, range_ids=64))
    _assert_same_trees(expected, got)
    assert len(spy.started) == 1
    assert spy.delivered > 0
    assert spy.started[0].process.poll() is not None  # ended with the read


def test_values_the_helper_refuses_are_read_by_the_main_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slow_main: None
) -> None:
    path = tmp_path / "odd.db"
    run = _mixed_run(path, rows=60)
    spy = _Spy(monkeypatch)
    with QCoDeSDatabase(path) as database:
        row = database.run_by_guid(run.guid)
        assert row is not None
        expected = _simple(database, row, TREES)
        got = list(database.read_trees(row, TREES, parallel=True, range_ids=3))
    _assert_same_trees(expected, got)
    assert spy.started


@pytest.mark.parametrize("failure", ["no start", "error", "killed", "hangs"])
def test_a_helper_that_fails_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slow_main: None, failure: str
) -> None:
    path = tmp_path / "fail.db"
    run = _mixed_run(path, rows=200, odd=False)
    read = reader._Helper.read
    calls = {"n": 0}

    def failing_read(self: reader._Helper, queries: Any) -> Any:
        calls["n"] += 1
        if calls["n"] < 3:
            return read(self, queries)
        if failure == "error":
            raise reader._HelperFailed("boom")
        if failure == "killed":
            self.process.kill()
            return read(self, queries)
        # "hangs": wait for a reply that never comes, until the main thread gives up on it.
        return self._exactly(_rowhelper.HEADER.size)

    if failure == "no start":
        monkeypatch.setattr(reader._Helper, "start", staticmethod(lambda uri, timeout: None))
    monkeypatch.setattr(reader._Helper, "read", failing_read)
    monkeypatch.setattr(reader, "HELPER_PATIENCE", 0.2)
    with QCoDeSDatabase(path) as database:
        row = database.run_by_guid(run.guid)
        assert row is not None
        expected = _simple(database, row, TREES)
        got = list(database.read_trees(row, TREES, parallel=True, range_ids=16))
    _assert_same_trees(expected, got)


def test_closing_the_read_early_ends_the_helper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slow_main: None
) -> None:
    path = tmp_path / "early.db"
    run = _mixed_run(path, rows=200, odd=False)
    spy = _Spy(monkeypatch)
    with QCoDeSDatabase(path) as database:
        row = database.run_by_guid(run.guid)
        assert row is not None
        values = database.read_trees(row, TREES, parallel=True, range_ids=8)
        first = next(values)
        values.close()
        assert list(first) == ["d1", "a", "b"]
    assert spy.started
    assert all(h.process.poll() is not None for h in spy.started)


def test_live_run_rows_added_while_reading_are_not_half_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slow_main: None
) -> None:
    path = tmp_path / "live.db"
    run = _mixed_run(path, rows=200, complete=False, odd=False)
    spy = _Spy(monkeypatch)
    holder = sqlite3.connect(path)  # keeps what it writes in the -wal file
    holder.execute("PRAGMA wal_autocheckpoint=0")
    try:
        holder.execute(f'INSERT INTO "{run.table}" (a, b, d1) VALUES (1e9, 2e9, 3e9)')
        holder.commit()
        with QCoDeSDatabase(path) as database:
            row = database.run_by_guid(run.guid)
            assert row is not None
            assert not row.is_completed
            expected = _simple(database, row, TREES)
            assert 3e9 in expected[0]["d1"]  # what is only in the -wal file is seen
            values = database.read_trees(row, TREES, parallel=True, range_ids=16)
            got = [next(values)]
            for _ in range(3):
                holder.execute(
                    f'INSERT INTO "{run.table}" (a, b, d1, d2, c, d3) VALUES (1, 2, 3, 4, 5, 6)'
                )
                holder.commit()
            got += list(values)
        _assert_same_trees(expected, got)
        assert spy.started
    finally:
        holder.close()


def test_the_default_reads_only_large_completed_runs_in_parallel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = _mixed_run(tmp_path / "done.db", rows=50, odd=False)
    live = _mixed_run(tmp_path / "live.db", rows=50, complete=False, odd=False)
    spy = _Spy(monkeypatch)
    monkeypatch.setattr(reader, "PARALLEL_MIN_ROWS", 10**6)
    with QCoDeSDatabase(tmp_path / "done.db") as database:
        row = database.run_by_guid(done.guid)
        assert row is not None
        list(database.read_trees(row, TREES))
    assert not spy.started  # too small
    monkeypatch.setattr(reader, "PARALLEL_MIN_ROWS", 10)
    monkeypatch.setattr(reader, "_usable_cpus", lambda: 2)
    with QCoDeSDatabase(tmp_path / "live.db") as database:
        row = database.run_by_guid(live.guid)
        assert row is not None
        list(database.read_trees(row, TREES))
    assert not spy.started  # not completed
    with QCoDeSDatabase(tmp_path / "done.db", parallel=False) as database:
        row = database.run_by_guid(done.guid)
        assert row is not None
        list(database.read_trees(row, TREES))
    assert not spy.started  # switched off
    with QCoDeSDatabase(tmp_path / "done.db") as database:
        row = database.run_by_guid(done.guid)
        assert row is not None
        list(database.read_trees(row, TREES))
    assert len(spy.started) == 1
    with QCoDeSDatabase(tmp_path / "live.db", parallel=True) as database:
        row = database.run_by_guid(live.guid)
        assert row is not None
        list(database.read_trees(row, TREES))
    assert len(spy.started) == 2  # forced


def test_a_table_whose_id_is_no_rowid_is_read_by_one_query_per_tree(tmp_path: Path) -> None:
    path = tmp_path / "noid.db"
    writer = QCoDeSWriter(path)
    exp = writer.new_experiment("noid")
    run = writer.new_run(exp, "noid", PARAMS[:4])
    conn = writer.connect()
    conn.execute(f'DROP TABLE "{run.table}"')
    conn.execute(f'CREATE TABLE "{run.table}" (id REAL, a NUMERIC, b NUMERIC, d1 NUMERIC)')
    conn.executemany(
        f'INSERT INTO "{run.table}" VALUES (?, ?, ?, ?)',
        [(i / 2, i, -i, i * 1.5) for i in range(30)],
    )
    conn.commit()
    conn.close()
    writer.complete(run)
    with QCoDeSDatabase(path) as database:
        row = database.run_by_guid(run.guid)
        assert row is not None
        trees = TREES[:1]
        _assert_same_trees(
            _simple(database, row, trees),
            list(database.read_trees(row, trees, parallel=True, range_ids=4)),
        )


def test_empty_runs_and_raw_data_files_read_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slow_main: None
) -> None:
    path = tmp_path / "experiments.db"
    writer = QCoDeSWriter(path)
    exp = writer.new_experiment("raw")
    empty = writer.new_run(exp, "empty", PARAMS)
    writer.complete(empty)
    raw = writer.new_run(exp, "raw", PARAMS[:4], raw_data_file=tmp_path / "raw" / "r.db")
    writer.add_columns(raw, {"a": np.arange(90.0), "b": np.arange(90.0) % 7, "d1": np.ones(90)})
    writer.complete(raw)
    spy = _Spy(monkeypatch)
    with QCoDeSDatabase(path) as database:
        for handle, trees in ((empty, TREES), (raw, TREES[:1])):
            row = database.run_by_guid(handle.guid)
            assert row is not None
            expected = _simple(database, row, trees)
            _assert_same_trees(
                expected, list(database.read_trees(row, trees, parallel=True, range_ids=5))
            )
    assert len(spy.started) == 1  # the raw-data file's run: its helper opened that file
    assert spy.delivered > 0


# -- the helper process itself ------------------------------------------------------------------
def test_rowhelper_answers_floats_exactly_and_refuses_other_values() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x NUMERIC, y NUMERIC)")
    values = [(0.1, 2**53 + 1), (-0.0, 5e-324), (float("inf"), -7)]
    conn.executemany("INSERT INTO t (x, y) VALUES (?, ?)", values)
    status, payload = _rowhelper.read_query(conn, "SELECT x, y FROM t ORDER BY id", [])
    assert status == _rowhelper.OK
    got = np.frombuffer(payload, dtype=np.float64)
    want = np.array([v for row in conn.execute("SELECT x, y FROM t ORDER BY id") for v in row])
    assert got.tobytes() == want.astype(np.float64).tobytes()
    conn.execute("INSERT INTO t (x, y) VALUES (NULL, 'nan')")
    assert _rowhelper.read_query(conn, "SELECT x FROM t", [])[0] == _rowhelper.NOT_NUMERIC
    assert _rowhelper.read_query(conn, "SELECT y FROM t", [])[0] == _rowhelper.NOT_NUMERIC
    status, message = _rowhelper.read_query(conn, "SELECT nope FROM t", [])
    assert status == _rowhelper.ERROR
    assert b"nope" in message


def test_rowhelper_serves_requests_in_order(tmp_path: Path) -> None:
    path = tmp_path / "serve.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x REAL)")
    conn.executemany("INSERT INTO t (x) VALUES (?)", [(float(i),) for i in range(10)])
    conn.commit()
    conn.close()
    requests = io.BytesIO(
        b'[["SELECT x FROM t WHERE id > ? AND id <= ?", [0, 3]]]\n'
        b'[["SELECT x FROM t WHERE id > ? AND id <= ?", [8, 10]], ["SELECT 1/0 + \'a\'", []]]\n'
    )
    replies = io.BytesIO()
    _rowhelper.serve(reader._readonly_uri(path), 1.0, requests, replies)
    data = replies.getvalue()
    out: list[tuple[int, bytes]] = []
    while data:
        status, size = _rowhelper.HEADER.unpack(data[: _rowhelper.HEADER.size])
        start = _rowhelper.HEADER.size
        out.append((status, data[start : start + size]))
        data = data[start + size :]
    assert [s for s, _ in out] == [_rowhelper.OK, _rowhelper.OK, _rowhelper.NOT_NUMERIC]
    assert np.frombuffer(out[0][1]).tolist() == [0.0, 1.0, 2.0]
    assert np.frombuffer(out[1][1]).tolist() == [8.0, 9.0]


def test_helper_process_reports_sql_errors(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x REAL)")
    conn.execute("INSERT INTO t (x) VALUES (2.5)")
    conn.commit()
    conn.close()
    helper = reader._Helper.start(reader._readonly_uri(path), 1.0)
    assert helper is not None
    try:
        (columns,) = helper.read([("SELECT x FROM t", (), 1)])
        assert columns is not None
        assert [c.tolist() for c in columns] == [[2.5]]
        with pytest.raises(reader._HelperFailed, match="no such column"):
            helper.read([("SELECT nope FROM t", (), 1)])
        with pytest.raises(reader._HelperFailed, match=r"read-only|readonly"):
            helper.read([("INSERT INTO t (x) VALUES (1)", (), 1)])
    finally:
        helper.close()
    assert helper.process.returncode == 0


def test_rowhelper_waits_while_the_database_is_locked(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x REAL)")
    conn.execute("INSERT INTO t (x) VALUES (1.0)")
    conn.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(0.3, lambda: conn.execute("COMMIT"))
    release.start()
    try:
        helper_conn = sqlite3.connect(
            reader._readonly_uri(path), uri=True, timeout=0.01, check_same_thread=False
        )
        status, payload = _rowhelper.read_query(helper_conn, "SELECT x FROM t", [])
        helper_conn.close()
    finally:
        release.join()
        conn.close()
    assert status == _rowhelper.OK
    assert np.frombuffer(payload).tolist() == [1.0]


# -- export: parallel read and incremental writing ---------------------------------------------
def _sweep_params() -> list[ParamSpec]:
    return [
        ParamSpec("x", "numeric", "X", "V"),
        ParamSpec("y", "numeric", "Y", "V"),
        ParamSpec("w", "numeric", "W", "V"),
        ParamSpec("i0", "numeric", "I0", "A", depends_on=("x", "y")),
        ParamSpec("i1", "numeric", "I1", "A", depends_on=("x", "y")),
        ParamSpec("i2", "numeric", "I2", "A", depends_on=("x", "w")),
        ParamSpec("t", "text", "T", "", depends_on=("x",)),
    ]


def _sweep_run(path: Path, *, shaped: bool, other_x: bool = False) -> RunHandle:
    """A 2D sweep written like QCoDeS does (each dependent's rows apart); ``other_x``: the third
    dependent is swept over different x values (its dataset is joined with the others)."""
    writer = QCoDeSWriter(path)
    exp = writer.new_experiment("sweep")
    shapes = {"i0": (6, 5), "i1": (6, 5), "i2": (6, 4)} if shaped else None
    run = writer.new_run(exp, "sweep", _sweep_params(), shapes=shapes)
    xs, ys, ws = np.linspace(-0.0, 1, 6), np.linspace(-1, 1, 5), np.arange(4.0)
    for x in xs:
        writer.add_columns(run, {"x": np.full(5, x), "y": ys, "i0": np.sin(ys + x)})
        writer.add_columns(run, {"x": np.full(5, x), "y": ys, "i1": np.cos(ys * x)})
        x2 = x + 0.05 if other_x else x
        writer.add_columns(run, {"x": np.full(4, x2), "w": ws, "i2": ws * x2})
        writer.add_rows(run, [{"x": x, "t": f"x={x:g}"}])
    writer.complete(run)
    return run


def _file(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with h5netcdf.File(path, "r") as f:
        out["attrs"] = {k: repr(v) for k, v in f.attrs.items()}
        out["dims"] = {name: dim.size for name, dim in f.dimensions.items()}
        for name, var in f.variables.items():
            attrs = {k: repr(v) for k, v in var.attrs.items()}
            out[name] = (tuple(var.dimensions), np.asarray(var[...]), attrs)
    return out


def _assert_same_files(expected: dict[str, Any], got: dict[str, Any]) -> None:
    assert sorted(expected) == sorted(got)
    for name, want in expected.items():
        have = got[name]
        if name in ("attrs", "dims"):
            assert want == have, name
            continue
        assert want[0] == have[0], name
        assert _same(want[1], have[1]), name
        assert want[2] == have[2], name


def _export(path: Path, guid: str, out: Path, *, parallel: bool) -> export.ExportSummary:
    with QCoDeSDatabase(path, parallel=parallel, range_ids=4) as database:
        run = database.run_by_guid(guid)
        assert run is not None
        return export_run(database, run, out)


@pytest.mark.parametrize(("shaped", "other_x"), [(True, False), (False, False), (True, True)])
def test_export_parallel_and_incremental_equal_simple_and_one_shot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shaped: bool, other_x: bool
) -> None:
    path = tmp_path / "sweep.db"
    run = _sweep_run(path, shaped=shaped, other_x=other_x)
    spy = _Spy(monkeypatch)
    fast = _export(path, run.guid, tmp_path / "fast.hdf5", parallel=True)
    assert spy.started
    with monkeypatch.context() as m:
        m.setattr(export._Writer, "can_extend", lambda self, merged, changed: False)
        simple = _export(path, run.guid, tmp_path / "simple.hdf5", parallel=False)
    assert fast == simple
    _assert_same_files(_file(tmp_path / "simple.hdf5"), _file(tmp_path / "fast.hdf5"))
    if other_x:
        assert len(_file(tmp_path / "fast.hdf5")["x"][1]) == 12  # joined coordinates


def test_multi_index_coordinates_are_written_incrementally_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "scatter.db"
    writer = QCoDeSWriter(path)
    exp = writer.new_experiment("scatter")
    params = [
        ParamSpec("u", "numeric", "U", "V"),
        ParamSpec("v", "numeric", "V", "V"),
        ParamSpec("p", "numeric", "P", "A", depends_on=("u", "v")),
        ParamSpec("q", "numeric", "Q", "A", depends_on=("u", "v")),
    ]
    run = writer.new_run(exp, "scatter", params)
    rng = np.random.default_rng(3)
    u, v = rng.normal(size=20), rng.normal(size=20)
    writer.add_columns(run, {"u": u, "v": v, "p": u * v})
    writer.add_columns(run, {"u": u, "v": v, "q": u - v})
    writer.complete(run)
    incremental = _export(path, run.guid, tmp_path / "inc.hdf5", parallel=False)
    with monkeypatch.context() as m:
        m.setattr(export._Writer, "can_extend", lambda self, merged, changed: False)
        one_shot = _export(path, run.guid, tmp_path / "one.hdf5", parallel=False)
    assert incremental == one_shot
    got = _file(tmp_path / "inc.hdf5")
    _assert_same_files(_file(tmp_path / "one.hdf5"), got)
    assert got["p"][0] == ("multi_index",)
    assert "coordinates" in got["p"][2]


def test_a_failed_export_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "sweep.db"
    run = _sweep_run(path, shaped=True)
    calls = {"n": 0}
    layout = export._layout

    def failing_layout(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ValueError("broken")
        return layout(*args)

    monkeypatch.setattr(export, "_layout", failing_layout)
    out = tmp_path / "out.hdf5"
    with pytest.raises(ValueError, match="broken"):
        _export(path, run.guid, out, parallel=False)
    assert not out.exists()


# -- the raster fast path of the shaped layout ---------------------------------------------------
def _grid(shape: tuple[int, ...], order: Any = None) -> dict[str, np.ndarray[Any, Any]]:
    axes = [np.linspace(-1, 1, n) * (k + 1) for k, n in enumerate(shape)]
    mesh = np.meshgrid(*axes, indexing="ij")
    data = {f"s{k}": m.ravel().copy() for k, m in enumerate(mesh)}
    data["top"] = np.arange(float(np.prod(shape)))
    if order is not None:
        data = {k: v[order] for k, v in data.items()}
    return data


def _cases() -> Iterator[tuple[str, tuple[int, ...], dict[str, np.ndarray[Any, Any]]]]:
    yield "2d raster", (4, 3), _grid((4, 3))
    yield "3d raster", (2, 3, 4), _grid((2, 3, 4))
    yield "1d raster", (5,), _grid((5,))
    yield "reversed rows", (4, 3), _grid((4, 3), order=np.arange(12)[::-1])
    shuffled = np.random.default_rng(0).permutation(12)
    yield "shuffled rows", (4, 3), _grid((4, 3), order=shuffled)
    yield "swapped axes", (3, 4), _grid((4, 3), order=np.arange(12).reshape(4, 3).T.ravel())
    signed = _grid((2, 3))
    signed["s1"][[1, 4]] = [-0.0, 0.0]  # 0.0 first seen as -0.0 on one row, +0.0 on the next
    signed["s1"][[0, 3]] = [0.5, 0.5]
    yield "signed zeros", (2, 3), signed
    nan = _grid((2, 3))
    nan["s1"][[0, 3]] = np.nan
    yield "nan setpoint", (2, 3), nan
    repeated = _grid((2, 3))
    repeated["s1"][[1, 4]] = repeated["s1"][[0, 3]]
    yield "repeated values", (2, 3), repeated
    off = _grid((2, 3))
    off["s0"][2] = 9.0
    yield "not constant along the other axis", (2, 3), off


@pytest.mark.parametrize(("case", "shape", "data"), list(_cases()), ids=lambda v: str(v)[:20])
def test_raster_fast_path_equals_the_general_direct_method(
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    shape: tuple[int, ...],
    data: dict[str, np.ndarray[Any, Any]],
) -> None:
    top = ParamSpec("top", "numeric", "T", "", depends_on=tuple(f"s{k}" for k in range(len(shape))))
    shaped = {k: v.reshape(shape) for k, v in data.items()}
    fast = export._direct(top, list(top.depends_on), shape, dict(shaped))
    with monkeypatch.context() as m:
        m.setattr(export, "_raster_axes", lambda deps, shape, data: None)
        general = export._direct(top, list(top.depends_on), shape, dict(shaped))
    assert (fast is None) == (general is None), case
    if fast is None or general is None:
        return
    assert fast.dims == general.dims
    for dim in general.index:
        want, have = general.index[dim], fast.index[dim]
        assert want is not None
        assert have is not None
        assert _same(want, have), (case, dim)
    assert fast.vars.keys() == general.vars.keys()
    for name, var in general.vars.items():
        assert fast.vars[name].dims == var.dims
        assert _same(var.data, fast.vars[name].data), (case, name)
