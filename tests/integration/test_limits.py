"""Limits over real HTTP (uvicorn on 127.0.0.1): request bodies, concurrency per API key, the drain's
refusal of new work, and screenshot size in real Chromium."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from browser_service.contract import FetchRequest, FetchResponse
from browser_service.fetcher import Fetcher
from tests.conftest import make_settings
from tests.integration.test_api import running
from tests.integration.test_mcp import ACCEPT, http_session
from tests.integration.test_pool import until
from tests.site import FixtureServer

LIMIT = 64 * 1024


def _body_refusal(declared: int | None) -> str:
    said = f" (it declares {declared:,} bytes)" if declared is not None else ""
    return (
        f"The request body is larger than the limit of 65,536 bytes (65,536 bytes, BROWSER_SERVICE_MAX_BODY_BYTES)"
        f"{said}. Send less — for /v1/extract, only the part of the page you need; resending it as is will fail. "
        "An operator can raise the limit."
    )


def _error(response: httpx.Response) -> tuple[int, str, str, bool, float | None]:
    body = FetchResponse.model_validate(response.json())
    assert not body.ok and body.error is not None
    return (
        response.status_code,
        body.error.kind.value,
        body.error.message,
        body.error.retryable,
        body.error.retry_after_s,
    )


# --- request bodies ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def small_bodies(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path_factory.mktemp("body"), max_body_bytes=LIMIT, prelaunch=False)
    async with running(settings) as (client, _):
        yield client


def _page(size: int) -> str:
    return "<html><body><h1>Big</h1>" + "<p>Some words in a paragraph.</p>" * (size // 33) + "</body></html>"


@pytest.mark.parametrize("path", ["/v1/extract", "/v1/fetch", "/mcp", "/v1/not-a-route"])
async def test_declared_oversize_body_is_413_on_every_route(small_bodies: httpx.AsyncClient, path: str) -> None:
    payload = {"html": _page(LIMIT * 2), "url": "https://example.com/"}
    content = httpx.Request("POST", "/", json=payload).content
    response = await small_bodies.post(path, content=content, headers={"content-type": "application/json"} | ACCEPT)
    assert _error(response) == (413, "invalid_request", _body_refusal(len(content)), False, None)


async def test_streamed_oversize_body_is_413_without_content_length(small_bodies: httpx.AsyncClient) -> None:
    chunk = b"x" * 8192
    sent = [0]

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"url": "https://example.com/", "html": "'
        for _ in range(LIMIT // len(chunk) * 2):
            sent[0] += len(chunk)
            yield chunk
        yield b'"}'

    response = await small_bodies.post("/v1/extract", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers  # chunked: only counting can catch it
    assert _error(response) == (413, "invalid_request", _body_refusal(None), False, None)


async def test_body_under_the_limit_is_served(small_bodies: httpx.AsyncClient) -> None:
    html = _page(LIMIT // 2)
    response = await small_bodies.post("/v1/extract", json={"html": html, "url": "https://example.com/"})
    assert response.status_code == 200
    assert FetchResponse.model_validate(response.json()).markdown.startswith("# Big")  # type: ignore[union-attr]


# --- concurrency per API key ---------------------------------------------------------------------

KEY_LIMIT_MESSAGE = (
    "This API key already has 1 requests in progress, the most allowed at once "
    "(BROWSER_SERVICE_KEY_CONCURRENCY=1). Wait for one to finish, then retry; do not send more in parallel."
)


async def test_concurrency_per_api_key(tmp_path: Path, site: FixtureServer) -> None:
    settings = make_settings(tmp_path, api_keys=["alpha", "beta"], key_concurrency=1, prelaunch=False)
    async with running(settings) as (client, server):
        fetcher: Fetcher = server.config.app.state.fetcher  # type: ignore[attr-defined]
        alpha, beta = {"Authorization": "Bearer alpha"}, {"Authorization": "Bearer beta"}
        held = site.url("/hold?id=per-key")
        first = _spawn(client.post("/v1/fetch", json={"url": held, "render": "http"}, headers=alpha))
        await until(lambda: site.hits["/hold?id=per-key"] == 1)
        # Only a digest of the key is held while it has requests in progress.
        assert list(fetcher.admission._counts) == ["key-" + hashlib.sha256(b"alpha").hexdigest()[:16]]

        refused = await client.post("/v1/fetch", json={"url": site.url("/article.html")}, headers=alpha)
        assert _error(refused) == (503, "overloaded", KEY_LIMIT_MESSAGE, True, 1.0)
        assert refused.headers["retry-after"] == "1"
        extract = await client.post("/v1/extract", json={"html": _page(1000), "url": held}, headers=alpha)
        assert _error(extract) == (503, "overloaded", KEY_LIMIT_MESSAGE, True, 1.0)
        async with http_session(str(client.base_url).rstrip("/"), key="alpha") as mcp:
            result, body = await mcp.call("fetch", {"url": site.url("/article.html")})
            assert result.is_error and body.error is not None
            assert (body.error.kind.value, body.error.message) == ("overloaded", KEY_LIMIT_MESSAGE)

        other = await client.post("/v1/fetch", json={"url": site.url("/article.html")}, headers=beta)
        assert other.status_code == 200  # another key has its own limit

        site.release("per-key")
        assert (await first).status_code == 200
        again = await client.post("/v1/fetch", json={"url": site.url("/article.html")}, headers=alpha)
        assert again.status_code == 200
        assert fetcher.admission._counts == {}  # nothing kept about idle keys


async def test_without_keys_there_is_no_per_caller_limit(tmp_path: Path, site: FixtureServer) -> None:
    """No keys, no callers to tell apart: the pool's queue bounds the service, not a per-caller count."""
    settings = make_settings(tmp_path, key_concurrency=1, prelaunch=False)
    async with running(settings) as (client, _):
        first = _spawn(client.post("/v1/fetch", json={"url": site.url("/hold?id=unkeyed"), "render": "http"}))
        await until(lambda: site.hits["/hold?id=unkeyed"] == 1)
        second = await client.post("/v1/fetch", json={"url": site.url("/article.html"), "render": "http"})
        assert second.status_code == 200 and second.json()["ok"]
        site.release("unkeyed")
        assert (await first).status_code == 200


