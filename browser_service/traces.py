"""The trace of a fetch: what was asked, each attempt, the outcome and where the time went.

Every fetch leaves one :class:`Trace` in a bounded in-memory ring (:class:`TraceRing`, the last
``BROWSER_SERVICE_TRACE_BUFFER`` fetches of this process), found by the ``trace_id`` its answer
carries: ``GET /v1/traces/{trace_id}``. It is for debugging one answer ("why did this take 9 s?",
"which attempt failed and how?") and for spotting drift, without logs at hand.

A trace never holds secrets or content: the request is summarised with the *names* of its headers,
cookies and selector fields, never their values, the types of its page actions (not the text they
type), whether it ran in a session (not the session's id, which is a credential), and the URL
without user:password; the page's text is not kept (``content_sha256`` identifies it).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field

from browser_service.contract import (
    Attempt,
    Engine,
    ErrorInfo,
    FetchRequest,
    FetchResponse,
    Format,
    OnSuspect,
    Quality,
    Render,
    Source,
    Versions,
    WaitUntil,
)
from browser_service.timings import Timings

#: How a fetch used the cache: answered from a fresh stored copy (``hit``), from an old one because
#: the live fetch failed (``stale``), live although it would have accepted a stored copy (``miss``:
#: ``max_age_s`` > 0 or a later page), or live as asked (``bypass``).
CacheResult = Literal["hit", "stale", "miss", "bypass"]
SpanOutcome = Literal["ok", "timeout", "capped", "error", "cancelled"]


class TraceRequest(BaseModel):
    """The request, without secrets: names of headers, cookies and selector fields, never values."""

    url: str = Field(description="The URL asked for, without any user:password.")
    render: Render
    formats: list[Format]
    main_content: bool
    timeout_ms: int
    max_age_s: int | None
    allow_stale: bool
    max_chars: int
    start_index: int
    wait_for: str | None
    wait_until: WaitUntil | None
    wait_ms: int
    respect_robots: bool | None
    on_suspect: OnSuspect
    header_names: list[str] = Field(description="Names of the extra headers sent (values are never kept).")
    cookie_names: list[str] = Field(description="Names of the cookies sent (values are never kept).")
    selector_fields: list[str] = Field(description="Fields asked for with selectors.")
    in_session: bool = Field(description="Whether it ran in a named session (the id is a credential: not kept).")
    actions: list[str] = Field(description="The page actions' types, in order (their text is never kept).")


class TraceSpan(BaseModel):
    """One bounded await of the fetch (``Deadline.run``): its phase, what it waited for, how long."""

    phase: str
    what: str
    start_ms: float = Field(description="Since the fetch started.")
    duration_ms: float
    outcome: SpanOutcome
    attempt: int | None = Field(description="Index into attempts of the attempt it belongs to, if any.")


class TraceAttempt(Attempt):
    start_ms: float | None = Field(None, description="When the attempt started, since the fetch started.")
    phases_ms: dict[str, float] = Field(
        default_factory=dict, description="Time awaited in each phase during this attempt."
    )


class Trace(BaseModel):
    trace_id: str
    started_at: datetime
    duration_ms: int
    request: TraceRequest
    ok: bool
    outcome: str = Field(description="'ok', or the error kind. A stale copy is 'ok' with cache 'stale' and live_error.")
    source: Source
    stale: bool
    cache: CacheResult
    engine: Engine | None
    final_url: str | None
    status_code: int | None
    error: ErrorInfo | None
    live_error: ErrorInfo | None
    attempts: list[TraceAttempt]
    phases_ms: dict[str, float] = Field(description="Time awaited in each phase over the whole fetch.")
    spans: list[TraceSpan] = Field(description="Each bounded await in order (the first 200).")
    spans_dropped: int = Field(0, description="Awaits beyond the first 200 (still counted in phases_ms).")
    quality: Quality | None
    warnings: list[str]
    content_sha256: str | None
    versions: Versions


def without_credentials(url: str) -> str:
    """``url`` without a ``user:password@`` part."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def summarise(request: FetchRequest) -> TraceRequest:
    return TraceRequest(
        url=without_credentials(str(request.url)),
        render=request.render,
        formats=list(request.formats),
        main_content=request.main_content,
        timeout_ms=request.timeout_ms,
        max_age_s=request.max_age_s,
        allow_stale=request.allow_stale,
        max_chars=request.max_chars,
        start_index=request.start_index,
        wait_for=request.wait_for,
        wait_until=request.wait_until,
        wait_ms=request.wait_ms,
        respect_robots=request.respect_robots,
        on_suspect=request.on_suspect,
        header_names=sorted(request.headers),
        cookie_names=sorted(request.cookies),
        selector_fields=sorted(request.selectors or {}),
        in_session=request.session is not None,
        actions=[action.type for action in request.actions or ()],
    )


