"""The whole workspace: ``etiket-sync backends`` lists every connector and converter, usable."""

from __future__ import annotations

import json
from typing import Any

SIX = {"native", "folderbase", "qcodes", "quantify", "labber", "core-tools", "qualibrate"}


def test_backends_lists_every_connector_and_the_converters(agent_cli: Any) -> None:
    rows = json.loads(agent_cli("backends", "--json").stdout)
    backends = {r["name"]: r for r in rows if r["kind"] == "backend"}
    assert set(backends) >= SIX
    for name in SIX:
        assert backends[name]["status"] == "available", (name, backends[name])
        assert backends[name]["distribution"] == f"etiket-sync-agent-{name}"
    converters = {r["name"]: r for r in rows if r["kind"] == "converter"}
    assert set(converters) >= {"csv-to-netcdf", "zarr-to-netcdf", "zarr-to-zip"}
    assert {r["distribution"] for r in converters.values()} == {"etiket-sync-agent-converters"}
    assert all(r["status"] == "available" for r in converters.values())
    table = agent_cli("backends").stdout
    assert all(name in table for name in SIX)