async def test_new_work_during_the_drain_is_refused(tmp_path: Path, site: FixtureServer) -> None:
    async with running(make_settings(tmp_path, prelaunch=False)) as (client, server):
        server.config.app.state.fetcher.admission.begin_drain()  # type: ignore[attr-defined]
        for path, payload in (
            ("/v1/fetch", {"url": site.url("/article.html")}),
            ("/v1/extract", {"html": _page(1000), "url": "https://example.com/"}),
        ):
            response = await client.post(path, json=payload)
            assert _error(response) == (
                503,
                "overloaded",
                "The service is shutting down and accepts no new requests. Retry in a few seconds: the restarted "
                "service or another instance will answer.",
                True,
                5.0,
            )
            assert response.headers["retry-after"] == "5"


def _spawn(work: Any) -> asyncio.Future[httpx.Response]:
    return asyncio.ensure_future(work)


# --- screenshots -----------------------------------------------------------------------------------


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_screenshot_over_the_limit_is_clipped_with_a_warning(tmp_path: Path, site: FixtureServer) -> None:
    limit = 1024 * 1024
    settings = make_settings(tmp_path, max_screenshot_bytes=limit, pool_size=1)
    async with Fetcher(settings) as service:
        plain = await service.fetch(_shot_request(site.url("/article.html")))
        assert plain.ok and plain.screenshot is not None and plain.warnings == []
        assert _png_size(base64.b64decode(plain.screenshot)) == (1280, 900)

        noisy = await service.fetch(_shot_request(site.url("/noise")))
        assert noisy.ok and noisy.screenshot is not None, noisy.error
        png = base64.b64decode(noisy.screenshot)
        width, height = _png_size(png)
        assert width == 1280 and 64 <= height < 900 and len(png) <= limit
        clipped = [w for w in noisy.warnings if w.startswith("the screenshot")]
        assert len(clipped) == 1
        match = re.fullmatch(
            r"the screenshot was clipped to the top (\d+) of 900 pixels: the whole viewport was ([\d,]+) bytes as "
            r"PNG, over the limit of 1,048,576 \(BROWSER_SERVICE_MAX_SCREENSHOT_BYTES\)",
            clipped[0],
        )
        assert match is not None and int(match[1]) == height and int(match[2].replace(",", "")) > limit
        assert noisy.markdown is not None and "A page of noise" in noisy.markdown  # the text is kept


async def test_screenshot_that_cannot_fit_is_too_large(tmp_path: Path, site: FixtureServer) -> None:
    async with Fetcher(make_settings(tmp_path, max_screenshot_bytes=1024, pool_size=1)) as service:
        response = await service.fetch(_shot_request(site.url("/noise")))
        assert not response.ok and response.error is not None
        assert (response.error.kind.value, response.error.phase, response.error.retryable) == (
            "too_large",
            "screenshot",
            False,
        )
        assert re.fullmatch(
            r"The screenshot is larger than the limit of 1,024 bytes \(BROWSER_SERVICE_MAX_SCREENSHOT_BYTES\), even "
            r"clipped to the top of the page \([\d,]+ bytes for the whole viewport\)\. Fetch without the screenshot "
            r"format; an operator can raise the limit\.",
            response.error.message,
        )


def _shot_request(url: str) -> FetchRequest:
    return FetchRequest.model_validate(
        {"url": url, "formats": ["markdown", "screenshot"], "render": "browser", "max_age_s": 0}
    )
