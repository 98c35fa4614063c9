"""The backend contract: ClassVar checks at definition, config parsing, plugin discovery."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pydantic
import pytest

from etiket_sync_agent import (
    DatasetInfo,
    FileInfo,
    FileType,
    ScopePolicy,
    SyncContext,
    SyncItem,
    SyncSourceDatabaseBase,
    SyncSourceFileBase,
)
from etiket_sync_agent.connectors.config import config_to_storage, mask_config, parse_config
from etiket_sync_agent.errors import ConfigError, PluginContractError


@dataclasses.dataclass
class _Config:
    database_path: Path
    set_up: str
    retries: int = 3
    static_attributes: dict[str, str] = dataclasses.field(default_factory=dict)

    def validate(self) -> None:
        if not self.database_path.exists():
            raise ConfigError("database_path", f"{self.database_path} does not exist")


class _SecretConfig(pydantic.BaseModel):
    dbname: str
    password: pydantic.SecretStr


def _db_backend(**overrides: Any) -> type[SyncSourceDatabaseBase]:
    namespace: dict[str, Any] = {
        "name": "demo-db",
        "config_class": _Config,
        "scope_policy": ScopePolicy.REQUIRED,
        "get_new_datasets": lambda self, last: iter(()),
        "sync_dataset": lambda self, item, ctx: None,
    }
    namespace.update(overrides)
    return type("DemoDB", (SyncSourceDatabaseBase,), namespace)


def test_a_valid_backend_class_is_accepted() -> None:
    cls = _db_backend()
    assert cls.name == "demo-db"
    assert cls.live_sync is False


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("name", "Bad Name", "name"),
        ("name", 3, "name"),
        ("config_class", dict, "config_class"),
        ("scope_policy", "REQUIRED", "scope_policy"),
        ("live_sync", "yes", "live_sync"),
        ("plugin_api", 1, "plugin_api"),
    ],
)
def test_a_wrong_classvar_names_the_class_and_attribute(
    attribute: str, value: object, message: str
) -> None:
    with pytest.raises(PluginContractError) as info:
        _db_backend(**{attribute: value})
    assert f"DemoDB.{message}" in str(info.value)


def test_file_backend_level_is_checked() -> None:
    namespace: dict[str, Any] = {
        "name": "demo-files",
        "config_class": _Config,
        "scope_policy": ScopePolicy.OPTIONAL,
        "level": 0,
        "root_path": lambda self: Path("."),
        "sync_dataset": lambda self, item, ctx: None,
    }
    with pytest.raises(PluginContractError, match=r"DemoFiles\.level"):
        type("DemoFiles", (SyncSourceFileBase,), namespace)


def test_abstract_intermediate_classes_are_not_checked() -> None:
    class Partial(SyncSourceDatabaseBase):  # no ClassVars, still abstract: fine
        pass

    with pytest.raises(TypeError):
        Partial(None)  # type: ignore[abstract]


def test_parse_config_converts_and_validates(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    db.write_bytes(b"")
    config = parse_config(_Config, {"database_path": str(db), "set_up": "fridge", "retries": "5"})
    assert config.database_path == db
    assert config.retries == 5
    assert config_to_storage(config)["database_path"] == str(db)


def test_parse_config_names_the_missing_field() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_Config, {"set_up": "x"})
    assert info.value.field == "database_path"
    assert "required" in str(info.value)


def test_parse_config_names_a_wrongly_typed_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_Config, {"database_path": str(tmp_path), "set_up": "x", "retries": "many"})
    assert info.value.field == "retries"


def test_parse_config_refuses_unknown_fields(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_Config, {"database_path": str(tmp_path), "set_up": "x", "typo": 1})
    assert info.value.field == "typo"
    assert "known fields" in str(info.value)


def test_validation_hook_runs_and_can_be_skipped(tmp_path: Path) -> None:
    raw = {"database_path": str(tmp_path / "missing.db"), "set_up": "x"}
    with pytest.raises(ConfigError) as info:
        parse_config(_Config, raw)
    assert info.value.field == "database_path"
    assert parse_config(_Config, raw, check=False).set_up == "x"


def test_secrets_are_stored_but_masked_for_display() -> None:
    config = parse_config(_SecretConfig, {"dbname": "d", "password": "hunter2"})
    assert "hunter2" not in repr(config)
    stored = config_to_storage(config)
    assert stored["password"] == "hunter2"
    assert mask_config(_SecretConfig, stored)["password"] == "********"


def test_dataset_and_file_info_normalise_values(tmp_path: Path) -> None:
    import datetime as dt

    info = DatasetInfo(
        name="run",
        collected=dt.datetime(2024, 1, 1, 12),
        keywords=["a", "a", " ", "b"],
        attributes={"n": 3},
    )  # type: ignore[dict-item]
    assert info.collected.tzinfo is not None
    assert info.keywords == ["a", "b"]
    assert info.attributes == {"n": "3"}
    f = FileInfo(name="sub\\data.json", path=tmp_path / "data.json")
    assert f.name == "sub/data.json"
    assert f.file_type is FileType.JSON
    assert f.filename == "data.json"
    with pytest.raises(ValueError, match="invalid file name"):
        FileInfo(name="../escape", path=tmp_path / "x")
    with pytest.raises(ValueError):
        DatasetInfo(name=" ", collected=dt.datetime.now())


def test_context_collects_a_plan(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import datetime as dt

    ctx = SyncContext(SyncItem(key="k"), tmp_path / "work", source_name="s")
    ctx.work_dir.mkdir()
    ctx.set_dataset(DatasetInfo(name="n", collected=dt.datetime.now(dt.timezone.utc)))
    ctx.upload_json({"a": 1}, "meta/info.json")
    ctx.upload_json({"a": 2}, "meta/info.json")  # same logical name: replaces
    with caplog.at_level(logging.INFO):
        ctx.add_log("hello")
    assert [f.name for f in ctx.plan.files] == ["meta/info.json"]
    assert ctx.plan.file("meta/info.json").path.read_text().strip().endswith("}")
    assert '"a": 2' in ctx.plan.file("meta/info.json").path.read_text()
    assert ctx.plan.logs[0].message == "hello"
    with pytest.raises(ValueError, match="leaves the work dir"):
        ctx.work_path("../outside")


def _iter(items: Iterable[SyncItem]) -> list[str]:
    return [i.key for i in items]


def test_sync_item_requires_a_key() -> None:
    with pytest.raises(ValueError):
        SyncItem(key="")
