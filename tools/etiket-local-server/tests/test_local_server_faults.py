"""Fault injection: off by default; errors, drops, stalls, outages and token expiry really happen."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from etiket_local_server.testing import FaultConfig, LocalServer, error_code, start_server

if TYPE_CHECKING:
    from conftest import Api


def test_faults_are_off_by_default(api: Api) -> None:
    assert api.server.stats().faults_injected == 0
    dataset = api.create_dataset()
    for index in range(60):
        file = api.create_file(dataset["uuid"], size=1, name=f"f{index}", filename=f"f{index}")
        assert api.upload_single(file, b"x").status_code == 200
    stats = api.server.stats()
    assert stats.faults_injected == 0
    assert stats.put_requests == 60
    assert stats.api_requests == 1 + 60 * 3
    assert stats.api_by_route["POST /api/v2/file/"] == 60


def test_error_rate_answers_500_and_counts(api: Api) -> None:
    api.server.set_faults(FaultConfig(error_rate=1.0))
    response = api.client.get("/api/v3/scopes")
    assert response.status_code == 500
    assert error_code(response) == "server_error"
    api.server.set_faults(FaultConfig(error_rate=0.3, seed=7))
    codes = [api.client.get("/api/v3/scopes").status_code for _ in range(200)]
    errors = codes.count(500)
    assert set(codes) == {200, 500}
    assert 30 <= errors <= 90
    assert api.server.stats().faults["error"] == errors + 1
    # the web page is not an API request: never faulted
    api.server.set_faults(FaultConfig(error_rate=1.0))
    assert httpx.get(f"{api.server.url}/").status_code == 200
    api.server.set_faults(FaultConfig())
    assert api.client.get("/api/v3/scopes").status_code == 200


def test_error_rate_also_hits_puts(api: Api) -> None:
    file = api.create_file(api.create_dataset()["uuid"], size=3)
    link = api.client.get(
        "/api/v2/file/presigned_link/single_part/",
        params={"file_uuid": file["uuid"], "version_id": file["version_id"]},
    ).json()["url"]
    api.server.set_faults(FaultConfig(error_rate=1.0))
    assert httpx.put(link, content=b"abc").status_code == 500
    api.server.set_faults(FaultConfig())
    assert httpx.put(link, content=b"abc").status_code == 200
    stats = api.server.stats()
    assert stats.puts_by_version[(file["uuid"], file["version_id"])] == 2
    assert stats.faults["error"] == 1


def test_dropped_connections_before_and_after_handling(api: Api) -> None:
    api.server.set_faults(FaultConfig(drop_rate=1.0, seed=3))
    names = [f"dropped scope {index}" for index in range(24)]
    for name in names:
        # A close is seen as EOF (RemoteProtocolError) or, when the kernel still held unread request
        # bytes, as a reset (ReadError); the client retries both as transport errors.
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            httpx.post(
                f"{api.server.url}/api/v3/scopes",
                json={"name": name},
                headers={"Authorization": f"Bearer {api.token}"},
            )
    api.server.set_faults(FaultConfig())
    faults = api.server.stats().faults
    assert faults["drop_before"] + faults["drop_after"] == len(names)
    assert faults["drop_before"] > 0
    assert faults["drop_after"] > 0
    # requests dropped after handling did happen: exactly that many scopes exist now
    created = [s["name"] for s in api.client.get("/api/v3/scopes").json()]
    assert len([name for name in created if name in names]) == faults["drop_after"]


def test_stalls_delay_requests(api: Api) -> None:
    api.server.set_faults(FaultConfig(stall_rate=1.0, stall_seconds=0.4))
    with pytest.raises(httpx.ReadTimeout):
        api.client.get("/api/v3/scopes", timeout=0.1)
    started = time.monotonic()
    assert api.client.get("/api/v3/scopes").status_code == 200
    assert time.monotonic() - started >= 0.35
    assert api.server.stats().faults["stall"] == 2


def test_outage_window_answers_503_for_everything(api: Api) -> None:
    api.server.set_faults(FaultConfig(outage=(0.0, 0.6)))
    response = api.client.get("/api/v3/scopes")
    assert response.status_code == 503
    assert error_code(response) == "service_unavailable"
    assert httpx.get(f"{api.server.url}/").status_code == 503
    time.sleep(0.7)
    assert api.client.get("/api/v3/scopes").status_code == 200
    assert api.server.stats().faults["outage"] == 2

    api.server.set_faults(FaultConfig(outage=(0.5, 10.0)))
    assert api.client.get("/api/v3/scopes").status_code == 200
    time.sleep(0.6)
    assert api.client.get("/api/v3/scopes").status_code == 503
    api.server.set_faults(FaultConfig())


def test_token_expiry(api: Api) -> None:
    api.server.set_faults(FaultConfig(token_ttl_seconds=0.5))
    assert api.client.get("/api/v3/token/userinfo").status_code in (200, 401)
    fresh = api.server.create_token("fresh")
    headers = {"Authorization": f"Bearer {fresh}"}
    assert httpx.get(f"{api.server.url}/api/v3/token/userinfo", headers=headers).status_code == 200
    time.sleep(0.7)
    expired = httpx.get(f"{api.server.url}/api/v3/token/userinfo", headers=headers)
    assert expired.status_code == 401
    assert error_code(expired) == "token_invalid"
    assert "expired" in expired.json()["detail"]
    assert api.server.stats().faults["token_expired"] >= 1
    api.server.set_faults(FaultConfig())
    assert httpx.get(f"{api.server.url}/api/v3/token/userinfo", headers=headers).status_code == 200


def test_faults_from_start_server_and_invalid_configs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="error_rate"):
        start_server(tmp_path / "bad", faults=FaultConfig(error_rate=2.0))
    with start_server(tmp_path / "srv", faults=FaultConfig(error_rate=1.0)) as server:
        token = server.create_token()
        response = httpx.get(
            f"{server.url}/api/v3/scopes", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 500


def test_retried_uploads_under_faults_finish_without_duplicates(local_server: LocalServer) -> None:
    """A naive retrying client still ends with one secured version per file."""
    token = local_server.create_token()
    scope_uuid = local_server.create_scope("faulty scope")
    local_server.set_faults(FaultConfig(error_rate=0.1, drop_rate=0.1, seed=11))
    headers = {"Authorization": f"Bearer {token}"}

    def call(method: str, path: str, **kwargs: object) -> httpx.Response:
        for _ in range(50):
            try:
                response = httpx.request(
                    method,
                    f"{local_server.url}{path}",
                    headers=headers,
                    **kwargs,  # type: ignore[arg-type]
                )
            except httpx.TransportError:
                continue
            if response.status_code < 500:
                return response
        raise AssertionError(f"{method} {path} never succeeded")

    dataset_uuid = str(uuid.uuid4())
    created = call(
        "POST",
        "/api/v2/dataset/",
        json={
            "uuid": dataset_uuid,
            "collected": "2024-01-01T00:00:00+00:00",
            "name": "faulty",
            "creator": "local",
            "keywords": [],
            "ranking": 0,
            "scope_uuid": scope_uuid,
        },
    )
    assert created.status_code in (200, 201)
    import hashlib

    for index in range(15):
        data = f"payload {index}".encode()
        body = {
            "uuid": str(uuid.uuid4()),
            "version_id": 1,
            "name": f"file {index}",
            "filename": f"file{index}.txt",
            "creator": "local",
            "collected": "2024-01-01T00:00:00+00:00",
            "size": len(data),
            "type": "TEXT",
            "ds_uuid": dataset_uuid,
        }
        assert call("POST", "/api/v2/file/", json=body).status_code in (200, 201)
        link = call(
            "GET",
            "/api/v2/file/presigned_link/single_part/",
            params={"file_uuid": body["uuid"], "version_id": 1},
        )
        if link.status_code == 409:  # already secured by a dropped-after validation
            continue
        url = link.json()["url"]
        for _ in range(50):
            try:
                put = httpx.put(url, content=data)
            except httpx.TransportError:
                continue
            if put.status_code == 200:
                break
        validated = call(
            "POST",
            "/api/v2/file/validate_upload/single_part/",
            json={
                "uuid": body["uuid"],
                "version_id": 1,
                "md5_checksum": hashlib.md5(data).hexdigest(),
                "upload_id": "",
                "etags": [],
            },
        )
        assert validated.status_code == 200, validated.text
    local_server.set_faults(FaultConfig())
    assert local_server.stats().faults_injected > 0
    dataset = httpx.get(
        f"{local_server.url}/api/v2/dataset/",
        params={"dataset_uuid": dataset_uuid},
        headers=headers,
    ).json()
    assert len(dataset["files"]) == 15
    assert all(file["status"] == "secured" for file in dataset["files"])
