"""The MCP adapter: the ``fetch``, ``extract``, ``session_create`` and ``session_delete`` tools over one
:class:`~browser_service.fetcher.Fetcher`.

Built on the official SDK's low-level ``Server`` so the tools' schemas are the contract's own
(``tools.py``: the same input schemas, descriptions and version as ``GET /v1/tools``; the output
schema is ``FetchResponse``) rather than ones derived from a Python signature. Named
``mcp_server`` because a module called ``mcp`` would shadow the SDK.

A call answers with the ``FetchResponse`` as ``structuredContent`` and, for the model, text: a
header line (title, URL, where the content came from, where the next part starts) and the content.
A typed failure (``ok: false``) is a tool error (``isError: true``) whose text is the instructive
``error.message`` and the error's kind, retryability and wait, so the model can act on it; protocol
errors are kept for calls that name no known tool.

Two transports: stdio (``browser-service mcp``, :func:`serve_stdio`) and streamable HTTP, mounted
at ``/mcp`` in the REST app (:class:`StreamableHTTP`, whose session manager runs inside the app's
lifespan and shares its Fetcher).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import ipaddress
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import urlsplit

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from browser_service.contract import (
    TEXT_FORMATS,
    ErrorBody,
    ErrorInfo,
    ExtractRequest,
    FetchRequest,
    FetchResponse,
    SessionCreate,
    SessionRef,
)
from browser_service.errors import FetchError, InternalError, InvalidRequest
from browser_service.fetcher import Fetcher
from browser_service.mcp_stdio import client_lines
from browser_service.settings import Settings
from browser_service.tools import TOOL_VERSION, TOOLS, ToolSpec, parameters_schema

log = logging.getLogger(__name__)

#: The ``_meta`` key of each MCP tool that carries the tool version (``tools.TOOL_VERSION``).
VERSION_META_KEY = "browser-service/tool_version"

#: The SDK's own bound on streamable-HTTP bodies; the REST app's ``LimitBody`` (BROWSER_SERVICE_MAX_BODY_BYTES)
#: refuses larger ones before they get here.
MAX_BODY_BYTES = 32 * 2**20

INSTRUCTIONS = (
    "fetch reads a web page and returns its main content as markdown (JavaScript rendered when needed); "
    "extract does the same for HTML you already have. Long pages come in parts: call fetch again with "
    "start_index set to the next_start_index the header gives. A failure says what went wrong and what to do. "
    "To stay signed in across fetches, create a session (session_create) and pass its id as session."
)


def _version() -> str:
    try:
        return importlib.metadata.version("browser-service")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def mcp_tools() -> list[types.Tool]:
    """The MCP tool definitions, generated from the contract like ``GET /v1/tools``."""
    return [
        types.Tool(
            name=spec.name,
            title=spec.title,
            description=spec.description,
            input_schema=parameters_schema(spec.model),
            output_schema=spec.output.model_json_schema(mode="serialization"),
            annotations=types.ToolAnnotations(
                title=spec.title,
                read_only_hint=spec.read_only,
                destructive_hint=None if spec.read_only else spec.destructive,
                open_world_hint=spec.open_world,
            ),
            meta={VERSION_META_KEY: TOOL_VERSION},
        )
        for spec in TOOLS
    ]


def build_server(fetcher: Fetcher) -> Server[Any]:
    """An MCP server whose tools run on ``fetcher`` (started and closed by the caller)."""
    tools = mcp_tools()
    specs: dict[str, ToolSpec] = {spec.name: spec for spec in TOOLS}

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        spec = specs.get(params.name)
        if spec is None:
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"Unknown tool {params.name!r}; the tools are {', '.join(specs)}.",
            )
        if spec.output is not FetchResponse:
            return await session_tool(fetcher, spec, params.arguments or {})
        return tool_result(await run_tool(fetcher, spec, params.arguments or {}))

    return Server(
        "browser-service",
        version=_version(),
        title="browser-service",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def run_tool(fetcher: Fetcher, spec: ToolSpec, arguments: dict[str, Any]) -> FetchResponse:
    """Validate the arguments against the contract and run the tool: always one ``FetchResponse``."""
    given = arguments.get("url")
    url = given if isinstance(given, str) else ""
    try:
        request = spec.model.model_validate(arguments)
    except ValidationError as exc:
        return _failure(url, InvalidRequest(_describe(exc)).info())
    if isinstance(request, FetchRequest):
        return await fetcher.fetch(request)  # never raises (but CancelledError)
    assert isinstance(request, ExtractRequest)
    try:
        # Extraction is CPU work: off the event loop, admitted like a fetch (as the REST route does).
        return await fetcher.extract_admitted(request)
    except Exception as exc:  # a bug: still one typed answer
        trace_id = uuid.uuid4().hex
        log.exception("internal error in extract", extra={"trace_id": trace_id})
        failure = InternalError(f"An internal error occurred ({type(exc).__name__}); trace_id {trace_id}.")
        return _failure(url, failure.info(), trace_id)


async def session_tool(fetcher: Fetcher, spec: ToolSpec, arguments: dict[str, Any]) -> types.CallToolResult:
    """session_create / session_delete: the session's facts, or a typed tool error (session_not_found …)."""
    try:
        request = spec.model.model_validate(arguments)
    except ValidationError as exc:
        return _error_result(InvalidRequest(_describe(exc)).info())
    try:
        if isinstance(request, SessionCreate):
            info = await fetcher.sessions.create(request.ttl_s)
            text = (
                f"Session {info.id} created. Pass session={json.dumps(info.id)} to fetch: those fetches share "
                f"cookies and localStorage. It lasts {info.ttl_s} s after its last use (now until "
                f"{info.expires_at.isoformat()}); delete it with session_delete when done."
            )
            return types.CallToolResult(
                content=[types.TextContent(text=text)], structured_content=info.model_dump(mode="json")
            )
        assert isinstance(request, SessionRef)
        deleted = await fetcher.sessions.delete(request.session)
    except FetchError as exc:
        return _error_result(exc.info())
    return types.CallToolResult(
        content=[types.TextContent(text=f"Session {deleted.id} deleted, with its cookies and storage.")],
        structured_content=deleted.model_dump(mode="json"),
    )


