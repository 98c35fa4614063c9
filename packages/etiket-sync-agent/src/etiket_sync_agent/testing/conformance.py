"""The conformance kit: generic tests every backend must pass.

Subclass :class:`DatabaseBackendConformance` or :class:`FileBackendConformance` in a test module,
name the subclass ``Test...``, set ``backend`` and implement the fixture methods that create source
data. The inherited tests then check the contract end to end, through the real engine and a real local
eTiKeT server over HTTP:

- config validation (the source's config is accepted; a config missing required fields is refused
  naming a field),
- discovery finds exactly the datasets added, with natural keys stable across runs, re-discovery
  adds nothing, and a dataset added later is found (after the cursor for database sources),
- sync produces the files the backend declares, and they reach the server with the right checksums,
- live datasets (``live_sync = True``) sync while growing and once more at the end,
- a corrupt dataset gives an item error and does not stop the others,
- the source data is unchanged.

Behaviour tests are skipped while the backend declares ``implemented = False`` (a fresh scaffold) and
run as soon as it is declared implemented.
"""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import pytest

from etiket_sync_agent.connectors.base import (
    SyncSourceBase,
    SyncSourceDatabaseBase,
    SyncSourceFileBase,
    check_backend_class,
)
from etiket_sync_agent.connectors.config import config_field_names, parse_config
from etiket_sync_agent.connectors.item import SyncItem
from etiket_sync_agent.detect.scan import discover_file_items
from etiket_sync_agent.errors import ConfigError
from etiket_sync_agent.testing.harness import AgentHarness, fast_options, tree_digest

__all__ = ["BackendConformance", "DatabaseBackendConformance", "FileBackendConformance"]


class BackendConformance(abc.ABC):
    """Shared tests; use one of the two subclasses below."""

    #: The backend class under test.
    backend: ClassVar[type[SyncSourceBase]]
    #: Scope mapping for DISABLED-policy backends: identifier → "harness" (the harness scope).
    scope_identifiers: ClassVar[tuple[str, ...]] = ()
    #: Iteration budget for run-until-idle.
    max_iterations: ClassVar[int] = 60

    # -- fixture methods a backend implements --------------------------------------------------
    @abc.abstractmethod
    def make_source(self, tmp_path: Path) -> dict[str, Any]:
        """Create an empty source under ``tmp_path``; return its raw configuration."""

    @abc.abstractmethod
    def add_dataset(self, config: dict[str, Any], index: int) -> str:
        """Add a complete dataset number ``index``; return its natural key."""

    def grow_live_dataset(self, config: dict[str, Any], key: str | None) -> str:
        """Start (``key is None``) or grow a dataset still being acquired; return its key."""
        raise NotImplementedError

    def finish_live_dataset(self, config: dict[str, Any], key: str) -> None:
        """Mark the live dataset complete."""
        raise NotImplementedError

    @abc.abstractmethod
    def corrupt_dataset(self, config: dict[str, Any], index: int) -> str:
        """Add a dataset whose sync must fail with an item error; return its key."""

    def expected_files(self, config: dict[str, Any], key: str) -> set[str]:
        """Logical file names the sync of ``key`` must produce (default: at least one file)."""
        return set()

    def source_snapshot(self, config: dict[str, Any], tmp_path: Path) -> Any:
        """Something equal before and after syncing when the source is unchanged.

        Default: the MD5 of every file below ``tmp_path / "source"``. Override for sources that are
        not files (e.g. a PostgreSQL database).
        """
        return tree_digest(tmp_path / "source")

    # -- helpers ---------------------------------------------------------------------------------
    def _require_implemented(self) -> None:
        if not self.backend.implemented:
            pytest.skip(f"{self.backend.__name__} declares implemented = False (skeleton)")

    def _instance(self, config: dict[str, Any]) -> SyncSourceBase:
        return self.backend(parse_config(self.backend.config_class, config))

    def _discover(self, config: dict[str, Any]) -> list[SyncItem]:
        instance = self._instance(config)
        try:
            if isinstance(instance, SyncSourceDatabaseBase):
                return list(instance.get_new_datasets(None))
            assert isinstance(instance, SyncSourceFileBase)
            return discover_file_items(instance)
        finally:
            instance.close()

    def _harness(self, tmp_path: Path, config: dict[str, Any]) -> AgentHarness:
        harness = AgentHarness(tmp_path / "harness", options=fast_options())
        harness.register_backend(self.backend)
        mapping = {identifier: harness.scope_uuid for identifier in self.scope_identifiers}
        harness.add_source("conformance", self.backend, config, scope_mapping=mapping)
        return harness

    # -- the tests -------------------------------------------------------------------------------
    def test_contract(self) -> None:
        check_backend_class(self.backend)

    def test_config_is_accepted(self, tmp_path: Path) -> None:
        config = self.make_source(tmp_path)
        parse_config(self.backend.config_class, config)

    def test_empty_config_is_refused_naming_a_field(self) -> None:
        required = _required_fields(self.backend.config_class)
        if not required:
            pytest.skip("the config class has no required field")
        with pytest.raises(ConfigError) as info:
            parse_config(self.backend.config_class, {})
        assert info.value.field in required

    def test_unknown_config_field_is_refused(self, tmp_path: Path) -> None:
        config = self.make_source(tmp_path)
        with pytest.raises(ConfigError) as info:
            parse_config(self.backend.config_class, {**config, "no_such_field_xyz": 1})
        assert info.value.field == "no_such_field_xyz"

    def test_discovery_finds_exactly_the_added_datasets(self, tmp_path: Path) -> None:
        self._require_implemented()
        config = self.make_source(tmp_path)
        assert self._discover(config) == []
        keys = {self.add_dataset(config, i) for i in range(3)}
        found = [item.key for item in self._discover(config)]
        assert sorted(found) == sorted(keys)
        assert len(found) == len(set(found)), "discovery reported a dataset twice"

    def test_keys_are_stable_across_runs(self, tmp_path: Path) -> None:
        self._require_implemented()
        config = self.make_source(tmp_path)
        for i in range(2):
            self.add_dataset(config, i)
        first = sorted(item.key for item in self._discover(config))
        second = sorted(item.key for item in self._discover(config))
        assert first == second

    def test_sync_uploads_declared_files_with_right_checksums(self, tmp_path: Path) -> None:
        self._require_implemented()
        config = self.make_source(tmp_path)
        keys = [self.add_dataset(config, i) for i in range(2)]
        before = self.source_snapshot(config, tmp_path)
        harness = self._harness(tmp_path, config)
        try:
            harness.run_until_idle(self.max_iterations)
            items = {item.natural_key: item for item in harness.items("conformance")}
            assert set(items) == set(keys)
            for key in keys:
                item = items[key]
                state = item.state.value if hasattr(item.state, "value") else item.state
                assert state == "synced", f"{key}: {state} ({item.last_error})"
                files = harness.server_files(item.dataset_uuid)
                assert files, f"{key}: no file reached the server"
                for f in files:
                    assert f.md5_declared == f.md5_stored, f"{key}/{f.name}: checksum differs"
                names = {f.name for f in files}
                missing = self.expected_files(config, key) - names
                assert not missing, f"{key}: files missing on the server: {sorted(missing)}"
            # A second run changes nothing: no new dataset, no new file version.
            versions = sum(len(harness.server_files(items[k].dataset_uuid)) for k in keys)
            harness.run(2)
            assert sum(len(harness.server_files(items[k].dataset_uuid)) for k in keys) == versions
            assert len(harness.datasets()) == len(keys)
        finally:
            harness.close()
        assert self.source_snapshot(config, tmp_path) == before, "the source data was modified"

    def test_corrupt_dataset_is_an_item_error(self, tmp_path: Path) -> None:
        self._require_implemented()
        config = self.make_source(tmp_path)
        good = [self.add_dataset(config, i) for i in range(2)]
        bad = self.corrupt_dataset(config, 2)
        harness = self._harness(tmp_path, config)
        try:
            harness.run_until_idle(self.max_iterations)
            items = {item.natural_key: item for item in harness.items("conformance")}
            for key in good:
                state = items[key].state
                assert getattr(state, "value", state) == "synced", items[key].last_error
            assert bad in items, "the corrupt dataset was not discovered at all"
            state = items[bad].state
            assert getattr(state, "value", state) == "failed"
            assert items[bad].last_error, "a failed item must carry an error message"
        finally:
            harness.close()

    def test_live_dataset_syncs_while_growing_and_at_the_end(self, tmp_path: Path) -> None:
        self._require_implemented()
        if not self.backend.live_sync:
            pytest.skip("backend has no live sync")
        config = self.make_source(tmp_path)
        self.add_dataset(config, 0)
        key = self.grow_live_dataset(config, None)
        harness = self._harness(tmp_path, config)
        try:
            harness.run(2)
            item = {i.natural_key: i for i in harness.items("conformance")}[key]
            state = getattr(item.state, "value", item.state)
            assert state == "live", f"expected live, got {state} ({item.last_error})"
            first = harness.server_files(item.dataset_uuid)
            assert first, "nothing uploaded while live"
            self.grow_live_dataset(config, key)
            harness.run(2)
            grown = harness.server_files(item.dataset_uuid)
            assert len(grown) > len(first), "growth of a live dataset uploaded no new version"
            self.finish_live_dataset(config, key)
            harness.run_until_idle(self.max_iterations)
            item = {i.natural_key: i for i in harness.items("conformance")}[key]
            assert getattr(item.state, "value", item.state) == "synced"
            final = harness.server_files(item.dataset_uuid)
            assert len(final) > len(grown), "the completed dataset was not synced a final time"
        finally:
            harness.close()


