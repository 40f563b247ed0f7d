"""Traces: the request summary without secrets, attempts with their own phases, the bounded ring."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from browser_service.contract import Attempt, ErrorInfo, ErrorKind, FetchRequest, FetchResponse
from browser_service.timings import MAX_SPANS, Span, Timings, timing
from browser_service.traces import TraceRing, build, cache_result, outcome, summarise, without_credentials

STARTED = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def request(**fields: object) -> FetchRequest:
    return FetchRequest.model_validate({"url": "https://user:pw@example.com/a?token=t0k", **fields})


def escalated_response() -> FetchResponse:
    return FetchResponse(
        ok=True,
        url="https://example.com/a",
        final_url="https://example.com/a",
        status_code=200,
        engine="browser",
        trace_id="t1",
        attempts=[
            Attempt(engine="http", url="https://example.com/a", outcome="escalated", status_code=200, duration_ms=20),
            Attempt(engine="browser", url="https://example.com/a", outcome="ok", status_code=200, duration_ms=300),
        ],
    )


def test_summary_keeps_names_never_values() -> None:
    summary = summarise(
        request(
            headers={"X-Api-Key": "hunter2", "Accept-Language": "de"},
            cookies={"sid": "s3cr3t"},
            selectors={"price": ".price"},
            formats=["text", "links"],
        )
    )
    assert summary.url == "https://example.com/a?token=t0k"  # the caller's own URL, minus user:password
    assert (summary.header_names, summary.cookie_names, summary.selector_fields) == (
        ["Accept-Language", "X-Api-Key"],
        ["sid"],
        ["price"],
    )
    dumped = summary.model_dump_json()
    assert "hunter2" not in dumped and "s3cr3t" not in dumped and "pw@" not in dumped
    assert summary.formats == ["text", "links"] and summary.render == "auto" and summary.timeout_ms == 30000
    assert (summary.in_session, summary.actions) == (False, [])


def test_summary_of_sessions_and_actions_keeps_no_credential() -> None:
    session = "Sess1on_id-0123456789"
    summary = summarise(
        request(
            session=session,
            actions=[
                {"type": "type", "selector": "#password", "text": "hunter2"},
                {"type": "press", "key": "Enter"},
                {"type": "wait_ms", "ms": 100},
            ],
        )
    )
    assert (summary.in_session, summary.actions) == (True, ["type", "press", "wait_ms"])
    dumped = summary.model_dump_json()
    assert session not in dumped and "hunter2" not in dumped


def test_spans_belong_to_the_attempt_they_started_in() -> None:
    timings = Timings(started=0.0)
    timings.attempt_starts_s = [0.010, 0.0308]
    timings.spans = [
        Span("queue", "reading the cache", 0.001, 0.002, "ok"),
        Span("response", "https://example.com/a", 0.011, 0.015, "ok"),
        Span("body", "https://example.com/a", 0.0302, 0.0001, "ok"),  # after 20 ms: the truncated millisecond
        Span("queue", "opening a page", 0.0309, 0.0001, "ok"),  # in attempt 0's slack too, but attempt 1 began
        Span("queue", "waiting for a browser slot", 0.041, 0.0999, "ok"),
        Span("navigation", "https://example.com/a", 0.141, 0.150, "ok"),
        Span("render", "reading the page", 0.291, 0.040, "capped"),
        Span("extract", "extracting the content", 0.345, 0.005, "ok"),
    ]
    timings.totals_s = {"queue": 0.102, "response": 0.015, "body": 0.0001, "navigation": 0.15, "render": 0.04}
    trace = build(request(), escalated_response(), timings, STARTED, 0.352)
    assert [s.attempt for s in trace.spans] == [None, 0, 0, 1, 1, 1, 1, None]
    assert [(a.engine, a.outcome, a.start_ms, a.phases_ms) for a in trace.attempts] == [
        ("http", "escalated", 10.0, {"response": 15.0, "body": 0.1}),
        ("browser", "ok", 30.8, {"queue": 100.0, "navigation": 150.0, "render": 40.0}),
    ]
    assert trace.phases_ms == {"queue": 102.0, "response": 15.0, "body": 0.1, "navigation": 150.0, "render": 40.0}
    assert (trace.duration_ms, trace.outcome, trace.engine, trace.cache) == (352, "ok", "browser", "bypass")
    assert trace.spans[6].outcome == "capped" and trace.spans[0].start_ms == 1.0


@pytest.mark.parametrize(
    ("fields", "source", "stale", "expected"),
    [
        ({}, "live", False, "bypass"),
        ({"max_age_s": 0}, "live", False, "bypass"),
        ({"max_age_s": 60}, "live", False, "miss"),
        ({"start_index": 100}, "live", False, "miss"),
        ({"max_age_s": 60}, "cache", False, "hit"),
        ({}, "cache", True, "stale"),
    ],
)
def test_cache_result(fields: dict[str, object], source: str, stale: bool, expected: str) -> None:
    response = FetchResponse(ok=True, url="https://example.com/", source=source, stale=stale, trace_id="t")  # type: ignore[arg-type]
    assert cache_result(request(**fields), response) == expected


def test_outcome_is_the_error_kind_and_a_stale_copy_is_ok() -> None:
    error = ErrorInfo(kind=ErrorKind.TIMEOUT, message="m", retryable=True, phase="navigation")
    failed = FetchResponse(ok=False, url="https://e.com/", error=error, trace_id="t")
    stale = FetchResponse(ok=True, url="https://e.com/", source="cache", stale=True, live_error=error, trace_id="t")
    assert (outcome(failed), outcome(stale)) == ("timeout", "ok")


def test_ring_keeps_the_last_n() -> None:
    ring = TraceRing(3)
    for i in range(5):
        response = escalated_response().model_copy(update={"trace_id": f"t{i}"})
        ring.add(build(request(), response, Timings(), STARTED, 0.1))
    assert len(ring) == 3 and ring.get("t1") is None and ring.get("t4") is not None
    off = TraceRing(0)
    off.add(build(request(), escalated_response(), Timings(), STARTED, 0.1))
    assert len(off) == 0


def test_timings_bound_their_spans_and_stop_when_closed() -> None:
    with timing() as spans:
        for _ in range(MAX_SPANS + 5):
            spans.add("render", "x" * 500, spans.started, "ok")
    spans.add("render", "after the fetch", spans.started, "ok")
    assert len(spans.spans) == MAX_SPANS and spans.dropped == 5 and len(spans.spans[0].what) == 200
    assert list(spans.totals_s) == ["render"]


def test_without_credentials() -> None:
    assert without_credentials("http://a:b@example.com:8080/p?q=1") == "http://example.com:8080/p?q=1"
    assert without_credentials("http://example.com/p") == "http://example.com/p"