def _error_result(error: ErrorInfo) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=_error_text(error))],
        structured_content=ErrorBody(error=error).model_dump(mode="json"),
        is_error=True,
    )


def _failure(url: str, error: ErrorInfo, trace_id: str | None = None) -> FetchResponse:
    return FetchResponse(ok=False, url=url, trace_id=trace_id or uuid.uuid4().hex, error=error)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "arguments"
        msg = "unknown field (check the spelling against the tool's input schema)"
        parts.append(f"{loc}: {msg if err['type'] == 'extra_forbidden' else err['msg']}")
    return "Invalid arguments: " + "; ".join(parts) + ". Fix the argument(s) and call again; retrying as is will fail."


# --- results -------------------------------------------------------------------------------------


def tool_result(response: FetchResponse) -> types.CallToolResult:
    """The MCP answer: the ``FetchResponse`` as structured content, and text for the model."""
    structured = response.model_dump(mode="json")
    if not response.ok or response.error is not None:
        return types.CallToolResult(
            content=[types.TextContent(text=error_text(response))], structured_content=structured, is_error=True
        )
    blocks: list[types.ContentBlock] = [types.TextContent(text=content_text(response))]
    primary = response.content.format if response.content else None
    for fmt in TEXT_FORMATS:
        value = getattr(response, fmt)
        if fmt != primary and value is not None:
            blocks.append(types.TextContent(text=f"[{fmt}]\n{value}"))
    data = response.model_dump(mode="json", include={"links", "metadata", "fields"}, exclude_none=True)
    if data and primary is not None:  # without a text format, the header's text already holds it
        blocks.append(types.TextContent(text=json.dumps(data, ensure_ascii=False, indent=1)))
    if response.screenshot is not None:
        blocks.append(types.ImageContent(data=response.screenshot, mime_type="image/png"))
    return types.CallToolResult(content=blocks, structured_content=structured)


def header(response: FetchResponse) -> str:
    """One line: title, URL, where the content came from, and where the next part starts."""
    parts = [response.title or "(untitled)", response.final_url or response.url]
    if response.source == "cache":
        age = f", {response.age_s:.0f} s old" if response.age_s is not None else ""
        if response.stale:
            failed = f" ({response.live_error.kind.value})" if response.live_error is not None else ""
            parts.append(f"source: cache{age}, STALE: the live fetch failed{failed}")
        else:
            parts.append(f"source: cache{age}")
    else:
        parts.append(f"source: {response.source}")
    page = response.content
    if page is not None:
        shown = len(getattr(response, page.format) or "")
        span = f"{page.format}: characters {page.start_index}–{page.start_index + shown} of {page.total_chars}"
        if page.truncated and page.next_start_index is not None:
            span += f"; truncated, next_start_index={page.next_start_index}"
        parts.append(span)
    return " | ".join(parts)


