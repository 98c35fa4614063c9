"""File versions and uploads: single part, multipart, resume listing, abort, presigned URLs."""

from __future__ import annotations

import hashlib
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from etiket_local_server.api_files import MAX_PARTS, choose_part_size
from etiket_local_server.signing import UrlSigner, load_or_create_secret
from etiket_local_server.testing import error_code

if TYPE_CHECKING:
    from conftest import Api

MIB = 1024 * 1024


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_file_version_create_is_idempotent_and_conflicts(api: Api) -> None:
    dataset = api.create_dataset()
    body = api.create_file(dataset["uuid"], size=10)
    again = api.client.post("/api/v2/file/", json=body)
    assert again.status_code == 200
    assert again.json()["status"] == "announced"
    conflict = api.client.post("/api/v2/file/", json=dict(body, filename="other.hdf5"))
    assert conflict.status_code == 409
    assert error_code(conflict) == "file_already_exists"
    assert "filename" in conflict.json()["detail"]
    resized = api.client.post("/api/v2/file/", json=dict(body, size=11))
    assert resized.status_code == 409

    second_version = dict(body, version_id=body["version_id"] + 1)
    assert api.client.post("/api/v2/file/", json=second_version).status_code == 201
    other_dataset = api.create_dataset()
    moved = dict(body, version_id=body["version_id"] + 2, ds_uuid=other_dataset["uuid"])
    assert api.client.post("/api/v2/file/", json=moved).status_code == 409

    versions = api.client.get("/api/v2/file/read/", params={"uuid": body["uuid"]}).json()
    assert [v["version_id"] for v in versions] == [body["version_id"], body["version_id"] + 1]
    by_name = api.client.get(
        "/api/v2/file/by_name/", params={"dataset_uuid": dataset["uuid"], "name": "measurement"}
    ).json()
    assert len(by_name) == 2
    none = api.client.get(
        "/api/v2/file/by_name/", params={"dataset_uuid": dataset["uuid"], "name": "nothing"}
    ).json()
    assert none == []
    read = api.client.get("/api/v2/dataset/", params={"dataset_uuid": dataset["uuid"]}).json()
    assert len(read["files"]) == 2
    missing = api.client.get("/api/v2/file/read/", params={"uuid": str(uuid.uuid4())})
    assert missing.status_code == 404
    assert error_code(missing) == "file_not_found"


def test_file_for_unknown_dataset_or_bad_type(api: Api) -> None:
    body = api.file_body(str(uuid.uuid4()), size=1)
    response = api.client.post("/api/v2/file/", json=body)
    assert response.status_code == 404
    assert error_code(response) == "dataset_not_found"
    dataset = api.create_dataset()
    bad = api.client.post("/api/v2/file/", json=api.file_body(dataset["uuid"], 1, type="EXCEL"))
    assert bad.status_code == 422
    assert bad.json()["fields"] == ["type"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("filename", "../../etc/passwd"),
        ("filename", "/etc/passwd"),
        ("filename", "C:\\Windows\\system.ini"),
        ("filename", "data\x00.hdf5"),
        ("filename", "sub\\..\\..\\x"),
        ("name", "analysis/../../escape"),
        ("name", ""),
    ],
)
def test_path_traversal_in_names_is_rejected(api: Api, field: str, value: str) -> None:
    dataset = api.create_dataset()
    response = api.client.post(
        "/api/v2/file/", json=api.file_body(dataset["uuid"], 1, **{field: value})
    )
    assert response.status_code == 422
    assert response.json()["fields"] == [field]


def test_relative_names_with_folders_are_fine(api: Api) -> None:
    dataset = api.create_dataset()
    file = api.create_file(dataset["uuid"], 2, name="analysis/fit.json", filename="fits/fit.json")
    assert api.upload_single(file, b"{}").status_code == 200


def test_single_part_upload_and_download(api: Api) -> None:
    data = os.urandom(300_001)
    dataset = api.create_dataset()
    file = api.create_file(dataset["uuid"], size=len(data))
    validated = api.upload_single(file, data)
    assert validated.status_code == 200
    read = api.read_file(file)
    assert read["status"] == "secured"
    assert read["md5_checksum"] == _md5(data)
    assert read["etag"] == _md5(data)
    assert read["S3_validity"] > 0
    download = httpx.get(read["S3_link"])
    assert download.status_code == 200
    assert download.content == data
    assert 'filename="measured_data.hdf5"' in download.headers["content-disposition"]
    stored = api.server.object_path(file["uuid"], file["version_id"])
    assert stored.read_bytes() == data
    assert not list((api.server.data_dir / "uploads").iterdir())


