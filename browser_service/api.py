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
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from browser_service import operator_page
from browser_service.admission import IdentifyCaller
from browser_service.api_ops import operations_router
from browser_service.batch import NDJSON, Batch, BatchRequest, BatchResponse
from browser_service.body_limit import LimitBody
from browser_service.contract import (
    API_VERSION,
    ErrorBody,
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
    SessionCreate,
    SessionDeleted,
    SessionInfo,
)
from browser_service.encoding import utf8_safe
from browser_service.errors import ERROR_CLASSES, FetchError, InvalidRequest
from browser_service.fetcher import Fetcher
from browser_service.mcp_server import StreamableHTTP
from browser_service.settings import Settings
from browser_service.shared import SharedUnavailable
from browser_service.tools import tool_definitions

T = TypeVar("T")

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": FetchResponse, "description": desc}
    for code, desc in (
        (403, "forbidden_target, robots_disallowed"),
        (404, "session_not_found"),
        (413, "invalid_request: the request body is over BROWSER_SERVICE_MAX_BODY_BYTES"),
        (422, "invalid_request (names the field), action_failed (names the step)"),
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
    # Both may echo what the caller sent, which JSON lets hold a lone surrogate ("\ud800") that no
    # UTF-8 answer can carry: encoding it raised, and the caller got a bare 500.
    return answer(
        FetchResponse(
            ok=False,
            url=utf8_safe(url),
            trace_id=uuid.uuid4().hex,
            error=ErrorInfo(kind=ErrorKind.INVALID_REQUEST, message=utf8_safe(message), retryable=False),
        )
    )


async def _session_answer(work: Awaitable[SessionInfo | SessionDeleted]) -> JSONResponse:
    try:
        result = await work
    except FetchError as exc:
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))} if exc.retry_after_s else None
        body = ErrorBody(error=exc.info()).model_dump(mode="json")
        return JSONResponse(body, status_code=exc.http_status, headers=headers)
    return JSONResponse(result.model_dump(mode="json"))


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
    # Pure ASGI, outermost: bodies are bounded for every route; the caller is known to admission.py.
    app.add_middleware(IdentifyCaller, api_keys=settings.api_keys)
    app.add_middleware(LimitBody, max_bytes=settings.max_body_bytes)
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

    @app.exception_handler(SharedUnavailable)
    async def shared_unavailable(request: Request, exc: SharedUnavailable) -> JSONResponse:
        # A review call (quarantine) needs the state all replicas share; a fetch never gets here.
        return JSONResponse(
            {"detail": f"Redis, where the replicas' shared state is, did not answer: {exc}. Retry shortly."},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_exception(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and request.url.path in ("/v1/fetch", "/v1/extract", "/v1/batch"):
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

    @app.post(
        "/v1/batch",
        status_code=200,
        response_class=BatchResponse,
        responses={
            200: {
                "description": 'NDJSON: one {"index", "response": FetchResponse} line per input as it completes, '
                'then {"summary": …}',
                "content": {NDJSON: {}},
            },
            422: {  # the whole batch refused; JSON, not the stream's media type
                "description": "invalid_request (names the field)",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FetchResponse"}}},
            },
        },
        dependencies=auth,
    )
    async def batch(body: BatchRequest) -> Response:
        """Fetch many URLs; the answers stream back as NDJSON lines as they complete (``batch.py``)."""
        try:
            return BatchResponse(Batch(service, body))
        except InvalidRequest as exc:  # more requests than BROWSER_SERVICE_BATCH_MAX
            return _invalid("", exc.message)

    @app.post("/v1/extract", response_model=FetchResponse, responses=_ERROR_RESPONSES, dependencies=auth)
    async def extract(body: ExtractRequest) -> JSONResponse:
        """Extract content from HTML you supply. Same answer shape as ``/v1/fetch``."""
        return answer(await service.extract_admitted(body))

    @app.get("/v1/health", response_model=Health, dependencies=auth)
    async def health() -> JSONResponse:
        report = await service.health()
        return JSONResponse(report.model_dump(mode="json"), status_code=503 if report.status == "unavailable" else 200)

    @app.get("/v1/hosts", response_model=list[HostStatus], dependencies=auth)
    async def hosts() -> list[HostStatus]:
        """Every host fetched recently: breaker, lifecycle state and a compact error history."""
        return await service.circuits.hosts()

    @app.get("/v1/hosts/{host}", response_model=HostStatus, dependencies=auth)
    async def host(host: str) -> HostStatus:
        """One host (``example.com``, or ``host:port`` for a non-default port)."""
        return await service.circuits.state(host.strip().lower())

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

    # --- named sessions (sessions.py): errors are typed (session_not_found 404, …) as {ok, error} ---

    _session_errors: dict[int | str, dict[str, Any]] = {
        404: {"model": ErrorBody, "description": "session_not_found"},
        422: {"model": ErrorBody, "description": "invalid_request"},
        503: {"model": ErrorBody, "description": "overloaded (too many sessions)"},
    }

    @app.post("/v1/sessions", response_model=SessionInfo, responses=_session_errors, dependencies=auth)
    async def create_session(body: SessionCreate | None = None) -> JSONResponse:
        """A named session: fetches naming its id share cookies and localStorage, across restarts."""
        return await _session_answer(service.sessions.create((body or SessionCreate()).ttl_s))

    @app.get("/v1/sessions/{session_id}", response_model=SessionInfo, responses=_session_errors, dependencies=auth)
    async def session(session_id: str) -> JSONResponse:
        return await _session_answer(service.sessions.info(session_id))

    @app.delete(
        "/v1/sessions/{session_id}", response_model=SessionDeleted, responses=_session_errors, dependencies=auth
    )
    async def delete_session(session_id: str) -> JSONResponse:
        """Forget the session and its stored state; its id is session_not_found from then on."""
        return await _session_answer(service.sessions.delete(session_id))

    @app.get("/v1/tools", dependencies=auth)
    async def tools() -> dict[str, Any]:
        """Tool definitions for function calling (OpenAI and Anthropic formats), from the contract."""
        return tool_definitions()

    operator_page.mount(app)  # the operator page at / (a client of the routes above)
    return app
