"""An in-process agent against a local eTiKeT server, for tests and the demo.

:class:`AgentHarness` owns a temporary agent home (tracking store, credentials), a running local
server (``etiket_local_server``), a logged-in client and helpers to add sources, run the engine until
idle and look at what arrived on the server. It needs the ``etiket-local-server`` package (part of
this repository's workspace).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from etiket_sync_agent.connectors.base import ScopePolicy, SyncSourceBase
from etiket_sync_agent.connectors.config import config_to_storage, parse_config
from etiket_sync_agent.engine.agent import Agent, IterationReport
from etiket_sync_agent.engine.options import EngineOptions
from etiket_sync_agent.platform import EtiketClient
from etiket_sync_agent.platform.upload import NETCDF_FILE_TYPE, validation_checksum
from etiket_sync_agent.store import TrackingStore, open_store
from etiket_sync_agent.testing.tree import tree_digest

__all__ = ["AgentHarness", "ServerFile", "fast_options", "tree_digest"]


def fast_options(**overrides: Any) -> EngineOptions:
    """Engine options for tests: no waiting for settle times, scans or live intervals."""
    options = EngineOptions(
        concurrency=4,
        live_interval=0.0,
        scan_interval=0.0,
        settle_time=0.0,
        fingerprint_interval=0.0,
        backoff_base=0.05,
        backoff_cap=0.2,
        source_retry=0.0,
        idle_sleep=0.01,
        use_watchdog=False,
    )
    return replace(options, **overrides)


@dataclass
class ServerFile:
    """One secured file version on the server, with the checksum of its stored bytes.

    ``md5_stored`` is computed from the downloaded bytes by the rule the platform validates with:
    their MD5, or for ``HDF5_NETCDF`` files their content checksum ``md5_netcdf4`` (falling back
    to the MD5 for bytes that are not netCDF4), so ``md5_declared == md5_stored`` checks the
    declaration for every type. ``md5_bytes`` is always the plain MD5 of the bytes.
    """

    dataset_uuid: str
    name: str
    filename: str
    version_id: int
    size: int
    md5_declared: str | None
    md5_stored: str
    status: str
    md5_bytes: str = ""
    file_type: str = ""


class AgentHarness:
    """A local server, a temporary tracking store and an agent, wired together."""

    def __init__(
        self, base_dir: Path, *, options: EngineOptions | None = None, tls: bool = False
    ) -> None:
        """``tls``: the server speaks HTTPS with a self-signed certificate, which the agent's
        client trusts through a CA bundle (as ``etiket-sync login --ca-bundle`` sets up)."""
        from etiket_local_server.testing import start_server

        self.base_dir = Path(base_dir)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.home = self.base_dir / "agent-home"
        self.home.mkdir(exist_ok=True)
        self.server = start_server(self.base_dir / "server", tls=tls)
        self.verify: Any = True
        if tls:
            from etiket_sync_agent.platform.auth import tls_verify

            self.verify = tls_verify(str(self.server.ca_bundle))
        self.token = self.server.create_token("harness")
        self.scope_name = "harness-scope"
        self.scope_uuid = self.server.create_scope(self.scope_name)
        self.store: TrackingStore = open_store(f"sqlite:///{self.home / 'sync.db'}")
        self.options = options or fast_options()
        self.reports: list[IterationReport] = []

    # -- set-up ----------------------------------------------------------------------------------
    def add_source(
        self,
        name: str,
        backend: type[SyncSourceBase],
        config: Mapping[str, Any],
        *,
        scope: str | None = None,
        scope_mapping: Mapping[str, str] | None = None,
    ) -> Any:
        """Validate ``config`` like ``etiket-sync source add`` and store the source."""
        instance = parse_config(backend.config_class, dict(config))
        if scope is None and backend.scope_policy is not ScopePolicy.DISABLED:
            scope = self.scope_uuid
        record = self.store.add_source(name, backend.name, config_to_storage(instance), scope=scope)
        for identifier, target in (scope_mapping or {}).items():
            self.store.set_scope_mapping(name, identifier, target)
        return record

    def client(self) -> EtiketClient:
        return EtiketClient(self.server.url, self.token, verify=self.verify)

    # -- running ---------------------------------------------------------------------------------
    def _options(self, overrides: dict[str, Any]) -> EngineOptions:
        return replace(self.options, **overrides) if overrides else self.options

    @asynccontextmanager
    async def _agent(self, options: EngineOptions) -> AsyncIterator[Agent]:
        """An agent on this harness's store, server and backends; closed afterwards."""
        async with self.client() as client:
            agent = Agent(self.store, client, options, backend_loader=self._loader)
            try:
                yield agent
            finally:
                await agent.close()

    def run(self, iterations: int = 1, **option_overrides: Any) -> list[IterationReport]:
        """Run ``iterations`` engine iterations in this thread."""

        async def main() -> list[IterationReport]:
            async with self._agent(self._options(option_overrides)) as agent:
                return [await agent.iteration() for _ in range(iterations)]

        reports = asyncio.run(main())
        self.reports.extend(reports)
        return reports

    def run_until_idle(self, max_iterations: int = 50, **option_overrides: Any) -> int:
        """Iterate until nothing is new, syncing or live; returns the iterations used."""

        async def main() -> int:
            async with self._agent(self._options(option_overrides)) as agent:
                for used in range(1, max_iterations + 1):
                    self.reports.append(await agent.iteration())
                    if agent.is_idle():
                        return used
            raise AssertionError(
                f"not idle after {max_iterations} iterations: {self.store.count_by_state()}"
            )

        return asyncio.run(main())

    def run_agent(
        self, iterations: int = 0, *, until_idle: bool = False, **option_overrides: Any
    ) -> int:
        """``Agent.run`` as ``etiket-sync run`` runs it (with ``until_idle``, failed items get
        their quick retries first); returns the iterations done."""

        async def main() -> int:
            async with self._agent(self._options(option_overrides)) as agent:
                return await agent.run(iterations, until_idle=until_idle)

        return asyncio.run(main())

    _backends: dict[str, type[SyncSourceBase]] = {}

    def register_backend(self, backend: type[SyncSourceBase]) -> None:
        """Use this class for its name even when it is not installed as an entry point."""
        self._backends = {**self._backends, backend.name: backend}

    def _loader(self, name: str) -> type[SyncSourceBase]:
        if name in self._backends:
            return self._backends[name]
        from etiket_sync_agent.connectors.registry import load_backend

        return load_backend(name)

    # -- looking at the server -------------------------------------------------------------------
    def datasets(self) -> list[Any]:
        """Every dataset on the server in the harness scope and any other scope."""

        async def main() -> list[Any]:
            async with self.client() as client:
                found: list[Any] = []
                offset = 0
                while True:
                    page = await client.search_datasets(offset=offset, limit=500)
                    found.extend(page)
                    if len(page) < 500:
                        return found
                    offset += len(page)

        return asyncio.run(main())

    def dataset(self, dataset_uuid: str) -> Any:
        async def main() -> Any:
            async with self.client() as client:
                return await client.get_dataset(dataset_uuid)

        return asyncio.run(main())

    def server_files(self, dataset_uuid: str) -> list[ServerFile]:
        """Secured file versions of a dataset, with the MD5 of the bytes the server stores."""
        record = self.dataset(dataset_uuid)
        if record is None:
            return []
        files: list[ServerFile] = []
        for f in record.files:
            status = f.status.value if hasattr(f.status, "value") else str(f.status)
            if status != "secured":
                continue
            assert f.S3_link, f"secured file {f.name} has no download link"
            body = self._downloads().get(f.S3_link).content
            md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
            file_type = f.type.value if hasattr(f.type, "value") else str(f.type)
            stored = md5
            if file_type == NETCDF_FILE_TYPE:
                copy = self.base_dir / f".download-{f.uuid}-{f.version_id}"
                copy.write_bytes(body)
                try:
                    stored = validation_checksum(copy, md5, file_type)
                finally:
                    copy.unlink(missing_ok=True)
            files.append(
                ServerFile(
                    dataset_uuid,
                    f.name,
                    f.filename,
                    f.version_id,
                    f.size,
                    f.md5_checksum,
                    stored,
                    status,
                    md5_bytes=md5,
                    file_type=file_type,
                )
            )
        return files

    _http: httpx.Client | None = None

    def _downloads(self) -> httpx.Client:
        """One keep-alive client for downloads (a new connection per file is most of the cost)."""
        if self._http is None:
            self._http = httpx.Client(timeout=60, verify=self.verify)
        return self._http

    def items(self, source: str) -> list[Any]:
        record = self.store.get_source(source)
        assert record is not None, f"no source {source!r}"
        return list(self.store.list_items(record.id, limit=1_000_000))

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        self.store.close()
        self.server.stop()


@contextmanager
def agent_harness(base_dir: Path, **kwargs: Any) -> Iterator[AgentHarness]:
    """Context manager around :class:`AgentHarness` that sets ``ETIKET_SYNC_HOME`` meanwhile."""
    harness = AgentHarness(base_dir, **kwargs)
    previous = os.environ.get("ETIKET_SYNC_HOME")
    os.environ["ETIKET_SYNC_HOME"] = str(harness.home)
    try:
        yield harness
    finally:
        if previous is None:
            os.environ.pop("ETIKET_SYNC_HOME", None)
        else:
            os.environ["ETIKET_SYNC_HOME"] = previous
        harness.close()
