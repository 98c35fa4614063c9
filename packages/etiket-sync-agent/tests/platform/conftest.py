"""Fixtures of the eTiKeT client tests: a real local server on 127.0.0.1, a token, a scope, and
factories for datasets, file versions and source files."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from etiket_sync_agent.platform import DatasetCreate, FileCreate, FileType, RetryPolicy

COLLECTED = dt.datetime(2024, 6, 1, 12, 30, tzinfo=dt.timezone.utc)
FAST_RETRY = RetryPolicy(attempts=8, base=0.02, cap=0.3)


@pytest.fixture
def etiket_server(tmp_path: Path) -> Iterator[Any]:
    """A fresh local eTiKeT server (no faults) with its data under ``tmp_path``."""
    try:
        from etiket_local_server.testing import start_server
    except ImportError:  # pragma: no cover - depends on the environment
        pytest.skip("etiket-local-server is not installed")
    with start_server(tmp_path / "etiket-server") as server:
        yield server


@pytest.fixture
def token(etiket_server: Any) -> str:
    """An API token of the server's default user."""
    return str(etiket_server.create_token("client-tests"))


@pytest.fixture
def scope_uuid(etiket_server: Any) -> str:
    """A scope the token's user belongs to."""
    return str(etiket_server.create_scope("client test scope"))


def new_dataset(scope: str, **fields: Any) -> DatasetCreate:
    """A DatasetCreate with a random uuid and alt_uid in ``scope``."""
    values: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "alt_uid": f"guid-{uuid.uuid4().hex[:12]}",
        "collected": COLLECTED,
        "name": "sweep",
        "creator": "local",
        "description": "a test dataset",
        "keywords": ["gate", "sweep"],
        "ranking": 0,
        "scope_uuid": scope,
        "attributes": {"sample": "S1", "setup": "fridge-2"},
    }
    values.update(fields)
    return DatasetCreate(**values)


def new_file(
    ds_uuid: str, path: Path, *, name: str | None = None, version_id: int = 1
) -> FileCreate:
    """A FileCreate for ``path`` in dataset ``ds_uuid`` (file uuid derived from the name)."""
    name = name or path.name
    return FileCreate(
        name=name,
        filename=path.name,
        uuid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ds_uuid}/{name}")),
        creator="local",
        collected=COLLECTED,
        size=path.stat().st_size,
        type=FileType.UNKNOWN,
        file_generator="tests",
        version_id=version_id,
        ds_uuid=ds_uuid,
    )


def write_random(path: Path, size: int, seed: int = 0) -> Path:
    """Write ``size`` pseudo-random bytes (1 MiB blocks) to ``path``."""
    block = hashlib.sha256(str(seed).encode()).digest() * 32768  # 1 MiB, cheap to make
    noise = os.urandom(4096)
    with open(path, "wb") as handle:
        written = 0
        index = 0
        while written < size:
            chunk = (noise + index.to_bytes(8, "little") + block)[: min(1 << 20, size - written)]
            handle.write(chunk)
            written += len(chunk)
            index += 1
    return path


def md5_of(path: Path) -> str:
    """Hex MD5 of a file."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture
def helpers() -> Any:
    """The module-level helpers, for test files (no package imports under importlib mode)."""

    class _Helpers:
        COLLECTED = COLLECTED
        FAST_RETRY = FAST_RETRY
        new_dataset = staticmethod(new_dataset)
        new_file = staticmethod(new_file)
        write_random = staticmethod(write_random)
        md5_of = staticmethod(md5_of)

    return _Helpers
