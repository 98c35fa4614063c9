"""Every registered backend of this repository has a conformance-kit test."""

from __future__ import annotations

import ast
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KIT_BASES = {"DatabaseBackendConformance", "FileBackendConformance"}


def _conformance_classes(tests_dir: Path) -> dict[str, set[str]]:
    """Test class name → names it refers to, for classes deriving from a kit base."""
    found: dict[str, set[str]] = {}
    for path in tests_dir.rglob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                if bases & KIT_BASES:
                    found[node.name] = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    return found


def _repository_backends() -> list[tuple[str, str, Path]]:
    backends = []
    for ep in entry_points(group="etiket_sync_agent.connectors"):
        if ep.dist is None:
            continue
        folder = ROOT / "packages" / ep.dist.name
        if folder.is_dir():
            backends.append((ep.name, ep.value.split(":")[1], folder))
    return backends


def test_the_six_backends_are_registered() -> None:
    names = {name for name, _, _ in _repository_backends()}
    assert names >= {
        "native",
        "folderbase",
        "qcodes",
        "quantify",
        "labber",
        "core-tools",
        "qualibrate",
    }


@pytest.mark.parametrize(
    ("name", "class_name", "folder"),
    _repository_backends(),
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_backend_has_a_conformance_test(name: str, class_name: str, folder: Path) -> None:
    classes = _conformance_classes(folder / "tests")
    assert any(class_name in refs for refs in classes.values()), (
        f"backend {name!r} ({class_name}) has no test class deriving from the conformance kit "
        f"in {folder / 'tests'}"
    )
