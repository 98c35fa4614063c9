"""The core's conformance kit against the core-tools backend, on real PostgreSQL databases.

Each test gets its own database (dropped afterwards); the "source snapshot" is a digest of every
table and large object, so the kit's "the source data is unchanged" check covers the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from etiket_sync_agent_core_tools import CoreToolsSync
from etiket_sync_agent_core_tools import testing as ct
from psycopg.conninfo import make_conninfo

from etiket_sync_agent.testing import DatabaseBackendConformance

PROJECT = "conformance-project"


def _conninfo(config: dict[str, Any]) -> str:
    return make_conninfo(
        host=config["host"],
        port=config["port"],
        dbname=config["dbname"],
        user=config["user"],
        password=config["password"] or None,
    )


def _spec(index: int, *, points: int = 6) -> ct.MeasurementSpec:
    return ct.MeasurementSpec(
        f"conformance measurement {index}",
        [ct.Axis("P1", "Plunger 1", "mV", [float(i) for i in range(points)])],
        [
            ct.Getter(
                "dig",
                [
                    ct.Output(
                        "I", "I channel", "mV", [ct.Axis("t", "time", "ns", [0.0, 1.0, 2.0])]
                    ),
                    ct.Output("Q", "Q channel", "mV"),
                ],
            )
        ],
        project=PROJECT,
        keywords=["P1", f"index {index}"],
        snapshot={"index": index},
        starred=index % 2 == 1,
    )


@pytest.mark.postgres
class TestCoreToolsSyncConformance(DatabaseBackendConformance):
    backend = CoreToolsSync
    scope_identifiers: ClassVar[tuple[str, ...]] = (PROJECT,)

    @pytest.fixture(autouse=True)
    def _databases(self) -> Iterator[None]:
        reason = ct.postgres_unavailable_reason()
        if reason is not None:
            pytest.skip(f"{reason}; set ETIKET_TEST_PG_DSN")
        self._created: list[str] = []
        self._live: dict[str, ct.MeasurementWriter] = {}
        yield
        for conninfo in self._created:
            ct.drop_database(conninfo)

    def make_source(self, tmp_path: Path) -> dict[str, Any]:
        conninfo = ct.create_database("etiket_test_coretools_conf")
        self._created.append(conninfo)
        ct.create_schema(conninfo)
        return ct.config_for(conninfo)

    def add_dataset(self, config: dict[str, Any], index: int) -> str:
        writer = ct.write_measurement(
            _conninfo(config), _spec(index), old_format=index % 2 == 1, seed=index
        )
        return writer.key

    def grow_live_dataset(self, config: dict[str, Any], key: str | None) -> str:
        if key is None:
            writer = ct.MeasurementWriter(_conninfo(config), _spec(99, points=40)).begin()
            writer.advance(5)
            self._live[writer.key] = writer
            return writer.key
        self._live[key].advance(10)
        return key

    def finish_live_dataset(self, config: dict[str, Any], key: str) -> None:
        writer = self._live.pop(key)
        writer.advance()
        writer.finish()

    def corrupt_dataset(self, config: dict[str, Any], index: int) -> str:
        conninfo = _conninfo(config)
        writer = ct.write_measurement(conninfo, _spec(index), seed=index)
        ct.break_large_object(conninfo, writer.uuid)
        return writer.key

    def expected_files(self, config: dict[str, Any], key: str) -> set[str]:
        return {"measurement", "snapshot.json", "metadata.json"}

    def source_snapshot(self, config: dict[str, Any], tmp_path: Path) -> Any:
        return ct.database_digest(_conninfo(config))
