"""The REST adapter: FastAPI routes over one :class:`~browser_service.fetcher.Fetcher`.

Thin on purpose. What it adds over the fetcher is HTTP itself: the status code of each error kind
(``errors.py``), ``Retry-After``, answering invalid input with the same ``FetchResponse`` shape
(``invalid_request``, 422, naming the field) instead of FastAPI's default body, API keys, and
cancelling a fetch whose client went away so its browser slot is freed at once. ``/mcp`` mounts
the MCP server (``mcp_server.py``) on the same Fetcher, behind the same API keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import math
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from browser_service.api_ops import operations_router
from browser_service.contract import (
    API_VERSION,
    ErrorInfo,
    ErrorKind,
    ExtractRequest,
    FetchRequest,
    FetchResponse,
    Health,
    HostStatus,
    QuarantineDecision,
    QuarantineItem,
    QuarantineList,
)
from browser_service.errors import ERROR_CLASSES
from browser_service.fetcher import Fetcher
from browser_service.mcp_server import StreamableHTTP
from browser_service.settings import Settings
from browser_service.tools import tool_definitions

T = TypeVar("T")

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": FetchResponse, "description": desc}
    for code, desc in (
        (403, "forbidden_target, robots_disallowed"),
        (422, "invalid_request (names the field)"),
        (500, "internal_error"),
        (502, "the origin failed: dns_error, connection_error, not_found, http_error, …"),
        (503, "overloaded, circuit_open, browser_error (with Retry-After)"),
        (504, "timeout (with the phase)"),
    )
}


_KEY_REQUIRED = "A valid API key is required: Authorization: Bearer <key>."


def _authorized(settings: Settings, authorization: str) -> bool:
    """No keys configured, or a ``Bearer`` one of them (the same check for /v1 and /mcp)."""
    if not settings.api_keys:
        return True
    scheme, _, token = authorization.partition(" ")
    # Compare against every key in constant time so timing reveals neither a key nor which matched.
    valid = [hmac.compare_digest(token.encode(), key.encode()) for key in settings.api_keys]
    return scheme.lower() == "bearer" and any(valid)


class _RequireKey:
    """ASGI wrapper: the API-key check of the /v1 routes, for an app mounted beside them (/mcp)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _authorized(self.settings, Headers(scope=scope).get("authorization", "")):
            refused = JSONResponse({"detail": _KEY_REQUIRED}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, send)


def http_status(response: FetchResponse) -> int:
    if response.ok or response.error is None:
        return 200
    return ERROR_CLASSES[response.error.kind].http_status


def answer(response: FetchResponse) -> JSONResponse:
    headers = {}
    error = response.error
    if error is not None and error.retry_after_s is not None and http_status(response) in (429, 503):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after_s)))
    return JSONResponse(response.model_dump(mode="json"), status_code=http_status(response), headers=headers)


def _invalid(url: str, message: str) -> JSONResponse:
    return answer(
        FetchResponse(
            ok=False,
            url=url,
            trace_id=uuid.uuid4().hex,
            error=ErrorInfo(kind=ErrorKind.INVALID_REQUEST, message=message, retryable=False),
        )
    )


def _not_held(item_id: str) -> StarletteHTTPException:
    return StarletteHTTPException(404, f"No quarantine item {item_id!r} (approved, rejected or never held).")


