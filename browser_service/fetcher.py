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
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import anyio.to_thread

from browser_service import detect, drift, quality, timings
from browser_service.admission import Admission
from browser_service.answer import error_response, extract_response, extraction_for, fill_content
from browser_service.breaker import BreakerConfig, Breakers, CircuitOpenRefusal
from browser_service.breaker_shared import EmbeddedBreakers, HostBreakers, RedisBreakers
from browser_service.cache import CacheEntry, CacheStore, DiskCacheStore, RedisCacheStore, cache_key
from browser_service.chromium import DEFAULT_USER_AGENT
from browser_service.contract import (
    Attempt,
    Engine,
    ErrorKind,
    ExtractRequest,
    FetchRequest,
    FetchResponse,
    Health,
    Quality,
    QuarantineDecision,
    QuarantineItem,
    QuarantineList,
)
from browser_service.deadline import Deadline
from browser_service.engines.base import RawPage
from browser_service.engines.browser import BrowserEngine
from browser_service.engines.http import HttpEngine
from browser_service.engines.settle import init_script
from browser_service.errors import (
    BrowserError,
    CircuitOpen,
    FetchError,
    HTTPStatusError,
    InternalError,
    Overloaded,
    RateLimited,
    RequestError,
    SuspectContent,
    UpstreamError,
)
from browser_service.guard import NetworkPolicy, host_key
from browser_service.limits import HostLimits, LimitsConfig, LimitWait, RetryAfterActive
from browser_service.limits_shared import RedisHostLimits
from browser_service.pool import BrowserPool
from browser_service.quarantine import Quarantine, QuarantineStore, new_item
from browser_service.quarantine_shared import RedisQuarantineStore
from browser_service.render_policy import needs_browser
from browser_service.retry import MIN_TRY_S, RetryPolicy, with_retries
from browser_service.robots import RobotsRules
from browser_service.sessions import LiveSession, RedisSessionStore, SessionStore
from browser_service.settings import Settings
from browser_service.shared import RedisLink
from browser_service.telemetry import Telemetry, observed
from browser_service.traces_shared import RedisTraces
from browser_service.watchdog import Watchdog
from extractors import Extraction

if TYPE_CHECKING:
    from browser_service.replay import Tape

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Time kept back from the deadline to build and send the answer.
ANSWER_RESERVE_S = 0.25


