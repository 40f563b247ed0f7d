"""``POST /v1/batch`` over real HTTP (uvicorn on 127.0.0.1) against the fixture site, and the client.

Lines are read as they arrive, so the tests see the stream a client sees: completion order, one
line per input, the summary last. In-flight requests are held by the fixture site's ``/gate``
(released by the test), never by timing.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from browser_service.batch import BatchItem, BatchSummaryLine
from browser_service.client import AsyncClient, Client
from browser_service.contract import FetchResponse
from browser_service.errors import InvalidRequest
from tests.conftest import make_settings
from tests.integration.test_api import running
from tests.integration.test_pool import until
from tests.site import FixtureServer

API_KEY = "batch-test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[httpx.AsyncClient, uvicorn.Server]]:
    settings = make_settings(tmp_path_factory.mktemp("batch"), pool_size=2, batch_max=8, api_keys=[API_KEY])
    async with running(settings) as (client, server):
        client.headers.update(AUTH)
        yield client, server


@pytest.fixture
def client(api: tuple[httpx.AsyncClient, uvicorn.Server]) -> httpx.AsyncClient:
    return api[0]


def gate_id() -> str:
    return uuid.uuid4().hex


async def stream_lines(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    async for raw in response.aiter_lines():
        if raw.strip():
            yield json.loads(raw)


async def test_one_line_per_input_in_completion_order(client: httpx.AsyncClient, site: FixtureServer) -> None:
    gate = gate_id()
    requests: list[Any] = [
        {"url": site.url(f"/gate?id={gate}"), "render": "http"},  # held until the others are answered
        {"url": site.url("/article.html"), "formats": ["text"]},
        {"url": site.url("/no-such-page")},
        {"url": "notaurl"},
        {"url": site.url("/article.html"), "fromats": ["text"]},
        site.url("/article.html"),  # a bare string is not a FetchRequest
        {"url": site.url("/data.json")},
    ]
    lines: list[dict[str, Any]] = []
    async with client.stream("POST", "/v1/batch", json={"requests": requests, "concurrency": 2}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        async for line in stream_lines(response):
            lines.append(line)
            if len(lines) == len(requests) - 1:  # everything but the gated item has its line
                assert {item["index"] for item in lines} == {1, 2, 3, 4, 5, 6}
                site.gate(gate).set()
    items = [BatchItem.model_validate(line) for line in lines[:-1]]
    summary = BatchSummaryLine.model_validate(lines[-1]).summary
    assert sorted(item.index for item in items) == list(range(len(requests)))  # exactly one line each
    assert items[-1].index == 0  # answered last: completion order, not input order
    by_index = {item.index: item.response for item in items}

    assert by_index[0].ok and by_index[0].title == "How Lighthouses Work"
    assert by_index[1].ok and by_index[1].text is not None and by_index[1].markdown is None  # its own options
    assert by_index[1].url == site.url("/article.html")
    assert by_index[2].error is not None and by_index[2].error.kind == "not_found"
    assert by_index[6].ok and by_index[6].content_type == "application/json"
    invalid = {i: by_index[i].error for i in (3, 4, 5)}
    assert all(e is not None and e.kind == "invalid_request" and not e.retryable for e in invalid.values())
    assert "requests.3.url: Input should be a valid URL" in invalid[3].message  # type: ignore[union-attr]
    assert "requests.4.fromats: unknown field" in invalid[4].message  # type: ignore[union-attr]
    assert "requests.5: Input should be a valid dictionary" in invalid[5].message  # type: ignore[union-attr]
    assert by_index[3].url == "notaurl" and by_index[5].url == ""

    assert summary.total == 7 and summary.ok == 3 and summary.failed == 4 and summary.stale == 0
    assert summary.by_kind == {"ok": 3, "invalid_request": 3, "not_found": 1}
    assert summary.concurrency == 2
    assert summary.p50_ms is not None and summary.p95_ms is not None and summary.p50_ms <= summary.p95_ms


async def test_whole_batch_errors(client: httpx.AsyncClient, site: FixtureServer) -> None:
    cases: list[tuple[Any, str]] = [
        ({"requests": "x"}, "requests: Input should be a valid list"),
        ({"requests": [], "concurency": 2}, "concurency: unknown field"),
        ({"requests": [], "concurrency": 0}, "concurrency: Input should be greater than or equal to 1"),
        ({"requests": [{"url": site.url("/article.html")}] * 9}, "9 items; this service takes at most 8 per batch"),
    ]
    for body, message in cases:
        response = await client.post("/v1/batch", json=body)
        assert response.status_code == 422, body
        answer = FetchResponse.model_validate(response.json())
        assert answer.error is not None and answer.error.kind == "invalid_request" and message in answer.error.message
    unparsable = await client.post("/v1/batch", content=b"{nope", headers={"content-type": "application/json"})
    assert unparsable.status_code == 422 and unparsable.json()["error"]["kind"] == "invalid_request"
    empty = await client.post("/v1/batch", json={"requests": []})
    assert empty.status_code == 200
    [line] = [json.loads(line) for line in empty.text.splitlines()]
    assert isinstance(line["summary"].pop("elapsed_ms"), int)
    assert line == {
        "summary": {"total": 0, "ok": 0, "failed": 0, "stale": 0, "by_kind": {}, "concurrency": 1}
        | {"p50_ms": None, "p95_ms": None}
    }


async def test_api_key_required(client: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=str(client.base_url)) as anonymous:
        response = await anonymous.post("/v1/batch", json={"requests": []})
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


async def test_disconnect_cancels_the_rest_and_frees_the_pool(
    api: tuple[httpx.AsyncClient, uvicorn.Server], site: FixtureServer
) -> None:
    client, server = api
    service = server.config.app.state.fetcher  # type: ignore[attr-defined]
    gate = gate_id()
    requests = [{"url": site.url(f"/gate?id={gate}&n={i}"), "render": "browser"} for i in range(6)]
    try:
        async with httpx.AsyncClient(base_url=str(client.base_url), headers=AUTH, timeout=60) as impatient:

            async def consume() -> None:
                async with impatient.stream("POST", "/v1/batch", json={"requests": requests, "concurrency": 2}) as r:
                    async for _ in r.aiter_lines():
                        pass

            reading = asyncio.create_task(consume())
            await until(lambda: site.hits["/gate"] >= 2 and service.pool.health().in_use == 2)
            reading.cancel()  # the client goes away mid-stream
            await asyncio.gather(reading, return_exceptions=True)
        await until(lambda: service.pool.health().in_use == 0, limit_s=5)  # long before the gate opens
        health = service.pool.health()
        assert health.queued == 0
        # Nothing leaked: every open page is an idle slot's (a slot whose clean-up failed is closed, not kept).
        assert 1 <= service.pool.idle_slots == service.pool.open_pages() == service.pool.open_contexts() <= 2
    finally:
        site.gate(gate).set()
    # The service is fine afterwards: the next batch runs.
    response = await client.post("/v1/batch", json={"requests": [{"url": site.url("/article.html")}]})
    assert response.status_code == 200 and response.text.count("\n") == 2


async def test_overloaded_items_get_typed_lines(tmp_path: Path, site: FixtureServer) -> None:
    async with running(make_settings(tmp_path, pool_size=1, queue_size=0)) as (client, server):
        service = server.config.app.state.fetcher  # type: ignore[attr-defined]
        gate = gate_id()
        holder = asyncio.create_task(
            client.post("/v1/fetch", json={"url": site.url(f"/gate?id={gate}"), "render": "browser"})
        )
        try:
            await until(lambda: service.pool.health().in_use == 1)
            requests = [{"url": site.url(f"/article.html?n={i}"), "render": "browser"} for i in range(3)]
            response = await client.post("/v1/batch", json={"requests": requests})
        finally:
            site.gate(gate).set()
        assert response.status_code == 200
        lines = [json.loads(line) for line in response.text.splitlines()]
        items = [BatchItem.model_validate(line) for line in lines[:-1]]
        assert sorted(item.index for item in items) == [0, 1, 2]
        for item in items:
            assert item.response.error is not None and item.response.error.kind == "overloaded"
            assert item.response.error.retryable and item.response.error.retry_after_s is not None
        assert lines[-1]["summary"]["by_kind"] == {"overloaded": 3}
        assert lines[-1]["summary"]["concurrency"] == 1  # default: half the slots, at least one
        assert (await holder).status_code == 200


async def test_clients(client: httpx.AsyncClient, site: FixtureServer) -> None:
    base = str(client.base_url)
    requests: list[Any] = [site.url("/article.html"), {"url": site.url("/no-such-page")}]
    async with AsyncClient(base, api_key=API_KEY) as service:
        items = [item async for item in service.batch(requests, concurrency=2)]
    assert sorted((i.index, i.response.ok) for i in items) == [(0, True), (1, False)]

    def sync() -> list[BatchItem]:
        with Client(base, api_key=API_KEY) as service:
            return list(service.batch(requests))

    items = await asyncio.to_thread(sync)
    assert sorted((i.index, i.response.ok) for i in items) == [(0, True), (1, False)]
    assert next(i for i in items if i.index == 1).response.error.kind == "not_found"  # type: ignore[union-attr]

    with pytest.raises(InvalidRequest, match="at most 8 per batch"):
        async with AsyncClient(base, api_key=API_KEY) as service:
            [item async for item in service.batch([site.url("/article.html")] * 9)]