def test_status_goes_announced_pending_secured(api: Api) -> None:
    data = b"status"
    file = api.create_file(api.create_dataset()["uuid"], size=len(data))
    assert api.read_file(file)["status"] == "announced"
    link = api.client.get(
        "/api/v2/file/presigned_link/single_part/",
        params={"file_uuid": file["uuid"], "version_id": file["version_id"]},
    ).json()
    assert set(link) >= {"uuid", "version_id", "url"}
    assert api.read_file(file)["status"] == "pending"
    assert api.read_file(file)["S3_link"] is None
    assert httpx.put(link["url"], content=data).status_code == 200
    assert api.validate_single(file, _md5(data)).status_code == 200
    assert api.read_file(file)["status"] == "secured"


def test_zero_byte_file(api: Api) -> None:
    file = api.create_file(api.create_dataset()["uuid"], size=0, type="TEXT", filename="e.txt")
    assert api.upload_single(file, b"").status_code == 200
    read = api.read_file(file)
    assert read["md5_checksum"] == _md5(b"")
    assert httpx.get(read["S3_link"]).content == b""

    multi = api.create_file(api.create_dataset()["uuid"], size=0)
    upload = api.start_multipart(multi)
    assert len(upload["presigned_urls"]) == 1
    put = httpx.put(upload["presigned_urls"][0], content=b"")
    etag = put.headers["etag"].strip('"')
    response = api.validate_multipart(multi, upload["upload_id"], _md5(b""), [etag])
    assert response.status_code == 200, response.text
    assert httpx.get(api.read_file(multi)["S3_link"]).content == b""


def test_bad_md5_is_rejected_and_a_retry_can_fix_it(api: Api) -> None:
    data = b"the real bytes"
    file = api.create_file(api.create_dataset()["uuid"], size=len(data))
    link = api.client.get(
        "/api/v2/file/presigned_link/single_part/",
        params={"file_uuid": file["uuid"], "version_id": file["version_id"]},
    ).json()
    httpx.put(link["url"], content=data)
    wrong = api.validate_single(file, _md5(b"other bytes"))
    assert wrong.status_code == 422
    assert error_code(wrong) == "checksum_mismatch"
    assert api.read_file(file)["status"] == "pending"
    malformed = api.validate_single(file, "xyz")
    assert malformed.status_code == 422
    assert malformed.json()["fields"] == ["md5_checksum"]
    assert api.validate_single(file, _md5(data)).status_code == 200


def test_validate_without_upload(api: Api) -> None:
    file = api.create_file(api.create_dataset()["uuid"], size=3)
    response = api.validate_single(file, _md5(b"abc"))
    assert response.status_code == 404
    assert error_code(response) == "upload_not_found"


def test_size_must_match_for_immutable_versions(api: Api) -> None:
    file = api.create_file(api.create_dataset()["uuid"], size=5)
    link = api.client.get(
        "/api/v2/file/presigned_link/single_part/",
        params={"file_uuid": file["uuid"], "version_id": file["version_id"]},
    ).json()
    httpx.put(link["url"], content=b"123")
    response = api.validate_single(file, _md5(b"123"))
    assert response.status_code == 422
    assert error_code(response) == "size_mismatch"


def test_secured_immutable_version_cannot_be_reuploaded(api: Api) -> None:
    data = b"immutable"
    file = api.create_file(api.create_dataset()["uuid"], size=len(data))
    link = api.client.get(
        "/api/v2/file/presigned_link/single_part/",
        params={"file_uuid": file["uuid"], "version_id": file["version_id"]},
    ).json()
    httpx.put(link["url"], content=data)
    assert api.validate_single(file, _md5(data)).status_code == 200
    # repeating the validation is idempotent
    assert api.validate_single(file, _md5(data)).status_code == 200
    # other bytes: refused everywhere
    assert api.validate_single(file, _md5(b"different")).status_code == 409
    again = api.client.get(
        "/api/v2/file/presigned_link/single_part/",
        params={"file_uuid": file["uuid"], "version_id": file["version_id"]},
    )
    assert again.status_code == 409
    assert error_code(again) == "file_already_secured"
    multi = api.client.get(
        "/api/v2/file/presigned_link/",
        params={"file_uuid": file["uuid"], "version_id": file["version_id"]},
    )
    assert multi.status_code == 409
    late_put = httpx.put(link["url"], content=b"different")
    assert late_put.status_code in (409, 404)
    assert httpx.get(api.read_file(file)["S3_link"]).content == data


