"""Where a fetch's time goes: every :meth:`Deadline.run` await is a span of its phase.

Every await on the network or the browser goes through ``Deadline.run`` with the phase it belongs
to (``queue``, ``dns``, ``response``, ``body``, ``navigation``, ``render``, ``extract`` …), so
timing it there gives per-phase timings of every stage without the stages knowing about it. The
spans go to the current fetch's :class:`Timings`, held in a context variable that the fetch's
observer sets (``telemetry.py``); outside an observed fetch nothing is recorded. The fetcher marks
where each attempt starts (:func:`attempt_started`), which lets a trace give each attempt its own
phases.

A span is the time one await took; awaits that overlap (rare: a settle wait beside a navigation)
both count, so a phase's total is "time spent awaiting in it", not wall time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

#: Spans kept per fetch; later ones still count in the phase totals.
MAX_SPANS = 200
#: Longest description kept for a span (a URL, "reading the page" …).
MAX_WHAT = 200


@dataclass(frozen=True)
class Span:
    phase: str
    what: str
    start_s: float  # since the fetch started
    duration_s: float
    outcome: str  # ok, timeout, capped (the caller's own cap ran out), error, cancelled


@dataclass
class Timings:
    """The spans of one fetch."""

    started: float = field(default_factory=time.monotonic)
    spans: list[Span] = field(default_factory=list)
    dropped: int = 0
    totals_s: dict[str, float] = field(default_factory=dict)
    attempt_starts_s: list[float] = field(default_factory=list)
    closed: bool = False

    def add(self, phase: str, what: str, started: float, outcome: str) -> None:
        if self.closed:  # a task the fetch started and left running: not this fetch's time any more
            return
        duration = max(0.0, time.monotonic() - started)
        self.totals_s[phase] = self.totals_s.get(phase, 0.0) + duration
        if len(self.spans) < MAX_SPANS:
            self.spans.append(Span(phase, what[:MAX_WHAT], max(0.0, started - self.started), duration, outcome))
        else:
            self.dropped += 1

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


_current: ContextVar[Timings | None] = ContextVar("browser_service_timings", default=None)


def record(phase: str, what: str, started: float, outcome: str) -> None:
    """A span of ``phase`` that began at ``started`` (monotonic) and ends now, for the current fetch."""
    timings = _current.get()
    if timings is not None:
        timings.add(phase, what, started, outcome)


def attempt_started() -> None:
    """The current fetch begins an attempt (spans from here on belong to it, until it ends)."""
    timings = _current.get()
    if timings is not None and not timings.closed:
        timings.attempt_starts_s.append(timings.elapsed_s())


@contextlib.contextmanager
def timing() -> Iterator[Timings]:
    """Record the spans of the code inside (and of the tasks it starts) into a fresh :class:`Timings`."""
    timings = Timings()
    token = _current.set(timings)
    try:
        yield timings
    finally:
        timings.closed = True
        _current.reset(token)
