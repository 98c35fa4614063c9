"""QCoDeS backend benchmark: one run of 10^6 points (2D sweep, 3 dependents) from DB to HDF5.

Ours (``etiket_sync_agent_qcodes``: sqlite3 → numpy → h5netcdf) against the real qcodes path
(``load_by_guid`` → ``to_xarray_dataset`` → ``to_netcdf``), both measured in this run, each in its
own subprocess so peak memory is that path's alone. Prints wall time, CPU time (ours reads a large
completed run with a helper process on a second core: its CPU time is included), peak RSS (ours:
its own plus its helper's) and the peak RSS above the process's RSS after its imports ("working
memory"), and the ratios. Targets: ours >= 5x faster, <= 0.5x peak memory. Asserts nothing.

Needs the real qcodes (``nox -s bench`` and ``nox -s fidelity`` run it in a Python 3.12 venv with
qcodes), e.g. ``python tools/bench/bench_qcodes.py [--quick] [--points N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb(pid: int | str = "self") -> float:
    # VmHWM restarts at exec (ru_maxrss would include the parent's peak before the exec).
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    if pid != "self":
        return 0.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its waited-for children."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class _ChildPeaks:
    """Polls the peak RSS (VmHWM) of this process's children (ours: the reader's helper)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _children(self) -> list[str]:
        pids: list[str] = []
        for task in Path("/proc/self/task").iterdir():
            try:
                pids += (task / "children").read_text().split()
            except OSError:
                pass
        return pids

    def _poll(self) -> None:
        while not self._stop.is_set():
            for pid in self._children():
                # The latest reading, not the largest: between fork and exec a child still shows
                # this process's peak; after exec VmHWM only grows (and a zombie shows none).
                peak = _peak_mb(pid)
                if peak > 0:
                    self.peaks[pid] = peak
            self._stop.wait(self.interval)

    def __enter__(self) -> _ChildPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def total_mb(self) -> float:
        return sum(self.peaks.values())


def make_database(path: Path, points: int) -> str:
    """A qcodes database with one 2D sweep of ``points`` points and 3 dependents; its guid."""
    import numpy as np
    from qcodes.dataset import (
        Measurement,
        initialise_or_create_database_at,
        load_or_create_experiment,
    )
    from qcodes.parameters import ManualParameter

    initialise_or_create_database_at(str(path))
    exp = load_or_create_experiment("bench", sample_name="bench_sample")
    x = ManualParameter("x", label="Gate X", unit="V")
    y = ManualParameter("y", label="Gate Y", unit="V")
    deps = [ManualParameter(f"i{k}", label=f"Current {k}", unit="A") for k in range(3)]
    nx = round(points**0.5)
    ny = points // nx
    meas = Measurement(exp=exp, name="bench 2D sweep")
    meas.register_parameter(x)
    meas.register_parameter(y)
    for dep in deps:
        meas.register_parameter(dep, setpoints=(x, y))
    meas.set_shapes({dep.name: (nx, ny) for dep in deps})
    ys = np.linspace(-1, 1, ny)
    with meas.run() as saver:
        for xv in np.linspace(0, 1, nx):
            saver.add_result(
                (x, np.full(ny, xv)),
                (y, ys),
                *((dep, np.sin(ys * (k + 1)) + xv) for k, dep in enumerate(deps)),
            )
        guid = saver.dataset.guid
    return str(guid)


def run_ours(db: Path, guid: str, out: Path) -> dict[str, float]:
    from etiket_sync_agent_qcodes.export import export_run
    from etiket_sync_agent_qcodes.reader import QCoDeSDatabase

    base = _rss_mb()
    with _ChildPeaks() as helpers:
        cpu = _cpu_seconds()
        t0 = time.perf_counter()
        with QCoDeSDatabase(db) as database:
            run = database.run_by_guid(guid)
            assert run is not None
            export_run(database, run, out)
        seconds = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mb": _peak_mb() + helpers.total_mb,
        "helper_mb": helpers.total_mb,
        "base_mb": base,
    }


def run_qcodes(db: Path, guid: str, out: Path) -> dict[str, float]:
    import xarray  # noqa: F401  (import cost is not part of the measured work)
    from qcodes.dataset import initialise_or_create_database_at, load_by_guid

    initialise_or_create_database_at(str(db))
    base = _rss_mb()
    cpu = _cpu_seconds()
    t0 = time.perf_counter()
    ds = load_by_guid(guid).to_xarray_dataset()
    ds.to_netcdf(out, engine="h5netcdf")
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "cpu_seconds": _cpu_seconds() - cpu,
        "peak_mb": _peak_mb(),
        "helper_mb": 0.0,
        "base_mb": base,
    }


def _child(which: str, db: Path, guid: str, out: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", which, str(db), guid, str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^5 points instead of 10^6")
    parser.add_argument("--points", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=4, metavar=("WHICH", "DB", "GUID", "OUT"))
    args = parser.parse_args(argv)
    if args.child:
        which, db, guid, out = args.child
        fn = run_ours if which == "ours" else run_qcodes
        print(json.dumps(fn(Path(db), guid, Path(out))))
        return 0
    points = args.points or (100_000 if args.quick else 1_000_000)
    work = Path(tempfile.mkdtemp(prefix="bench-qcodes-"))
    db = work / "bench.db"
    t0 = time.perf_counter()
    guid = make_database(db, points)
    print(
        f"database: {points:,} points x 3 dependents, {db.stat().st_size / 2**20:.0f} MB, "
        f"written by qcodes in {time.perf_counter() - t0:.1f} s"
    )
    results: dict[str, list[dict[str, float]]] = {"ours": [], "qcodes": []}
    for i in range(args.repeat):
        for which in ("ours", "qcodes"):
            results[which].append(_child(which, db, guid, work / f"{which}{i}.hdf5"))
    best = {w: min(r, key=lambda d: d["seconds"]) for w, r in results.items()}
    peak = {w: max(d["peak_mb"] for d in r) for w, r in results.items()}
    work_mb = {w: max(d["peak_mb"] - d["base_mb"] for d in r) for w, r in results.items()}
    helper_mb = {w: max(d["helper_mb"] for d in r) for w, r in results.items()}
    for which in ("ours", "qcodes"):
        helper = f" (helper process {helper_mb[which]:.0f} MB)" if helper_mb[which] else ""
        print(
            f"{which:7s} best of {args.repeat}: {best[which]['seconds']:.2f} s "
            f"(CPU {best[which]['cpu_seconds']:.2f} s), "
            f"peak RSS {peak[which]:.0f} MB{helper}, working memory {work_mb[which]:.0f} MB, "
            f"file {(work / f'{which}0.hdf5').stat().st_size / 2**20:.1f} MB"
        )
    print(
        "all runs (s): "
        + "; ".join(f"{w} " + ", ".join(f"{d['seconds']:.2f}" for d in results[w]) for w in results)
    )
    speed = best["qcodes"]["seconds"] / best["ours"]["seconds"]
    print(f"speed-up: {speed:.1f}x (target >= 5x)")
    print(f"peak RSS ratio ours/qcodes: {peak['ours'] / peak['qcodes']:.2f} (target <= 0.5)")
    print(
        "working-memory ratio ours/qcodes: "
        f"{work_mb['ours'] / max(work_mb['qcodes'], 1e-9):.2f} (target <= 0.5)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