def test_mutable_version_can_be_replaced_then_frozen(api: Api) -> None:
    file = api.create_file(api.create_dataset()["uuid"], size=4, immutable=False)
    assert api.upload_single(file, b"live").status_code == 200
    assert api.upload_single(file, b"live and longer").status_code == 200
    read = api.read_file(file)
    assert read["size"] == len(b"live and longer")
    assert httpx.get(read["S3_link"]).content == b"live and longer"
    frozen = api.client.post(
        "/api/v2/file/mark_immutable/",
        json={"file_uuid": file["uuid"], "version_id": file["version_id"]},
    )
    assert frozen.status_code == 200
    assert frozen.json()["immutable"] is True
    refused = api.client.get(
        "/api/v2/file/presigned_link/single_part/",
        params={"file_uuid": file["uuid"], "version_id": file["version_id"]},
    )
    assert refused.status_code == 409


def test_patch_file_ranking(api: Api) -> None:
    file = api.create_file(api.create_dataset()["uuid"], size=1)
    response = api.client.patch(
        "/api/v2/file/",
        params={"uuid": file["uuid"], "version_id": file["version_id"]},
        json={"ranking": -1},
    )
    assert response.status_code == 200
    assert api.read_file(file)["ranking"] == -1
    # ranking is not part of the identity: repeating the create still succeeds
    assert api.client.post("/api/v2/file/", json=file).status_code == 200


def _parts(data: bytes, part_size: int) -> list[bytes]:
    return [data[i : i + part_size] for i in range(0, max(len(data), 1), part_size)]


def test_multipart_out_of_order_with_reupload_and_listing(api: Api) -> None:
    part_size = 5 * MIB
    data = os.urandom(3 * part_size + 12345)
    file = api.create_file(api.create_dataset()["uuid"], size=len(data))
    upload = api.start_multipart(file, part_size=part_size)
    assert upload["part_size"] == part_size
    urls = upload["presigned_urls"]
    assert len(urls) == 4
    chunks = _parts(data, part_size)

    def listed() -> list[dict[str, Any]]:
        response = api.client.get(
            "/api/v2/file/upload_parts/",
            params={
                "file_uuid": file["uuid"],
                "version_id": file["version_id"],
                "upload_id": upload["upload_id"],
            },
        )
        assert response.status_code == 200
        parts: list[dict[str, Any]] = response.json()["parts"]
        return parts

    assert listed() == []
    for index in (3, 1):
        put = httpx.put(urls[index], content=chunks[index])
        assert put.status_code == 200
        assert put.headers["etag"] == f'"{_md5(chunks[index])}"'
    # a wrong part 3 first, then the right one: the re-PUT replaces it
    httpx.put(urls[2], content=os.urandom(part_size))
    httpx.put(urls[2], content=chunks[2])
    assert [(p["part_number"], p["etag"], p["size"]) for p in listed()] == [
        (2, _md5(chunks[1]), part_size),
        (3, _md5(chunks[2]), part_size),
        (4, _md5(chunks[3]), 12345),
    ]
    etags = [_md5(chunk) for chunk in chunks]
    incomplete = api.validate_multipart(file, upload["upload_id"], _md5(data), etags)
    assert incomplete.status_code == 409
    assert error_code(incomplete) == "upload_incomplete"
    assert "1" in incomplete.json()["detail"]

    # resume: fresh URLs for the same upload, send only the missing part
    resumed = api.start_multipart(file, upload_id=upload["upload_id"])
    assert resumed["upload_id"] == upload["upload_id"]
    assert resumed["part_size"] == part_size
    httpx.put(resumed["presigned_urls"][0], content=chunks[0])

    wrong_etags = api.validate_multipart(file, upload["upload_id"], _md5(data), etags[::-1])
    assert wrong_etags.status_code == 422
    assert error_code(wrong_etags) == "etag_mismatch"
    bad_md5 = api.validate_multipart(file, upload["upload_id"], _md5(b"x"), etags)
    assert bad_md5.status_code == 422
    assert error_code(bad_md5) == "checksum_mismatch"
    quoted = [f'"{etag}"' for etag in etags]
    done = api.validate_multipart(file, upload["upload_id"], _md5(data), quoted)
    assert done.status_code == 200, done.text
    read = done.json()
    assert read["status"] == "secured"
    assert read["etag"].endswith("-4")
    assert httpx.get(read["S3_link"]).content == data
    assert api.server.object_path(file["uuid"], file["version_id"]).read_bytes() == data
    stats = api.server.stats()
    assert stats.puts_by_version[(file["uuid"], file["version_id"])] == 5
    assert stats.puts_by_part[(file["uuid"], file["version_id"], 3)] == 2
    # idempotent repeat
    again = api.validate_multipart(file, upload["upload_id"], _md5(data), etags)
    assert again.status_code == 200