def _describe(errors: list[Any]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field (check the spelling against GET /v1/tools)"
        parts.append(f"{loc}: {msg}")
    return "Invalid request: " + "; ".join(parts) + ". Fix the field(s) and send again; retrying as is will fail."


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T | None:
    """Run ``work``; cancel it if the client disconnects first (its browser slot is freed at once)."""
    task = asyncio.ensure_future(work)

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        with contextlib.suppress(asyncio.CancelledError):
            await task  # the fetch's own cleanup (lease release) runs to completion here
    return None if task.cancelled() else task.result()


def create_app(settings: Settings | None = None, fetcher: Fetcher | None = None) -> FastAPI:
    settings = settings or Settings()
    service = fetcher or Fetcher(settings)
    mcp = StreamableHTTP(service, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start(launch_browser=settings.prelaunch)
        try:
            async with mcp.run():  # MCP sessions end before the Fetcher closes
                yield
        finally:
            await service.close()

    def require_key(request: Request) -> None:
        if not _authorized(settings, request.headers.get("authorization", "")):
            raise StarletteHTTPException(401, _KEY_REQUIRED)

    app = FastAPI(
        title="browser-service",
        version=API_VERSION,
        description="Rendered, clean, bounded web content for AI agents — or an explicit typed error.",
        lifespan=lifespan,
    )
    app.state.fetcher = service
    auth = [Depends(require_key)]
    # MCP over streamable HTTP (browser_service/mcp_server.py): the same Fetcher and the same keys.
    app.router.routes.append(Route("/mcp", endpoint=_RequireKey(mcp, settings), name="mcp"))
    # /metrics, /healthz, /readyz, /v1/traces/{id} (api_ops.py)
    app.include_router(operations_router(service, settings, auth))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        url = ""
        with contextlib.suppress(Exception):
            body = json.loads(await request.body())
            url = body.get("url", "") if isinstance(body, dict) and isinstance(body.get("url"), str) else ""
        return _invalid(url, _describe(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def http_exception(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and request.url.path in ("/v1/fetch", "/v1/extract"):
            # A body FastAPI cannot even parse (not UTF-8, not JSON) still gets the contract's answer.
            return _invalid("", f"Invalid request: {exc.detail} (send a JSON object of the request's fields).")
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.post("/v1/fetch", response_model=FetchResponse, responses=_ERROR_RESPONSES, dependencies=auth)
    async def fetch(body: FetchRequest, request: Request) -> JSONResponse:
        """Fetch a URL: clean content, or ``ok: false`` with a typed ``error``. One schema for both."""
        result = await _unless_disconnected(request, service.fetch(body))
        if result is None:  # the client is gone; nobody reads this
            return JSONResponse({"detail": "client disconnected"}, status_code=499)
        return answer(result)

    @app.post("/v1/extract", response_model=FetchResponse, responses=_ERROR_RESPONSES, dependencies=auth)
    async def extract(body: ExtractRequest) -> JSONResponse:
        """Extract content from HTML you supply. Same answer shape as ``/v1/fetch``."""
        return answer(await run_in_threadpool(service.extract, body))

    @app.get("/v1/health", response_model=Health, dependencies=auth)
    async def health() -> JSONResponse:
        report = await service.health()
        return JSONResponse(report.model_dump(mode="json"), status_code=503 if report.status == "unavailable" else 200)

    @app.get("/v1/hosts", response_model=list[HostStatus], dependencies=auth)
    async def hosts() -> list[HostStatus]:
        """Every host fetched recently: breaker, lifecycle state and a compact error history."""
        return service.breakers.hosts()

    @app.get("/v1/hosts/{host}", response_model=HostStatus, dependencies=auth)
    async def host(host: str) -> HostStatus:
        """One host (``example.com``, or ``host:port`` for a non-default port)."""
        return service.breakers.state(host.strip().lower())

    @app.get("/v1/quarantine", response_model=QuarantineList, dependencies=auth)
    async def quarantine(limit: int = 100) -> QuarantineList:
        """Results that loaded but looked wrong, newest first, waiting for approve or reject."""
        return await service.quarantined(max(1, min(limit, 1_000)))

    @app.get("/v1/quarantine/{item_id}", response_model=QuarantineItem, dependencies=auth)
    async def quarantine_item(item_id: str) -> QuarantineItem:
        item = await service.quarantined_item(item_id)
        if item is None:
            raise _not_held(item_id)
        return item

    @app.post("/v1/quarantine/{item_id}/approve", response_model=QuarantineDecision, dependencies=auth)
    async def approve(item_id: str) -> QuarantineDecision:
        """Store the result as good, and accept its findings for that URL from now on."""
        decision = await service.approve(item_id)
        if decision is None:
            raise _not_held(item_id)
        return decision

    @app.post("/v1/quarantine/{item_id}/reject", response_model=QuarantineDecision, dependencies=auth)
    async def reject(item_id: str) -> QuarantineDecision:
        """Drop the result; the URL's last good copy stays its baseline."""
        decision = await service.reject(item_id)
        if decision is None:
            raise _not_held(item_id)
        return decision

    @app.get("/v1/tools", dependencies=auth)
    async def tools() -> dict[str, Any]:
        """Tool definitions for function calling (OpenAI and Anthropic formats), from the contract."""
        return tool_definitions()

    @app.get("/", include_in_schema=False)
    async def index() -> dict[str, str]:
        return {"service": "browser-service", "docs": "/docs", "openapi": "/openapi.json", "health": "/v1/health"}

    return app
