"""MCP with the SDK's own client, over both transports: stdio (``browser-service mcp`` as a subprocess)
and streamable HTTP (``/mcp`` in the REST app, served by uvicorn on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import mcp_types as types
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.session import IncomingMessage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from browser_service.contract import (
    CONTRACT_VERSION,
    ErrorBody,
    ErrorInfo,
    ErrorKind,
    FetchResponse,
    SessionDeleted,
    SessionInfo,
)
from browser_service.fetcher import Fetcher
from browser_service.mcp_server import VERSION_META_KEY, error_text, header, mcp_tools
from browser_service.tools import TOOL_VERSION, tool_definitions
from tests.conftest import make_settings
from tests.integration.test_api import running
from tests.integration.test_pool import until
from tests.site import LONG_PARAGRAPHS, FixtureServer

ROOT = Path(__file__).resolve().parents[2]

#: The digest of the tool definitions (MCP and /v1/tools: names, descriptions, schemas, annotations)
#: each tool version was released with. A changed definition fails this until the version is bumped
#: (it is CONTRACT_VERSION: bump that, and record the new pair here and in test_contract.RELEASED).
RELEASED_TOOLS = {
    "1.1.0": "38b0ebecb89d22ba",
    "1.2.0": "3d429272455893f8",  # fetch: session, actions; session_create, session_delete
}
TOOL_NAMES = ["fetch", "extract", "session_create", "session_delete"]

#: A raw streamable-HTTP initialize, for the checks in front of the SDK's transport.
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


# --- clients -------------------------------------------------------------------------------------


class Session:
    """An initialised client session that also records what the transport could not parse."""

    def __init__(self, session: ClientSession, garbage: list[Exception]) -> None:
        self.session = session
        self.garbage = garbage

    async def call(self, name: str, arguments: dict[str, Any]) -> tuple[types.CallToolResult, FetchResponse]:
        result = await self.session.call_tool(name, arguments)
        assert result.structured_content is not None
        return result, FetchResponse.model_validate(result.structured_content)


@asynccontextmanager
async def _session(read: Any, write: Any) -> AsyncIterator[Session]:
    garbage: list[Exception] = []

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, Exception):
            garbage.append(message)

    async with ClientSession(read, write, message_handler=on_message) as session:
        await session.initialize()
        yield Session(session, garbage)
    assert garbage == []  # nothing but protocol messages on the wire


@asynccontextmanager
async def stdio_session(tmp: Path) -> AsyncIterator[Session]:
    """``browser-service mcp`` as a subprocess, the way an agent starts it."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "browser_service.cli", "mcp"],
        env={
            "BROWSER_SERVICE_ALLOW": "127.0.0.0/8",
            "BROWSER_SERVICE_CACHE_DIR": str(tmp / "cache"),
            "BROWSER_SERVICE_POOL_SIZE": "1",
        },
        cwd=ROOT,
    )
    log = tmp / "stderr.log"
    with log.open("w") as errlog:
        try:
            async with stdio_client(params, errlog=errlog) as (read, write), _session(read, write) as session:
                yield session
        except BaseException as exc:
            exc.add_note(f"the server's stderr:\n{log.read_text()}")
            raise


@asynccontextmanager
async def http_session(
    base_url: str, key: str | None = None, statuses: list[int] | None = None
) -> AsyncIterator[Session]:
    """The SDK's streamable-HTTP client on ``/mcp``; ``statuses`` collects the HTTP status of each answer."""
    headers = {"Authorization": f"Bearer {key}"} if key else None

    async def record(response: httpx2.Response) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    async with (
        httpx2.AsyncClient(headers=headers, timeout=60, trust_env=False, event_hooks={"response": [record]}) as http,
        streamable_http_client(f"{base_url}/mcp", http_client=http) as (read, write),
        _session(read, write) as session,
    ):
        yield session


# --- the tool definitions ------------------------------------------------------------------------


