"""The pipeline: the only module that knows the order of the stages.

    FetchRequest ─► guard ─► engines (http fast path, browser when needed) ─► classify ─► extract
                 ─► budget (a page of the text) ─► FetchResponse

Every stage passes a typed value on or raises a :class:`~browser_service.errors.FetchError`;
:meth:`Fetcher.fetch` turns either into exactly one :class:`FetchResponse` — it never raises
(except ``CancelledError``, which must propagate so the caller's task really stops). The REST
API, the CLI and the MCP server are thin adapters over this class.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from browser_service import budget, detect
from browser_service.chromium import DEFAULT_USER_AGENT
from browser_service.contract import (
    TEXT_FORMATS,
    Attempt,
    CacheHealth,
    Engine,
    ExtractOptions,
    ExtractRequest,
    FetchRequest,
    FetchResponse,
    Format,
    Health,
    Quality,
)
from browser_service.deadline import Deadline
from browser_service.engines.base import RawPage
from browser_service.engines.browser import BrowserEngine
from browser_service.engines.http import HttpEngine
from browser_service.engines.settle import init_script
from browser_service.errors import BrowserError, EmptyContent, FetchError, InternalError
from browser_service.guard import NetworkPolicy
from browser_service.pool import BrowserPool
from browser_service.render_policy import needs_browser
from browser_service.settings import Settings
from extractors import Extraction, extract

log = logging.getLogger(__name__)

#: Time kept back from the deadline to build and send the answer.
ANSWER_RESERVE_S = 0.25


class Fetcher:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        user_agent = self.settings.user_agent or DEFAULT_USER_AGENT
        self.policy = NetworkPolicy(self.settings.allow)
        self.pool = BrowserPool(
            self.settings, user_agent=user_agent, init_script=init_script(self.settings.settle_cap_ms)
        )
        self.http = HttpEngine(
            self.policy,
            user_agent=user_agent,
            max_bytes=self.settings.max_bytes,
            max_redirects=self.settings.max_redirects,
        )
        self.browser = BrowserEngine(
            self.pool,
            self.policy,
            max_bytes=self.settings.max_bytes,
            settle_cap_ms=self.settings.settle_cap_ms,
            settle_quiet_ms=self.settings.settle_quiet_ms,
        )
        # Extraction is CPU work (lxml, trafilatura): off the event loop so I/O keeps flowing.
        self._cpu = ThreadPoolExecutor(max_workers=4, thread_name_prefix="extract")
        self._started = time.monotonic()

    async def start(self, *, launch_browser: bool = False) -> None:
        if launch_browser:
            # A long-running service: pay the one-time costs (browser launch, the extractors' lazy
            # imports and caches, ~0.5 s) now rather than in the first request's deadline.
            await asyncio.gather(self.pool.start(), self._run_cpu(_warm_up))

    async def close(self) -> None:
        await self.pool.close()
        await self.http.aclose()
        self._cpu.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> Fetcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- fetch ---------------------------------------------------------------------------------

    async def fetch(self, request: FetchRequest) -> FetchResponse:
        trace_id = uuid.uuid4().hex
        timeout_ms = min(request.timeout_ms, self.settings.max_timeout_ms)
        # The stages get the deadline minus a reserve, so the answer itself is on time.
        deadline = Deadline(max(0.1, timeout_ms / 1000 - ANSWER_RESERVE_S))
        attempts: list[Attempt] = []
        url = str(request.url)
        try:
            # A backstop: every stage bounds its awaits by the deadline; should one not, the request
            # still ends on time with a typed timeout instead of hanging.
            async with asyncio.timeout(deadline.remaining() + ANSWER_RESERVE_S / 2):
                raw = await self._retrieve(request, url, deadline, attempts)
                response = await deadline.run(
                    self._run_cpu(lambda: self._respond(request, raw, trace_id, attempts)),
                    "extract",
                    "extracting the content",
                )
        except TimeoutError:
            log.error("deadline backstop fired", extra={"trace_id": trace_id, "url": url})
            response = error_response(url, deadline.timeout("total"), trace_id, attempts)
        except FetchError as exc:
            response = error_response(url, exc, trace_id, attempts)
        except Exception as exc:  # a bug: still one typed answer, and the trace id to find it in logs
            log.exception("internal error", extra={"trace_id": trace_id, "url": url})
            response = error_response(
                url,
                InternalError(f"An internal error occurred ({type(exc).__name__}); trace_id {trace_id}."),
                trace_id,
                attempts,
            )
        response.duration_ms = deadline.elapsed_ms()
        return response

    async def _retrieve(
        self, request: FetchRequest, url: str, deadline: Deadline, attempts: list[Attempt]
    ) -> RawPage:
        if request.render == "http":
            return await self._attempt("http", url, attempts, self._http(request, url, deadline))
        if request.render == "browser" or request.needs_browser():
            return await self._browser_with_restart(request, url, deadline, attempts)
        raw = await self._attempt("http", url, attempts, self._http(request, url, deadline), judge=False)
        reason = needs_browser(raw.text or "") if raw.kind == "html" and raw.status_code < 300 else None
        if reason is None:
            _judge(raw, attempts[-1])  # judged here, not in _attempt: a page that escalates is not judged
            return raw
        attempts[-1].outcome = "escalated"
        attempts[-1].detail = reason
        return await self._browser_with_restart(request, raw.final_url, deadline, attempts)

    async def _browser_with_restart(
        self, request: FetchRequest, url: str, deadline: Deadline, attempts: list[Attempt]
    ) -> RawPage:
        """The browser engine; once more on a relaunched browser if it crashed under this request."""
        try:
            return await self._attempt("browser", url, attempts, self._render(request, url, deadline))
        except BrowserError as exc:
            if not exc.retryable or deadline.remaining() < 1.0:
                raise
            return await self._attempt("browser", url, attempts, self._render(request, url, deadline))

    async def _attempt(
        self,
        engine: Engine,
        url: str,
        attempts: list[Attempt],
        work: Awaitable[RawPage],
        *,
        judge: bool = True,
    ) -> RawPage:
        started = time.monotonic()
        attempt = Attempt(engine=engine, url=url, outcome="ok", duration_ms=0)
        attempts.append(attempt)
        try:
            raw = await work
            attempt.status_code = raw.status_code
            attempt.url = raw.final_url
        except FetchError as exc:
            _record_failure(attempt, exc)
            raise
        finally:
            attempt.duration_ms = int((time.monotonic() - started) * 1000)
        if judge:
            _judge(raw, attempt)
        return raw

    def _http(self, request: FetchRequest, url: str, deadline: Deadline) -> Awaitable[RawPage]:
        return self.http.fetch(url, deadline, headers=request.headers, cookies=request.cookies)

    def _render(self, request: FetchRequest, url: str, deadline: Deadline) -> Awaitable[RawPage]:
        return self.browser.fetch(
            url,
            deadline,
            headers=request.headers,
            cookies=request.cookies,
            wait_until=request.wait_until,
            wait_for=request.wait_for,
            wait_ms=request.wait_ms,
            screenshot="screenshot" in request.formats,
        )

    async def _run_cpu(self, fn: Callable[[], FetchResponse]) -> FetchResponse:
        return await asyncio.get_running_loop().run_in_executor(self._cpu, fn)

    # --- answers -------------------------------------------------------------------------------

    def _respond(
        self, request: FetchRequest, raw: RawPage, trace_id: str, attempts: list[Attempt]
    ) -> FetchResponse:
        response = FetchResponse(
            ok=True,
            url=str(request.url),
            final_url=raw.final_url,
            status_code=raw.status_code,
            content_type=raw.content_type or None,
            engine=raw.engine,
            source="live",
            fetched_at=datetime.now(UTC),
            attempts=attempts,
            trace_id=trace_id,
            warnings=list(raw.warnings),
        )
        fill_content(response, request, raw.text or "", raw.kind == "html", raw.title)
        if raw.screenshot is not None:
            response.screenshot = base64.b64encode(raw.screenshot).decode("ascii")
        if raw.redirects:
            response.quality = response.quality or Quality()
            response.quality.signals.append(f"redirects={len(raw.redirects)}")
        return response

    def extract(self, request: ExtractRequest) -> FetchResponse:
        return extract_response(request)

    # --- health --------------------------------------------------------------------------------

    def health(self) -> Health:
        pool = self.pool.health()
        return Health(
            status=pool.state,
            uptime_s=round(time.monotonic() - self._started, 1),
            pool=pool,
            cache=CacheHealth(backend="none"),
        )


def _record_failure(attempt: Attempt, exc: FetchError) -> None:
    attempt.outcome = exc.kind
    attempt.detail = exc.message
    attempt.status_code = attempt.status_code or exc.status_code


def _judge(raw: RawPage, attempt: Attempt) -> None:
    """Classify the page (``detect``) and record a failing verdict on the attempt that fetched it."""
    try:
        detect.classify(raw)
    except FetchError as exc:
        _record_failure(attempt, exc)
        raise


def _warm_up() -> FetchResponse:
    page = "<html><head><title>w</title></head><body><article><h1>w</h1><p>warm up</p></article></body></html>"
    return extract_response(ExtractRequest.model_validate({"html": page, "url": "http://localhost/"}))


def extract_response(request: ExtractRequest) -> FetchResponse:
    """Run the extractors on caller-supplied HTML: the same answer shape as a fetch."""
    trace_id = uuid.uuid4().hex
    started = time.monotonic()
    url = str(request.url)
    response = FetchResponse(
        ok=True, url=url, final_url=url, source="input", content_type="text/html", trace_id=trace_id
    )
    try:
        fill_content(response, request, request.html, True, None)
    except FetchError as exc:
        response = error_response(url, exc, trace_id, [])
    response.duration_ms = int((time.monotonic() - started) * 1000)
    return response


def error_response(url: str, exc: FetchError, trace_id: str, attempts: list[Attempt]) -> FetchResponse:
    return FetchResponse(
        ok=False, url=url, status_code=exc.status_code, error=exc.info(), attempts=attempts, trace_id=trace_id
    )


_EXTRACTED: dict[Format, str] = {"markdown": "markdown", "text": "text", "html": "html"}


def fill_content(
    response: FetchResponse, options: ExtractOptions, body: str, is_html: bool, title: str | None
) -> None:
    """Put the requested formats of ``body`` into ``response``, paged by the context budget."""
    formats = options.formats
    full: dict[Format, str] = {}
    if is_html:
        want = {f for f in formats if f in ("markdown", "text", "html", "links", "metadata")}
        extraction: Extraction = extract(
            body, response.final_url or response.url,
            main_content=options.main_content, selectors=options.selector_specs() or None, want=want,
        )
        response.title = extraction.title or title
        for fmt, attr in _EXTRACTED.items():
            if fmt in formats:
                full[fmt] = getattr(extraction, attr)
        if "raw_html" in formats:
            full["raw_html"] = body
        if "links" in formats:
            response.links = extraction.links
        if "metadata" in formats:
            response.metadata = extraction.metadata
        if options.selectors:
            response.fields = extraction.fields
        response.warnings.extend(extraction.warnings)
        if not extraction.main_content_found and options.main_content:
            response.warnings.append("no main content could be isolated; the whole page's text is returned")
    else:
        # JSON, plain text and other text types come back as they are, in every text format asked for.
        for fmt in formats:
            if fmt in TEXT_FORMATS:
                full[fmt] = body
        if "links" in formats or "metadata" in formats or options.selectors:
            response.warnings.append("links, metadata and selectors apply to HTML only")

    primary = options.primary_text_format()
    if primary is not None and not full[primary].strip():
        raise EmptyContent(
            f"{response.final_url or response.url} has no text content"
            + (" even after rendering in the browser." if response.engine == "browser" else ".")
            + " The page may be empty, or need a wait_for selector for content that loads late."
        )
    for fmt, text in full.items():
        if fmt == primary:
            chunk, response.content = budget.page(text, fmt, options.start_index, options.max_chars)
            response.content_sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
            if options.start_index > len(text):
                response.warnings.append(
                    f"start_index {options.start_index} is past the end of the {fmt} ({len(text)} characters)"
                )
        elif options.start_index > 0:
            response.warnings.append(f"{fmt} is omitted: start_index pages through {primary} only")
            continue
        else:
            chunk, part = budget.page(text, fmt, 0, options.max_chars)
            if part.truncated:
                response.warnings.append(
                    f"{fmt} was cut to {len(chunk)} of {len(text)} characters; request it first in formats "
                    "to page through it"
                )
        setattr(response, fmt, chunk)
