"""The Python client against a real service (uvicorn on 127.0.0.1): models in, models and typed errors out."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from browser_service.client import AsyncClient, Client, ServiceProblem
from browser_service.errors import FetchError, ForbiddenTarget, NotFound
from tests.conftest import make_settings
from tests.integration.test_api import running
from tests.site import FixtureServer


async def test_async_client_fetches_and_raises_the_servers_error_classes(tmp_path: Path, site: FixtureServer) -> None:
    async with running(make_settings(tmp_path, pool_size=1, api_keys=["k1"])) as (http, _):
        base = str(http.base_url)
        async with AsyncClient(base, api_key="k1") as client:
            page = await client.fetch(site.url("/article.html"), formats=["markdown", "links"])
            assert page.ok and page.markdown is not None and page.markdown.startswith("# How Lighthouses Work")
            assert page.links is not None
            trace = await client.trace(page.trace_id)
            assert trace.trace_id == page.trace_id and trace.outcome == "ok" and trace.engine == page.engine
            with pytest.raises(ServiceProblem) as unknown:
                await client.trace("0" * 32)
            assert unknown.value.status_code == 404

            with pytest.raises(NotFound) as missing:
                await client.fetch(site.url("/no-such-page"))
            assert missing.value.status_code == 404 and missing.value.response is not None
            assert missing.value.response.error is not None and missing.value.response.error.kind == "not_found"

            answer = await client.fetch(site.url("/no-such-page"), raise_errors=False)
            assert not answer.ok and answer.error is not None and answer.error.kind == "not_found"

            with pytest.raises(ForbiddenTarget):
                await client.fetch("http://169.254.169.254/latest/meta-data/")

            extracted = await client.extract(
                "<html><body><article><h1>T</h1><p>Body text.</p></article></body></html>", "https://example.com/"
            )
            assert extracted.source == "input" and extracted.markdown == "# T\n\nBody text."
            assert (await client.health()).pool.size == 1
            assert (await client.host("example.com")).state == "available"
            assert (await client.quarantine()).total == 0
            assert [t["function"]["name"] for t in (await client.tools())["openai"]] == [
                "fetch",
                "extract",
                "session_create",
                "session_delete",
            ]

        async with AsyncClient(base, api_key="wrong") as intruder:
            with pytest.raises(ServiceProblem) as refused:
                await intruder.fetch(site.url("/article.html"))
            assert refused.value.status_code == 401


async def test_sync_client(tmp_path: Path, site: FixtureServer) -> None:
    async with running(make_settings(tmp_path, pool_size=1)) as (http, _):

        def use() -> tuple[str | None, str]:
            with Client(str(http.base_url)) as client:
                page = client.fetch(site.url("/article.html"), formats=["text"], max_chars=500)
                assert client.trace(page.trace_id).trace_id == page.trace_id
                try:
                    client.fetch(site.url("/gone"))
                except FetchError as exc:
                    return page.text, exc.kind.value
                raise AssertionError("a gone page must raise")

        text, kind = await asyncio.to_thread(use)  # the sync client blocks: off the loop serving it
        assert text is not None and text.startswith("How Lighthouses Work") and len(text) <= 500
        assert kind == "not_found"


def test_invalid_options_fail_before_sending() -> None:
    with Client("http://127.0.0.1:9") as client, pytest.raises(ValueError, match="render"):
        client.fetch("https://example.com/", render="chrome")


def test_an_unreachable_service_is_a_service_problem() -> None:
    with Client("http://127.0.0.1:9") as client, pytest.raises(ServiceProblem, match="did not answer"):
        client.health()
