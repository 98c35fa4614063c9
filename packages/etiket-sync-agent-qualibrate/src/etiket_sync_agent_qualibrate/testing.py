"""Write QUAlibrate-compatible node folders for tests and demos (no qualibrate needed).

:func:`write_node` reproduces what ``QualibrationNode.save()`` of qualibrate 1.5.1 writes (checked
against folders the real package wrote, in ``tests/data``): the folder
``YYYY-MM-DD/#<id>_<name>_<HHMMSS>`` in local time, ``node.json`` (same keys and order, times ISO
with offset), ``data.json`` with ``./arrays.npz#<dotted key>`` references for numpy arrays (an
uncompressed npz), ``./<key>.h5`` for xarray datasets (netCDF4 via h5netcdf) and
``./<dotted key>.png`` for figures, written in that order: ``node.json``, ``data.json``, files.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["NodeSpec", "make_demo_source", "tiny_png", "write_node"]


def tiny_png(width: int = 4, height: int = 3, shade: int = 128) -> bytes:
    """A valid grey-scale PNG (stands in for a matplotlib figure)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes([shade % 256]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


class NodeSpec:
    """What :func:`write_node` writes; plain attributes, all optional except ``name``/``created``."""

    def __init__(
        self,
        name: str,
        created: dt.datetime,
        *,
        node_id: int,
        parents: list[int] | None = None,
        description: str | None = None,
        type_of_execution: str = "node",
        status: str = "finished",
        parameters: dict[str, Any] | None = None,
        outcomes: dict[str, str] | None = None,
        results: dict[str, Any] | None = None,
        quam: dict[str, Any] | None = None,
        workflow_parent_id: int | None = None,
        children: list[int] | None = None,
    ) -> None:
        self.name = name
        self.created = created if created.tzinfo is not None else created.astimezone()
        self.node_id = node_id
        self.parents = list(parents or [])
        self.description = description
        self.type_of_execution = type_of_execution
        self.status = status
        self.parameters = dict(parameters or {})
        self.outcomes = dict(outcomes or {})
        self.results = dict(results or {})
        self.quam = quam
        self.workflow_parent_id = workflow_parent_id
        self.children = children


def _iso(value: dt.datetime, *, millis: bool) -> str:
    return value.isoformat(timespec="milliseconds" if millis else "seconds")


def _schema(parameters: dict[str, Any]) -> dict[str, Any]:
    types = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}
    properties = {}
    for key, value in parameters.items():
        entry: dict[str, Any] = {"default": value, "title": key.replace("_", " ").title()}
        entry["type"] = types.get(type(value), "object")
        if isinstance(value, list) and value and isinstance(value[0], str):
            entry["items"] = {"type": "string"}
        properties[key] = entry
    return {
        "additionalProperties": False,
        "properties": properties,
        "title": "Parameters",
        "type": "object",
    }


def _results_tree(
    value: Any,
    dotted: str,
    arrays: dict[str, np.ndarray[Any, Any]],
    files: list[tuple[str, Any]],
) -> Any:
    if isinstance(value, dict):
        return {
            k: _results_tree(v, f"{dotted}.{k}" if dotted else str(k), arrays, files)
            for k, v in value.items()
        }
    if isinstance(value, np.ndarray):
        arrays[dotted] = value
        return f"./arrays.npz#{dotted}"
    if type(value).__name__ == "Dataset" and hasattr(value, "to_netcdf"):
        files.append((f"{dotted}.h5", value))
        return f"./{dotted}.h5"
    if isinstance(value, bytes) and value.startswith(b"\x89PNG"):
        files.append((f"{dotted}.png", value))
        return f"./{dotted}.png"
    return value