class Fetcher:
    def __init__(self, settings: Settings | None = None, *, tape: Tape | None = None) -> None:
        """``tape`` (``replay.py``): record every exchange into a recording, or serve only from one."""
        self.settings = settings or Settings()
        #: Recording or replaying: answers must be what the tape holds, so no live drift against the cache.
        self._taped = tape is not None
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
            refresh_within_s=self.settings.settle_cap_ms / 1000,
            transport=tape.http_transport(self.policy) if tape is not None else None,
        )
        self.browser = BrowserEngine(
            self.pool,
            self.policy,
            max_bytes=self.settings.max_bytes,
            settle_cap_ms=self.settings.settle_cap_ms,
            settle_quiet_ms=self.settings.settle_quiet_ms,
            challenge_wait_ms=self.settings.challenge_wait_ms,
            max_screenshot_bytes=self.settings.max_screenshot_bytes,
        )
        #: Redis, when replicas share state (BROWSER_SERVICE_REDIS_URL); None: everything embedded.
        self.shared = (
            RedisLink(self.settings.redis_url, timeout_s=self.settings.redis_timeout_ms / 1000)
            if self.settings.redis_url
            else None
        )
        self.cache: CacheStore = (
            RedisCacheStore(self.shared, ttl_s=self.settings.stale_max_age_s)
            if self.shared is not None
            else DiskCacheStore(self.settings.cache_dir, size_limit_bytes=self.settings.cache_size_mb * 2**20)
        )
        self.robots = RobotsRules(self.http)
        if tape is not None:  # DNS answers, browser contexts, the egress proxy
            tape.attach(self.policy, self.pool)
        self.quarantine: Quarantine = (
            RedisQuarantineStore(self.shared, max_items=self.settings.quarantine_max_items)
            if self.shared is not None
            else QuarantineStore(self.settings.cache_dir / "quarantine", max_items=self.settings.quarantine_max_items)
        )
        s = self.settings
        ttl, max_ttl, most = s.session_ttl_s, s.session_max_ttl_s, s.session_max_count
        self.sessions = (
            RedisSessionStore(self.shared, default_ttl_s=ttl, max_ttl_s=max_ttl, max_sessions=most)
            if self.shared is not None
            else SessionStore(s.cache_dir / "sessions", default_ttl_s=ttl, max_ttl_s=max_ttl, max_sessions=most)
        )
        self.retry_policy = RetryPolicy(attempts=s.retry_attempts, backoff_s=s.retry_backoff_ms / 1000)
        breaker_config = BreakerConfig(
            window=s.breaker_window,
            minimum_calls=s.breaker_min_calls,
            failure_rate=s.breaker_failure_rate,
            open_s=s.breaker_open_s,
            half_open_calls=s.breaker_half_open_calls,
        )
        #: This process's breakers (with Redis: the fallback while it is unreachable).
        self.breakers = Breakers(breaker_config)
        #: The breakers every fetch goes through: embedded, or shared by the replicas (breaker_shared.py).
        self.circuits: HostBreakers = (
            RedisBreakers(self.shared, breaker_config, self.breakers, trial_lease_s=s.max_timeout_ms / 1000)
            if self.shared is not None
            else EmbeddedBreakers(self.breakers)
        )
        self.limits = HostLimits(
            LimitsConfig(
                per_host_concurrency=s.host_concurrency,
                min_interval_s=s.host_interval_ms / 1000,
                max_retry_after_s=s.max_retry_after_s,
            ),
            shared=RedisHostLimits(self.shared) if self.shared is not None else None,
        )
        # Extraction is CPU work (lxml, trafilatura): off the event loop so I/O keeps flowing.
        self._cpu = ThreadPoolExecutor(max_workers=4, thread_name_prefix="extract")
        self._started = time.monotonic()
        self._closed = False
        #: Per-caller concurrency and the shutdown drain: every fetch and extract enters through it.
        self.admission = Admission(self.settings.key_concurrency, self.settings.shutdown_grace_s)
        # Observability: each fetch's trace, log event and metrics (telemetry.py); slot heartbeats (watchdog.py).
        self.telemetry = Telemetry(s)
        if self.shared is not None:
            self.telemetry.shared = RedisTraces(self.shared, s.shared_trace_buffer)
        self.watchdog = Watchdog(
            self.pool,
            interval_s=s.heartbeat_interval_s,
            timeout_s=s.heartbeat_timeout_ms / 1000,
            lease_grace_s=s.lease_grace_s,
        )
        self.telemetry.metrics.watch(self)

    async def start(self, *, launch_browser: bool = False) -> None:
        self.watchdog.start()
        if launch_browser:
            # A long-running service: pay the one-time costs (browser launch, the extractors' lazy
            # imports and caches, ~0.5 s) now rather than in the first request's deadline.
            await asyncio.gather(self.pool.start(), self._run_cpu(_warm_up))

    async def close(self) -> None:
        if self._closed:  # idempotent: an adapter's shutdown may run after an explicit close
            return
        self._closed = True
        await self.watchdog.stop()
        await self.pool.close()
        await self.http.aclose()
        await self.cache.aclose()
        await self.quarantine.aclose()
        self.sessions.close()
        await self.telemetry.aclose()
        if self.shared is not None:
            await self.shared.aclose()
        self._cpu.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> Fetcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- fetch ---------------------------------------------------------------------------------

    @observed
    async def fetch(self, request: FetchRequest) -> FetchResponse:
        return await self.admission.run(str(request.url), lambda: self._fetch(request))

    async def _fetch(self, request: FetchRequest) -> FetchResponse:
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
                if request.session is not None:
                    response = await self._in_session(request, key, deadline, attempts, trace_id)
                else:
                    entry = await self._cache_get(key, deadline)
                    response = await self._serve(request, key, entry, deadline, attempts, trace_id)
        except TimeoutError as exc:
            log.error("deadline backstop fired", extra={"trace_id": trace_id, "url": url})
            # On a stalled event loop the backstop can fire while a stage's own typed timeout is
            # still on its way out: that one says where the time went.
            failure = _typed_cause(exc) or deadline.timeout("total")
            response = await self._failed(request, entry, failure, attempts, trace_id)
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
        url = str(request.url)
        host = host_key(url)
        if self.settings.respect_robots if request.respect_robots is None else request.respect_robots:
            await self.robots.check(url, deadline)
        raw = await with_retries(self.retry_policy, deadline, lambda: self._try(request, url, host, deadline, attempts))
        accepted = await self._accepted(url, deadline)
        baseline = _text_chars(entry.extraction) if entry is not None and entry.extraction is not None else None
        good_copy = entry if entry is not None and not self._taped and self.settings.live_drift_threshold > 0 else None
        response, stored, findings = await deadline.run(
            self._run_cpu(lambda: self._respond(request, raw, trace_id, attempts, baseline, accepted, good_copy)),
            "extract",
            "extracting the content",
        )
        if findings and stored is not None:
            return await self._suspect(request, key, response, stored, findings, baseline, deadline)
        if response.ok and stored is not None and request.session is None:
            await self._cache_put(key, stored)
        return response

    async def _in_session(
        self, request: FetchRequest, key: str, deadline: Deadline, attempts: list[Attempt], trace_id: str
    ) -> FetchResponse:
        """A fetch in a named session (``sessions.py``): the session's state in and out, one request
        at a time. Never the shared cache, in either direction: the page is personal."""
        assert request.session is not None
        async with self.sessions.use(request.session, deadline) as live:
            if request.cookies:
                live.add_cookies(str(request.url), request.cookies)
            return await self._serve(request, key, None, deadline, attempts, trace_id)

    # --- failure handling around one try ------------------------------------------------------

    async def _try(
        self, request: FetchRequest, url: str, host: str, deadline: Deadline, attempts: list[Attempt]
    ) -> RawPage:
        """One try at the origin, admitted by the host's breaker and politeness limits.

        Its outcome is recorded on the host's breaker unless it says nothing about the host (the
        caller's error, our own overload, a wait that did not fit).
        """
        try:
            permit = await self.circuits.before(host)
        except CircuitOpenRefusal as refusal:
            raise CircuitOpen(
                f"{host} is failing, so requests to it are paused: {refusal.summary}. Retry after "
                f"{refusal.retry_after_s:.0f} s, or accept a cached copy (max_age_s).",
                retry_after_s=refusal.retry_after_s,
                host_state=refusal.state,
            ) from None
        try:
            async with self._host_slot(host, deadline):
                raw = await self._retrieve(request, url, deadline, attempts)
        except BaseException as exc:
            outcome = _breaker_outcome(exc) if isinstance(exc, FetchError) else None
            # Embedded, these complete without suspending (as the sync calls they replace); shared, a
            # trial place a cancelled request could not give back frees itself after its lease.
            if outcome is None:
                await self.circuits.release(host, permit)
            else:
                await self.circuits.record(host, outcome[0], failure=outcome[1], permit=permit)
            if isinstance(exc, RateLimited | HTTPStatusError) and exc.retry_after_s and exc.phase != "queue":
                # Honoured by the later requests to this host too, not only by this one's retry.
                honoured = self.limits.note_retry_after(host, exc.retry_after_s)
                await self.limits.share_retry_after(host, honoured)
                await self.circuits.note_throttled(host, honoured)
            raise
        await self.circuits.record(host, "ok", failure=False, permit=permit)
        return raw

    @contextlib.asynccontextmanager
    async def _host_slot(self, host: str, deadline: Deadline) -> AsyncIterator[None]:
        """The host's politeness limits (concurrency, pacing, a Retry-After it asked for) as typed errors.

        Both errors carry phase "queue": they come from our own wait, not from the host, so the
        host's breaker does not count them.
        """
        slot = self.limits.slot(host, max(0.0, deadline.remaining() - MIN_TRY_S))
        try:
            await slot.__aenter__()
        except RetryAfterActive as pause:
            raise RateLimited(
                f"{host} asked for a pause (Retry-After) that lasts {pause.retry_after_s:.0f} s more, longer "
                "than this request's deadline allows; it was not contacted. Retry after the pause, or accept "
                "a cached copy (max_age_s).",
                retry_after_s=pause.retry_after_s,
                phase="queue",
            ) from None
        except LimitWait as wait:
            raise Overloaded(
                f"Requests to {host} are limited ({wait.reason}: {self.settings.host_concurrency} at a time"
                + (" across replicas" if self.shared is not None else "")
                + (f", {self.settings.host_interval_ms} ms apart" if self.settings.host_interval_ms else "")
                + ") and this one's turn did not come within its deadline. Retry shortly.",
                retry_after_s=max(1.0, wait.wait_s),
                phase="queue",
            ) from None
        try:
            yield
        except BaseException as exc:
            if not await slot.__aexit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            await slot.__aexit__(None, None, None)

    async def _accepted(self, url: str, deadline: Deadline) -> frozenset[str]:
        try:  # with Redis, a network call on every live fetch: bounded by the deadline too
            return await asyncio.wait_for(self.quarantine.accepted(url), _store_wait(deadline))
        except Exception as exc:  # a broken store must not fail fetches
            log.warning("quarantine read failed", extra={"error": repr(exc)})
            return frozenset()

    async def _suspect(
        self,
        request: FetchRequest,
        key: str,
        response: FetchResponse,
        stored: CacheEntry,
        findings: list[quality.Finding],
        baseline: int | None,
        deadline: Deadline,
    ) -> FetchResponse:
        """Quarantine a suspect result; answer it flagged, or fail with ``suspect_content``."""
        self.telemetry.metrics.suspect(f.code for f in findings)
        detail = "; ".join(str(f) for f in findings)
        item_id: str | None = None
        if request.session is None:  # a session's page is personal: never held where others can see it
            item_id = await self._hold(key, stored, findings, baseline, deadline)
        held = (
            f"held for review as quarantine item {item_id}"
            if item_id
            else "not kept (the quarantine store failed)"
            if request.session is None
            else "not kept for review (a session's page is personal)"
        )
        if request.on_suspect == "return":
            response.quality = response.quality or Quality()
            response.quality.verdict = "suspect"
            response.quality.signals.extend(f.code for f in findings)
            response.warnings.insert(0, f"this result looks wrong ({detail}); it was not cached and is {held}")
            return response
        raise SuspectContent(
            f"{response.final_url or response.url} loaded, but the result looks wrong: {detail}. It was not "
            f"cached and is {held}. Retry later, or send on_suspect='return' to receive it flagged.",
            status_code=response.status_code,
            quarantine_id=item_id,
        )

    async def _hold(
        self, key: str, stored: CacheEntry, findings: list[quality.Finding], baseline: int | None, deadline: Deadline
    ) -> str | None:
        """Quarantine the result; its item id, or None if the store failed."""
        new = new_item(
            key=key,
            entry=stored,
            text=_text(stored.extraction),
            findings=[str(f) for f in findings],
            codes=[f.code for f in findings],
            baseline_chars=baseline,
        )
        try:
            await asyncio.wait_for(self.quarantine.hold(new), _store_wait(deadline))
        except Exception as exc:
            log.warning("quarantine write failed", extra={"error": repr(exc)})
            return None
        return new.item.id

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
        with contextlib.suppress(Exception):  # bounded by the link; describing never fails the answer
            await self._describe_host(url, exc)
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

    async def _describe_host(self, url: str, exc: FetchError) -> None:
        """Add the host's state and its compact error history to an error about it."""
        if not isinstance(exc, UpstreamError | CircuitOpen):
            return
        status = await self.circuits.known(host_key(url))
        if status is None:
            return
        exc.host_state = exc.host_state or status.state
        # A circuit_open message already tells the history (written when the call was refused).
        if status.failures and not isinstance(exc, CircuitOpen):
            exc.message = f"{exc.message} History: {status.summary}"

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

    async def _retrieve(self, request: FetchRequest, url: str, deadline: Deadline, attempts: list[Attempt]) -> RawPage:
        if request.render == "http":
            return await self._attempt("http", url, attempts, self._http(request, url, deadline))
        if request.render == "browser" or request.needs_browser():
            verdicts = _Verdicts()
            rendered = self._render(request, url, deadline, verdicts)
            return await self._attempt("browser", url, attempts, rendered, verdicts=verdicts)
        raw = await self._attempt("http", url, attempts, self._http(request, url, deadline), judge=False)
        reason = needs_browser(raw.text or "") if raw.kind == "html" and raw.status_code < 300 else None
        if reason is None:
            verdict = detect.judge(raw)
            if verdict.challenge:
                # The one deliberate exception to "never retry a block": a JavaScript challenge that
                # a real browser may pass. Still challenged in the browser → the typed error.
                reason = f"{verdict.kind} challenge ({verdict.vendor or 'unknown vendor'}): a real browser may pass it"
            else:
                _judge(raw, attempts[-1], verdict)  # judged here: a page that escalates is not judged
                return raw
        attempts[-1].outcome = "escalated"
        attempts[-1].detail = reason
        verdicts = _Verdicts()
        rendered = self._render(request, raw.final_url, deadline, verdicts)
        return await self._attempt("browser", raw.final_url, attempts, rendered, verdicts=verdicts)

    async def _attempt(
        self,
        engine: Engine,
        url: str,
        attempts: list[Attempt],
        work: Awaitable[RawPage],
        *,
        judge: bool = True,
        verdicts: _Verdicts | None = None,
    ) -> RawPage:
        started = time.monotonic()
        timings.attempt_started()
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
            _judge(raw, attempt, verdicts.of(raw) if verdicts is not None else None)
        return raw

    def _http(self, request: FetchRequest, url: str, deadline: Deadline) -> Awaitable[RawPage]:
        live = self.sessions.live(request.session) if request.session else None
        if live is not None:
            return self._http_in_session(url, deadline, request.headers, live)
        return self.http.fetch(url, deadline, headers=request.headers, cookies=request.cookies)

    async def _http_in_session(
        self, url: str, deadline: Deadline, headers: dict[str, str], live: LiveSession
    ) -> RawPage:
        jar = live.cookie_jar()
        try:
            return await self.http.fetch(url, deadline, headers=headers, jar=jar)
        finally:
            live.absorb_jar(jar)  # what the responses set, also when the page then failed

    def _render(self, request: FetchRequest, url: str, deadline: Deadline, verdicts: _Verdicts) -> Awaitable[RawPage]:
        live = self.sessions.live(request.session) if request.session else None
        return self.browser.fetch(
            url,
            deadline,
            headers=request.headers,
            cookies=None if live is not None else request.cookies,  # a session's are in its state
            actions=request.actions,
            session=live,
            wait_until=request.wait_until,
            wait_for=request.wait_for,
            wait_ms=request.wait_ms,
            screenshot="screenshot" in request.formats,
            challenged=verdicts.challenged,
        )

    async def _run_cpu(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._cpu, fn)

    # --- answers -------------------------------------------------------------------------------

    def _respond(
        self,
        request: FetchRequest,
        raw: RawPage,
        trace_id: str,
        attempts: list[Attempt],
        baseline: int | None = None,
        accepted: frozenset[str] = frozenset(),
        good_copy: CacheEntry | None = None,
    ) -> tuple[FetchResponse, CacheEntry | None, list[quality.Finding]]:
        """The answer for a live page, its cache entry, and what looks wrong with it (``quality``).

        ``good_copy``: the cached good copy of the same request, to measure drift against (live only)."""
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
        findings: list[quality.Finding] = []
        if extraction is not None:
            similarity = _drift(response, good_copy, extraction)
            findings = quality.assess(
                body,
                _text(extraction),
                main_content=request.main_content,
                baseline_chars=baseline,
                accepted=accepted,
                similarity=similarity,
                drift_threshold=self.settings.live_drift_threshold,
                title=raw.title,
            )
        return response, entry, findings

    def extract(self, request: ExtractRequest) -> FetchResponse:
        """Extraction alone, in the calling thread (CPU work: not on the event loop)."""
        return extract_response(request)

    async def extract_admitted(self, request: ExtractRequest) -> FetchResponse:
        """:meth:`extract` off the event loop, admitted like a fetch (the adapters call this one)."""

        async def work() -> FetchResponse:
            # Abandoned, not awaited, when cut at shutdown: the thread finishes on its own.
            return await anyio.to_thread.run_sync(self.extract, request, abandon_on_cancel=True)

        return await self.admission.run(str(request.url), work)

    # --- quarantine -----------------------------------------------------------------------------

    async def quarantined(self, limit: int = 100) -> QuarantineList:
        items, total = await self.quarantine.newest(limit=limit)
        return QuarantineList(items=items, total=total)

    async def quarantined_item(self, item_id: str) -> QuarantineItem | None:
        held = await self.quarantine.get(item_id)
        return held.item if held is not None else None

    async def approve(self, item_id: str) -> QuarantineDecision | None:
        """Store the held result as the good copy and stop holding its page's own findings (thin,
        block markers, lost text) against the URL. Findings against the good copy (shrunk, drift)
        are settled by its becoming the good copy: the next change is judged against it."""
        held = await self.quarantine.take(item_id)  # first, so two approvals at once decide once
        if held is None:
            return None
        own = [code for code in held.codes if code not in quality.BASELINE_CODES]
        try:
            await self.cache.put(held.key, held.entry)
            accepted = await self.quarantine.accept(held.item.url, own)
        except BaseException:
            # Not decided after all (the cache or Redis failed): the item goes back for another try.
            with contextlib.suppress(Exception):
                await self.quarantine.hold(held)
            raise
        return QuarantineDecision(id=item_id, decision="approved", url=held.item.url, accepted=accepted)

    async def reject(self, item_id: str) -> QuarantineDecision | None:
        held = await self.quarantine.take(item_id)
        if held is None:
            return None
        return QuarantineDecision(id=item_id, decision="rejected", url=held.item.url)

    # --- health --------------------------------------------------------------------------------

    async def health(self) -> Health:
        pool = self.pool.health()
        quarantined: int | None = None
        with contextlib.suppress(Exception):  # a health check reports; it does not fail on a slow disk
            quarantined = await asyncio.wait_for(self.quarantine.count(), 1.0)
        shared = await self.shared.health() if self.shared is not None else None
        status = pool.state
        if shared is not None and shared.state == "unavailable" and status == "available":
            status = "degraded"  # serving, but not as one with the other replicas
        return Health(
            status=status,
            uptime_s=round(time.monotonic() - self._started, 1),
            pool=pool,
            cache=self.cache.health(),
            shared_state=shared,
            hosts=[h for h in await self.circuits.hosts() if h.state != "available"][:100],
            quarantined=quarantined,
        )