def cache_result(request: FetchRequest, response: FetchResponse) -> CacheResult:
    if response.source == "cache":
        return "stale" if response.stale else "hit"
    return "miss" if request.max_age_s or request.start_index > 0 else "bypass"


def outcome(response: FetchResponse) -> str:
    """'ok' for an answer with content (a stale copy too: its cache result says so), else the error kind."""
    return response.error.kind.value if not response.ok and response.error is not None else "ok"


def final_engine(response: FetchResponse) -> Engine | None:
    if response.engine is not None:
        return response.engine
    return response.attempts[-1].engine if response.attempts else None


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def build(
    request: FetchRequest, response: FetchResponse, timings: Timings, started_at: datetime, duration_s: float
) -> Trace:
    """The trace of a finished fetch from its request, its answer and the spans it recorded."""
    starts = timings.attempt_starts_s
    windows = [
        # duration_ms is truncated to whole milliseconds: one more keeps the attempt's last span in it
        (starts[i], starts[i] + (attempt.duration_ms + 1) / 1000) if i < len(starts) else None
        for i, attempt in enumerate(response.attempts)
    ]

    def attempt_of(start_s: float) -> int | None:
        # Attempts run one after another: a span belongs to the latest one started before it, if that
        # one had not ended yet (a span right after an attempt belongs to the next, not the slack).
        for index in reversed(range(len(windows))):
            window = windows[index]
            if window is not None and window[0] <= start_s:
                return index if start_s <= window[1] else None
        return None

    spans = [
        TraceSpan(
            phase=s.phase,
            what=s.what,
            start_ms=_ms(s.start_s),
            duration_ms=_ms(s.duration_s),
            outcome=s.outcome,
            attempt=attempt_of(s.start_s),
        )
        for s in timings.spans
    ]
    attempts = []
    for index, attempt in enumerate(response.attempts):
        phases: dict[str, float] = {}
        for span in spans:
            if span.attempt == index:
                phases[span.phase] = round(phases.get(span.phase, 0.0) + span.duration_ms, 1)
        window = windows[index]
        attempts.append(
            TraceAttempt(**attempt.model_dump(), start_ms=_ms(window[0]) if window else None, phases_ms=phases)
        )
    return Trace(
        trace_id=response.trace_id,
        started_at=started_at,
        duration_ms=round(duration_s * 1000),
        request=summarise(request),
        ok=response.ok,
        outcome=outcome(response),
        source=response.source,
        stale=response.stale,
        cache=cache_result(request, response),
        engine=final_engine(response),
        final_url=without_credentials(response.final_url) if response.final_url else None,
        status_code=response.status_code,
        error=response.error,
        live_error=response.live_error,
        attempts=attempts,
        phases_ms={phase: _ms(total) for phase, total in timings.totals_s.items()},
        spans=spans,
        spans_dropped=timings.dropped,
        quality=response.quality,
        warnings=list(response.warnings),
        content_sha256=response.content_sha256,
        versions=response.versions,
    )


class TraceRing:
    """The last ``size`` traces by id (oldest dropped first); ``size`` 0 keeps none."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._traces: OrderedDict[str, Trace] = OrderedDict()

    def add(self, trace: Trace) -> None:
        if self.size <= 0:
            return
        self._traces[trace.trace_id] = trace
        self._traces.move_to_end(trace.trace_id)
        while len(self._traces) > self.size:
            self._traces.popitem(last=False)

    def get(self, trace_id: str) -> Trace | None:
        return self._traces.get(trace_id)

    def __len__(self) -> int:
        return len(self._traces)