def test_tool_version_is_the_contract_version_and_pinned() -> None:
    assert TOOL_VERSION == CONTRACT_VERSION == tool_definitions()["version"]
    assert [tool.meta for tool in mcp_tools()] == [{VERSION_META_KEY: CONTRACT_VERSION}] * len(TOOL_NAMES)
    definitions = [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in mcp_tools()]
    digest = hashlib.sha256(json.dumps([definitions, tool_definitions()], sort_keys=True).encode()).hexdigest()[:16]
    assert RELEASED_TOOLS.get(TOOL_VERSION) == digest, (
        f"the tool definitions changed (digest {digest}): bump CONTRACT_VERSION and record it in RELEASED_TOOLS"
    )


def test_header_of_a_stale_answer_and_text_of_a_wait() -> None:
    stale = FetchResponse(
        ok=True,
        url="https://example.com/a",
        final_url="https://example.com/b",
        source="cache",
        stale=True,
        age_s=5412.3,
        title="T",
        live_error=ErrorInfo(kind=ErrorKind.HTTP_ERROR, message="…", retryable=True, status_code=503),
        trace_id="t",
    )
    assert (
        header(stale)
        == "T | https://example.com/b | source: cache, 5412 s old, STALE: the live fetch failed (http_error)"
    )
    busy = FetchResponse(
        ok=False,
        url="https://example.com/a",
        trace_id="t",
        error=ErrorInfo(kind=ErrorKind.OVERLOADED, message="Busy; retry in 3 s.", retryable=True, retry_after_s=3.0),
    )
    assert error_text(busy) == (
        'Busy; retry in 3 s.\n\nerror: {"kind": "overloaded", "retryable": true, "retry_after_s": 3.0}'
    )


# --- stdio ---------------------------------------------------------------------------------------


async def test_stdio_tools_fetch_errors_and_extract(tmp_path: Path, site: FixtureServer) -> None:
    async with stdio_session(tmp_path) as client:
        listed = (await client.session.list_tools()).tools
        assert [tool.name for tool in listed] == TOOL_NAMES
        anthropic = tool_definitions()["anthropic"]
        hints = [(True, None, True), (True, None, False), (False, False, False), (False, True, False)]
        outputs = [FetchResponse, FetchResponse, SessionInfo, SessionDeleted]
        for tool, definition, hint, output in zip(listed, anthropic, hints, outputs, strict=True):
            assert tool.annotations is not None
            annotations = tool.annotations
            assert (annotations.read_only_hint, annotations.destructive_hint, annotations.open_world_hint) == hint
            assert tool.meta == {VERSION_META_KEY: CONTRACT_VERSION}
            assert tool.input_schema == definition["input_schema"]  # the contract's, as /v1/tools serves it
            assert tool.description == definition["description"]
            assert tool.output_schema == output.model_json_schema(mode="serialization")

        url = site.url("/article.html")
        result, body = await client.call("fetch", {"url": url})
        assert not result.is_error and body.ok and body.source == "live"
        assert body.title == "How Lighthouses Work" and body.versions.contract == CONTRACT_VERSION
        markdown = body.markdown or ""
        assert markdown.startswith("# How Lighthouses Work")
        assert [block.type for block in result.content] == ["text"]
        assert isinstance(result.content[0], types.TextContent)
        assert result.content[0].text == (
            f"How Lighthouses Work | {url} | source: live | markdown: characters 0–{len(markdown)} of {len(markdown)}"
            f"\n\n{markdown}"
        )

        missing = site.url("/no-such-page")
        result, body = await client.call("fetch", {"url": missing})
        assert result.is_error and not body.ok and body.error is not None and body.error.kind == "not_found"
        assert isinstance(result.content[0], types.TextContent)
        assert result.content[0].text == (
            f"{missing} does not exist (HTTP 404). Check the URL or look for the page elsewhere; retrying will "
            'not help.\n\nerror: {"kind": "not_found", "retryable": false, "retry_after_s": null, '
            '"status_code": 404, "host_state": "available"}'
        )

        # Invalid arguments are a tool error the model can correct, named like the REST 422.
        result, body = await client.call("fetch", {"url": "notaurl", "fromats": ["text"]})
        assert result.is_error and body.error is not None and body.error.kind == "invalid_request"
        assert body.url == "notaurl" and body.error.message.startswith("Invalid arguments: url: ")
        assert body.error.message.endswith(
            "; fromats: unknown field (check the spelling against the tool's input schema). "
            "Fix the argument(s) and call again; retrying as is will fail."
        )

        # An unknown tool is a protocol error.
        with pytest.raises(MCPError, match="Unknown tool 'browse'"):
            await client.session.call_tool("browse", {"url": url})

        html = "<html><head><title>T</title></head><body><article><h1>Hello</h1><p>" + "Body text. " * 30
        result, body = await client.call("extract", {"html": html, "url": "https://example.com/a"})
        assert not result.is_error and body.ok and body.source == "input" and body.title == "T"
        assert (body.markdown or "").startswith("# Hello")