#: Failures that say a host is unwell: they count toward its circuit breaker. Other answers from the
#: origin (not_found, a login wall, an empty page …) show that it is up and serving.
_HOST_FAILURES = frozenset(
    {
        ErrorKind.DNS_ERROR,
        ErrorKind.CONNECTION_ERROR,
        ErrorKind.TLS_ERROR,
        ErrorKind.TIMEOUT,
        ErrorKind.RATE_LIMITED,
        ErrorKind.BLOCKED,
        ErrorKind.CAPTCHA,
    }
)


def _breaker_outcome(exc: FetchError) -> tuple[str, bool] | None:
    """(label, counts as failure) for the host's breaker; None when the error says nothing about it.

    The caller's errors and our own (overload, browser trouble, a wait in our queue, page actions
    that ran out of time) are not the host's fault and are not recorded at all.
    """
    if not isinstance(exc, UpstreamError) or exc.phase in ("queue", "action"):  # action: the caller's steps
        return None
    if isinstance(exc, HTTPStatusError):
        return f"http_error {exc.status_code}", (exc.status_code or 0) >= 500
    label = f"{exc.kind.value} ({exc.vendor})" if exc.vendor else exc.kind.value
    return label, exc.kind in _HOST_FAILURES


def _store_wait(deadline: Deadline) -> float:
    """How long a quarantine read or write may take: a second at most, and never past the deadline
    (a store that does not answer in time counts as failed; the fetch goes on)."""
    return max(0.0, min(1.0, deadline.remaining()))


