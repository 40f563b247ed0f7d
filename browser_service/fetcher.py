"""The pipeline: the only module that knows the order of the stages.

    FetchRequest ─► cache (fresh, or a page of a stored document?) ─► guard ─► engines (http fast
    path, the browser when needed) ─► classify ─► extract ─► budget ─► store ─► FetchResponse
                     ◄── on failure: the stored copy, flagged stale, or the typed error ──

Every stage passes a typed value on or raises a :class:`~browser_service.errors.FetchError`;
:meth:`Fetcher.fetch` turns either into exactly one :class:`FetchResponse` — it never raises
(except ``CancelledError``, which must propagate so the caller's task really stops). The REST
API and the CLI are thin adapters over this class.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TypeVar

from browser_service import detect
from browser_service.answer import error_response, extract_response, extraction_for, fill_content
from browser_service.cache import CacheEntry, CacheStore, DiskCacheStore, cache_key
from browser_service.chromium import DEFAULT_USER_AGENT
from browser_service.contract import (
    Attempt,
    Engine,
    ExtractRequest,
    FetchRequest,
    FetchResponse,
    Health,
    Quality,
)
from browser_service.deadline import Deadline
from browser_service.engines.base import RawPage
from browser_service.engines.browser import BrowserEngine
from browser_service.engines.http import HttpEngine
from browser_service.engines.settle import init_script
from browser_service.errors import BrowserError, FetchError, InternalError, RequestError
from browser_service.guard import NetworkPolicy
from browser_service.pool import BrowserPool
from browser_service.render_policy import needs_browser
from browser_service.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

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
        self.cache: CacheStore = DiskCacheStore(
            self.settings.cache_dir, size_limit_bytes=self.settings.cache_size_mb * 2**20
        )
        # Extraction is CPU work (lxml, trafilatura): off the event loop so I/O keeps flowing.
        self._cpu = ThreadPoolExecutor(max_workers=4, thread_name_prefix="extract")
        self._started = time.monotonic()
        self._closed = False

    async def start(self, *, launch_browser: bool = False) -> None:
        if launch_browser:
            # A long-running service: pay the one-time costs (browser launch, the extractors' lazy
            # imports and caches, ~0.5 s) now rather than in the first request's deadline.
            await asyncio.gather(self.pool.start(), self._run_cpu(_warm_up))

    async def close(self) -> None:
        self._closed = True
        await self.pool.close()
        await self.http.aclose()
        await self.cache.aclose()
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
        if self._closed:
            closing = BrowserError("The service is shutting down; retry shortly.", retry_after_s=5)
            return error_response(url, closing, trace_id, attempts)
        key = cache_key(request)
        entry: CacheEntry | None = None
        try:
            # A backstop: every stage bounds its awaits by the deadline; should one not, the request
            # still ends on time with a typed timeout instead of hanging.
            async with asyncio.timeout(deadline.remaining() + ANSWER_RESERVE_S / 2):
                entry = await self._cache_get(key, deadline)
                response = await self._serve(request, key, entry, deadline, attempts, trace_id)
        except TimeoutError:
            log.error("deadline backstop fired", extra={"trace_id": trace_id, "url": url})
            response = await self._failed(request, entry, deadline.timeout("total"), attempts, trace_id)
        except FetchError as exc:
            response = await self._failed(request, entry, exc, attempts, trace_id)
        except Exception as exc:  # a bug: still one typed answer, and the trace id to find it in logs
            log.exception("internal error", extra={"trace_id": trace_id, "url": url})
            failure = InternalError(f"An internal error occurred ({type(exc).__name__}); trace_id {trace_id}.")
            response = error_response(url, failure, trace_id, attempts)
        response.duration_ms = deadline.elapsed_ms()
        return response

    async def _serve(
        self,
        request: FetchRequest,
        key: str,
        entry: CacheEntry | None,
        deadline: Deadline,
        attempts: list[Attempt],
        trace_id: str,
    ) -> FetchResponse:
        if entry is not None and self._fresh_enough(request, entry):
            return await self._from_cache(request, key, entry, deadline, trace_id, attempts)
        if (
            entry is not None
            and self._revalidatable(request, entry)
            and await self._revalidate(request, entry, deadline, attempts)
        ):
            entry.fetched_at = time.time()
            await self._cache_put(key, entry)
            response = await self._from_cache(request, key, entry, deadline, trace_id, attempts)
            response.quality = response.quality or Quality()
            response.quality.signals.append("revalidated=304")
            return response
        raw = await self._retrieve(request, str(request.url), deadline, attempts)
        response, stored = await deadline.run(
            self._run_cpu(lambda: self._respond(request, raw, trace_id, attempts)), "extract", "extracting the content"
        )
        if response.ok and stored is not None:
            await self._cache_put(key, stored)
        return response

    # --- cache -----------------------------------------------------------------------------------

    def _fresh_enough(self, request: FetchRequest, entry: CacheEntry) -> bool:
        if request.max_age_s is None:
            # A later page of a document comes from the same stored copy as its first page.
            return request.start_index > 0 and entry.age_s() <= self.settings.stale_max_age_s
        return request.max_age_s > 0 and entry.age_s() <= request.max_age_s

    @staticmethod
    def _revalidatable(request: FetchRequest, entry: CacheEntry) -> bool:
        """A conditional GET proves an HTTP-fetched page unchanged; a rendered page's data may not be."""
        return (
            bool(request.max_age_s)
            and entry.engine == "http"
            and request.render != "browser"
            and not request.needs_browser()
            and bool(entry.etag or entry.last_modified)
        )

    async def _revalidate(
        self, request: FetchRequest, entry: CacheEntry, deadline: Deadline, attempts: list[Attempt]
    ) -> bool:
        conditional = dict(request.headers)
        if entry.etag:
            conditional["If-None-Match"] = entry.etag
        if entry.last_modified:
            conditional["If-Modified-Since"] = entry.last_modified
        work = self.http.fetch(entry.url, deadline, headers=conditional, cookies=request.cookies)
        raw = await self._attempt("http", entry.url, attempts, work, judge=False)
        if raw.status_code == 304:
            attempts[-1].detail = "not modified since the stored copy"
            return True
        # Changed: the page is fetched again through the whole pipeline (auto may need the browser).
        attempts[-1].outcome = "escalated"
        attempts[-1].detail = f"revalidation answered {raw.status_code}: the stored copy is outdated"
        return False

    async def _from_cache(
        self,
        request: FetchRequest,
        key: str,
        entry: CacheEntry,
        deadline: Deadline | None,
        trace_id: str,
        attempts: list[Attempt],
    ) -> FetchResponse:
        def build() -> tuple[FetchResponse, CacheEntry | None]:
            response = FetchResponse(
                ok=True,
                url=str(request.url),
                final_url=entry.final_url,
                status_code=entry.status_code,
                content_type=entry.content_type or None,
                engine=entry.engine,
                source="cache",
                age_s=round(entry.age_s(), 1),
                fetched_at=datetime.fromtimestamp(entry.fetched_at, UTC),
                title=entry.title,
                attempts=attempts,
                trace_id=trace_id,
            )
            updated = None
            extraction = None
            if entry.is_html:
                extraction, formats = extraction_for(
                    request, entry.body, entry.final_url, entry.extraction, entry.extracted
                )
                if extraction is not entry.extraction:
                    updated = entry.model_copy(update={"extraction": extraction, "extracted": sorted(formats)})
            fill_content(response, request, entry.body, extraction, entry.title)
            return response, updated

        work = self._run_cpu(build)
        if deadline is not None:
            response, updated = await deadline.run(work, "extract", "extracting the stored copy")
        else:  # the deadline is spent: the stored extraction usually covers it; bound it anyway
            response, updated = await asyncio.wait_for(work, ANSWER_RESERVE_S / 2)
        if updated is not None:
            await self._cache_put(key, updated)
        if "screenshot" in request.formats:
            response.warnings.append("screenshots are not cached; fetch with max_age_s=0 for one")
        return response

    async def _failed(
        self,
        request: FetchRequest,
        entry: CacheEntry | None,
        exc: FetchError,
        attempts: list[Attempt],
        trace_id: str,
    ) -> FetchResponse:
        """Graceful degradation: the stored copy, flagged stale with the live error; else the error."""
        url = str(request.url)
        usable = (
            entry is not None
            and request.allow_stale
            and not isinstance(exc, RequestError)
            and entry.age_s() <= self.settings.stale_max_age_s
        )
        if not usable or entry is None:
            return error_response(url, exc, trace_id, attempts)
        try:
            response = await self._from_cache(request, cache_key(request), entry, None, trace_id, attempts)
        except (FetchError, TimeoutError):
            return error_response(url, exc, trace_id, attempts)
        response.stale = True
        response.live_error = exc.info()
        response.warnings.insert(
            0,
            f"the live fetch failed ({exc.kind.value}); this is the copy stored {response.age_s:.0f} s ago. "
            "See live_error.",
        )
        return response

    async def _cache_get(self, key: str, deadline: Deadline) -> CacheEntry | None:
        try:
            return await deadline.run(self.cache.get(key), "queue", "reading the cache", cap_s=1.0)
        except Exception as exc:  # a broken cache is a miss, never a failed fetch
            log.warning("cache read failed", extra={"error": repr(exc)})
            return None

    async def _cache_put(self, key: str, entry: CacheEntry) -> None:
        try:
            await asyncio.wait_for(self.cache.put(key, entry), 1.0)
        except Exception as exc:
            log.warning("cache write failed", extra={"error": repr(exc)})

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

    async def _run_cpu(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._cpu, fn)

    # --- answers -------------------------------------------------------------------------------

    def _respond(
        self, request: FetchRequest, raw: RawPage, trace_id: str, attempts: list[Attempt]
    ) -> tuple[FetchResponse, CacheEntry | None]:
        """The answer for a live page, and the cache entry to store if it is a good one."""
        fetched_at = time.time()
        response = FetchResponse(
            ok=True,
            url=str(request.url),
            final_url=raw.final_url,
            status_code=raw.status_code,
            content_type=raw.content_type or None,
            engine=raw.engine,
            source="live",
            fetched_at=datetime.fromtimestamp(fetched_at, UTC),
            attempts=attempts,
            trace_id=trace_id,
            warnings=list(raw.warnings),
        )
        body = raw.text or ""
        extraction, formats = extraction_for(request, body, raw.final_url) if raw.kind == "html" else (None, None)
        fill_content(response, request, body, extraction, raw.title)
        if raw.screenshot is not None:
            response.screenshot = base64.b64encode(raw.screenshot).decode("ascii")
        if raw.redirects:
            response.quality = response.quality or Quality()
            response.quality.signals.append(f"redirects={len(raw.redirects)}")
        entry = CacheEntry(
            url=raw.url,
            final_url=raw.final_url,
            fetched_at=fetched_at,
            status_code=raw.status_code,
            content_type=raw.content_type,
            engine=raw.engine,
            is_html=raw.kind == "html",
            body=body,
            title=response.title,
            etag=raw.headers.get("etag"),
            last_modified=raw.headers.get("last-modified"),
            extraction=extraction,
            extracted=sorted(formats or ()),
        )
        return response, entry

    def extract(self, request: ExtractRequest) -> FetchResponse:
        return extract_response(request)

    # --- health --------------------------------------------------------------------------------

    def health(self) -> Health:
        pool = self.pool.health()
        return Health(
            status=pool.state,
            uptime_s=round(time.monotonic() - self._started, 1),
            pool=pool,
            cache=self.cache.health(),
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