def test_multipart_parts_must_have_the_part_size(api: Api) -> None:
    part_size = 5 * MIB
    data = os.urandom(part_size + 10)
    file = api.create_file(api.create_dataset()["uuid"], size=len(data))
    upload = api.start_multipart(file, part_size=part_size)
    too_big = httpx.put(upload["presigned_urls"][0], content=data)
    assert too_big.status_code == 400
    assert error_code(too_big) == "part_too_large"
    short = data[: part_size - 1]
    httpx.put(upload["presigned_urls"][0], content=short)
    httpx.put(upload["presigned_urls"][1], content=data[part_size:])
    response = api.validate_multipart(
        file, upload["upload_id"], _md5(data), [_md5(short), _md5(data[part_size:])]
    )
    assert response.status_code == 422
    assert error_code(response) == "part_size_mismatch"


def test_parallel_parts_and_many_parallel_small_uploads(api: Api) -> None:
    part_size = 5 * MIB
    data = os.urandom(6 * part_size + 1)
    big = api.create_file(api.create_dataset()["uuid"], size=len(data))
    upload = api.start_multipart(big, part_size=part_size)
    chunks = _parts(data, part_size)
    with ThreadPoolExecutor(4) as pool:
        puts = list(
            pool.map(
                lambda pair: httpx.put(pair[0], content=pair[1]),
                zip(upload["presigned_urls"], chunks, strict=True),
            )
        )
    etags = [put.headers["etag"].strip('"') for put in puts]
    done = api.validate_multipart(big, upload["upload_id"], _md5(data), etags)
    assert done.status_code == 200, done.text

    dataset = api.create_dataset()
    payloads = [os.urandom(1000 + index) for index in range(40)]
    files = [
        api.create_file(dataset["uuid"], size=len(p), name=f"f{i}", filename=f"f{i}.bin")
        for i, p in enumerate(payloads)
    ]
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(
                lambda pair: api.upload_single(*pair).status_code, zip(files, payloads, strict=True)
            )
        )
    assert results == [200] * 40
    read = api.client.get("/api/v2/dataset/", params={"dataset_uuid": dataset["uuid"]}).json()
    assert sorted(f["md5_checksum"] for f in read["files"]) == sorted(_md5(p) for p in payloads)


def test_abort_upload(api: Api) -> None:
    part_size = 5 * MIB
    data = os.urandom(part_size + 1)
    file = api.create_file(api.create_dataset()["uuid"], size=len(data))
    upload = api.start_multipart(file, part_size=part_size)
    httpx.put(upload["presigned_urls"][0], content=data[:part_size])
    assert (api.server.data_dir / "uploads" / upload["upload_id"]).exists()
    body = {
        "uuid": file["uuid"],
        "version_id": file["version_id"],
        "md5_checksum": None,
        "upload_id": upload["upload_id"],
        "etags": [],
    }
    aborted = api.client.post("/api/v2/file/abort_upload/", json=body)
    assert aborted.status_code == 200
    assert aborted.json()["aborted"] == [upload["upload_id"]]
    assert not (api.server.data_dir / "uploads" / upload["upload_id"]).exists()
    assert api.read_file(file)["status"] == "announced"
    late = httpx.put(upload["presigned_urls"][1], content=data[part_size:])
    assert late.status_code == 409
    assert error_code(late) == "upload_not_active"
    validate = api.validate_multipart(file, upload["upload_id"], _md5(data), ["0" * 32])
    assert validate.status_code == 409
    again = api.client.post("/api/v2/file/abort_upload/", json=body)
    assert again.status_code == 409
    unknown = api.client.post("/api/v2/file/abort_upload/", json=dict(body, upload_id="abc123"))
    assert unknown.status_code == 404
    # a new upload after an abort works
    fresh = api.start_multipart(file, part_size=part_size)
    etags = [
        httpx.put(url, content=chunk).headers["etag"].strip('"')
        for url, chunk in zip(fresh["presigned_urls"], _parts(data, part_size), strict=True)
    ]
    assert api.validate_multipart(file, fresh["upload_id"], _md5(data), etags).status_code == 200