def _text(extraction: Extraction | None) -> str:
    """The extraction's text as the quality checks measure it."""
    if extraction is None:
        return ""
    return extraction.text or extraction.markdown or extraction.html


def _drift(response: FetchResponse, good_copy: CacheEntry | None, extraction: Extraction) -> float | None:
    """Measure the new ``extraction`` against the good copy's and report it as quality signals
    (``baseline_similarity=0.973``, ``baseline_age_s=3600``: the contract's ``name=value`` signal form, like
    ``redirects=2``); return the similarity when it is to be judged (a baseline of ``quality.DRIFT_MIN_WORDS``
    words or more)."""
    if good_copy is None or good_copy.extraction is None:
        return None
    before, after = good_copy.extraction, extraction
    # Like with like: the first rendering both have (a cached markdown against a new text would differ
    # by link targets alone).
    field = next((f for f in ("text", "markdown", "html") if getattr(before, f) and getattr(after, f)), None)
    old, new = (getattr(before, field), getattr(after, field)) if field else (_text(before), _text(after))
    if not old.strip():
        return None
    similarity = drift.live_similarity(old, new)
    response.quality = response.quality or Quality()
    response.quality.signals += [f"baseline_similarity={similarity:.3f}", f"baseline_age_s={good_copy.age_s():.0f}"]
    return similarity if len(old.split()) >= quality.DRIFT_MIN_WORDS else None