def write_node(root: Path, spec: NodeSpec, *, write_files: bool = True) -> Path:
    """Write one node folder below the storage ``root``; return the folder.

    ``spec.results`` may hold numpy arrays, xarray Datasets, PNG bytes (figures) and JSON values,
    nested in dicts. ``write_files=False`` stops after ``data.json``, as a failed save does.
    """
    local = spec.created.astimezone()
    folder = (
        Path(root)
        / local.strftime("%Y-%m-%d")
        / f"#{spec.node_id}_{spec.name}_{local.strftime('%H%M%S')}"
    )
    folder.mkdir(parents=True, exist_ok=False)
    metadata: dict[str, Any] = {
        "description": spec.description,
        "run_start": _iso(local - dt.timedelta(seconds=1), millis=True),
        "run_end": _iso(local, millis=True),
        "type_of_execution": spec.type_of_execution,
    }
    if spec.children is not None:
        metadata["children"] = spec.children
    metadata["status"] = spec.status
    metadata["name"] = spec.name
    metadata["data_path"] = f"{folder.parent.name}/{folder.name}"
    if spec.workflow_parent_id is not None:
        metadata["workflow_parent_id"] = spec.workflow_parent_id
    data: dict[str, Any] = {
        "parameters": {"model": spec.parameters, "schema": _schema(spec.parameters)},
        "outcomes": spec.outcomes,
    }
    if spec.quam is not None:
        data["quam"] = "./quam_state.json"
    node = {
        "created_at": _iso(local, millis=False),
        "metadata": metadata,
        "data": data,
        "id": spec.node_id,
        "parents": spec.parents,
    }
    (folder / "node.json").write_text(json.dumps(node, indent=4), encoding="utf-8")
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    files: list[tuple[str, Any]] = []
    tree = _results_tree(spec.results, "", arrays, files)
    (folder / "data.json").write_text(json.dumps(tree, indent=4), encoding="utf-8")
    if not write_files:
        return folder
    for name, value in files:
        if isinstance(value, bytes):
            (folder / name).write_bytes(value)
        else:
            value.to_netcdf(folder / name, engine="h5netcdf")
    if arrays:
        np.savez(folder / "arrays.npz", **arrays)  # type: ignore[arg-type]
    if spec.quam is not None:
        (folder / "quam_state.json").write_text(json.dumps(spec.quam, indent=4), encoding="utf-8")
    return folder


def make_demo_source(root: Path) -> dict[str, Any]:
    """A small QUAlibrate storage (a Rabi node, a workflow of two nodes) for ``etiket-sync demo``."""
    import xarray as xr

    root = Path(root)
    start = dt.datetime.now().astimezone().replace(microsecond=0) - dt.timedelta(hours=2)
    amplitudes = np.linspace(0.0, 0.5, 21)
    rng = np.random.default_rng(7)
    write_node(
        root,
        NodeSpec(
            "rabi",
            start,
            node_id=1,
            description="Rabi amplitude sweep",
            parameters={"qubits": ["q1", "q2"], "num_points": 21, "max_amplitude": 0.5},
            outcomes={"q1": "successful", "q2": "failed"},
            results={
                "ds_raw": xr.Dataset(
                    {"I": (("qubit", "amplitude"), rng.normal(size=(2, 21)))},
                    coords={"qubit": ["q1", "q2"], "amplitude": amplitudes},
                ),
                "fit": {"q1": {"pi_amplitude": 0.21, "params": np.array([0.42, 0.0, 1.0])}},
                "figures": {"rabi": tiny_png(16, 12, 90)},
            },
        ),
    )
    workflow = start + dt.timedelta(minutes=10)
    write_node(
        root,
        NodeSpec(
            "tuneup",
            workflow,
            node_id=2,
            parents=[1],
            type_of_execution="workflow",
            children=[3, 4],
            parameters={"qubits": ["q1"]},
            outcomes={"q1": "successful"},
        ),
    )
    for offset, (node_id, name) in enumerate(((3, "ramsey"), (4, "t1")), start=1):
        write_node(
            root,
            NodeSpec(
                name,
                workflow + dt.timedelta(seconds=offset),
                node_id=node_id,
                parents=[node_id - 1],
                workflow_parent_id=2,
                parameters={"qubits": ["q1"], "points": 11},
                outcomes={"q1": "successful"},
                results={"values": np.linspace(0, 1, 11) * offset},
            ),
        )
    return {"qualibrate_directory": str(root), "set_up": "demo-fridge"}
