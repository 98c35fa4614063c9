"""Error mapping, retry policy and intermediary detection (unit level, httpx MockTransport).

The server-facing behaviour is tested end to end against the local server in the other files;
here a MockTransport produces answers the local server never gives (429 with Retry-After, an
HTML page from a proxy) so that those code paths are exercised too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from etiket_sync_agent.platform import (
    AuthError,
    ConflictError,
    ConnectionBlockedError,
    EtiketClient,
    EtiketError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    RequestRejectedError,
    RetryPolicy,
    ServerError,
    ValidationFailedError,
)
from etiket_sync_agent.platform.errors import error_for_status, redact_url, scrub

SECRET = "tok_" + "Zx9" * 12


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (401, "token_invalid", AuthError),
        (403, "token_revoked", AuthError),
        (403, "scope_access_denied", PermissionDeniedError),
        (404, "dataset_not_found", NotFoundError),
        (409, "file_already_exists", ConflictError),
        (422, "validation_error", ValidationFailedError),
        (500, "server_error", ServerError),
        (503, None, ServerError),
        (429, None, ServerError),
        (418, "teapot", EtiketError),
    ],
)
def test_status_mapping_keeps_code_and_detail(status: int, code: str | None, cls: type) -> None:
    body = {"error": code, "detail": "what happened"} if code else {"detail": "what happened"}
    error = error_for_status(status, body, "GET", "/api/v2/dataset/")
    assert type(error) is cls
    assert (error.status, error.code, error.error, error.detail) == (
        status,
        code,
        code,
        "what happened",
    )
    assert "what happened" in str(error)
    assert "/api/v2/dataset/" in str(error)


def test_messages_hide_tokens_and_signatures() -> None:
    url = "http://h/_store/put/x/1?upload_id=u&sig=deadbeef"
    error = error_for_status(403, f"token {SECRET} refused", "PUT", url, secrets=[SECRET])
    assert SECRET not in str(error)
    assert SECRET not in repr(error)
    assert "deadbeef" not in str(error)
    assert redact_url(url) == "http://h/_store/put/x/1?…"
    assert scrub(f"a {SECRET} b", [SECRET, None, ""]) == "a ******** b"


def test_retry_policy_full_jitter_and_cap() -> None:
    policy = RetryPolicy(attempts=5, base=1.0, cap=3.0)
    delays = [policy.delay(n) for n in range(10) for _ in range(50)]
    assert all(0.0 <= d <= 3.0 for d in delays)
    assert max(delays) > 1.0  # grows past base
    assert policy.delay(0, retry_after=2.5) == 2.5
    assert policy.delay(0, retry_after=99.0) == 3.0


Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler, **options: Any) -> EtiketClient:
    options.setdefault("retry", RetryPolicy(attempts=4, base=0.001, cap=0.01))
    return EtiketClient(
        "http://etiket.test", SECRET, transport=httpx.MockTransport(handler), **options
    )


def test_429_is_retried_honouring_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "0.004"}, json={"detail": "slow down"}),
            httpx.Response(503, json={"error": "server_error", "detail": "busy"}),
            httpx.Response(200, json={"sub": "alice"}),
        ]
    )
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return next(answers)

    async def main() -> str:
        async with _client(handler, retry=RetryPolicy(attempts=4, base=0.001, cap=1.0)) as c:
            return (await c.userinfo()).sub

    assert asyncio.run(main()) == "alice"
    assert seen == [f"Bearer {SECRET}"] * 3
    assert sleeps[0] == 0.004  # Retry-After, not the backoff
    assert len(sleeps) == 2


def test_4xx_is_not_retried_and_retries_run_out() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if request.url.path.endswith("/scopes"):
            return httpx.Response(422, json={"error": "validation_error", "detail": "name"})
        return httpx.Response(500, json={"error": "server_error", "detail": "boom"})

    async def main() -> None:
        async with _client(handler) as c:
            with pytest.raises(ValidationFailedError):
                await c.list_scopes()
            assert len(calls) == 1
            with pytest.raises(ServerError, match="boom"):
                await c.userinfo()
            assert len(calls) == 1 + 4

    asyncio.run(main())


def test_html_from_an_intermediary_is_a_network_error() -> None:
    page = "<!DOCTYPE html><html><body>Access denied by corporate proxy</body></html>"
    reachable = {"value": False}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v3/":
            if reachable["value"]:
                return httpx.Response(404, json={"detail": "Not Found"})
            raise httpx.ConnectError("blocked")
        return httpx.Response(403, html=page)

    async def main() -> None:
        async with _client(handler) as c:
            with pytest.raises(ConnectionBlockedError, match="unreachable"):
                await c.userinfo()
            reachable["value"] = True
            with pytest.raises(RequestRejectedError, match="firewall"):
                await c.userinfo()

    asyncio.run(main())
    assert issubclass(ConnectionBlockedError, NetworkError)
    assert issubclass(RequestRejectedError, NetworkError)


def test_401_refresh_is_tried_once(caplog: pytest.LogCaptureFixture) -> None:
    refreshed: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "token_invalid", "detail": "bad token"})

    async def refresh() -> str:
        refreshed.append("x")
        return SECRET + "-new"

    async def main() -> None:
        async with _client(handler, on_unauthorized=refresh) as c:
            with pytest.raises(AuthError) as info:
                await c.userinfo()
            assert SECRET not in str(info.value)
            assert SECRET not in repr(c)

    with caplog.at_level(logging.DEBUG):
        asyncio.run(main())
    assert refreshed == ["x"]
    assert SECRET not in caplog.text
