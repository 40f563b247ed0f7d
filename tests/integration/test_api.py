"""The REST API over real HTTP: a uvicorn server on 127.0.0.1 and an httpx client."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from browser_service.api import create_app
from browser_service.contract import FetchResponse, Health
from browser_service.settings import Settings
from tests.conftest import make_settings
from tests.integration.test_pool import until
from tests.site import FixtureServer


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, uvicorn.Server]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await until(lambda: server.started, limit_s=30)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client, server
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture(scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[httpx.AsyncClient, uvicorn.Server]]:
    async with running(make_settings(tmp_path_factory.mktemp("api"), pool_size=1)) as pair:
        yield pair


@pytest.fixture
def client(api: tuple[httpx.AsyncClient, uvicorn.Server]) -> httpx.AsyncClient:
    return api[0]


async def test_fetch_success(client: httpx.AsyncClient, site: FixtureServer) -> None:
    response = await client.post("/v1/fetch", json={"url": site.url("/article.html")})
    assert response.status_code == 200, response.text
    body = FetchResponse.model_validate(response.json())
    assert body.ok and body.markdown is not None and body.markdown.startswith("# How Lighthouses Work")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"url": "notaurl"}, "url"),
        ({"url": "https://example.com/", "formats": ["pdf"]}, "formats.0"),
        ({"url": "https://example.com/", "fromats": ["text"]}, "fromats: unknown field"),
        ({"formats": ["text"]}, "url: Field required"),
    ],
)
async def test_invalid_request_is_a_typed_422_naming_the_field(
    client: httpx.AsyncClient, payload: dict[str, object], field: str
) -> None:
    response = await client.post("/v1/fetch", json=payload)
    assert response.status_code == 422
    body = FetchResponse.model_validate(response.json())
    assert not body.ok and body.error is not None and body.error.kind == "invalid_request"
    assert field in body.error.message and not body.error.retryable


async def test_malformed_json_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/fetch", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert FetchResponse.model_validate(response.json()).error.kind == "invalid_request"  # type: ignore[union-attr]


@pytest.mark.parametrize("path", ["/v1/fetch", "/v1/extract", "/v1/batch"])
async def test_a_lone_surrogate_in_the_body_is_a_typed_422(client: httpx.AsyncClient, path: str) -> None:
    # JSON may escape one ("\ud800"); no UTF-8 answer can carry it, and echoing the URL back raised: a bare 500.
    body = b'{"url": "https://example.com/\\ud800", "html": "<p>x</p>", "requests": []}'
    response = await client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    answer = FetchResponse.model_validate(response.json())
    assert answer.error is not None and answer.error.kind == "invalid_request"
    assert answer.url in ("https://example.com/\ufffd", "")


@pytest.mark.parametrize(
    ("path", "status", "kind"),
    [("/no-such-page", 502, "not_found"), ("/error", 502, "http_error"), ("/doc.pdf", 502, "unsupported_content")],
)
async def test_upstream_errors_map_to_status(
    client: httpx.AsyncClient, site: FixtureServer, path: str, status: int, kind: str
) -> None:
    response = await client.post("/v1/fetch", json={"url": site.url(path)})
    assert response.status_code == status
    assert FetchResponse.model_validate(response.json()).error.kind == kind  # type: ignore[union-attr]


async def test_timeout_is_504(client: httpx.AsyncClient, site: FixtureServer) -> None:
    response = await client.post("/v1/fetch", json={"url": site.url("/slow?ms=5000"), "timeout_ms": 1000})
    assert response.status_code == 504
    assert response.json()["error"]["phase"] == "response"


async def test_forbidden_target_is_403(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/fetch", json={"url": "http://169.254.169.254/latest/meta-data/"})
    assert response.status_code == 403 and "rule: metadata" in response.json()["error"]["message"]


async def test_overloaded_is_503_with_retry_after(tmp_path: Path, site: FixtureServer) -> None:
    async with running(make_settings(tmp_path, pool_size=1, queue_size=0)) as (client, server):
        service = server.config.app.state.fetcher  # type: ignore[attr-defined]
        slow = asyncio.create_task(
            client.post("/v1/fetch", json={"url": site.url("/slow?ms=1500"), "render": "browser"})
        )
        await until(lambda: service.pool.health().in_use == 1)
        response = await client.post("/v1/fetch", json={"url": site.url("/article.html"), "render": "browser"})
        assert response.status_code == 503 and int(response.headers["retry-after"]) >= 1
        assert response.json()["error"]["kind"] == "overloaded"
        assert (await slow).status_code == 200


async def test_client_disconnect_frees_the_slot(
    api: tuple[httpx.AsyncClient, uvicorn.Server], site: FixtureServer
) -> None:
    client, server = api
    service = server.config.app.state.fetcher  # type: ignore[attr-defined]
    hits = site.hits["/slow"]
    async with httpx.AsyncClient(base_url=str(client.base_url)) as impatient:
        request = asyncio.create_task(
            impatient.post("/v1/fetch", json={"url": site.url("/slow?ms=20000"), "render": "browser"})
        )
        await until(lambda: site.hits["/slow"] > hits and service.pool.health().in_use == 1)
        request.cancel()  # closes the connection mid-request
        await asyncio.gather(request, return_exceptions=True)
    await until(lambda: service.pool.health().in_use == 0, limit_s=5)  # freed long before the page's 20 s
    assert service.pool.open_contexts() == service.pool.open_pages() == service.pool.idle_slots == 1


async def test_extract_has_the_fetch_shape(client: httpx.AsyncClient) -> None:
    html = (
        "<html><head><title>T</title></head><body><article><h1>Hello</h1><p>"
        + "Body text. " * 30
        + "</p></article></body></html>"
    )
    response = await client.post(
        "/v1/extract", json={"html": html, "url": "https://example.com/a", "formats": ["markdown", "links"]}
    )
    assert response.status_code == 200
    body = FetchResponse.model_validate(response.json())
    assert body.ok and body.source == "input" and body.engine is None and body.title == "T"
    assert body.markdown is not None and body.markdown.startswith("# Hello")
    assert body.links == []
    empty = await client.post("/v1/extract", json={"html": "<html><body></body></html>", "url": "https://e.com/"})
    assert empty.status_code == 502 and empty.json()["error"]["kind"] == "empty_content"


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/health")
    assert response.status_code == 200
    health = Health.model_validate(response.json())
    assert health.pool.size == 1 and health.pool.browser_connected and health.pool.queue_limit == 8
    assert health.status in ("available", "degraded")


async def test_tools_and_openapi(client: httpx.AsyncClient) -> None:
    tools = (await client.get("/v1/tools")).json()
    assert [t["name"] for t in tools["anthropic"]] == ["fetch", "extract", "session_create", "session_delete"]
    openapi = (await client.get("/openapi.json")).json()
    assert {"/v1/fetch", "/v1/extract", "/v1/health", "/v1/tools", "/v1/sessions", "/v1/sessions/{session_id}"} <= set(
        openapi["paths"]
    )
    assert (await client.get("/docs")).status_code == 200


async def test_api_keys(tmp_path: Path, site: FixtureServer) -> None:
    async with running(make_settings(tmp_path, api_keys=["s3cret"], prelaunch=False)) as (client, _):
        assert (await client.get("/v1/health")).status_code == 401
        wrong = await client.post("/v1/fetch", json={"url": site.url("/article.html")},
                                  headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        right = await client.post("/v1/fetch", json={"url": site.url("/article.html")},
                                  headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200 and right.json()["ok"]
