"""Auth, userinfo, API tokens, scopes and the version endpoints over real HTTP."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import httpx

from etiket_local_server.testing import LocalServer, error_code

if TYPE_CHECKING:
    from conftest import Api


def test_reachability_probe_and_version_need_no_token(local_server: LocalServer) -> None:
    root = httpx.get(f"{local_server.url}/api/v3/")
    assert root.status_code == 200
    assert root.json()["service"] == "etiket-local-server"
    version = httpx.get(f"{local_server.url}/api/v2/version/API/")
    assert version.status_code == 200
    assert isinstance(version.json(), str)


_PROTECTED = [
    ("GET", "/api/v3/token/userinfo"),
    ("GET", "/api/v3/me"),
    ("GET", "/api/v3/scopes"),
    ("POST", "/api/v3/scopes"),
    ("GET", "/api/v3/api-tokens"),
    ("POST", "/api/v2/dataset/"),
    ("GET", "/api/v2/dataset/?dataset_uuid=not-even-a-uuid"),
    ("PATCH", "/api/v2/dataset/"),
    ("POST", "/api/v2/file/"),
    ("GET", "/api/v2/file/read/?uuid=" + str(uuid.uuid4())),
    ("GET", "/api/v2/file/presigned_link/"),
    ("POST", "/api/v2/file/validate_upload/"),
    ("POST", "/api/v2/datasets/search/"),
]


def test_requests_without_a_valid_token_get_401(local_server: LocalServer) -> None:
    bad_headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
    ]
    with httpx.Client(base_url=local_server.url) as client:
        for method, path in _PROTECTED:
            for headers in bad_headers:
                # 401 comes before parameter and body validation
                response = client.request(method, path, headers=headers, json={})
                assert response.status_code == 401, (method, path, headers)
                assert error_code(response) == "token_invalid"
                assert response.headers["content-type"].startswith("application/json")


def test_userinfo_answers_the_tokens_user(local_server: LocalServer) -> None:
    token = local_server.create_token("mine", user="alice")
    info = httpx.get(
        f"{local_server.url}/api/v3/token/userinfo", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert info["sub"] == "alice"
    default = local_server.create_token()
    info = httpx.get(
        f"{local_server.url}/api/v3/token/userinfo", headers={"Authorization": f"Bearer {default}"}
    ).json()
    assert info["sub"] == "local"


def test_tokens_are_stored_only_as_hashes(local_server: LocalServer) -> None:
    token = local_server.create_token()
    assert token.encode() not in (local_server.data_dir / "catalog.sqlite").read_bytes()


def test_api_token_create_list_delete(api: Api) -> None:
    created = api.client.post("/api/v3/api-tokens", json={"name": "agent token"})
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"uid", "name", "api_token", "owner"}
    assert body["owner"] == "local"
    new_headers = {"Authorization": f"Bearer {body['api_token']}"}
    assert (
        httpx.get(f"{api.server.url}/api/v3/token/userinfo", headers=new_headers).status_code == 200
    )
    duplicate = api.client.post("/api/v3/api-tokens", json={"name": "agent token"})
    assert duplicate.status_code == 409
    assert error_code(duplicate) == "api_token_name_already_exists"
    short = api.client.post("/api/v3/api-tokens", json={"name": "ab"})
    assert short.status_code == 422
    assert short.json()["fields"] == ["name"]

    listed = api.client.get("/api/v3/api-tokens").json()
    by_uid = {item["uid"]: item for item in listed}
    assert body["uid"] in by_uid
    assert "api_token" not in by_uid[body["uid"]]
    assert by_uid[body["uid"]]["last_validated"].endswith("+00:00")

    assert api.client.delete(f"/api/v3/api-tokens/{body['uid']}").status_code == 204
    assert (
        httpx.get(f"{api.server.url}/api/v3/token/userinfo", headers=new_headers).status_code == 401
    )
    missing = api.client.delete(f"/api/v3/api-tokens/{body['uid']}")
    assert missing.status_code == 404
    assert error_code(missing) == "api_token_not_found"


def test_other_users_tokens_are_off_limits(api: Api) -> None:
    bob = api.server.create_token("bob's", user="bob")
    bob_headers = {"Authorization": f"Bearer {bob}"}
    bob_uid = httpx.get(f"{api.server.url}/api/v3/api-tokens", headers=bob_headers).json()[0]["uid"]
    denied = httpx.delete(f"{api.server.url}/api/v3/api-tokens/{bob_uid}", headers=bob_headers)
    assert denied.status_code == 204  # bob may delete his own
    alice = api.server.create_token("alice's", user="alice")
    alice_uid_list = httpx.get(
        f"{api.server.url}/api/v3/api-tokens", headers={"Authorization": f"Bearer {alice}"}
    ).json()
    carol = api.server.create_token("carol's", user="carol")
    response = httpx.delete(
        f"{api.server.url}/api/v3/api-tokens/{alice_uid_list[0]['uid']}",
        headers={"Authorization": f"Bearer {carol}"},
    )
    assert response.status_code == 403
    assert error_code(response) == "api_token_access_denied"
    listing = httpx.get(
        f"{api.server.url}/api/v3/api-tokens",
        params={"sub": "alice"},
        headers={"Authorization": f"Bearer {carol}"},
    )
    assert listing.status_code == 403
    # the admin user "local" may list anyone's tokens
    assert api.client.get("/api/v3/api-tokens", params={"sub": "alice"}).status_code == 200


def test_scope_create_list_read(api: Api) -> None:
    created = api.client.post(
        "/api/v3/scopes", json={"name": "second scope", "description": "d", "uid": None}
    )
    assert created.status_code == 201
    scope = created.json()
    assert scope["uuid"] == scope["uid"]
    assert scope["created"].endswith("+00:00")

    names = [s["name"] for s in api.client.get("/api/v3/scopes").json()]
    assert names == ["pytest scope", "second scope"]
    only = api.client.get("/api/v3/scopes", params={"name": "second scope"}).json()
    assert [s["uuid"] for s in only] == [scope["uuid"]]

    read = api.client.get(f"/api/v3/scopes/{scope['uuid']}")
    assert read.status_code == 200
    assert read.json()["name"] == "second scope"

    chosen = str(uuid.uuid4())
    with_uid = api.client.post("/api/v3/scopes", json={"name": "chosen uid", "uid": chosen})
    assert with_uid.json()["uuid"] == chosen
    clash = api.client.post("/api/v3/scopes", json={"name": "other name", "uid": chosen})
    assert clash.status_code == 409
    assert error_code(clash) == "scope_uid_in_use"
    same_name = api.client.post("/api/v3/scopes", json={"name": "chosen uid"})
    assert same_name.status_code == 409
    too_short = api.client.post("/api/v3/scopes", json={"name": "abc"})
    assert too_short.status_code == 422
    assert "name" in too_short.json()["detail"]


def test_scope_visibility_is_by_membership(api: Api) -> None:
    outsider = api.server.create_token("outsider", user="mallory")
    headers = {"Authorization": f"Bearer {outsider}"}
    assert httpx.get(f"{api.server.url}/api/v3/scopes", headers=headers).json() == []
    denied = httpx.get(f"{api.server.url}/api/v3/scopes/{api.scope_uuid}", headers=headers)
    assert denied.status_code == 403
    assert error_code(denied) == "scope_access_denied"
    missing = api.client.get(f"/api/v3/scopes/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert error_code(missing) == "scope_not_found"
    api.server.add_scope_member(api.scope_uuid, "mallory")
    visible = httpx.get(f"{api.server.url}/api/v3/scopes", headers=headers).json()
    assert [s["uuid"] for s in visible] == [api.scope_uuid]


def test_unknown_routes_answer_json_404(api: Api) -> None:
    response = api.client.get("/api/v2/nothing/here/")
    assert response.status_code == 404
    assert error_code(response) == "not_found"
    wrong_method = api.client.delete("/api/v2/dataset/")
    assert wrong_method.status_code == 405
    assert error_code(wrong_method) == "method_not_allowed"
