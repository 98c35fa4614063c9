"""Fixtures for the local server's own tests: a running server, a token, a scope, a client."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from etiket_local_server.pytest_fixtures import local_server
from etiket_local_server.testing import LocalServer

__all__ = ["Api", "api", "local_server"]

COLLECTED = "2024-05-01T12:30:00+00:00"


@dataclass
class Api:
    """A thin test client over one server, one token and one scope."""

    server: LocalServer
    client: httpx.Client
    scope_uuid: str
    token: str

    def create_dataset(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "uuid": str(uuid.uuid4()),
            "alt_uid": None,
            "collected": COLLECTED,
            "name": "a dataset",
            "creator": "local",
            "description": "made by a test",
            "notes": None,
            "keywords": ["cooldown"],
            "ranking": 0,
            "scope_uuid": self.scope_uuid,
            "attributes": {"sample": "S1"},
        }
        body.update(overrides)
        response = self.client.post("/api/v2/dataset/", json=body)
        assert response.status_code == 201, response.text
        return body

    def file_body(self, ds_uuid: str, size: int, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "uuid": str(uuid.uuid4()),
            "version_id": 1714566600000,
            "name": "measurement",
            "filename": "measured_data.hdf5",
            "creator": "local",
            "collected": COLLECTED,
            "size": size,
            "type": "HDF5",
            "file_generator": "test",
            "ranking": 0,
            "ds_uuid": ds_uuid,
            "immutable": True,
        }
        body.update(overrides)
        return body

    def create_file(self, ds_uuid: str, size: int, **overrides: Any) -> dict[str, Any]:
        body = self.file_body(ds_uuid, size, **overrides)
        response = self.client.post("/api/v2/file/", json=body)
        assert response.status_code == 201, response.text
        return body

    def upload_single(self, file: dict[str, Any], data: bytes) -> httpx.Response:
        """Presign, PUT and validate; returns the validation response."""
        link = self.client.get(
            "/api/v2/file/presigned_link/single_part/",
            params={"file_uuid": file["uuid"], "version_id": file["version_id"]},
        )
        assert link.status_code == 200, link.text
        put = httpx.put(link.json()["url"], content=data)
        assert put.status_code == 200, put.text
        assert put.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
        return self.validate_single(file, hashlib.md5(data).hexdigest())

    def validate_single(self, file: dict[str, Any], md5: str) -> httpx.Response:
        return self.client.post(
            "/api/v2/file/validate_upload/single_part/",
            json={
                "uuid": file["uuid"],
                "version_id": file["version_id"],
                "md5_checksum": md5,
                "upload_id": "",
                "etags": [],
            },
        )

    def start_multipart(self, file: dict[str, Any], **params: Any) -> dict[str, Any]:
        response = self.client.get(
            "/api/v2/file/presigned_link/",
            params={"file_uuid": file["uuid"], "version_id": file["version_id"], **params},
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def validate_multipart(
        self, file: dict[str, Any], upload_id: str, md5: str, etags: list[str]
    ) -> httpx.Response:
        return self.client.post(
            "/api/v2/file/validate_upload/",
            json={
                "uuid": file["uuid"],
                "version_id": file["version_id"],
                "md5_checksum": md5,
                "upload_id": upload_id,
                "etags": etags,
            },
        )

    def read_file(self, file: dict[str, Any]) -> dict[str, Any]:
        response = self.client.get(
            "/api/v2/file/read/",
            params={"uuid": file["uuid"], "version_id": file["version_id"]},
        )
        assert response.status_code == 200, response.text
        versions: list[dict[str, Any]] = response.json()
        assert len(versions) == 1
        return versions[0]


@pytest.fixture
def api(local_server: LocalServer) -> Iterator[Api]:
    """A client authenticated as user ``local`` with one scope."""
    token = local_server.create_token("pytest")
    scope_uuid = local_server.create_scope("pytest scope")
    with httpx.Client(
        base_url=local_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        yield Api(server=local_server, client=client, scope_uuid=scope_uuid, token=token)