async def test_stdio_answers_a_request_whose_json_holds_a_lone_surrogate(tmp_path: Path) -> None:
    # JSON allows "\ud800" (a client that cuts a string in half sends one). The SDK's strict parser
    # dropped the whole line, so the request was never answered: its caller waited for ever. Raw
    # lines, because the SDK's client cannot send one.
    env = {**os.environ, "BROWSER_SERVICE_CACHE_DIR": str(tmp_path / "cache"), "BROWSER_SERVICE_POOL_SIZE": "1"}
    with (tmp_path / "stderr.log").open("w") as errlog:
        server = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "browser_service.cli", "mcp"),
            stdin=PIPE,
            stdout=PIPE,
            stderr=errlog,
            env=env,
            cwd=ROOT,
        )
    assert server.stdin is not None and server.stdout is not None

    async def send(message: dict[str, Any], raw: dict[str, str] | None = None) -> None:
        """``message`` as one JSON line, with each key of ``raw`` replaced by its value as sent."""
        line = json.dumps(message)
        for placeholder, text in (raw or {}).items():
            line = line.replace(placeholder, text)
        assert server.stdin is not None
        server.stdin.write(line.encode() + b"\n")
        await server.stdin.drain()

    async def answer() -> dict[str, Any]:
        assert server.stdout is not None
        return dict(json.loads(await asyncio.wait_for(server.stdout.readline(), 60)))

    try:
        client = {"name": "raw", "version": "1"}
        hello = {"protocolVersion": types.LATEST_PROTOCOL_VERSION, "capabilities": {}, "clientInfo": client}
        await send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello})
        assert (await answer())["id"] == 1
        await send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        html = "<html><body><article><h1>Half HALF an emoji</h1><p>" + "Body text. " * 30 + "</p></article></body>"
        call = {"name": "extract", "arguments": {"html": html, "url": "https://example.com/a"}}
        await send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call}, raw={"HALF": "\\ud83d"})
        reply = await answer()
        assert reply["id"] == 2 and reply["result"]["isError"] is False
        body = FetchResponse.model_validate(reply["result"]["structuredContent"])
        assert body.ok and (body.markdown or "").startswith("# Half \ufffd an emoji")
    finally:
        server.stdin.close()
        await asyncio.wait_for(server.wait(), 30)


async def test_stdio_paging(tmp_path: Path, site: FixtureServer) -> None:
    url = site.url("/long?doc=mcp")
    async with stdio_session(tmp_path) as client:
        start, texts, digests, sources = 0, [], set(), []
        while True:
            arguments = {"url": url, "formats": ["text"], "max_chars": 5000, "start_index": start}
            result, body = await client.call("fetch", arguments)
            assert not result.is_error and body.content is not None and body.text is not None
            assert isinstance(result.content[0], types.TextContent)
            text, page = result.content[0].text, body.content
            span = f"text: characters {start}–{start + len(body.text)} of {page.total_chars}"
            texts.append(body.text)
            digests.add(body.content_sha256)
            sources.append(body.source)
            if not page.truncated:
                assert text.split("\n")[0].endswith(f" | {span}") and text.endswith(body.text)
                break
            following = page.next_start_index
            assert following == start + len(body.text)
            assert text.split("\n")[0].endswith(f" | {span}; truncated, next_start_index={following}")
            assert text.endswith(
                f"{body.text}\n\n[{page.total_chars - following} more characters: call again with "
                f"start_index={following}]"
            )
            start = following
    whole = "".join(texts)
    assert len(whole) == page.total_chars and len(texts) >= page.total_chars // 5000 + 1 and len(digests) == 1
    assert sources == ["live"] + ["cache"] * (len(texts) - 1)  # later pages from the stored copy
    for i in range(1, LONG_PARAGRAPHS + 1):
        assert f"Paragraph {i} of the long article." in whole


