"""What the platform's own client needs from the server (PROTOCOL §0) and the D13 trust fixes."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import ssl
import stat
import sys
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
from click.testing import CliRunner

from etiket_local_server.catalog import Catalog, FileVersion
from etiket_local_server.cli import main
from etiket_local_server.testing import LocalServer, error_code, start_server
from etiket_local_server.tls import ensure_self_signed
from etiket_sync_agent.netcdf import md5_netcdf4

from .conftest import Api


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _write_netcdf(path: Path, *, chunked: bool) -> bytes:
    import h5netcdf.legacyapi as nc

    with nc.Dataset(path, "w") as ds:
        ds.createDimension("x", 5)
        var = ds.createVariable(
            "signal", "f8", ("x",), chunksizes=(2,) if chunked else None, zlib=chunked
        )
        var[:] = np.arange(5.0)
        var.units = "V"
        ds.title = "sweep"
    return path.read_bytes()


# -- errors (§0.6, §4) ---------------------------------------------------------------------------
def test_not_found_has_detail_and_no_error_key(api: Api) -> None:
    missing = api.client.get("/api/v2/dataset/", params={"dataset_uuid": str(uuid.uuid4())})
    assert missing.status_code == 404
    body = missing.json()
    assert "error" not in body
    assert body["detail"]
    assert body["reason"] == "dataset_not_found"
    by_either = api.client.get(
        "/api/v2/dataset/by_uuid_or_alt_uid/", params={"dataset_uuid_or_uid": "nothing-here"}
    )
    assert by_either.status_code == 404
    assert "error" not in by_either.json()


def test_platform_codes_keep_the_error_key(api: Api) -> None:
    missing_scope = api.client.get(f"/api/v3/scopes/{uuid.uuid4()}")
    assert missing_scope.status_code == 404
    assert missing_scope.json()["error"] == "scope_not_found"
    bad = httpx.get(f"{api.server.url}/api/v3/me", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert bad.json()["error"] == "token_invalid"


# -- §0.3-0.5 endpoints --------------------------------------------------------------------------
def test_schemas_bucket_and_attribute_facets(api: Api) -> None:
    assert api.client.get("/api/v2/schemas/").json() == []
    schema = api.client.get("/api/v2/schema/", params={"schema_uuid": str(uuid.uuid4())})
    assert schema.status_code == 404
    assert "error" not in schema.json()

    bucket = api.client.get(f"/api/v3/scopes/{api.scope_uuid}/bucket")
    assert bucket.status_code == 200, bucket.text
    record = bucket.json()
    assert set(record) == {"name", "bucket_uuid", "resource"}
    uuid.UUID(record["bucket_uuid"])
    assert set(record["resource"]) >= {"name", "type", "resource_uuid", "endpoint"}

    api.create_dataset(attributes={"sample": "S1", "fridge": "F1"})
    api.create_dataset(attributes={"sample": "S2", "fridge": "F1"})
    api.create_dataset(attributes={"sample": "S3", "fridge": "F2"})
    facets = api.client.post(
        "/api/v2/datasets/attributes/", json={"scope_uuids": [api.scope_uuid], "attributes": {}}
    )
    assert facets.status_code == 200, facets.text
    assert facets.json() == [{"fridge": ["F1", "F2"], "sample": ["S1", "S2", "S3"]}]
    narrowed = api.client.post(
        "/api/v2/datasets/attributes/",
        json={"scope_uuids": None, "attributes": {"fridge": ["F1"]}},
    )
    assert narrowed.json() == [{"fridge": ["F1"], "sample": ["S1", "S2"]}]


# -- password and refresh grants (§3.1, §3.4) ----------------------------------------------------
def _password_grant(server: LocalServer, user: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v3/token",
        data={"grant_type": "password", "username": user, "password": password, "client_id": ""},
    )


def test_password_grant_refresh_rotation_and_revoke(tmp_path: Path) -> None:
    with start_server(tmp_path / "srv", access_token_ttl=1.0) as server:
        server.add_user("alice", "correct horse")
        wrong = _password_grant(server, "alice", "wrong password")
        assert wrong.status_code == 400
        assert wrong.json()["error"] == "invalid_grant"
        assert _password_grant(server, "nobody", "correct horse").json()["error"] == "invalid_grant"

        granted = _password_grant(server, "alice", "correct horse")
        assert granted.status_code == 200, granted.text
        token = granted.json()
        assert token["token_type"] == "bearer"
        assert token["expires_in"] == 1
        assert "scope" not in token  # oauthlib would raise "Scope has changed"
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        info = httpx.get(f"{server.url}/api/v3/token/userinfo", headers=bearer)
        assert info.json()["sub"] == "alice"

        time.sleep(1.2)
        expired = httpx.get(f"{server.url}/api/v3/token/userinfo", headers=bearer)
        assert expired.status_code == 401
        assert expired.json()["error"] == "token_invalid"

        refresh = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
        renewed = httpx.post(f"{server.url}/api/v3/token", data=refresh)
        assert renewed.status_code == 200, renewed.text
        again = httpx.post(f"{server.url}/api/v3/token", data=refresh)
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"

        fresh = renewed.json()["refresh_token"]
        revoked = httpx.post(f"{server.url}/api/v3/token/revoke", data={"token": fresh})
        assert revoked.status_code == 200
        after = httpx.post(
            f"{server.url}/api/v3/token",
            data={"grant_type": "refresh_token", "refresh_token": fresh},
        )
        assert after.json()["error"] == "invalid_grant"
        odd = httpx.post(f"{server.url}/api/v3/token", data={"grant_type": "client_credentials"})
        assert odd.json()["error"] == "unsupported_grant_type"
        # API tokens keep working beside password logins
        api_token = server.create_token("still works")
        me = httpx.get(f"{server.url}/api/v3/me", headers={"Authorization": f"Bearer {api_token}"})
        assert me.status_code == 200


def test_user_cli_add_list_remove_never_prints_the_password(tmp_path: Path) -> None:
    data = str(tmp_path / "srv")
    runner = CliRunner()
    added = runner.invoke(main, ["user", "add", "bob", "--data-dir", data], input="s3cret-pw\n")
    assert added.exit_code == 0, added.output
    assert "s3cret-pw" not in added.output
    short = runner.invoke(main, ["user", "add", "carol", "--data-dir", data], input="abc\n")
    assert short.exit_code != 0
    assert "at least 6" in short.output
    listed = runner.invoke(main, ["user", "list", "--data-dir", data])
    assert "bob  (user, password, 0 API tokens)" in listed.output
    catalog = Catalog(Path(data))
    try:
        stored = catalog.engine.connect().exec_driver_sql(
            "SELECT password_hash FROM user_passwords"
        )
        digest = stored.scalar_one()
        assert digest.startswith("$argon2id$")
        assert "s3cret-pw" not in digest
    finally:
        catalog.close()
    removed = runner.invoke(main, ["user", "remove", "bob", "--yes", "--data-dir", data])
    assert removed.exit_code == 0, removed.output
    assert "bob" not in runner.invoke(main, ["user", "list", "--data-dir", data]).output


# -- TLS -----------------------------------------------------------------------------------------
def test_https_with_a_reused_self_signed_certificate(tmp_path: Path) -> None:
    with start_server(tmp_path / "srv", tls=True) as server:
        assert server.url.startswith("https://")
        assert server.ca_bundle is not None
        token = server.create_token()
        ok = httpx.get(
            f"{server.url}/api/v3/token/userinfo",
            headers={"Authorization": f"Bearer {token}"},
            verify=ssl.create_default_context(cafile=str(server.ca_bundle)),
        )
        assert ok.status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.url}/api/v3/")  # the system CAs do not know it
        first = server.fingerprint
    again = ensure_self_signed(tmp_path / "srv", ["127.0.0.1"])
    assert not again.created
    assert again.fingerprint == first
    other_host = ensure_self_signed(tmp_path / "srv", ["lab-server.example"])
    assert other_host.created
    assert "lab-server.example" in other_host.hosts
    if os.name != "nt":
        assert stat.S_IMODE(other_host.keyfile.stat().st_mode) == 0o600


def test_serve_refuses_half_a_tls_configuration(tmp_path: Path) -> None:
    cert = ensure_self_signed(tmp_path / "srv", [])
    result = CliRunner().invoke(
        main, ["serve", "--data-dir", str(tmp_path / "srv"), "--certfile", str(cert.certfile)]
    )
    assert result.exit_code != 0
    assert "--certfile and --keyfile go together" in result.output


# -- netCDF content checksum (§0.7) and download ETag (§0.8) -------------------------------------
def _put_single(api: Api, file: dict[str, object], data: bytes) -> None:
    link = api.client.get(
        "/api/v2/file/presigned_link/single_part/",
        params={"file_uuid": file["uuid"], "version_id": file["version_id"]},
    )
    assert httpx.put(link.json()["url"], content=data).status_code == 200


def test_netcdf_validates_by_content_hash_and_downloads_carry_the_byte_md5(
    api: Api, tmp_path: Path
) -> None:
    data = _write_netcdf(tmp_path / "a.nc", chunked=False)
    content = md5_netcdf4(tmp_path / "a.nc")
    assert content != _md5(data)
    ds = api.create_dataset()
    file = api.create_file(ds["uuid"], len(data), type="HDF5_NETCDF", filename="a.nc")
    _put_single(api, file, data)
    wrong = api.validate_single(file, "0" * 32)
    assert wrong.status_code == 422
    assert error_code(wrong) == "checksum_mismatch"
    ok = api.validate_single(file, content)
    assert ok.status_code == 200, ok.text
    read = api.read_file(file)
    assert read["status"] == "secured"
    assert read["md5_checksum"] == content
    assert api.validate_single(file, content).status_code == 200  # idempotent
    download = httpx.get(read["S3_link"])
    assert download.content == data
    assert download.headers["etag"].strip('"') == _md5(data)
    with api.server._catalog.session() as session:
        row = session.query(FileVersion).filter_by(uuid=file["uuid"]).one()
        assert row.checksum_kind == "md5_netcdf4"
        assert row.object_md5 == _md5(data)

    # a regenerated file with another layout has the same content hash
    other = _write_netcdf(tmp_path / "b.nc", chunked=True)
    assert other != data
    assert md5_netcdf4(tmp_path / "b.nc") == content


def test_netcdf_type_with_unreadable_bytes_falls_back_to_the_byte_md5(api: Api) -> None:
    data = b"not a netCDF file at all"
    ds = api.create_dataset()
    file = api.create_file(ds["uuid"], len(data), type="HDF5_NETCDF", filename="x.nc")
    _put_single(api, file, data)
    wrong = api.validate_single(file, "1" * 32)
    assert wrong.status_code == 422
    assert "not readable as netCDF4" in wrong.json()["detail"]
    assert api.validate_single(file, _md5(data)).status_code == 200
    with api.server._catalog.session() as session:
        row = session.query(FileVersion).filter_by(uuid=file["uuid"]).one()
        assert row.checksum_kind == "md5"


def test_multipart_download_etag_is_the_whole_object_md5(api: Api) -> None:
    part = 5 * 1024 * 1024
    data = os.urandom(part) + b"tail"
    ds = api.create_dataset()
    file = api.create_file(ds["uuid"], len(data))
    upload = api.start_multipart(file, part_size=part)
    chunks = [data[: upload["part_size"]], data[upload["part_size"] :]]
    etags = [
        httpx.put(url, content=chunk).headers["etag"].strip('"')
        for url, chunk in zip(upload["presigned_urls"], chunks, strict=False)
    ]
    done = api.validate_multipart(file, upload["upload_id"], _md5(data), etags)
    assert done.status_code == 200, done.text
    download = httpx.get(api.read_file(file)["S3_link"])
    assert download.headers["etag"].strip('"') == _md5(data)


# -- D13: trust nothing the client claims --------------------------------------------------------
def test_creator_is_the_authenticated_user(api: Api) -> None:
    ds = api.create_dataset(creator="someone-else")
    read = api.client.get("/api/v2/dataset/", params={"dataset_uuid": ds["uuid"]}).json()
    assert read["creator"] == "local"
    file = api.create_file(ds["uuid"], 3, creator="mallory")
    assert api.read_file(file)["creator"] == "local"


def test_conflict_does_not_reveal_another_users_scope(api: Api) -> None:
    other_token = api.server.create_token("other", user="eve")
    other_scope = api.server.create_scope("eve scope", user="eve")
    ds = api.create_dataset()
    clash = httpx.post(
        f"{api.server.url}/api/v2/dataset/",
        headers={"Authorization": f"Bearer {other_token}"},
        json={**ds, "scope_uuid": other_scope},
    )
    assert clash.status_code == 409
    assert api.scope_uuid not in clash.text


@pytest.mark.parametrize(
    "name", [".", "x/.", "./x", "a//b", "x/", "report\u202eslx.exe", "a\u2066b", "\u200fname"]
)
def test_unsafe_file_names_are_refused(api: Api, name: str) -> None:
    ds = api.create_dataset()
    response = api.client.post("/api/v2/file/", json=api.file_body(ds["uuid"], 3, name=name))
    assert response.status_code == 422, (name, response.text)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_data_files_are_private(api: Api) -> None:
    ds = api.create_dataset()
    file = api.create_file(ds["uuid"], 3)
    api.upload_single(file, b"abc")
    data_dir = api.server.data_dir
    for path in [data_dir / "catalog.sqlite", data_dir / "secret.key"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    wal = data_dir / "catalog.sqlite-wal"
    if wal.exists():
        assert stat.S_IMODE(wal.stat().st_mode) == 0o600


def test_restrict_permissions_is_a_no_op_on_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etiket_local_server import catalog as catalog_module

    target = tmp_path / "f"
    target.write_bytes(b"x")
    target.chmod(0o644)
    monkeypatch.setattr(catalog_module, "_POSIX_MODES", False)
    catalog_module.restrict_permissions(target)  # must not raise nor chmod
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_client_disconnect_mid_request_leaves_no_traceback(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = api.server.url.removeprefix("http://").rsplit(":", 1)
    caplog.set_level(logging.INFO)
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /api/v2/dataset/ HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {api.token}\r\n".encode()
            + b'Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"uuid": '
        )
        time.sleep(0.3)
    time.sleep(0.5)
    assert api.client.get("/api/v3/me").status_code == 200  # still serving
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