def _with_param(url: str, key: str, value: str) -> str:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    params[key] = value
    return parts._replace(query=urlencode(params)).geturl()


def test_tampered_and_expired_presigned_urls_are_refused(api: Api) -> None:
    data = b"secret bytes"
    file = api.create_file(api.create_dataset()["uuid"], size=len(data))
    link = api.client.get(
        "/api/v2/file/presigned_link/single_part/",
        params={"file_uuid": file["uuid"], "version_id": file["version_id"]},
    ).json()["url"]
    for tampered in (
        _with_param(link, "expires", "9999999999"),
        _with_param(link, "part", "2"),
        _with_param(link, "sig", "0" * 64),
        link.split("?")[0],
    ):
        response = httpx.put(tampered, content=data)
        assert response.status_code == 403, tampered
        assert error_code(response) in ("signature_invalid", "signature_missing")
    other_file = link.replace(file["uuid"], str(uuid.uuid4()))
    assert httpx.put(other_file, content=data).status_code == 403
    as_get = httpx.get(link)
    assert as_get.status_code in (403, 405)

    signer = UrlSigner(load_or_create_secret(api.server.data_dir), ttl=-5)
    path = urlsplit(link).path
    params = dict(parse_qsl(urlsplit(link).query))
    expired_path, _ = signer.sign("PUT", path, {"upload_id": params["upload_id"], "part": "1"})
    expired = httpx.put(f"{api.server.url}{expired_path}", content=data)
    assert expired.status_code == 403
    assert error_code(expired) == "url_expired"

    assert api.upload_single(file, data).status_code == 200
    download = api.read_file(file)["S3_link"]
    assert httpx.get(_with_param(download, "filename", "x.txt")).status_code == 403
    expired_get, _ = signer.sign("GET", urlsplit(download).path, {"filename": file["filename"]})
    response = httpx.get(f"{api.server.url}{expired_get}")
    assert response.status_code == 403
    assert error_code(response) == "url_expired"


def test_put_needs_no_bearer_token_but_api_calls_do(api: Api) -> None:
    file = api.create_file(api.create_dataset()["uuid"], size=2)
    link = api.client.get(
        "/api/v2/file/presigned_link/single_part/",
        params={"file_uuid": file["uuid"], "version_id": file["version_id"]},
    ).json()["url"]
    assert httpx.put(link, content=b"ok").status_code == 200
    anonymous = httpx.get(
        f"{api.server.url}/api/v2/file/presigned_link/single_part/",
        params={"file_uuid": file["uuid"], "version_id": file["version_id"]},
    )
    assert anonymous.status_code == 401


def test_uploads_into_foreign_scopes_are_forbidden(api: Api) -> None:
    file = api.create_file(api.create_dataset()["uuid"], size=2)
    stranger = api.server.create_token("stranger", user="eve")
    headers = {"Authorization": f"Bearer {stranger}"}
    link = httpx.get(
        f"{api.server.url}/api/v2/file/presigned_link/single_part/",
        params={"file_uuid": file["uuid"], "version_id": file["version_id"]},
        headers=headers,
    )
    assert link.status_code == 403
    create = httpx.post(
        f"{api.server.url}/api/v2/file/",
        json=dict(file, version_id=file["version_id"] + 1),
        headers=headers,
    )
    assert create.status_code == 403


@pytest.mark.parametrize(
    ("size", "hint", "expected"),
    [
        (0, None, 8 * MIB),
        (100 * MIB, None, 8 * MIB),
        (1024 * MIB, 1, 5 * MIB),
        (1024 * MIB, 64 * MIB, 64 * MIB),
        (100 * 1024 * MIB, None, 12 * MIB),
    ],
)
def test_part_size_choice(size: int, hint: int | None, expected: int) -> None:
    part_size = choose_part_size(size, hint)
    assert part_size == expected
    assert -(-size // part_size) <= MAX_PARTS


def test_presigned_multipart_grows_part_size_for_huge_files(api: Api) -> None:
    huge = 200 * 1024 * MIB
    file = api.create_file(api.create_dataset()["uuid"], size=huge)
    upload = api.start_multipart(file)
    assert len(upload["presigned_urls"]) <= MAX_PARTS
    assert upload["part_size"] * len(upload["presigned_urls"]) >= huge
