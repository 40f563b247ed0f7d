"""Logs: stdlib records come out as JSON through structlog; the fetch event carries no secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import structlog

from browser_service import logs
from browser_service.contract import Attempt, ErrorInfo, ErrorKind, FetchRequest, FetchResponse
from browser_service.timings import Span, Timings
from browser_service.traces import build


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """``logs.configure`` into a buffer; the root logger and structlog are restored afterwards."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    chatty = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    stream = io.StringIO()
    logs.configure("info", "json", stream)
    yield stream
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name, old in chatty.items():
        logging.getLogger(name).setLevel(old)
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_stdlib_records_become_json_with_their_extra_fields(captured: io.StringIO) -> None:
    logging.getLogger("browser_service.pool").info("browser launched", extra={"generation": 3, "pid": 42})
    logging.getLogger("browser_service.pool").debug("not at info")
    logging.getLogger("httpx").info("HTTP Request: GET https://example.com/?token=t0k")  # kept below warning
    structlog.get_logger("browser_service.x").warning("via structlog", n=1)
    [launched, direct] = lines(captured)
    assert launched.pop("timestamp")
    assert launched == {
        "event": "browser launched",
        "level": "info",
        "logger": "browser_service.pool",
        "generation": 3,
        "pid": 42,
    }
    assert (direct["event"], direct["level"], direct["logger"], direct["n"]) == (
        "via structlog",
        "warning",
        "browser_service.x",
        1,
    )


def test_exceptions_are_rendered_into_the_line(captured: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("browser_service.fetcher").exception("internal error", extra={"trace_id": "t"})
    [line] = lines(captured)
    assert line["level"] == "error" and line["trace_id"] == "t"
    assert "ValueError: boom" in str(line["exception"])


def test_configure_is_idempotent(captured: io.StringIO) -> None:
    again = io.StringIO()
    logs.configure("warning", "json", again)
    logging.getLogger("browser_service.pool").warning("once")
    assert captured.getvalue() == "" and [line["event"] for line in lines(again)] == ["once"]
    assert [h.get_name() for h in logging.getLogger().handlers].count("browser-service") == 1


def test_console_format(captured: io.StringIO) -> None:
    console = io.StringIO()
    logs.configure("info", "console", console)
    logging.getLogger("browser_service.pool").info("browser launched", extra={"generation": 3})
    text = console.getvalue()
    assert "browser launched" in text and "generation=3" in text and not text.startswith("{")


def test_fetch_event_fields_and_no_secrets(captured: io.StringIO) -> None:
    request = FetchRequest.model_validate(
        {
            "url": "https://user:pw@shop.example:8443/item?token=t0k#frag",
            "headers": {"Authorization": "Bearer hunter2"},
            "cookies": {"sid": "s3cr3t"},
        }
    )
    error = ErrorInfo(kind=ErrorKind.TIMEOUT, message="… ?token=t0k …", retryable=True, phase="navigation")
    response = FetchResponse(
        ok=False,
        url=str(request.url),
        error=error,
        trace_id="abc",
        attempts=[Attempt(engine="browser", url=str(request.url), outcome=ErrorKind.TIMEOUT, duration_ms=900)],
    )
    timings = Timings(started=0.0, attempt_starts_s=[0.0])
    timings.spans = [Span("navigation", str(request.url), 0.0, 0.9, "timeout")]
    timings.totals_s = {"navigation": 0.9}
    logs.fetch_event(build(request, response, timings, datetime(2026, 1, 1, tzinfo=UTC), 0.95))
    text = captured.getvalue()
    for secret in ("hunter2", "s3cr3t", "t0k", "pw@", "frag"):
        assert secret not in text
    [event] = lines(text_stream(text))
    event.pop("timestamp")
    assert event == {
        "event": "fetch",
        "level": "info",
        "logger": "browser_service.fetch",
        "trace_id": "abc",
        "host": "shop.example:8443",
        "url": "https://shop.example:8443/item",
        "render": "auto",
        "in_session": False,
        "actions": 0,
        "ok": False,
        "outcome": "timeout",
        "engine": "browser",
        "source": "live",
        "stale": False,
        "cache": "bypass",
        "status_code": None,
        "error_kind": "timeout",
        "error_phase": "navigation",
        "vendor": None,
        "attempt_count": 1,
        "attempts": [
            {
                "engine": "browser",
                "outcome": "timeout",
                "status_code": None,
                "duration_ms": 900,
                "phases_ms": {"navigation": 900.0},
            }
        ],
        "duration_ms": 950,
        "phases_ms": {"navigation": 900.0},
    }


def text_stream(text: str) -> io.StringIO:
    return io.StringIO(text)