# --- streamable HTTP -----------------------------------------------------------------------------


async def test_http_mcp_shares_the_apps_fetcher(tmp_path: Path, site: FixtureServer) -> None:
    async with running(make_settings(tmp_path, pool_size=1, prelaunch=False)) as (rest, _):
        base = str(rest.base_url).rstrip("/")
        async with http_session(base) as client:
            listed = (await client.session.list_tools()).tools
            assert [(tool.name, tool.meta) for tool in listed] == [
                (name, {VERSION_META_KEY: CONTRACT_VERSION}) for name in TOOL_NAMES
            ]
            url = site.url("/article.html")
            result, body = await client.call("fetch", {"url": url})
            markdown = body.markdown or ""
            assert not result.is_error and body.ok and markdown.startswith("# How Lighthouses Work")
            assert isinstance(result.content[0], types.TextContent)
            assert result.content[0].text == (
                f"How Lighthouses Work | {url} | source: live | markdown: characters 0–{len(markdown)} of "
                f"{len(markdown)}\n\n{markdown}"
            )

            result, body = await client.call("fetch", {"url": site.url("/no-such-page")})
            assert result.is_error and body.error is not None and body.error.kind == "not_found"
        # The REST app sees the MCP call: one Fetcher, one set of breakers.
        hosts = (await rest.get("/v1/hosts")).json()
        assert [(h["host"], h["calls"], h["failures"]) for h in hosts] == [(urlsplit(site.url("/")).netloc, 2, 0)]
        assert (await rest.get("/v1/tools")).json()["version"] == CONTRACT_VERSION


async def test_http_mcp_requires_the_api_key(tmp_path: Path, site: FixtureServer) -> None:
    async with running(make_settings(tmp_path, api_keys=["s3cret"], prelaunch=False)) as (rest, _):
        v1 = await rest.get("/v1/health")
        for authorization in (None, "Bearer nope", "Basic s3cret"):
            headers = ACCEPT | ({"Authorization": authorization} if authorization else {})
            refused = await rest.post("/mcp", json=INITIALIZE, headers=headers)
            assert (refused.status_code, refused.headers["www-authenticate"]) == (401, "Bearer")
            assert (
                refused.json() == v1.json() == {"detail": "A valid API key is required: Authorization: Bearer <key>."}
            )
        # The SDK's client without the key: its initialize is answered 401, and the session fails.
        statuses: list[int] = []
        with pytest.RaisesGroup(pytest.RaisesGroup(pytest.RaisesExc(MCPError, match="error response"))):
            async with http_session(str(rest.base_url).rstrip("/"), statuses=statuses):
                pass
        assert statuses == [401]
        async with http_session(str(rest.base_url).rstrip("/"), key="s3cret") as client:
            result, body = await client.call("fetch", {"url": site.url("/article.html")})
            assert not result.is_error and body.ok


async def test_http_mcp_without_keys_refuses_web_pages(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, prelaunch=False)) as (rest, _):
        foreign = await rest.post("/mcp", json=INITIALIZE, headers=ACCEPT | {"Origin": "http://rebound.example"})
        assert foreign.status_code == 403 and "rebound.example" in foreign.json()["detail"]
        local = await rest.post("/mcp", json=INITIALIZE, headers=ACCEPT | {"Origin": "http://localhost:6274"})
        assert local.status_code == 200 and '"serverInfo"' in local.text
        plain = await rest.post("/mcp", json=INITIALIZE, headers=ACCEPT)  # not a browser: no Origin
        assert plain.status_code == 200 and '"serverInfo"' in plain.text


