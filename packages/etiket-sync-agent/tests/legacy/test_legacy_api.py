"""The compatibility layer for backends written for the existing agent (core.md §2)."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from legacy_example import LegacyRunsConfig, LegacyRunsSync

from etiket_sync_agent.connectors import SyncContext, SyncItem
from etiket_sync_agent.connectors.base import ScopePolicy, SyncSourceDatabaseBase
from etiket_sync_agent.connectors.config import parse_config
from etiket_sync_agent.connectors.legacy import adapt_legacy, run_coroutine
from etiket_sync_agent.connectors.registry import backend_registry
from etiket_sync_agent.connectors.sync_source_abstract import (
    ScopeRequirement,
    SyncSourceFileBase,
)
from etiket_sync_agent.control_api.forms import config_form
from etiket_sync_agent.errors import ConfigError, SyncError

GROUP = "etiket_sync_agent.connectors"


def test_adapted_class_attributes() -> None:
    cls = adapt_legacy(LegacyRunsSync, "legacy_runs_sync_agent")
    assert issubclass(cls, SyncSourceDatabaseBase)
    assert cls.name == "legacy-runs-sync-agent"
    assert cls.display_name == "Legacy runs"
    assert cls.legacy_api is True
    assert cls.scope_policy is ScopePolicy.REQUIRED
    assert cls.live_sync is False
    assert cls.__module__ == "legacy_example"
    assert adapt_legacy(cls, "x") is cls  # ours: unchanged


def test_legacy_base_checks_class_attributes() -> None:
    with pytest.raises(TypeError, match="sync_agent_name"):

        class Broken(SyncSourceFileBase):
            sync_agent_name = ""
            config_data_class = LegacyRunsConfig
            scope_requirement = ScopeRequirement.REQUIRED
            supports_scope_mapping = False
            live_sync_implemented = False
            has_owner = False
            level = 1
            is_single_file = False

            @staticmethod
            def root_path(config: Any) -> Path:
                return Path(".")

            @staticmethod
            async def sync_dataset_normal(config: Any, item: Any, record: Any) -> None:
                return None


def test_async_validate_runs_and_errors_name_the_problem(tmp_path: Path) -> None:
    cls = adapt_legacy(LegacyRunsSync, "legacy_runs_sync_agent")
    config = parse_config(cls.config_class, {"runs_directory": str(tmp_path)})
    assert isinstance(config, LegacyRunsConfig)
    with pytest.raises(ConfigError, match="is not a folder"):
        parse_config(cls.config_class, {"runs_directory": str(tmp_path / "missing")})


def test_async_validate_inside_a_running_loop(tmp_path: Path) -> None:
    import asyncio

    cls = adapt_legacy(LegacyRunsSync, "legacy_runs_sync_agent")

    async def inside() -> Any:
        return parse_config(cls.config_class, {"runs_directory": str(tmp_path)})

    assert isinstance(asyncio.run(inside()), LegacyRunsConfig)
    assert run_coroutine(5) == 5


def test_config_form_of_a_legacy_config() -> None:
    cls = adapt_legacy(LegacyRunsSync, "legacy_runs_sync_agent")
    form = {f["name"]: f for f in config_form(cls.config_class)}
    assert form["runs_directory"]["type"] == "dir_path"
    assert form["runs_directory"]["is_required"] is True
    assert form["tags"]["type"] == "list"
    assert form["tags"]["description"] == "extra keywords"
    assert form["label"]["is_required"] is False


def test_discovery_cursor_and_sync_record_mapping(tmp_path: Path) -> None:
    cls = adapt_legacy(LegacyRunsSync, "legacy_runs_sync_agent")
    for n in (1, 2):
        (tmp_path / f"run_{n}.json").write_text(json.dumps({"name": f"run {n}"}))
    backend = cls(parse_config(cls.config_class, {"runs_directory": str(tmp_path)}))
    items = list(backend.get_new_datasets(None))
    assert [(i.key, i.cursor, i.priority) for i in items] == [
        ("run-1", 1000, 1.0),
        ("run-2", 2000, 2.0),
    ]
    assert list(backend.get_new_datasets(items[-1])) == []
    item = SyncItem(key="run-2", dataset_uuid="5b1f2c3e-7d5c-4a5b-8f5e-1a2b3c4d5e6f")
    ctx = SyncContext(item, tmp_path / "work")
    (tmp_path / "work").mkdir()
    backend.sync_dataset(item, ctx)
    assert ctx.plan.dataset is not None
    assert ctx.plan.dataset.name == "run 2"
    assert ctx.plan.dataset.uuid == item.dataset_uuid
    assert ctx.plan.dataset.attributes == {"run_id": "2"}
    assert {f.name for f in ctx.plan.files} == {"run", "analysis/values"}
    assert ctx.plan.file("run").file_type is not None
    assert any("read run 2" in log.message for log in ctx.plan.logs)
    (tmp_path / "run_3.json").write_text("{broken")
    bad = SyncItem(key="run-3", dataset_uuid="5b1f2c3e-7d5c-4a5b-8f5e-1a2b3c4d5e70")
    with pytest.raises(SyncError, match="JSONDecodeError"):
        backend.sync_dataset(bad, SyncContext(bad, tmp_path / "work"))


def test_discovered_through_the_existing_agents_entry_point_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import etiket_sync_agent.plugins as plugins

    real = plugins.entry_points

    def fake(group: str) -> list[EntryPoint]:
        eps = list(real(group=group))
        if group == GROUP:
            eps.append(EntryPoint("legacy_runs_sync_agent", "legacy_example:LegacyRunsSync", GROUP))
        return eps

    monkeypatch.setattr(plugins, "entry_points", fake)
    registry = backend_registry()
    registry.refresh()
    try:
        cls = registry.get("legacy_runs_sync_agent")
        assert cls.legacy_api is True  # type: ignore[attr-defined]
        info = {i.name: i for i in registry.infos()}["legacy_runs_sync_agent"]
        assert info.usable
        import contextlib
        import io

        from etiket_sync_agent.cli.main import main

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["backends", "--json"]) == 0
        rows = {r["name"]: r for r in json.loads(out.getvalue())}
        assert rows["legacy_runs_sync_agent"]["api"] == "legacy API"
        assert rows["native"]["api"] == "current"
    finally:
        monkeypatch.undo()
        registry.refresh()
