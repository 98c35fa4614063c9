"""Generators of native stores for tests, benchmarks and the demo (no pytest needed)."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

from etiket_sync_agent_native.dataset import Dataset, close_stores

__all__ = ["make_demo_source", "make_demo_store", "make_native_dataset", "write_datasets"]


def _trace(index: int, points: int = 50) -> bytes:
    rows = ["time (s),signal (V)"]
    rows += [f"{i * 1e-3:.6g},{math.sin(i / 5 + index):.9g}" for i in range(points)]
    return ("\n".join(rows) + "\n").encode()


def make_native_dataset(
    directory: Path,
    index: int,
    *,
    scope: str = "native-lab",
    complete: bool = True,
    extra_files: dict[str, bytes] | None = None,
) -> Dataset:
    """Create native dataset number ``index`` with a CSV trace, a JSON fit and a nested file."""
    ds = Dataset.create(
        f"native measurement {index}",
        scope,
        attributes={"sample": f"chip-{index % 7}", "index": index, "cooldown": 3},
        keywords=["native", f"batch {index // 10}"],
        description=f"generated native dataset number {index}",
        collected=dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.timezone.utc)
        + dt.timedelta(minutes=index),
        directory=directory,
    )
    ds.add_file(_trace(index), name="trace.csv")
    ds.add_file(
        json.dumps({"index": index, "fit": {"a": 1.5 * index}}).encode(), "analysis/fit.json"
    )
    for name, content in (extra_files or {}).items():
        ds.add_file(content, name=name)
    if complete:
        ds.complete()
    return ds


def make_demo_store(directory: Path, count: int = 10, *, scope: str = "native-lab") -> list[str]:
    """A store with ``count`` complete datasets; returns their uuids, oldest first."""
    return [make_native_dataset(directory, i, scope=scope).uuid for i in range(count)]


def write_datasets(directory: str, prefix: str, count: int, file_size: int) -> list[str]:
    """Create ``count`` datasets with two files of ``file_size`` bytes each (a process worker).

    Used by the concurrency tests: several processes call it on one store at the same time.
    """
    uuids: list[str] = []
    for i in range(count):
        ds = Dataset.create(f"{prefix} {i}", "native-lab", directory=Path(directory))
        payload = bytes((i + k) % 251 for k in range(file_size))
        ds.add_file(payload, name="big.bin")
        ds.add_file(f"{prefix} {i}\n".encode(), name="notes/readme.txt")
        ds.complete()
        uuids.append(ds.uuid)
    return uuids


def make_demo_source(root: Path) -> dict[str, Any]:
    """Sample data for ``etiket-sync demo``: a store with eight complete datasets.

    The returned config carries ``_demo_scope_identifiers``: the demo maps that scope name to its
    own server scope (the native backend's scope policy is DISABLED: each dataset names a scope).
    """
    make_demo_store(root, count=8, scope="demo-lab")
    close_stores()  # the "script" is done: the agent alone reads the catalog from here on
    return {"native_directory": str(root), "_demo_scope_identifiers": ["demo-lab"]}