async def test_http_client_gone_frees_the_slot(tmp_path: Path, site: FixtureServer) -> None:
    async with running(make_settings(tmp_path, pool_size=1)) as (rest, server):
        app: Any = server.config.app
        service: Fetcher = app.state.fetcher
        hits = site.hits["/slow"]

        async def call() -> None:
            async with http_session(str(rest.base_url).rstrip("/")) as client:
                await client.session.call_tool("fetch", {"url": site.url("/slow?ms=20000"), "render": "browser"})

        request = asyncio.create_task(call())
        await until(lambda: site.hits["/slow"] > hits and service.pool.health().in_use == 1)
        request.cancel()  # the client goes away mid-call
        await asyncio.gather(request, return_exceptions=True)
        await until(lambda: service.pool.health().in_use == 0, limit_s=5)  # long before the page's 20 s
        assert service.pool.open_contexts() == service.pool.open_pages() == service.pool.idle_slots == 1


async def test_http_mcp_sessions_and_actions(tmp_path: Path, site: FixtureServer) -> None:
    """An agent's whole sign-in flow over MCP: create a session, sign in with actions, read a members-only
    page, delete the session; a deleted session is a tool error telling it to create a new one."""
    settings = make_settings(tmp_path, pool_size=1, prelaunch=False)
    async with running(settings) as (rest, _), http_session(str(rest.base_url).rstrip("/")) as client:
        created = await client.session.call_tool("session_create", {"ttl_s": 600})
        assert not created.is_error and created.structured_content is not None
        info = SessionInfo.model_validate(created.structured_content)
        assert info.ttl_s == 600 and isinstance(created.content[0], types.TextContent)
        assert created.content[0].text.startswith(
            f'Session {info.id} created. Pass session="{info.id}" to fetch: those fetches share cookies and '
            "localStorage. It lasts 600 s after its last use"
        )
        sign_in = [
            {"type": "type", "selector": "#user", "text": "mia"},
            {"type": "press", "selector": "#user", "key": "Enter"},
        ]
        result, body = await client.call(
            "fetch", {"url": site.url("/login-form"), "session": info.id, "actions": sign_in}
        )
        assert not result.is_error and "You are signed in as mia." in (body.markdown or "")
        result, body = await client.call("fetch", {"url": site.url("/members"), "session": info.id})
        assert not result.is_error and "Welcome back, mia." in (body.markdown or "")

        # A step that cannot be done: a tool error naming it.
        result, body = await client.call(
            "fetch",
            {"url": site.url("/reveal"), "actions": [{"type": "click", "selector": "#nope", "timeout_ms": 200}]},
        )
        assert result.is_error and body.error is not None and body.error.kind == "action_failed"
        assert isinstance(result.content[0], types.TextContent)
        assert result.content[0].text.endswith(
            'error: {"kind": "action_failed", "retryable": false, "retry_after_s": null, "step": 0}'
        )

        deleted = await client.session.call_tool("session_delete", {"session": info.id})
        assert not deleted.is_error and deleted.structured_content == {"id": info.id, "deleted": True}
        again = await client.session.call_tool("session_delete", {"session": info.id})
        assert again.is_error and again.structured_content is not None
        error = ErrorBody.model_validate(again.structured_content).error
        assert error.kind == "session_not_found" and "Create a new session" in error.message
        result, body = await client.call("fetch", {"url": site.url("/members"), "session": info.id})
        assert result.is_error and body.error is not None and body.error.kind == "session_not_found"
        bad = await client.session.call_tool("session_create", {"ttl_s": 0})
        assert bad.is_error and bad.structured_content is not None
        assert ErrorBody.model_validate(bad.structured_content).error.kind == "invalid_request"