def _text_chars(extraction: Extraction) -> int:
    return len(" ".join(_text(extraction).split()))


class _Verdicts:
    """Verdicts on the pages of one browser attempt. The engine asks whether the page it rendered is a
    JavaScript challenge (to wait it out), then the attempt judges that same page: one judgment
    serves both (detection parses the page and scores ~50 vendor rules on it)."""

    def __init__(self) -> None:
        self._last: tuple[RawPage, detect.Verdict] | None = None

    def of(self, raw: RawPage) -> detect.Verdict:
        if self._last is None or self._last[0] is not raw:
            self._last = (raw, detect.judge(raw))
        return self._last[1]

    def challenged(self, raw: RawPage) -> bool:
        return self.of(raw).challenge


def _record_failure(attempt: Attempt, exc: FetchError) -> None:
    attempt.outcome = exc.kind
    attempt.detail = exc.message
    attempt.status_code = attempt.status_code or exc.status_code


def _judge(raw: RawPage, attempt: Attempt, verdict: detect.Verdict | None = None) -> None:
    """Classify the page (``detect``) and record a failing verdict on the attempt that fetched it."""
    verdict = verdict or detect.judge(raw)
    error = verdict.error(raw)
    if error is not None:
        _record_failure(attempt, error)
        raise error


def _warm_up() -> FetchResponse:
    page = "<html><head><title>w</title></head><body><article><h1>w</h1><p>warm up</p></article></body></html>"
    return extract_response(ExtractRequest.model_validate({"html": page, "url": "http://localhost/"}))


def _typed_cause(exc: BaseException) -> FetchError | None:
    """The typed error that was propagating when ``exc`` (the backstop's timeout) replaced it."""
    seen: set[int] = set()
    current = exc.__context__
    while current is not None and id(current) not in seen:
        if isinstance(current, FetchError):
            return current
        seen.add(id(current))
        current = current.__context__
    return None
