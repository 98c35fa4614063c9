"""Generate QUAlibrate storage fixtures with the real ``qualibrate`` package.

Run with an interpreter that has ``qualibrate`` (1.5.x), ``quam``, ``h5py``, ``h5netcdf`` and
``matplotlib`` installed (qualibrate needs h5py and h5netcdf but does not declare them)::

    python tools/make_fixtures.py OUT_DIR

The script configures qualibrate in a private ``HOME`` (``qualibrate-config config``), writes two
calibration nodes into a private library folder and then, in a child process with
``TZ=Europe/Amsterdam`` (so ``created_at`` carries a non-zero offset and folder times are local):

1. saves ``rabi_demo``: nested results with numpy arrays (``arrays.npz#a.b``), an xarray Dataset
   (``ds_raw.h5``), a matplotlib figure (``figures.rabi.png``), a plain fit result, outcomes with a
   failed target;
2. saves ``quam_node``: a node with a QuAM machine (``quam_state.json``, referenced from
   ``node.json``'s ``data.quam``);
3. runs the graph ``wf_demo`` with the library nodes ``n1_sweep`` → ``n2_fit``: a workflow folder
   (``type_of_execution`` ``workflow``, ``children``) and two node folders with
   ``workflow_parent_id``.

It writes ``OUT_DIR/storage`` (the storage root, ``YYYY-MM-DD/#<id>_<name>_<HHMMSS>/``) and
``OUT_DIR/manifest.json`` (qualibrate version, relative node folders). Values are seeded; times
and therefore folder names differ per run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_NODE_TEMPLATE = """
from typing import Any

import numpy as np
from qualibrate.core import NodeParameters, QualibrationNode


class Parameters(NodeParameters):
    qubits: list[str] = ["q1"]
    points: int = 4


node = QualibrationNode[Parameters, Any](
    name="{name}", description="{description}", parameters=Parameters()
)


@node.run_action()
def act(node):
    node.results["values"] = np.arange(node.parameters.points, dtype=float) * {scale}
    node.outcomes = {{q: "successful" for q in node.parameters.qubits}}
    node.save()
"""

_CHILD = """
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from quam.core import QuamComponent, QuamRoot, quam_dataclass
from qualibrate.core import (
    GraphParameters,
    NodeParameters,
    QualibrationGraph,
    QualibrationLibrary,
    QualibrationNode,
)


class RabiParameters(NodeParameters):
    qubits: list[str] = ["q1", "q2"]
    num_points: int = 11
    max_amplitude: float = 0.5


rng = np.random.default_rng(1234)
node = QualibrationNode[RabiParameters, Any](
    name="rabi_demo", description="Rabi amplitude sweep (fixture)", parameters=RabiParameters()
)
amplitudes = np.linspace(0, node.parameters.max_amplitude, node.parameters.num_points)
node.results["raw"] = {
    q: {"amplitudes": amplitudes, "population": np.cos(amplitudes * (i + 3)) ** 2}
    for i, q in enumerate(node.parameters.qubits)
}
node.results["ds_raw"] = xr.Dataset(
    {
        "I": (("qubit", "amplitude"), rng.normal(size=(2, amplitudes.size))),
        "Q": (("qubit", "amplitude"), rng.normal(size=(2, amplitudes.size))),
    },
    coords={"qubit": ["q1", "q2"], "amplitude": amplitudes},
    attrs={"long_name": "raw IQ"},
)
node.results["ds_raw"]["amplitude"].attrs["units"] = "V"
node.results["fit"] = {
    "q1": {"success": True, "pi_amplitude": 0.21, "params": np.array([0.42, 0.0, 1.0])},
    "q2": {"success": False, "error": "no oscillation"},
}
fig, ax = plt.subplots(figsize=(2, 1.5), dpi=40)
ax.plot(amplitudes, amplitudes)
node.results["figures"] = {"rabi": fig}
node.outcomes = {"q1": "successful", "q2": "failed"}
node.save()


@quam_dataclass
class Qubit(QuamComponent):
    frequency: float = 5e9
    pi_amp: float = 0.1


@quam_dataclass
class Machine(QuamRoot):
    qubits: dict = None
    wiring: dict = None


class QuamParameters(NodeParameters):
    qubits: list[str] = ["q1"]


qnode = QualibrationNode[QuamParameters, Any](name="quam_node", parameters=QuamParameters())
qnode.machine = Machine(qubits={"q1": Qubit(frequency=5.1e9)}, wiring={"q1": {"xy": "con1/1"}})
qnode.results["frequencies"] = np.array([5.1e9])
qnode.save()


library = QualibrationLibrary.get_active_library()


class WorkflowParameters(GraphParameters):
    qubits: list[str] = ["q1", "q2"]


with QualibrationGraph.build("wf_demo", parameters=WorkflowParameters()) as graph:
    first = library.nodes["n1_sweep"]
    graph.add_node(first)
    second = library.nodes["n2_fit"]
    graph.add_node(second)
    graph.connect(first, second)
graph.run()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    out: Path = args.out.resolve()
    storage = out / "storage"
    if storage.exists():
        shutil.rmtree(storage)
    storage.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        home = scratch / "home"
        library = scratch / "calibrations"
        home.mkdir()
        library.mkdir()
        for name, description, scale in (("n1_sweep", "sweep", 1.0), ("n2_fit", "fit", 2.0)):
            (library / f"{name}.py").write_text(
                _NODE_TEMPLATE.format(name=name, description=description, scale=scale),
                encoding="utf-8",
            )
        env = {**os.environ, "HOME": str(home), "USERPROFILE": str(home)}
        env["TZ"] = "Europe/Amsterdam"
        env["MPLBACKEND"] = "Agg"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "qualibrate_config",
                "config",
                "--auto-accept",
                "--project",
                "fixtures",
                "--storage-location",
                str(storage),
                "--calibration-library-folder",
                str(library),
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        script = scratch / "child.py"
        script.write_text(_CHILD, encoding="utf-8")
        subprocess.run([sys.executable, str(script)], env=env, check=True, cwd=scratch)
    # qualibrate also creates an empty project folder in the storage root; keep it (real layout)
    # but git does not keep empty folders, so drop it from the committed fixtures.
    for child in storage.iterdir():
        if child.is_dir() and not any(child.iterdir()):
            child.rmdir()
    import qualibrate

    folders = sorted(p.relative_to(storage).as_posix() for p in storage.glob("*/*") if p.is_dir())
    manifest = {"qualibrate": getattr(qualibrate, "__version__", "1.5.1"), "nodes": folders}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
