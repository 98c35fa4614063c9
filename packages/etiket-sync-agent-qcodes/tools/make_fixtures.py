"""Generate QCoDeS test databases with the real ``qcodes`` package, plus reference exports.

Run with an interpreter that has qcodes installed (the ``fidelity`` nox session does this)::

    python tools/make_fixtures.py OUT_DIR

It writes into ``OUT_DIR``:

- ``experiments.db``: one QCoDeS database with one run per case (1D and 2D sweeps with and
  without shapes, off-grid points, repeated setpoints, array, complex and text parameters, two
  dependents on different setpoints, a parent link, an inspectr tag, dynamic metadata, a run left
  running, a run never started);
- ``raw/<guid>.db`` and ``split.db``: a database using qcodes' per-dataset raw-data backend;
- ``reference/<db stem>_run<run_id>.nc``: ``load_by_guid(guid).to_xarray_dataset()`` of every
  started run, written with h5netcdf (a multi-index is reset to plain coordinates first);
- ``manifest.json``: case name → database, run id, guid, and the qcodes version used.

The fast tests compare our export against the reference files without qcodes installed;
``--compare`` (used by the fidelity session) additionally syncs every run with our writer and checks
it against qcodes live, value for value.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

#: Relative tolerance of value comparisons (SQLite's text form of a REAL has 15 digits).
RTOL = 1e-14


def _qcodes() -> Any:
    import qcodes

    return qcodes


def _reset_multi_index(ds: Any) -> Any:
    import pandas as pd

    multi = [n for n, idx in ds.indexes.items() if isinstance(idx, pd.MultiIndex) and n in ds.dims]
    return ds.reset_index(multi) if multi else ds


def _params() -> dict[str, Any]:
    from qcodes.parameters import ManualParameter

    def p(name: str, label: str, unit: str, vals: Any = None) -> Any:
        return ManualParameter(name, label=label, unit=unit, initial_value=0)

    return {
        "x": p("x", "Gate X", "V"),
        "y": p("y", "Gate Y", "V"),
        "f": p("freq", "Frequency", "Hz"),
        "i": p("current", "Current", "A"),
        "j": p("current2", "Current 2", "A"),
        "k": p("current3", "Current 3", "A"),
        "z": p("signal", "Signal", "V"),
    }


def generate(out: Path) -> dict[str, Any]:
    """Create the databases and reference files in ``out``; return the manifest."""
    qc = _qcodes()
    from qcodes.dataset import (
        Measurement,
        initialise_or_create_database_at,
        load_by_guid,
        load_or_create_experiment,
        new_data_set,
    )
    from qcodes.dataset.descriptions.dependencies import InterDependencies_
    from qcodes.parameters import ParamSpecBase

    out.mkdir(parents=True, exist_ok=True)
    (out / "reference").mkdir(exist_ok=True)
    db = out / "experiments.db"
    for stale in (db, out / "split.db"):
        stale.unlink(missing_ok=True)
    shutil.rmtree(out / "raw", ignore_errors=True)
    qc.config["dataset"]["raw_data_backend"] = "sqlite_main_db"
    initialise_or_create_database_at(str(db))
    exp = load_or_create_experiment("fixture_experiment", sample_name="sample_A")
    P = _params()
    rng = np.random.default_rng(7)
    cases: dict[str, dict[str, Any]] = {}

    def record(case: str, ds: Any, path: Path = db) -> Any:
        cases[case] = {"db": path.name, "run_id": ds.run_id, "guid": ds.guid}
        return ds

    # 1. 1D sweep with shapes.
    meas = Measurement(exp=exp, name="1D sweep\nsecond line of the name")
    meas.register_parameter(P["x"])
    meas.register_parameter(P["i"], setpoints=(P["x"],))
    meas.set_shapes({"current": (11,)})
    with meas.run() as saver:
        for v in np.linspace(-1, 1, 11):
            saver.add_result((P["x"], v), (P["i"], np.sin(v)))
    ds = record("sweep_1d", saver.dataset)
    ds.add_metadata("inspectr_tag", "star")
    ds.add_metadata("fridge_temperature", 0.012)
    ds.add_metadata("comment", "good run")

    # 2. 2D sweep with shapes, 3 dependents (a NaN inside).
    meas = Measurement(exp=exp, name="2D sweep")
    meas.register_parameter(P["x"])
    meas.register_parameter(P["y"])
    for key in ("i", "j", "k"):
        meas.register_parameter(P[key], setpoints=(P["x"], P["y"]))
    meas.set_shapes({"current": (5, 4), "current2": (5, 4), "current3": (5, 4)})
    with meas.run() as saver:
        for a in np.linspace(0, 1, 5):
            for b in np.linspace(-2, 2, 4):
                val = float("nan") if (a == 0.5 and b > 0) else a * b
                saver.add_result(
                    (P["x"], a), (P["y"], b), (P["i"], val), (P["j"], a + b), (P["k"], a - b)
                )
    ds = record("sweep_2d_shapes", saver.dataset)
    ds.add_metadata("inspectr_tag", "cross")

    # 3. 2D grid without shapes (pandas path) and unsorted setpoints.
    meas = Measurement(exp=exp, name="2D grid without shapes")
    meas.register_parameter(P["x"])
    meas.register_parameter(P["y"])
    meas.register_parameter(P["i"], setpoints=(P["x"], P["y"]))
    with meas.run() as saver:
        for a in (3.0, 1.0, 2.0):
            for b in (0.5, -0.5):
                saver.add_result((P["x"], a), (P["y"], b), (P["i"], a * 10 + b))
    record("grid_2d_no_shapes", saver.dataset)

    # 4. Off-grid scatter (multi-index export).
    meas = Measurement(exp=exp, name="scatter")
    meas.register_parameter(P["x"])
    meas.register_parameter(P["y"])
    meas.register_parameter(P["i"], setpoints=(P["x"], P["y"]))
    with meas.run() as saver:
        for a, b in rng.uniform(-1, 1, size=(7, 2)):
            saver.add_result((P["x"], a), (P["y"], b), (P["i"], a + b))
    record("scatter_2d", saver.dataset)

    # 5. Repeated setpoints (non-unique index).
    meas = Measurement(exp=exp, name="repeated setpoints")
    meas.register_parameter(P["x"])
    meas.register_parameter(P["i"], setpoints=(P["x"],))
    with meas.run() as saver:
        for v in (0.0, 1.0, 0.0, 1.0, 2.0):
            saver.add_result((P["x"], v), (P["i"], v * 2 + rng.normal()))
    record("repeated_1d", saver.dataset)

    P = _params()  # fresh parameters: registering a paramtype changes a validator
    # 6. Array parameter (one row per trace) with shapes.
    meas = Measurement(exp=exp, name="array traces")
    meas.register_parameter(P["x"])
    meas.register_parameter(P["f"], paramtype="array")
    meas.register_parameter(P["z"], setpoints=(P["x"], P["f"]), paramtype="array")
    meas.set_shapes({"signal": (3, 6)})
    freqs = np.linspace(1e6, 2e6, 6)
    with meas.run() as saver:
        for v in (0.1, 0.2, 0.3):
            saver.add_result((P["x"], v), (P["f"], freqs), (P["z"], np.cos(freqs * v / 1e6)))
    record("array_traces", saver.dataset)

    P = _params()  # fresh parameters: registering a paramtype changes a validator
    # 7. Array parameter without shapes.
    meas = Measurement(exp=exp, name="array no shapes")
    meas.register_parameter(P["f"], paramtype="array")
    meas.register_parameter(P["z"], setpoints=(P["f"],), paramtype="array")
    with meas.run() as saver:
        saver.add_result((P["f"], freqs), (P["z"], freqs / 1e6))
    record("array_single", saver.dataset)

    P = _params()  # fresh parameters: registering a paramtype changes a validator
    # 8. Complex values.
    meas = Measurement(exp=exp, name="complex")
    meas.register_parameter(P["x"])
    meas.register_parameter(P["z"], setpoints=(P["x"],), paramtype="complex")
    with meas.run() as saver:
        for v in np.linspace(0, 1, 4):
            saver.add_result((P["x"], v), (P["z"], complex(v, -2 * v)))
    record("complex_1d", saver.dataset)

    P = _params()  # fresh parameters: registering a paramtype changes a validator
    # 9. Text dependent and text setpoint.
    meas = Measurement(exp=exp, name="text values")
    meas.register_parameter(P["x"], paramtype="text")
    meas.register_parameter(P["i"], setpoints=(P["x"],))
    meas.register_parameter(P["y"])
    meas.register_parameter(P["z"], setpoints=(P["y"],), paramtype="text")
    with meas.run() as saver:
        for n, word in enumerate(("alpha", "beta", "gamma")):
            saver.add_result((P["x"], word), (P["i"], float(n)))
            saver.add_result((P["y"], float(n)), (P["z"], word.upper()))
    record("text", saver.dataset)

    P = _params()  # fresh parameters: registering a paramtype changes a validator
    # 10. Two dependents on different setpoints (separate rows).
    meas = Measurement(exp=exp, name="two dependents")
    meas.register_parameter(P["x"])
    meas.register_parameter(P["y"])
    meas.register_parameter(P["i"], setpoints=(P["x"],))
    meas.register_parameter(P["j"], setpoints=(P["y"],))
    with meas.run() as saver:
        for v in range(4):
            saver.add_result((P["x"], float(v)), (P["i"], v * 1.5))
        for v in range(3):
            saver.add_result((P["y"], float(v) / 10), (P["j"], -float(v)))
    parent = record("two_dependents", saver.dataset)

    # 11. A child linked to its parent, plus a standalone parameter.
    meas = Measurement(exp=exp, name="child of two dependents")
    meas.register_parent(parent=parent, link_type="analysis", description="fit")
    meas.register_parameter(P["k"])
    with meas.run() as saver:
        saver.add_result((P["k"], 42.0))
    record("parent_link", saver.dataset)

    # 11b. Shapes declared but only part of the grid measured (an interrupted 2D sweep).
    P = _params()
    meas = Measurement(exp=exp, name="interrupted 2D sweep")
    meas.register_parameter(P["x"])
    meas.register_parameter(P["y"])
    meas.register_parameter(P["i"], setpoints=(P["x"], P["y"]))
    meas.set_shapes({"current": (3, 4)})
    with meas.run() as saver:
        for n, (a, b) in enumerate((a, b) for a in (0.0, 1.0, 2.0) for b in (5.0, 6.0, 7.0, 8.0)):
            if n == 7:
                break
            saver.add_result((P["x"], a), (P["y"], b), (P["i"], a * b))
    record("partial_2d_shapes", saver.dataset)

    # 11c. Two dependents on one setpoint with different values (outer join of coordinates).
    meas = Measurement(exp=exp, name="shared setpoint, different values")
    meas.register_parameter(P["x"])
    meas.register_parameter(P["j"], setpoints=(P["x"],))
    meas.register_parameter(P["k"], setpoints=(P["x"],))
    with meas.run() as saver:
        for v in (0.0, 1.0, 2.0, 3.0):
            saver.add_result((P["x"], v), (P["j"], v + 0.5))
        for v in (2.0, 3.0, 4.0, 5.0):
            saver.add_result((P["x"], v), (P["k"], -v))
    record("shared_setpoint_union", saver.dataset)

    # 12. A run left running (never completed).
    interdeps = InterDependencies_(
        dependencies={
            ParamSpecBase("current", "numeric", "Current", "A"): (
                ParamSpecBase("x", "numeric", "Gate X", "V"),
            )
        }
    )
    ds = new_data_set("left running", exp_id=exp.exp_id)
    ds.set_interdependencies(interdeps)
    ds.mark_started()
    ds.add_results([{"x": float(v), "current": float(v) ** 2} for v in range(5)])
    record("left_running", ds)

    # 13. A run never started.
    ds = new_data_set("never started", exp_id=exp.exp_id)
    ds.set_interdependencies(interdeps)
    record("never_started", ds)

    P = _params()  # fresh parameters: registering a paramtype changes a validator
    # 14. The per-dataset raw-data backend, in its own database.
    split = out / "split.db"
    qc.config["dataset"]["raw_data_backend"] = "sqlite_per_dataset_db"
    backend_config = qc.config["dataset"].get("raw_data_backend_config") or {}
    backend_config = dict(backend_config)
    backend_config["sqlite_per_dataset_db"] = {"raw_data_path": str(out / "raw")}
    qc.config["dataset"]["raw_data_backend_config"] = backend_config
    initialise_or_create_database_at(str(split))
    exp2 = load_or_create_experiment("split_experiment", sample_name="sample_B")
    meas = Measurement(exp=exp2, name="per-dataset backend")
    meas.register_parameter(P["x"])
    meas.register_parameter(P["i"], setpoints=(P["x"],))
    meas.set_shapes({"current": (6,)})
    with meas.run() as saver:
        for v in range(6):
            saver.add_result((P["x"], float(v)), (P["i"], float(v) * 3))
    record("per_dataset_backend", saver.dataset, split)
    qc.config["dataset"]["raw_data_backend"] = "sqlite_main_db"

    manifest = {"qcodes_version": qc.__version__, "cases": cases}
    for case, info in cases.items():
        if case == "never_started":
            continue
        initialise_or_create_database_at(str(out / info["db"]))
        ref = _reset_multi_index(load_by_guid(info["guid"]).to_xarray_dataset())
        name = f"{Path(info['db']).stem}_run{info['run_id']}.nc"
        ref.to_netcdf(out / "reference" / name, engine="h5netcdf")
        info["reference"] = f"reference/{name}"
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def compare(out: Path) -> int:
    """Export every run with our writer (both read paths) and compare it with qcodes' own
    export, live."""
    import xarray as xr
    from etiket_sync_agent_qcodes.export import export_run
    from etiket_sync_agent_qcodes.reader import QCoDeSDatabase
    from qcodes.dataset import initialise_or_create_database_at, load_by_guid

    manifest = json.loads((out / "manifest.json").read_text())
    failures = 0
    for case, info in manifest["cases"].items():
        if case == "never_started":
            continue
        db_path = out / info["db"]
        initialise_or_create_database_at(str(db_path))
        expected = _reset_multi_index(load_by_guid(info["guid"]).to_xarray_dataset())
        problems: list[str] = []
        # As the agent reads it (small runs: one query per dependent), and read in ranges of
        # two row ids with the helper process, as large completed runs are read.
        for how, options in (("", {}), ("parallel ", {"parallel": True, "range_ids": 2})):
            ours_path = out / f"ours_{how.strip() or 'default'}_{case}.hdf5"
            with QCoDeSDatabase(db_path, **options) as database:
                run = database.run_by_guid(info["guid"])
                assert run is not None, case
                export_run(database, run, ours_path)
            with xr.open_dataset(ours_path, engine="h5netcdf") as ours:
                problems += [how + p for p in compare_datasets(expected, ours)]
        status = "ok" if not problems else "MISMATCH"
        print(f"{case:24s} {status}")
        for problem in problems:
            print(f"    {problem}")
        failures += bool(problems)
    return failures


def compare_datasets(expected: Any, ours: Any) -> list[str]:
    """Differences between qcodes' dataset and ours (variables, values, dims, units, labels)."""
    problems: list[str] = []
    names = set(expected.variables)
    if set(ours.variables) != names:
        problems.append(f"variables differ: qcodes {sorted(names)} ours {sorted(ours.variables)}")
    for name in sorted(names & set(ours.variables)):
        a, b = expected[name], ours[name]
        if a.dims != b.dims:
            problems.append(f"{name}: dims {a.dims} != {b.dims}")
            continue
        if a.values.dtype.kind in "fc":
            # QCoDeS reads numeric columns through SQLite's 15-digit text form; we read the
            # stored doubles exactly, so values agree to 15 significant digits.
            same = a.shape == b.shape and np.allclose(
                a.values, b.values, equal_nan=True, rtol=RTOL, atol=0
            )
        else:
            same = a.shape == b.shape and [str(v) for v in a.values.ravel()] == [
                str(v) for v in b.values.ravel()
            ]
        if not same:
            problems.append(f"{name}: values differ:\n{a.values}\n{b.values}")
        for attr in ("units", "long_name", "unit", "label", "paramtype"):
            if name in ("index", "multi_index"):
                continue
            if str(a.attrs.get(attr)) != str(b.attrs.get(attr)):
                problems.append(
                    f"{name}: attr {attr} {a.attrs.get(attr)!r} != {b.attrs.get(attr)!r}"
                )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--compare", action="store_true", help="also compare ours vs qcodes")
    args = parser.parse_args(argv)
    manifest = generate(args.out)
    print(f"qcodes {manifest['qcodes_version']}: {len(manifest['cases'])} runs in {args.out}")
    if args.compare:
        failures = compare(args.out)
        print(f"fidelity: {failures} mismatching runs")
        return 1 if failures else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
