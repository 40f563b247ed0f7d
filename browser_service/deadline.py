"""One deadline per request, honoured by every await on the network or the browser.

A request's ``timeout_ms`` covers queueing, every attempt and rendering. Stages never take their
own fixed timeouts; they ask the request's :class:`Deadline` how much time is left and bound each
await by it, so a slow stage eats into the budget of the later ones instead of extending the total.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

from browser_service import timings
from browser_service.contract import Phase
from browser_service.errors import FetchTimeout

T = TypeVar("T")


class Deadline:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.started = time.monotonic()
        self.expires = self.started + timeout_s

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def expired(self) -> bool:
        return time.monotonic() >= self.expires

    def timeout(self, phase: Phase, what: str = "") -> FetchTimeout:
        detail = f" {what}" if what else ""
        return FetchTimeout(
            f"The request's deadline of {self.timeout_s * 1000:.0f} ms ran out during {phase}{detail}. "
            "Retry with a larger timeout_ms, or later if the site is slow.",
            phase=phase,
        )

    def check(self, phase: Phase) -> None:
        if self.expired():
            raise self.timeout(phase)

    async def run(self, aw: Awaitable[T], phase: Phase, what: str = "", cap_s: float | None = None) -> T:
        """Await ``aw`` for at most the remaining time (or ``cap_s`` if smaller); raise a typed timeout.

        A cap that runs out first raises ``TimeoutError`` itself: the caller decided that limit and
        knows what to do about it (e.g. a capped settle wait is not a failure).
        """
        remaining = self.remaining()
        if remaining <= 0:
            if asyncio.iscoroutine(aw):
                aw.close()  # never awaited: close it so Python does not warn
            raise self.timeout(phase, what)
        limit = remaining if cap_s is None else min(cap_s, remaining)
        started, outcome = time.monotonic(), "cancelled"
        try:
            result = await asyncio.wait_for(aw, timeout=limit)
            outcome = "ok"
            return result
        except TimeoutError:
            if cap_s is not None and cap_s < remaining:
                outcome = "capped"
                raise
            outcome = "timeout"
            raise self.timeout(phase, what) from None
        except Exception:
            outcome = "error"
            raise
        finally:
            timings.record(phase, what, started, outcome)  # the fetch's per-phase timings (timings.py)
