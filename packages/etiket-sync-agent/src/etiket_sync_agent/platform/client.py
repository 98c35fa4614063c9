"""The eTiKeT API client (httpx, async, HTTP/1.1, bearer API token).

Every call is retried with exponential backoff and full jitter on network errors, 5xx and 429
(honouring ``Retry-After``). Other 4xx answers are not retried, except that a 401 is retried once
after the optional ``on_unauthorized`` callback supplied a new token. A 409 surfaces as
:class:`ConflictError`; the idempotent helpers (:meth:`EtiketClient.ensure_dataset`,
:meth:`EtiketClient.ensure_file_version`) turn "already exists with the same content" into success,
so a restarted agent never duplicates a record.

The token is sent only in the ``Authorization`` header of API requests (never to presigned store
URLs), is masked in ``repr`` and is scrubbed from every error message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import ssl
import uuid as uuid_module
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import ValidationError

from etiket_sync_agent.platform.errors import (
    AuthError,
    ConflictError,
    ConnectionBlockedError,
    EtiketError,
    NetworkError,
    NotFoundError,
    RequestRejectedError,
    ServerError,
    error_for_status,
    install_log_redaction,
    scrub,
)
from etiket_sync_agent.platform.models import (
    DatasetCreate,
    DatasetRead,
    DatasetUpdate,
    FileCreate,
    FileRead,
    MultipartUpload,
    Scope,
    SinglePartLink,
    UploadedParts,
    UserInfo,
    to_utc_iso,
)

__all__ = [
    "API_TIMEOUT",
    "INTERMEDIARY_STATUSES",
    "EtiketClient",
    "RetryPolicy",
    "SyncEtiketClient",
    "is_retryable",
    "looks_like_html",
    "retry_after_seconds",
    "run_sync",
]

_log = logging.getLogger("etiket_sync_agent.platform")
install_log_redaction()  # httpx logs full request URLs; presigned ones are credentials (D8)

API_TIMEOUT = 10.0
"""Seconds per API request (PROTOCOL §2)."""

INTERMEDIARY_STATUSES = frozenset({401, 403, 407, 451, 502, 503, 504, 511})
"""Statuses that, with an HTML body, come from a proxy/VPN/WAF, never from the server (§4)."""

_PROBE_TIMEOUT = 5.0
_T = TypeVar("_T")


@dataclass(frozen=True)
class RetryPolicy:
    """How API calls and PUTs are retried.

    Attributes:
        attempts: tries in total (1 = no retry).
        base: delay scale in seconds; before retry *n* (0-based) the client sleeps
            ``uniform(0, min(cap, base * 2**n))`` ("full jitter").
        cap: largest delay in seconds (also caps a server's ``Retry-After``).
    """

    attempts: int = 6
    base: float = 0.25
    cap: float = 20.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if retry_after is not None:
            return min(self.cap, retry_after)
        return random.uniform(0.0, min(self.cap, self.base * 2**attempt))


def is_retryable(error: BaseException) -> bool:
    """Network errors (except a WAF rejection), 5xx and 429 are worth another try."""
    if isinstance(error, RequestRejectedError):
        return False
    return isinstance(error, NetworkError | ServerError)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (delta-seconds or an HTTP date), if present."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())


def looks_like_html(response: httpx.Response) -> bool:
    """True when the body is an HTML page (what proxies, portals and WAFs answer)."""
    if "html" in response.headers.get("content-type", "").lower():
        return True
    head = response.content[:64].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


class EtiketClient:
    """Async client of one eTiKeT server, authenticated with an API (or access) token.

    Args:
        base_url: the server URL (``https://host``; the ``/api/v2|v3`` prefixes are added here).
        token: the bearer token.
        timeout: seconds per API request.
        verify: verify TLS certificates (on by default); a path to a CA bundle (PEM) or an
            ``ssl.SSLContext`` (see :func:`etiket_sync_agent.platform.auth.tls_verify`);
            ``False`` turns verification off (never by default).
        retry: the retry policy of API calls and store PUTs.
        on_unauthorized: called once when the server answers 401; returns a new token (the
            request is then repeated once) or ``None`` (the :class:`AuthError` is raised).
        transport: an httpx transport (tests, proxies).
        max_connections: size of the connection pool shared by API calls and PUTs.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = API_TIMEOUT,
        verify: bool | str | ssl.SSLContext = True,
        retry: RetryPolicy | None = None,
        on_unauthorized: Callable[[], Awaitable[str | None]] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 32,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._on_unauthorized = on_unauthorized
        if isinstance(verify, str):
            verify = ssl.create_default_context(cafile=verify)
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            verify=verify,
            http1=True,
            http2=False,
            transport=transport,
            limits=limits,
            follow_redirects=False,
        )
        """The shared httpx client (API calls and store PUTs; never sends auth by itself)."""

    def __repr__(self) -> str:
        return f"EtiketClient({self.base_url!r}, token='********')"

    async def __aenter__(self) -> EtiketClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()

    def set_token(self, token: str) -> None:
        """Use another bearer token from the next request on (e.g. a refreshed one)."""
        self._token = token

    def scrub(self, text: str) -> str:
        """``text`` with the current token masked."""
        return scrub(text, [self._token])

    # -- transport -------------------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        retry: bool = True,
    ) -> Any:
        """One API call under the retry policy; the parsed JSON body (``None`` when empty).

        ``path`` starts with ``/api/...``; ``None``-valued query parameters are dropped.
        Raises an :class:`EtiketError` subclass.
        """
        url = f"{self.base_url}{path}"
        query = {key: value for key, value in (params or {}).items() if value is not None}
        attempts = max(1, self.retry.attempts) if retry else 1
        refreshed = False
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                response = await self.http.request(
                    method,
                    url,
                    params=query,
                    json=json,
                    headers={"Authorization": f"Bearer {self._token}"},
                )
            except httpx.TransportError as exc:
                error: EtiketError = NetworkError(
                    self.scrub(
                        f"{method} {path}: cannot reach {self.base_url}: "
                        f"{type(exc).__name__}: {exc}".rstrip(": ")
                    )
                )
            else:
                if response.status_code < 400:
                    return _body(response)
                if response.status_code in INTERMEDIARY_STATUSES and looks_like_html(response):
                    error = await self._intermediary_error(method, path, response.status_code)
                else:
                    error = error_for_status(
                        response.status_code,
                        _body(response),
                        method,
                        path,
                        secrets=[self._token],
                    )
                    if response.status_code >= 500:
                        _log.warning("%s", error)
                if (
                    isinstance(error, AuthError)
                    and response.status_code == 401
                    and self._on_unauthorized is not None
                    and not refreshed
                ):
                    refreshed = True
                    new_token = await self._on_unauthorized()
                    if new_token:
                        self._token = new_token
                        _log.info("%s %s: 401, retrying once with a refreshed token", method, path)
                        continue
                retry_after = retry_after_seconds(response)
            attempt += 1
            if not is_retryable(error) or attempt >= attempts:
                raise error
            delay = self.retry.delay(attempt - 1, retry_after)
            _log.info("%s; retry %d/%d in %.2f s", error, attempt, attempts - 1, delay)
            await asyncio.sleep(delay)

    async def _intermediary_error(self, method: str, path: str, status: int) -> NetworkError:
        """Tell a firewall rejecting this request from a network that blocks the server (§4)."""
        what = f"{method} {path} → {status}: an HTML page answered instead of the eTiKeT server"
        try:
            probe = await self.http.get(f"{self.base_url}/api/v3/", timeout=_PROBE_TIMEOUT)
            reachable = "json" in probe.headers.get("content-type", "").lower()
        except httpx.TransportError:
            reachable = False
        if reachable:
            return RequestRejectedError(
                f"{what}; the server is reachable, so a web application firewall rejected this "
                "request's content",
                status=status,
            )
        return ConnectionBlockedError(
            f"{what}; the server is unreachable (proxy, VPN or captive portal?)", status=status
        )

    # -- identity and scopes ---------------------------------------------------------------------
    async def userinfo(self) -> UserInfo:
        """Who the token belongs to; validates the token (:class:`AuthError` when rejected)."""
        return UserInfo.model_validate(await self.request("GET", "/api/v3/token/userinfo"))

    async def list_scopes(self, name: str | None = None) -> list[Scope]:
        """The scopes visible to the caller (``name`` is passed on as the server's filter)."""
        data = await self.request("GET", "/api/v3/scopes", params={"name": name})
        return [Scope.model_validate(item) for item in data or []]

    async def get_scope(self, scope_uuid: str) -> Scope | None:
        """A scope by uuid, ``None`` when it does not exist (403 raises)."""
        try:
            data = await self.request("GET", f"/api/v3/scopes/{scope_uuid}")
        except NotFoundError:
            return None
        return Scope.model_validate(data)

    async def find_scope(self, name_or_uuid: str) -> Scope | None:
        """A scope by uuid or by exact name; ``None`` when none matches.

        When several scopes share the name, a non-archived one is preferred.
        """
        try:
            as_uuid = str(uuid_module.UUID(name_or_uuid))
        except ValueError:
            as_uuid = None
        if as_uuid is not None:
            scope = await self.get_scope(as_uuid)
            if scope is not None:
                return scope
        matches = [s for s in await self.list_scopes(name=name_or_uuid) if s.name == name_or_uuid]
        if not matches:
            return None
        matches.sort(key=lambda scope: scope.is_archived)
        return matches[0]

    async def create_scope(self, name: str, description: str = "") -> Scope:
        """Create a restricted scope (the caller becomes a member) and return it."""
        new_uuid = str(uuid_module.uuid4())
        data = await self.request(
            "POST",
            "/api/v3/scopes",
            json={
                "name": name,
                "uid": new_uuid,
                "description": description,
                "is_restricted": True,
                "is_archived": False,
                "bucket_uuid": None,
            },
        )
        created = _parse_or_none(Scope, data)
        if created is not None:
            return created
        scope = await self.get_scope(new_uuid)
        if scope is None:
            raise EtiketError(f"scope {name!r} ({new_uuid}) was created but cannot be read back")
        return scope

    # -- datasets --------------------------------------------------------------------------------
    async def create_dataset(self, dataset: DatasetCreate) -> DatasetRead:
        """Create a dataset (409 :class:`ConflictError` when it exists) and return it."""
        data = await self.request("POST", "/api/v2/dataset/", json=dataset.model_dump(mode="json"))
        created = _parse_or_none(DatasetRead, data)
        if created is not None:
            return created
        read = await self.get_dataset(dataset.uuid, dataset.scope_uuid)
        if read is None:
            raise EtiketError(f"dataset {dataset.uuid} was created but cannot be read back")
        return read

    async def get_dataset(
        self, dataset_uuid: str, scope_uuid: str | None = None
    ) -> DatasetRead | None:
        """A dataset by uuid (with its scope and files), ``None`` when it does not exist."""
        try:
            data = await self.request(
                "GET",
                "/api/v2/dataset/",
                params={"dataset_uuid": dataset_uuid, "scope_uuid": scope_uuid},
            )
        except NotFoundError:
            return None
        return DatasetRead.model_validate(data)

    async def get_dataset_by_alt_uid(self, alt_uid: str, scope_uuid: str) -> DatasetRead | None:
        """A dataset by its source identifier within a scope, ``None`` when there is none."""
        try:
            data = await self.request(
                "GET",
                "/api/v2/dataset/by_alt_uid/",
                params={"dataset_alt_uid": alt_uid, "scope_uuid": scope_uuid},
            )
        except NotFoundError:
            return None
        return DatasetRead.model_validate(data)

    async def update_dataset(self, dataset_uuid: str, update: DatasetUpdate) -> None:
        """PATCH the mutable fields; every key is sent, unchanged ones as ``null``."""
        await self.request(
            "PATCH",
            "/api/v2/dataset/",
            params={"dataset_uuid": dataset_uuid},
            json=update.model_dump(mode="json"),
        )

    async def search_datasets(
        self,
        *,
        scope_uuids: list[str] | None = None,
        search_query: str | None = None,
        attributes: Mapping[str, list[str]] | None = None,
        ranking: int = -1,
        has_notes: bool = False,
        start_date: dt.datetime | None = None,
        end_date: dt.datetime | None = None,
        time_zone: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[DatasetRead]:
        """One page of ``POST /api/v2/datasets/search/``; page until a short page is returned.

        ``ranking`` is the minimum ranking (the default -1 includes hidden datasets);
        ``scope_uuids=None`` searches every scope of the caller.
        """
        body = {
            "scope_uuids": scope_uuids,
            "attributes": dict(attributes or {}),
            "search_query": search_query,
            "ranking": ranking,
            "has_notes": has_notes,
            "start_date": to_utc_iso(start_date) if start_date is not None else None,
            "end_date": to_utc_iso(end_date) if end_date is not None else None,
            "time_zone": time_zone,
        }
        data = await self.request(
            "POST", "/api/v2/datasets/search/", params={"offset": offset, "limit": limit}, json=body
        )
        return [DatasetRead.model_validate(item) for item in data or []]

    async def ensure_dataset(self, dataset: DatasetCreate) -> DatasetRead:
        """The dataset ``dataset.uuid``, created when missing and updated when it differs.

        Idempotent: a 409 on create (another process, or a retried request that did succeed)
        counts as "exists" when the stored record has the same scope and measurement time.
        Mutable fields (name, alt_uid, description, notes, keywords, ranking, attributes) that
        differ are PATCHed; ``None`` values in ``dataset`` leave the server's value alone.
        Raises :class:`ConflictError` when the uuid belongs to a different dataset.
        """
        existing = await self.get_dataset(dataset.uuid)
        if existing is None:
            try:
                return await self.create_dataset(dataset)
            except ConflictError:
                existing = await self.get_dataset(dataset.uuid)
                if existing is None:
                    raise  # e.g. the alt_uid is taken by another dataset of the scope
        _check_same_dataset(existing, dataset)
        update = _dataset_changes(existing, dataset)
        if update.is_empty():
            return existing
        await self.update_dataset(dataset.uuid, update)
        refreshed = await self.get_dataset(dataset.uuid)
        if refreshed is None:
            raise EtiketError(f"dataset {dataset.uuid} vanished while it was updated")
        return refreshed

    # -- files -----------------------------------------------------------------------------------
    async def create_file(self, file: FileCreate) -> FileRead:
        """Create a file version record (status ``announced``) and return it."""
        data = await self.request("POST", "/api/v2/file/", json=file.model_dump(mode="json"))
        created = _parse_or_none(FileRead, data)
        if created is not None:
            return created
        found = await self.read_file(file.uuid, file.version_id)
        if not found:
            raise EtiketError(
                f"file {file.uuid} version {file.version_id} was created but cannot be read back"
            )
        return found[0]

    async def read_file(self, file_uuid: str, version_id: int | None = None) -> list[FileRead]:
        """Every version of a file (or the one ``version_id``); ``[]`` when none exists."""
        try:
            data = await self.request(
                "GET", "/api/v2/file/read/", params={"uuid": file_uuid, "version_id": version_id}
            )
        except NotFoundError:
            return []
        return [FileRead.model_validate(item) for item in data or []]

    async def files_by_name(self, dataset_uuid: str, name: str) -> list[FileRead]:
        """Every version of the logical file ``name`` of a dataset (``[]`` when none)."""
        try:
            data = await self.request(
                "GET", "/api/v2/file/by_name/", params={"dataset_uuid": dataset_uuid, "name": name}
            )
        except NotFoundError:
            return []
        return [FileRead.model_validate(item) for item in data or []]

    async def ensure_file_version(self, file: FileCreate) -> FileRead:
        """The record of ``(file.uuid, file.version_id)``, created when missing. Idempotent.

        The create is tried first (one request for a new version). When it fails with anything
        but a network or auth error, the version is read back: a stored record with the same
        name, file name, type (and size, for immutable versions) is success, a different one a
        :class:`ConflictError`.
        """
        try:
            return await self.create_file(file)
        except (NetworkError, AuthError):
            raise
        except EtiketError as error:
            found = await self.read_file(file.uuid, file.version_id)
            if not found:
                raise
            differences = _file_differences(found[0], file)
            if differences:
                raise ConflictError(
                    f"file {file.uuid} version {file.version_id} exists with a different "
                    f"{', '.join(differences)}",
                    status=error.status,
                    code=error.code,
                    detail=error.detail,
                ) from error
            return found[0]

    async def mark_immutable(self, file_uuid: str, version_id: int) -> None:
        """Freeze a (mutable) file version."""
        await self.request(
            "POST",
            "/api/v2/file/mark_immutable/",
            json={"file_uuid": file_uuid, "version_id": version_id},
        )

    async def set_file_ranking(self, file_uuid: str, version_id: int, ranking: int) -> None:
        """Change the ranking of a file version (the only mutable field of a file)."""
        await self.request(
            "PATCH",
            "/api/v2/file/",
            params={"uuid": file_uuid, "version_id": version_id},
            json={"ranking": ranking},
        )

    # -- upload endpoints (used by the Uploader) -------------------------------------------------
    async def presigned_single_part(self, file_uuid: str, version_id: int) -> SinglePartLink:
        """A presigned URL to PUT the whole file to."""
        data = await self.request(
            "GET",
            "/api/v2/file/presigned_link/single_part/",
            params={"file_uuid": file_uuid, "version_id": version_id},
        )
        return SinglePartLink.model_validate(data)

    async def presigned_multipart(
        self,
        file_uuid: str,
        version_id: int,
        *,
        upload_id: str | None = None,
        size: int | None = None,
    ) -> MultipartUpload:
        """Start a multipart upload, or (with ``upload_id``) get fresh URLs for one.

        ``size`` (an extension a server may ignore) tells the server the byte count when it
        differs from the declared size, e.g. for a mutable file that grew.
        """
        data = await self.request(
            "GET",
            "/api/v2/file/presigned_link/",
            params={
                "file_uuid": file_uuid,
                "version_id": version_id,
                "upload_id": upload_id,
                "size": size,
            },
        )
        return MultipartUpload.model_validate(data)

    async def upload_parts(
        self, file_uuid: str, version_id: int, upload_id: str
    ) -> UploadedParts | None:
        """The parts the server holds for an upload (extension, like S3 ListParts).

        Returns ``None`` when the server does not offer the endpoint; raises
        :class:`NotFoundError` when the endpoint exists but the upload does not.
        """
        try:
            data = await self.request(
                "GET",
                "/api/v2/file/upload_parts/",
                params={"file_uuid": file_uuid, "version_id": version_id, "upload_id": upload_id},
            )
        except NotFoundError as error:
            if error.code in (None, "not_found") or error.detail == "Not Found":
                return None  # the route itself is missing: an ordinary eTiKeT server
            raise
        return UploadedParts.model_validate(data)

    async def validate_single_part(self, file_uuid: str, version_id: int, md5: str) -> None:
        """Ask the server to verify a single-part upload and secure the version."""
        await self._validate(
            "/api/v2/file/validate_upload/single_part/", file_uuid, version_id, md5, "", []
        )

    async def validate_multipart(
        self, file_uuid: str, version_id: int, md5: str, upload_id: str, etags: list[str]
    ) -> None:
        """Complete a multipart upload (ETags in part order) and secure the version."""
        await self._validate(
            "/api/v2/file/validate_upload/", file_uuid, version_id, md5, upload_id, etags
        )

    async def _validate(
        self,
        path: str,
        file_uuid: str,
        version_id: int,
        md5: str,
        upload_id: str,
        etags: list[str],
    ) -> None:
        body = {
            "uuid": file_uuid,
            "version_id": version_id,
            "md5_checksum": md5,
            "upload_id": upload_id,
            "etags": etags,
        }
        for attempt in range(max(1, self.retry.attempts)):
            try:
                await self.request("POST", path, json=body)
                return
            except ConflictError as error:
                # parts of a killed or retried PUT may still be arriving: wait for them
                if error.code != "upload_busy" or attempt + 1 >= self.retry.attempts:
                    raise
                await asyncio.sleep(self.retry.delay(attempt))

    async def abort_upload(self, file_uuid: str, version_id: int, upload_id: str) -> None:
        """Abort a multipart upload (the server drops its parts)."""
        await self.request(
            "POST",
            "/api/v2/file/abort_upload/",
            json={
                "uuid": file_uuid,
                "version_id": version_id,
                "md5_checksum": "",
                "upload_id": upload_id,
                "etags": [],
            },
        )


_M = TypeVar("_M", Scope, DatasetRead, FileRead)


def _parse_or_none(model: type[_M], data: Any) -> _M | None:
    """``data`` as ``model`` when the server answered the record (it may answer nothing)."""
    if not isinstance(data, dict):
        return None
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


def _check_same_dataset(existing: DatasetRead, wanted: DatasetCreate) -> None:
    problems: list[str] = []
    if existing.scope is not None and existing.scope.uuid != wanted.scope_uuid:
        problems.append(f"scope {existing.scope.uuid} (wanted {wanted.scope_uuid})")
    collected = wanted.collected
    if collected.tzinfo is None:
        collected = collected.astimezone()
    if abs((existing.collected - collected).total_seconds()) > 1.0:
        problems.append(f"collected {existing.collected.isoformat()}")
    if problems:
        raise ConflictError(
            f"dataset {wanted.uuid} exists with a different {' and '.join(problems)}",
            status=409,
            code="dataset_already_exists",
        )


def _dataset_changes(existing: DatasetRead, wanted: DatasetCreate) -> DatasetUpdate:
    changes: dict[str, Any] = {}
    for field in ("alt_uid", "name", "description", "notes", "ranking"):
        value = getattr(wanted, field)
        if value is not None and getattr(existing, field) != value:
            changes[field] = value
    if list(existing.keywords) != list(wanted.keywords):
        changes["keywords"] = list(wanted.keywords)
    if dict(existing.attributes) != dict(wanted.attributes):
        changes["attributes"] = dict(wanted.attributes)
    return DatasetUpdate(**changes)


def _file_differences(stored: FileRead, wanted: FileCreate) -> list[str]:
    differences = [
        field
        for field in ("name", "filename", "type")
        if getattr(stored, field) != getattr(wanted, field)
    ]
    if stored.immutable and wanted.immutable and stored.size != wanted.size:
        differences.append("size")
    return differences


class SyncEtiketClient:
    """A blocking facade over :class:`EtiketClient` for the CLI (login, status commands).

    It owns a private event loop, so it must not be used from inside a running loop.
    """

    def __init__(self, base_url: str, token: str, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self.client = EtiketClient(base_url, token, **options)

    def __repr__(self) -> str:
        return f"SyncEtiketClient({self.client.base_url!r}, token='********')"

    def run(self, call: Callable[[EtiketClient], Awaitable[_T]]) -> _T:
        """Run ``call(client)`` to completion and return its result."""

        async def main() -> _T:
            return await call(self.client)

        return self._loop.run_until_complete(main())

    def userinfo(self) -> UserInfo:
        """See :meth:`EtiketClient.userinfo`."""
        return self.run(lambda c: c.userinfo())

    def list_scopes(self, name: str | None = None) -> list[Scope]:
        """See :meth:`EtiketClient.list_scopes`."""
        return self.run(lambda c: c.list_scopes(name))

    def get_scope(self, scope_uuid: str) -> Scope | None:
        """See :meth:`EtiketClient.get_scope`."""
        return self.run(lambda c: c.get_scope(scope_uuid))

    def find_scope(self, name_or_uuid: str) -> Scope | None:
        """See :meth:`EtiketClient.find_scope`."""
        return self.run(lambda c: c.find_scope(name_or_uuid))

    def create_scope(self, name: str, description: str = "") -> Scope:
        """See :meth:`EtiketClient.create_scope`."""
        return self.run(lambda c: c.create_scope(name, description))

    def get_dataset(self, dataset_uuid: str, scope_uuid: str | None = None) -> DatasetRead | None:
        """See :meth:`EtiketClient.get_dataset`."""
        return self.run(lambda c: c.get_dataset(dataset_uuid, scope_uuid))

    def close(self) -> None:
        """Close the connection pool and the private loop (idempotent)."""
        if not self._loop.is_closed():
            self._loop.run_until_complete(self.client.aclose())
            self._loop.close()

    def __enter__(self) -> SyncEtiketClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def run_sync(
    base_url: str,
    token: str,
    call: Callable[[EtiketClient], Awaitable[_T]],
    **options: Any,
) -> _T:
    """Open a client, run ``call(client)`` in a fresh event loop, close the client; return the
    result. E.g. ``run_sync(url, token, lambda c: c.userinfo())``."""

    async def main() -> _T:
        async with EtiketClient(base_url, token, **options) as client:
            return await call(client)

    return asyncio.run(main())
