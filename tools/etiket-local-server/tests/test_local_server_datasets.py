"""Datasets: create (idempotent, conflicts, validation), read, PATCH, search, alt_uid lookups."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import httpx

from etiket_local_server.testing import error_code

if TYPE_CHECKING:
    from conftest import Api


def test_create_and_read_dataset(api: Api) -> None:
    body = api.create_dataset(alt_uid="guid-1", attributes={"sample": "S1", "setup": "XLD"})
    read = api.client.get("/api/v2/dataset/", params={"dataset_uuid": body["uuid"]})
    assert read.status_code == 200
    dataset = read.json()
    assert dataset["uuid"] == body["uuid"]
    assert dataset["alt_uid"] == "guid-1"
    assert dataset["collected"] == "2024-05-01T12:30:00+00:00"
    assert dataset["attributes"] == {"sample": "S1", "setup": "XLD"}
    assert dataset["keywords"] == ["cooldown"]
    assert dataset["scope"]["uuid"] == api.scope_uuid
    assert dataset["scope"]["uid"] == api.scope_uuid
    assert dataset["files"] == []
    assert dataset["created"].endswith("+00:00")
    assert dataset["modified"].endswith("+00:00")

    scoped = api.client.get(
        "/api/v2/dataset/",
        params={"dataset_uuid": body["uuid"], "scope_uuid": str(uuid.uuid4())},
    )
    assert scoped.status_code == 404
    missing = api.client.get("/api/v2/dataset/", params={"dataset_uuid": str(uuid.uuid4())})
    assert missing.status_code == 404
    assert error_code(missing) == "dataset_not_found"


def test_collected_with_another_offset_is_stored_as_utc(api: Api) -> None:
    body = api.create_dataset(collected="2024-05-01T14:30:00+02:00")
    dataset = api.client.get("/api/v2/dataset/", params={"dataset_uuid": body["uuid"]}).json()
    assert dataset["collected"] == "2024-05-01T12:30:00+00:00"


def test_create_is_idempotent_for_identical_content(api: Api) -> None:
    body = api.create_dataset(alt_uid="same")
    again = api.client.post("/api/v2/dataset/", json=body)
    assert again.status_code == 200
    assert again.json()["uuid"] == body["uuid"]
    search = api.client.post("/api/v2/datasets/search/", json={}).json()
    assert [d["uuid"] for d in search] == [body["uuid"]]


def test_create_conflicts_answer_409(api: Api) -> None:
    body = api.create_dataset(alt_uid="taken")
    changed = dict(body, name="another name")
    conflict = api.client.post("/api/v2/dataset/", json=changed)
    assert conflict.status_code == 409
    assert error_code(conflict) == "dataset_already_exists"
    assert "name" in conflict.json()["detail"]

    other_scope = api.server.create_scope("other scope")
    moved = dict(body, scope_uuid=other_scope)
    conflict = api.client.post("/api/v2/dataset/", json=moved)
    assert conflict.status_code == 409
    assert "another scope" in conflict.json()["detail"]

    clash = dict(body, uuid=str(uuid.uuid4()))
    conflict = api.client.post("/api/v2/dataset/", json=clash)
    assert conflict.status_code == 409
    assert error_code(conflict) == "dataset_alt_uid_already_exists"

    # the same alt_uid in another scope is fine
    fine = dict(body, uuid=str(uuid.uuid4()), scope_uuid=other_scope)
    assert api.client.post("/api/v2/dataset/", json=fine).status_code == 201


def test_create_validation_answers_422_with_field_names(api: Api) -> None:
    dataset_uuid = str(uuid.uuid4())
    same = api.client.post(
        "/api/v2/dataset/",
        json={
            "uuid": dataset_uuid,
            "alt_uid": dataset_uuid,
            "collected": "2024-01-01T00:00:00+00:00",
            "name": "n",
            "creator": "local",
            "keywords": [],
            "ranking": 0,
            "scope_uuid": api.scope_uuid,
        },
    )
    assert same.status_code == 422
    assert same.json()["fields"] == ["alt_uid"]

    missing = api.client.post("/api/v2/dataset/", json={"uuid": "not-a-uuid"})
    assert missing.status_code == 422
    fields = set(missing.json()["fields"])
    assert {"uuid", "collected", "name", "creator", "scope_uuid"} <= fields

    not_json = api.client.post(
        "/api/v2/dataset/", content=b"{broken", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422


def test_writes_into_foreign_scope_are_forbidden(api: Api) -> None:
    stranger = api.server.create_token("stranger", user="eve")
    headers = {"Authorization": f"Bearer {stranger}"}
    response = httpx.post(
        f"{api.server.url}/api/v2/dataset/",
        headers=headers,
        json={
            "uuid": str(uuid.uuid4()),
            "collected": "2024-01-01T00:00:00+00:00",
            "name": "n",
            "creator": "eve",
            "keywords": [],
            "ranking": 0,
            "scope_uuid": api.scope_uuid,
        },
    )
    assert response.status_code == 403
    assert error_code(response) == "scope_access_denied"
    body = api.create_dataset()
    read = httpx.get(
        f"{api.server.url}/api/v2/dataset/", headers=headers, params={"dataset_uuid": body["uuid"]}
    )
    assert read.status_code == 403
    patch = httpx.patch(
        f"{api.server.url}/api/v2/dataset/",
        headers=headers,
        params={"dataset_uuid": body["uuid"]},
        json={"name": "hijacked"},
    )
    assert patch.status_code == 403
    unknown_scope = api.client.post(
        "/api/v2/dataset/",
        json={
            "uuid": str(uuid.uuid4()),
            "collected": "2024-01-01T00:00:00+00:00",
            "name": "n",
            "creator": "local",
            "keywords": [],
            "ranking": 0,
            "scope_uuid": str(uuid.uuid4()),
        },
    )
    assert unknown_scope.status_code == 404
    assert error_code(unknown_scope) == "scope_not_found"


def test_patch_changes_only_non_null_fields(api: Api) -> None:
    body = api.create_dataset(alt_uid="before", notes="first note")
    before = api.client.get("/api/v2/dataset/", params={"dataset_uuid": body["uuid"]}).json()
    update = {
        "alt_uid": None,
        "name": "renamed",
        "description": None,
        "notes": None,
        "keywords": ["a", "b"],
        "ranking": 1,
        "attributes": {"sample": "S2"},
    }
    patched = api.client.patch(
        "/api/v2/dataset/", params={"dataset_uuid": body["uuid"]}, json=update
    )
    assert patched.status_code == 200
    after = api.client.get("/api/v2/dataset/", params={"dataset_uuid": body["uuid"]}).json()
    assert after["name"] == "renamed"
    assert after["alt_uid"] == "before"
    assert after["notes"] == "first note"
    assert after["description"] == body["description"]
    assert after["keywords"] == ["a", "b"]
    assert after["ranking"] == 1
    assert after["attributes"] == {"sample": "S2"}
    assert after["modified"] >= before["modified"]
    assert after["collected"] == before["collected"]

    other = api.create_dataset(alt_uid="occupied")
    clash = api.client.patch(
        "/api/v2/dataset/", params={"dataset_uuid": body["uuid"]}, json={"alt_uid": "occupied"}
    )
    assert clash.status_code == 409
    self_alt = api.client.patch(
        "/api/v2/dataset/", params={"dataset_uuid": body["uuid"]}, json={"alt_uid": body["uuid"]}
    )
    assert self_alt.status_code == 422
    assert other["uuid"] != body["uuid"]
    # the attribute index follows the patch: the old value no longer matches
    found = api.client.post(
        "/api/v2/datasets/search/", json={"attributes": {"sample": ["S1"]}}
    ).json()
    assert body["uuid"] not in [d["uuid"] for d in found]


def test_by_alt_uid_and_by_uuid_or_alt_uid(api: Api) -> None:
    first = api.create_dataset(alt_uid="shared-guid")
    other_scope = api.server.create_scope("second scope")
    second = api.create_dataset(alt_uid="shared-guid", scope_uuid=other_scope)

    by_alt = api.client.get(
        "/api/v2/dataset/by_alt_uid/",
        params={"dataset_alt_uid": "shared-guid", "scope_uuid": api.scope_uuid},
    )
    assert by_alt.status_code == 200
    assert by_alt.json()["uuid"] == first["uuid"]
    missing = api.client.get(
        "/api/v2/dataset/by_alt_uid/",
        params={"dataset_alt_uid": "nope", "scope_uuid": api.scope_uuid},
    )
    assert missing.status_code == 404
    no_scope = api.client.get("/api/v2/dataset/by_alt_uid/", params={"dataset_alt_uid": "x"})
    assert no_scope.status_code == 422
    assert no_scope.json()["fields"] == ["scope_uuid"]

    ambiguous = api.client.get(
        "/api/v2/dataset/by_uuid_or_alt_uid/", params={"dataset_uuid_or_uid": "shared-guid"}
    )
    assert ambiguous.status_code == 406
    in_scope = api.client.get(
        "/api/v2/dataset/by_uuid_or_alt_uid/",
        params={"dataset_uuid_or_uid": "shared-guid", "scope_uuid": other_scope},
    )
    assert in_scope.json()["uuid"] == second["uuid"]
    by_uuid = api.client.get(
        "/api/v2/dataset/by_uuid_or_alt_uid/", params={"dataset_uuid_or_uid": first["uuid"]}
    )
    assert by_uuid.json()["uuid"] == first["uuid"]
    unknown = api.client.get(
        "/api/v2/dataset/by_uuid_or_alt_uid/", params={"dataset_uuid_or_uid": "unknown"}
    )
    assert unknown.status_code == 404


def test_search_filters_and_pages(api: Api) -> None:
    made = []
    for index in range(7):
        made.append(
            api.create_dataset(
                name=f"run {index} {'resonator' if index % 2 else 'qubit'}",
                collected=f"2024-05-0{index + 1}T00:00:00+00:00",
                ranking=-1 if index == 6 else (1 if index == 0 else 0),
                notes="has a note" if index == 3 else None,
                attributes={"sample": f"S{index % 3}"},
                keywords=["keyword-special"] if index == 5 else ["plain"],
            )
        )
    everything = api.client.post("/api/v2/datasets/search/", json={}).json()
    # ranking >= 0 by default: the crossed-out run 6 is hidden; newest collected first
    assert [d["name"].split()[1] for d in everything] == ["5", "4", "3", "2", "1", "0"]
    hidden_too = api.client.post("/api/v2/datasets/search/", json={"ranking": -1}).json()
    assert len(hidden_too) == 7
    starred = api.client.post("/api/v2/datasets/search/", json={"ranking": 1}).json()
    assert [d["uuid"] for d in starred] == [made[0]["uuid"]]

    pages = []
    for offset in range(0, 6, 4):
        page = api.client.post(
            "/api/v2/datasets/search/", params={"offset": offset, "limit": 4}, json={}
        ).json()
        pages.append([d["uuid"] for d in page])
    assert [len(page) for page in pages] == [4, 2]
    assert [item for page in pages for item in page] == [d["uuid"] for d in everything]

    text = api.client.post("/api/v2/datasets/search/", json={"search_query": "RESONATOR"}).json()
    assert sorted(d["name"].split()[1] for d in text) == ["1", "3", "5"]
    keyword = api.client.post("/api/v2/datasets/search/", json={"search_query": "special"}).json()
    assert [d["uuid"] for d in keyword] == [made[5]["uuid"]]
    by_uuid = api.client.post(
        "/api/v2/datasets/search/", json={"search_query": made[2]["uuid"]}
    ).json()
    assert [d["uuid"] for d in by_uuid] == [made[2]["uuid"]]
    attrs = api.client.post(
        "/api/v2/datasets/search/", json={"attributes": {"sample": ["S0", "S2"]}}
    ).json()
    assert sorted(d["attributes"]["sample"] for d in attrs) == ["S0", "S0", "S2", "S2"]
    notes = api.client.post("/api/v2/datasets/search/", json={"has_notes": True}).json()
    assert [d["uuid"] for d in notes] == [made[3]["uuid"]]
    window = api.client.post(
        "/api/v2/datasets/search/",
        json={"start_date": "2024-05-02T00:00:00+00:00", "end_date": "2024-05-03T00:00:00+00:00"},
    ).json()
    assert sorted(d["name"].split()[1] for d in window) == ["1", "2"]
    scoped = api.client.post(
        "/api/v2/datasets/search/", json={"scope_uuids": [api.server.create_scope("empty one")]}
    ).json()
    assert scoped == []
    bad_limit = api.client.post("/api/v2/datasets/search/", params={"limit": -1}, json={})
    assert bad_limit.status_code == 422


def test_search_finds_a_dataset_by_file_uuid(api: Api) -> None:
    dataset = api.create_dataset()
    api.create_dataset(name="unrelated")
    file = api.create_file(dataset["uuid"], size=3)
    found = api.client.post("/api/v2/datasets/search/", json={"search_query": file["uuid"]}).json()
    assert [d["uuid"] for d in found] == [dataset["uuid"]]
