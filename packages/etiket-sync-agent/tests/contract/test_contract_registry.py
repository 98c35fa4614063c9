"""Entry-point discovery and its failure policy (CONVENTIONS §7)."""

from __future__ import annotations

import importlib.metadata as md
import logging
import sys
import textwrap
from pathlib import Path

import pytest

from etiket_sync_agent.connectors.base import check_backend_class
from etiket_sync_agent.errors import BackendNotFoundError, BackendUnavailableError
from etiket_sync_agent.plugins import CONNECTORS_GROUP, PluginRegistry, PluginStatus


def _install_fake_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake distribution on sys.path with good, broken and unavailable backends."""
    pkg = tmp_path / "fakeplugins"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "good.py").write_text(
        textwrap.dedent("""
        import dataclasses
        from etiket_sync_agent import ScopePolicy, SyncSourceDatabaseBase

        @dataclasses.dataclass
        class Cfg:
            x: int = 1

        class Good(SyncSourceDatabaseBase):
            name = "good"
            config_class = Cfg
            scope_policy = ScopePolicy.OPTIONAL
            def get_new_datasets(self, last_item):
                return []
            def sync_dataset(self, item, ctx):
                pass

        class Future(Good):
            name = "future"
            plugin_api = (99,)

        class Skeleton(Good):
            name = "skeleton"
            implemented = False
    """)
    )
    (pkg / "broken.py").write_text("raise RuntimeError('boom at import')\n")
    (pkg / "needs_dep.py").write_text("import some_missing_dependency_xyz\n")
    dist = tmp_path / "fakeplugins-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplugins\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent(f"""
        [{CONNECTORS_GROUP}-test]
        good = fakeplugins.good:Good
        future = fakeplugins.good:Future
        skeleton = fakeplugins.good:Skeleton
        broken = fakeplugins.broken:Thing
        needs-dep = fakeplugins.needs_dep:Thing
        notaclass = fakeplugins.good:Cfg
        mismatch = fakeplugins.good:Good
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in list(sys.modules):
        if name.startswith("fakeplugins"):
            del sys.modules[name]
    md.distributions.cache_clear() if hasattr(md.distributions, "cache_clear") else None


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PluginRegistry[object]:
    _install_fake_plugins(tmp_path, monkeypatch)
    return PluginRegistry(
        f"{CONNECTORS_GROUP}-test", check_backend_class, "backend", "etiket-sync-agent-"
    )


def test_statuses_follow_the_failure_policy(
    registry: PluginRegistry[object], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        infos = {i.name: i for i in registry.infos()}
    assert infos["good"].status is PluginStatus.AVAILABLE
    assert infos["good"].distribution == "fakeplugins"
    assert infos["good"].version == "1.2.3"
    assert infos["future"].status is PluginStatus.INCOMPATIBLE
    assert infos["skeleton"].status is PluginStatus.NOT_IMPLEMENTED
    assert infos["broken"].status is PluginStatus.BROKEN
    assert "boom at import" in (infos["broken"].error or "")
    assert infos["needs-dep"].status is PluginStatus.UNAVAILABLE
    assert "pip install" in (infos["needs-dep"].install_hint or "")
    assert infos["notaclass"].status is PluginStatus.BROKEN
    assert infos["mismatch"].status is PluginStatus.BROKEN  # class name 'good' ≠ entry 'mismatch'
    # The warning names the entry point, distribution, version and exception.
    broken_logs = [r.getMessage() for r in caplog.records if "broken" in r.getMessage()]
    assert any("fakeplugins 1.2.3" in m and "RuntimeError" in m for m in broken_logs)


def test_lookup_by_name_and_by_package_name(registry: PluginRegistry[object]) -> None:
    assert registry.get("good").__name__ == "Good"
    assert registry.get("etiket_sync_agent_good").__name__ == "Good"
    assert registry.get("etiket-sync-agent-good").__name__ == "Good"


def test_unknown_name_lists_what_is_available(registry: PluginRegistry[object]) -> None:
    with pytest.raises(BackendNotFoundError) as info:
        registry.get("nope")
    assert "good" in str(info.value)
    assert "pip install etiket-sync-agent-nope" in str(info.value)


def test_unavailable_backend_error_says_how_to_install(registry: PluginRegistry[object]) -> None:
    with pytest.raises(BackendUnavailableError, match="pip install"):
        registry.get("needs-dep")


def test_discovery_is_cached_and_refreshable(registry: PluginRegistry[object]) -> None:
    first = registry.infos()
    assert registry.infos()[0] is first[0]
    registry.refresh()
    assert registry.infos()[0] is not first[0]


def test_importing_the_core_loads_no_plugin() -> None:
    import subprocess

    code = (
        "import sys, etiket_sync_agent; "
        "print(any(m.startswith('etiket_sync_agent_') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
