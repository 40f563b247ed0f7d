"""Logs: one JSON object per line on stderr, one ``fetch`` event per fetch, never a secret.

``serve`` calls :func:`configure` once at start. Every module keeps using the standard library's
``logging`` (``log.warning("…", extra={…})``); structlog's stdlib integration renders every record
— ours, uvicorn's, Playwright's — through the same processors: a timestamp, the level, the logger's
name, the ``extra`` fields as keys, exceptions as text. ``BROWSER_SERVICE_LOG_FORMAT=console``
renders the same events for people instead of machines.

:func:`fetch_event` is the one event each fetch leaves (``telemetry.py`` calls it with the fetch's
trace). It carries what an operator searches and aggregates by — ``trace_id``, host, engine,
outcome kind, source, attempts, durations in total, per attempt and per phase — and nothing
secret: no header or cookie values, no request body, no API key, and the URL without its query
string or user:password (a query often carries a token; the trace, behind the API key, keeps it).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO
from urllib.parse import urlsplit, urlunsplit

import structlog

from browser_service.guard import host_key
from browser_service.traces import Trace

LogFormat = Literal["json", "console"]

#: The logger of the per-fetch events (filter or route on it).
FETCH_LOGGER = "browser_service.fetch"
fetch_log = logging.getLogger(FETCH_LOGGER)

#: Libraries whose info lines are per request and carry whole URLs.
_CHATTY = ("httpx", "httpcore")
#: Record attributes that only repeat the message (set on the record by any other handler that formatted it first).
_NOISE = frozenset({"color_message", "message", "asctime"})


def _drop_noise(_: Any, __: str, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
    for key in _NOISE:
        event.pop(key, None)
    return event


def configure(level: str = "info", fmt: LogFormat = "json", stream: TextIO | None = None) -> logging.Handler:
    """Route every ``logging`` record (and structlog's own loggers) to ``stream`` (stderr) as ``fmt``.

    Idempotent: the handler it installed before is replaced. Returns the installed handler.
    """
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=bool(getattr(stream or sys.stderr, "isatty", lambda: False)()))
        finish: list[structlog.typing.Processor] = [renderer]
    else:
        renderer = structlog.processors.JSONRenderer()
        finish = [structlog.processors.format_exc_info, renderer]
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name("browser-service")
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_noise],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *finish],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "browser-service"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every request's full URL at info (query strings carry tokens): only from debug on.
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.NOTSET if level.lower() == "debug" else logging.WARNING)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    return handler


def loggable_url(url: str) -> str:
    """``url`` without user:password, query or fragment: what a log line may carry."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def fetch_fields(trace: Trace) -> dict[str, Any]:
    """The ``fetch`` event's fields for ``trace``."""
    error = trace.error or trace.live_error
    return {
        "trace_id": trace.trace_id,
        "host": host_key(trace.request.url),
        "url": loggable_url(trace.request.url),
        "render": trace.request.render,
        "in_session": trace.request.in_session,
        "actions": len(trace.request.actions),
        "ok": trace.ok,
        "outcome": trace.outcome,
        "engine": trace.engine,
        "source": trace.source,
        "stale": trace.stale,
        "cache": trace.cache,
        "status_code": trace.status_code,
        "error_kind": error.kind.value if error else None,
        "error_phase": error.phase if error else None,
        "vendor": error.vendor if error else None,
        "attempt_count": len(trace.attempts),
        "attempts": [
            {
                "engine": a.engine,
                "outcome": str(a.outcome),
                "status_code": a.status_code,
                "duration_ms": a.duration_ms,
                "phases_ms": a.phases_ms,
            }
            for a in trace.attempts
        ],
        "duration_ms": trace.duration_ms,
        "phases_ms": trace.phases_ms,
    }


def fetch_event(trace: Trace) -> None:
    """Log the fetch at info, whatever its outcome (an error kind is a result, not a log level), except
    an ``internal_error`` (a bug), at error."""
    level = logging.ERROR if trace.outcome == "internal_error" else logging.INFO
    fetch_log.log(level, "fetch", extra=fetch_fields(trace))