def content_text(response: FetchResponse) -> str:
    lines = [header(response)]
    lines += [f"warning: {warning}" for warning in response.warnings]
    page = response.content
    if page is not None:
        body = getattr(response, page.format) or ""
    else:  # only non-text formats were asked for
        body = response.model_dump_json(include={"links", "metadata", "fields"}, exclude_none=True, indent=1)
    text = "\n".join(lines) + "\n\n" + body
    if page is not None and page.truncated and page.next_start_index is not None:
        text += (
            f"\n\n[{page.total_chars - page.next_start_index} more characters: call again with "
            f"start_index={page.next_start_index}]"
        )
    return text


def error_text(response: FetchResponse) -> str:
    """The instructive message, then the facts an agent branches on (kind, retryable, wait)."""
    error = response.error
    if error is None:  # ok=false always carries an error; be explicit if it ever does not
        return f"The call failed without an error description (trace_id {response.trace_id})."
    return _error_text(error)


def _error_text(error: ErrorInfo) -> str:
    facts: dict[str, Any] = {
        "kind": error.kind.value,
        "retryable": error.retryable,
        "retry_after_s": error.retry_after_s,
    }
    for name in ("status_code", "phase", "vendor", "host_state", "quarantine_id", "step"):
        if getattr(error, name) is not None:
            facts[name] = getattr(error, name)
    return f"{error.message}\n\nerror: {json.dumps(facts)}"


# --- transports ----------------------------------------------------------------------------------


async def serve_stdio(settings: Settings) -> None:
    """Serve MCP on stdin/stdout until the client closes stdin. Logs go to stderr, never stdout."""
    # stdio_server() first: while it serves, fd 1 points at stderr (and client_lines() points fd 0
    # at the null device), so nothing the Fetcher starts (the Playwright driver, Chromium) can write
    # into the protocol stream or read from it. Its input is ours: the SDK drops a line it cannot
    # parse, and a lone surrogate's escape is one (mcp_stdio.py).
    with client_lines() as lines:
        async with stdio_server(stdin=cast(Any, lines)) as (read_stream, write_stream), Fetcher(settings) as fetcher:
            server = build_server(fetcher)
            await server.run(read_stream, write_stream, server.create_initialization_options())


class StreamableHTTP:
    """The streamable-HTTP transport as an ASGI app, for mounting in the REST app.

    Its session manager runs only inside :meth:`run`, which the REST app enters in its lifespan
    (after the Fetcher starts, before it closes), so tool calls always find a started Fetcher and
    are cancelled before it closes. A new manager per lifespan, because a manager runs once.

    Stateless: every request stands alone, so any replica behind a load balancer can answer it.
    Without API keys the endpoint refuses requests a web page sent (an ``Origin`` that is not
    loopback): a browser is how a page on the internet would reach a service listening on
    127.0.0.1, by DNS rebinding or a cross-site request. With keys, the key is the protection.
    """

    def __init__(self, fetcher: Fetcher, settings: Settings) -> None:
        self.server = build_server(fetcher)
        self.settings = settings
        self._manager: StreamableHTTPSessionManager | None = None

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        manager = StreamableHTTPSessionManager(
            app=self.server, stateless=True, max_request_body_size=max(MAX_BODY_BYTES, self.settings.max_body_bytes)
        )
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        manager = self._manager
        if scope["type"] != "http" or manager is None:
            await JSONResponse({"detail": "MCP is not running."}, status_code=503)(scope, receive, send)
            return
        origin = Headers(scope=scope).get("origin")
        if not self.settings.api_keys and origin is not None and not _is_loopback_origin(origin):
            message = f"Requests from web pages ({origin}) are refused without API keys (BROWSER_SERVICE_API_KEYS)."
            await JSONResponse({"detail": message}, status_code=403)(scope, receive, send)
            return
        await manager.handle_request(scope, receive, send)


def _is_loopback_origin(origin: str) -> bool:
    host = urlsplit(origin).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