def _required_fields(config_class: type[Any]) -> set[str]:
    import pydantic

    if issubclass(config_class, pydantic.BaseModel):
        return {n for n, f in config_class.model_fields.items() if f.is_required()}
    return {
        f.name
        for f in dataclasses.fields(config_class)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    } & set(config_field_names(config_class))


class DatabaseBackendConformance(BackendConformance):
    """Conformance tests for database-type backends."""

    def test_dataset_added_later_is_found_after_the_cursor(self, tmp_path: Path) -> None:
        self._require_implemented()
        config = self.make_source(tmp_path)
        first = self.add_dataset(config, 0)
        instance = self._instance(config)
        try:
            items = list(instance.get_new_datasets(None))  # type: ignore[attr-defined]
            assert [i.key for i in items] == [first]
            last = items[-1]
            assert list(instance.get_new_datasets(last)) == [], "re-discovery added items"  # type: ignore[attr-defined]
            second = self.add_dataset(config, 1)
            later = list(instance.get_new_datasets(last))  # type: ignore[attr-defined]
            assert [i.key for i in later] == [second]
        finally:
            instance.close()


class FileBackendConformance(BackendConformance):
    """Conformance tests for file-type backends."""

    def test_rediscovery_of_an_unchanged_tree_is_identical(self, tmp_path: Path) -> None:
        self._require_implemented()
        config = self.make_source(tmp_path)
        for i in range(2):
            self.add_dataset(config, i)
        first = {i.key: i.fingerprint for i in self._discover(config)}
        second = {i.key: i.fingerprint for i in self._discover(config)}
        assert first == second
        third = self.add_dataset(config, 2)
        later = {i.key for i in self._discover(config)}
        assert later == set(first) | {third}
