"""Speaking eTiKeT as the platform's client does: HTTPS with a private CA, password logins that
refresh, error shapes, presigned URLs kept out of logs, netCDF validation, and no junk versions."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import stat
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from click.testing import CliRunner

from etiket_sync_agent.netcdf import md5_netcdf4
from etiket_sync_agent.platform import (
    EtiketClient,
    FileChangedError,
    FileStatus,
    FileType,
    NetworkError,
    NotFoundError,
    Uploader,
    load_credentials,
    save_credentials,
)
from etiket_sync_agent.platform import credentials as credentials_module
from etiket_sync_agent.platform.auth import client_for, password_login, tls_verify
from etiket_sync_agent.platform.credentials import Credentials
from etiket_sync_agent.platform.errors import (
    AuthError,
    ConflictError,
    EtiketError,
    error_for_status,
    redact_presigned,
)
from etiket_sync_agent.platform.upload import validation_checksum

from .conftest import FAST_RETRY, new_dataset, new_file


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[Any]:
    """A local server over HTTPS with a self-signed certificate and a password user."""
    from etiket_local_server.testing import start_server

    with start_server(tmp_path / "tls-server", tls=True, access_token_ttl=2.0) as server:
        server.add_user("alice", "alice-password")
        yield server


# -- TLS -----------------------------------------------------------------------------------------
def test_https_needs_the_ca_bundle_and_insecure_is_loud(
    https_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    token = https_server.create_token()

    async def who(verify: Any) -> str:
        async with EtiketClient(https_server.url, token, verify=verify, retry=FAST_RETRY) as c:
            return (await c.userinfo()).sub

    assert asyncio.run(who(tls_verify(str(https_server.ca_bundle)))) == "local"
    with pytest.raises(NetworkError):
        asyncio.run(who(tls_verify(None)))  # not in the system's trust store
    with caplog.at_level(logging.WARNING):
        assert asyncio.run(who(tls_verify(None, insecure=True))) == "local"
    assert "verification is OFF" in caplog.text


def test_ca_bundle_from_the_environment(https_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETIKET_SYNC_CA_BUNDLE", str(https_server.ca_bundle))
    token = https_server.create_token()

    async def who() -> str:
        async with EtiketClient(https_server.url, token, verify=tls_verify()) as c:
            return (await c.userinfo()).sub

    assert asyncio.run(who()) == "local"
    with pytest.raises(ValueError, match="cannot use CA bundle"):
        tls_verify("/nonexistent/bundle.pem")


# -- password login and refresh (§3.1, §3.4) -----------------------------------------------------
def test_password_login_refreshes_an_expired_token(https_server: Any, tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    bundle = str(https_server.ca_bundle)
    with pytest.raises(AuthError):
        asyncio.run(password_login(https_server.url, "alice", "wrong", ca_bundle=bundle))
    credentials, sub = asyncio.run(
        password_login(https_server.url, "alice", "alice-password", ca_bundle=bundle)
    )
    assert sub == "alice"
    assert credentials.refreshable
    save_credentials(credentials, path=path)
    assert "alice-password" not in path.read_text()

    time.sleep(2.2)  # the access token expires

    async def twice() -> tuple[str, str]:
        async with client_for(load_credentials(path), path) as client:  # type: ignore[arg-type]
            first = (await client.userinfo()).sub
        # another process starting now adopts the refreshed token from the file
        async with client_for(load_credentials(path), path) as client:  # type: ignore[arg-type]
            second = (await client.userinfo()).sub
        return first, second

    assert asyncio.run(twice()) == ("alice", "alice")
    stored = load_credentials(path)
    assert stored is not None
    assert stored.token != credentials.token
    assert stored.refresh_token != credentials.refresh_token  # rotated
    assert stored.ca_bundle == bundle


def test_a_spent_refresh_token_asks_to_log_in_again(https_server: Any, tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    credentials, _ = asyncio.run(
        password_login(
            https_server.url, "alice", "alice-password", ca_bundle=str(https_server.ca_bundle)
        )
    )
    revoked = httpx.post(
        f"{https_server.url}/api/v3/token/revoke",
        data={"token": credentials.refresh_token},
        verify=tls_verify(str(https_server.ca_bundle)),
    )
    assert revoked.status_code == 200
    save_credentials(credentials, path=path)
    time.sleep(2.2)

    async def call() -> None:
        async with client_for(credentials, path) as client:
            await client.userinfo()

    with pytest.raises(AuthError, match="could not be renewed"):
        asyncio.run(call())


# -- the login command (issue 11 item 7, issue 13 item 6) ----------------------------------------
@pytest.fixture
def agent_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("ETIKET_SYNC_HOME", str(home))
    return home


def test_login_reads_the_token_from_stdin(https_server: Any, agent_home: Path) -> None:
    from etiket_sync_agent import paths
    from etiket_sync_agent.cli.main import cli

    token = https_server.create_token("stdin")
    result = CliRunner().invoke(
        cli,
        ["login", "--url", https_server.url, "--ca-bundle", str(https_server.ca_bundle)],
        input=f"{token}\n",
    )
    assert result.exit_code == 0, result.output
    assert token not in result.output
    stored = load_credentials(paths.credentials_path())
    assert stored is not None
    assert stored.token == token
    assert stored.ca_bundle == str(https_server.ca_bundle)
    assert not stored.refreshable


def test_login_with_username_and_password_from_stdin(
    https_server: Any, agent_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etiket_sync_agent import paths
    from etiket_sync_agent.cli.main import cli

    monkeypatch.setenv("ETIKET_SYNC_CA_BUNDLE", str(https_server.ca_bundle))
    runner = CliRunner()
    wrong = runner.invoke(
        cli, ["login", "--url", https_server.url, "--username", "alice"], input="nope\n"
    )
    assert wrong.exit_code != 0
    assert "login failed" in wrong.output
    assert not paths.credentials_path().exists()
    ok = runner.invoke(
        cli, ["login", "--url", https_server.url, "--username", "alice"], input="alice-password\n"
    )
    assert ok.exit_code == 0, ok.output
    assert "as alice" in ok.output
    assert "alice-password" not in paths.credentials_path().read_text()
    stored = load_credentials(paths.credentials_path())
    assert stored is not None
    assert stored.refreshable
    assert stored.username == "alice"


def test_deprecated_token_option_warns(https_server: Any, agent_home: Path) -> None:
    from etiket_sync_agent.cli.main import cli

    token = https_server.create_token("argv")
    result = CliRunner().invoke(
        cli,
        [
            "login",
            "--url",
            https_server.url,
            "--token",
            token,
            "--ca-bundle",
            str(https_server.ca_bundle),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "process list" in result.output


def test_insecure_login_is_loud(https_server: Any, agent_home: Path) -> None:
    from etiket_sync_agent.cli.main import cli

    token = https_server.create_token("insecure")
    result = CliRunner().invoke(
        cli, ["login", "--url", https_server.url, "--insecure"], input=f"{token}\n"
    )
    assert result.exit_code == 0, result.output
    assert "WARNING: --insecure" in result.output


# -- credentials file on every OS (issue 13: Windows crash) --------------------------------------
def test_credentials_are_written_without_fchmod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(credentials_module.os, "fchmod", raising=False)  # Windows < 3.13
    path = tmp_path / "creds" / "credentials.json"
    save_credentials(
        Credentials("https://x.example", "tok_secret_1", refresh_token="ref_1", expires_at=5.0),
        path=path,
    )
    loaded = load_credentials(path)
    assert loaded is not None
    assert loaded.refresh_token == "ref_1"
    assert loaded.expires_at == 5.0
    if sys.platform != "win32":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_credentials_on_a_windows_like_os_skip_posix_modes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []
    monkeypatch.delattr(credentials_module.os, "fchmod", raising=False)
    monkeypatch.setattr(credentials_module, "_POSIX_MODES", False)
    monkeypatch.setattr(credentials_module.os, "chmod", lambda *a, **k: calls.append(a))
    path = tmp_path / "credentials.json"
    save_credentials("https://x.example", "tok_secret_2", path)
    assert calls == []
    assert json.loads(path.read_text())["token"] == "tok_secret_2"


# -- error shapes (§0.6, §4; issue 11 item 9) ----------------------------------------------------
def test_error_shapes_of_the_platform() -> None:
    plain_404 = error_for_status(404, {"detail": "Dataset not found"}, "GET", "/api/v2/dataset/")
    assert isinstance(plain_404, NotFoundError)
    assert plain_404.code is None
    unknown = error_for_status(
        409, {"error": "some_future_code", "detail": "no"}, "POST", "/api/v2/dataset/"
    )
    assert isinstance(unknown, ConflictError)
    assert unknown.code == "some_future_code"
    odd = error_for_status(418, {"error": "teapot", "detail": "short"}, "GET", "/x")
    assert type(odd) is EtiketError
    local = error_for_status(422, {"reason": "size_mismatch", "detail": "d"}, "POST", "/x")
    assert local.code == "size_mismatch"


def test_missing_dataset_reads_as_none(etiket_server: Any, token: str) -> None:
    async def read() -> Any:
        async with EtiketClient(etiket_server.url, token) as client:
            return await client.get_dataset(str(uuid.uuid4()))

    assert asyncio.run(read()) is None


# -- D8: presigned URLs never in logs or errors --------------------------------------------------
def test_presigned_query_strings_are_redacted() -> None:
    s3 = (
        "PUT https://bucket.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=AK%2F"
        "&X-Amz-Signature=deadbeef done"
    )
    assert redact_presigned(s3) == "PUT https://bucket.s3.amazonaws.com/k?… done"
    azure = "https://acct.blob.core.windows.net/c/b?sv=2021&se=2030&sig=abc%3D"
    assert "sig=" not in redact_presigned(azure)
    api = "GET https://etiket.example/api/v2/dataset/?dataset_uuid=123"
    assert redact_presigned(api) == api


def test_upload_logs_no_signature(
    etiket_server: Any,
    token: str,
    scope_uuid: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(1000))

    async def run() -> None:
        async with EtiketClient(etiket_server.url, token) as client:
            ds = await client.ensure_dataset(new_dataset(scope_uuid))
            create = new_file(ds.uuid, source)
            await Uploader(client).upload(source, create.uuid, create.version_id, announce=create)

    with caplog.at_level(logging.DEBUG):
        asyncio.run(run())
    assert "/_store/put/" in caplog.text  # httpx logged the request line ...
    assert "sig=" not in caplog.text  # ... without its signature
    assert "expires=" not in caplog.text


# -- netCDF validation (issue 11 item 8) ---------------------------------------------------------
def _netcdf(path: Path, *, layout: int) -> None:
    import h5netcdf.legacyapi as nc

    with nc.Dataset(path, "w") as ds:
        ds.createDimension("x", 4)
        options: dict[str, Any] = {"zlib": True, "chunksizes": (2,)} if layout else {}
        amp = ds.createVariable("amplitude", "c16", ("x",), **options)
        amp[:] = np.array([1 + 2j, 3 - 1j, 0j, -1j])
        label = ds.createVariable("label", str, ("x",))
        label[:] = np.array(["a", "bb", "ccc", "d"], dtype=object)
        ds.createVariable("scalar", "f8", ())
        amp.long_name = "complex amplitude"
        ds.guid = "abc-123"
        ds.sample = "S1"


def test_netcdf_versions_validate_with_the_content_hash(
    etiket_server: Any, token: str, scope_uuid: str, tmp_path: Path
) -> None:
    first, second = tmp_path / "one" / "m.nc", tmp_path / "two" / "m.nc"
    first.parent.mkdir()
    second.parent.mkdir()
    _netcdf(first, layout=0)
    _netcdf(second, layout=1)
    content = md5_netcdf4(first)
    assert md5_netcdf4(second) == content
    assert first.read_bytes() != second.read_bytes()
    byte_md5 = hashlib.md5(first.read_bytes()).hexdigest()
    assert validation_checksum(first, byte_md5, "HDF5_NETCDF") == content
    assert validation_checksum(first, byte_md5, "HDF5") == byte_md5
    assert validation_checksum(first, byte_md5, "HDF5_NETCDF", "AB" * 16) == "ab" * 16

    async def run() -> Any:
        async with EtiketClient(etiket_server.url, token) as client:
            ds = await client.ensure_dataset(new_dataset(scope_uuid))
            create = new_file(ds.uuid, first).model_copy(update={"type": FileType.HDF5_NETCDF})
            result = await Uploader(client).upload(
                first, create.uuid, create.version_id, announce=create
            )
            return result, (await client.read_file(create.uuid, create.version_id))[0]

    result, remote = asyncio.run(run())
    assert result.checksum == content
    assert remote.status == FileStatus.SECURED
    assert remote.md5_checksum == content
    download = httpx.get(remote.S3_link)
    assert download.headers["etag"].strip('"') == byte_md5


def test_netcdf_without_the_extra_falls_back_to_the_byte_md5(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from etiket_sync_agent.platform import upload as upload_module

    monkeypatch.setitem(sys.modules, "etiket_sync_agent.netcdf", None)  # import fails
    monkeypatch.setattr(upload_module, "_netcdf_warned", False)
    path = tmp_path / "x.nc"
    path.write_bytes(b"whatever")
    with caplog.at_level(logging.WARNING):
        assert validation_checksum(path, "f" * 32, "HDF5_NETCDF") == "f" * 32
        assert validation_checksum(path, "f" * 32, "HDF5_NETCDF") == "f" * 32
    assert caplog.text.count("etiket-sync-agent[netcdf]") == 1


# -- D10: a file that changes while read is never announced --------------------------------------
def test_a_file_changing_while_read_leaves_no_announced_version(
    etiket_server: Any,
    token: str,
    scope_uuid: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from etiket_sync_agent.platform import upload as upload_module

    source = tmp_path / "growing.bin"
    source.write_bytes(b"x" * 1000)
    real_read = upload_module._read_whole

    def read_while_appended(path: Path) -> tuple[bytes, str]:
        with open(path, "ab") as handle:
            handle.write(b"more")  # the acquisition software appends meanwhile
        return real_read(path)

    monkeypatch.setattr(upload_module, "_read_whole", read_while_appended)

    async def attempt(version_id: int) -> Any:
        async with EtiketClient(etiket_server.url, token) as client:
            ds = await client.ensure_dataset(new_dataset(scope_uuid, uuid=dataset_uuid))
            create = new_file(ds.uuid, source, version_id=version_id)
            with pytest.raises(FileChangedError):
                await Uploader(client).upload(
                    source, create.uuid, create.version_id, announce=create
                )
            return await client.read_file(create.uuid)

    dataset_uuid = str(uuid.uuid4())
    for version_id in (1, 2, 3):
        assert asyncio.run(attempt(version_id)) == []  # no junk version on the server
