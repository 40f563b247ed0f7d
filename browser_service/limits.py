"""Per-host politeness: a concurrency cap, pacing between request starts, and the site's Retry-After.

Every live fetch to a host runs inside ``async with limits.slot(host, deadline_s):``. Entering it:

1. **Fast refusals**, before queueing. If the host is in a Retry-After period longer than the
   request's remaining ``deadline_s``, :class:`RetryAfterActive` is raised at once (the caller answers
   ``rate_limited`` or serves a stale copy). If the pacing reservations already made push the earliest
   possible start past the deadline, :class:`LimitWait` (reason ``"pacing"``) is raised at once.
2. **Concurrency**: at most ``per_host_concurrency`` slots per host. Waiters queue first-in
   first-out (a newcomer never overtakes a waiter). If the deadline runs out while queued,
   :class:`LimitWait` (reason ``"concurrency"``) is raised.
3. **Start time**, with the slot held: the start is ``max(now, retry_until, next_start)``, where
   ``next_start`` is the previous reservation plus ``min_interval_s``. The reservation is made before
   sleeping, so starts to one host are spaced by at least ``min_interval_s`` in slot order with no
   thundering herd. A start that would fall past the deadline raises (``RetryAfterActive`` if the
   Retry-After alone is too long, else ``LimitWait("pacing")``) without reserving. A Retry-After that
   arrives while a request sleeps moves its start again.

:meth:`HostLimits.note_retry_after` records a 429/503 ``Retry-After`` (capped at
``max_retry_after_s``; a later, longer one extends it, a shorter one never shortens it).
:meth:`HostLimits.blocked_for` says how long it still holds.

Cancellation is safe everywhere: a cancelled waiter leaves the queue (and hands on a slot granted to
it in the same instant); a request cancelled while sleeping toward its start gives back its slot and,
if it is still the latest one, its pacing reservation; leaving the ``async with`` body for any reason
releases the slot. Per-host state is dropped once a host is idle (no slot held, nobody queued, no
pacing or Retry-After in force), and idle entries whose times have passed are swept as the table
grows, so memory stays bounded by the hosts in use or under a Retry-After.

**Across replicas** (``shared``, a :class:`SharedHostLimits` such as ``limits_shared.RedisHostLimits``):
the concurrency cap, a Retry-After and the pacing schedule are also kept where every replica sees
them. With the local slot held and the local start reached, the shared state is asked for a slot
and the start in one atomic step (refused at once if the host's shared Retry-After or pacing
outlasts the deadline; a full host is asked again until a slot frees or the deadline runs out), and
the wait until that start is slept; leaving gives the shared slot back, then the local one.
:meth:`HostLimits.share_retry_after` publishes a Retry-After. A shared pacing reservation is not
given back when its request is cancelled, and a Retry-After noted elsewhere while a request sleeps
toward its shared start does not move that start.

Times come from an injectable monotonic ``clock``; waits are ``asyncio`` sleeps, so the clock must
advance like the event loop's (the default, ``time.monotonic``, does).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Literal, Protocol

Clock = Callable[[], float]
WaitReason = Literal["concurrency", "pacing"]


@dataclass(frozen=True)
class LimitsConfig:
    per_host_concurrency: int = 4
    """Concurrent fetches to one host."""
    min_interval_s: float = 0.0
    """Minimum gap between request starts to one host (0: no pacing)."""
    max_retry_after_s: float = 3600.0
    """The longest server Retry-After honoured."""

    def __post_init__(self) -> None:
        if self.per_host_concurrency < 1:
            raise ValueError("LimitsConfig.per_host_concurrency must be at least 1")
        if not (self.min_interval_s >= 0 and self.max_retry_after_s >= 0):
            raise ValueError("LimitsConfig.min_interval_s and max_retry_after_s must not be negative")


class LimitWait(Exception):
    """The wait for a host slot does not fit the request's deadline.

    ``reason`` ``"pacing"``: known in advance; ``wait_s`` is the wait that was needed (raised at once).
    ``reason`` ``"concurrency"``: every slot stayed busy; ``wait_s`` is how long the request queued.
    """

    def __init__(self, wait_s: float, reason: WaitReason) -> None:
        super().__init__(f"waited or would wait {wait_s:.3f} s for a host slot ({reason})")
        self.wait_s = wait_s
        self.reason: WaitReason = reason


class RetryAfterActive(Exception):
    """The host asked for a pause (Retry-After) that outlasts the request's deadline."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"the host's Retry-After has {retry_after_s:.3f} s to run")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class SharedEntry:
    """A shared slot granted: its ``token`` (``None`` when the shared state did not answer and the
    per-process limits stand alone) and the seconds to wait for the booked start."""

    token: str | None
    wait_s: float


class SharedHostLimits(Protocol):
    """A host's slots, Retry-After and pacing schedule as every replica sees them."""

    async def enter(self, host: str, limit: int, interval_s: float, deadline_s: float) -> SharedEntry:
        """Take one of the ``limit`` slots of ``host`` and book its start, waiting for a slot within
        ``deadline_s``. Raises :class:`RetryAfterActive` or :class:`LimitWait` (``"pacing"``) at once
        when the start would not come within ``deadline_s``, :class:`LimitWait` (``"concurrency"``)
        when no slot freed in time."""
        ...

    async def leave(self, host: str, token: str) -> None: ...

    async def note_retry_after(self, host: str, seconds: float) -> None: ...


@dataclass(eq=False)
class _Host:
    active: int = 0
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)
    next_start: float = -math.inf
    retry_until: float = -math.inf

    def idle(self, now: float) -> bool:
        return not self.active and not self.waiters and self.next_start <= now and self.retry_until <= now


#: The longest a request waits for its shared slot to be given back before it goes on (the giving
#: back goes on without it).
LEAVE_WAIT_S = 0.1

#: Sweep idle entries once the table holds at least this many hosts (then twice the survivors).
_SWEEP_FLOOR = 1024


class HostLimits:
    def __init__(
        self, config: LimitsConfig | None = None, clock: Clock = time.monotonic, shared: SharedHostLimits | None = None
    ) -> None:
        self.config = config or LimitsConfig()
        self._clock = clock
        self.shared = shared
        self._hosts: dict[str, _Host] = {}
        self._sweep_at = _SWEEP_FLOOR
        self._leaving: set[asyncio.Task[None]] = set()

    # --- the slot --------------------------------------------------------------------------

    @asynccontextmanager
    async def slot(self, host: str, deadline_s: float) -> AsyncIterator[None]:
        """Hold one of ``host``'s slots, started no sooner than pacing and Retry-After allow.

        Raises :class:`RetryAfterActive` or :class:`LimitWait` when that cannot happen within
        ``deadline_s`` (the seconds the request has left).
        """
        end = self._clock() + deadline_s
        state, token = await self._enter(host, end)
        try:
            yield
        finally:
            await self._leave(host, state, token, end)

    async def _enter(self, host: str, end: float) -> tuple[_Host, str | None]:
        state = self._state(host)
        now = self._clock()
        deadline_s = end - now
        try:
            retry_after = state.retry_until - now
            if retry_after > 0 and retry_after > deadline_s:
                raise RetryAfterActive(round(retry_after, 3))
            if self.config.min_interval_s > 0:
                pacing = max(state.next_start, state.retry_until) - now
                if pacing > 0 and pacing > deadline_s:
                    raise LimitWait(round(pacing, 3), "pacing")
            await self._acquire(state, now, end)
        except BaseException:
            self._drop_if_idle(host, state)
            raise
        token: str | None = None
        try:
            await self._wait_for_start(state, end)
            if self.shared is not None:
                entry = await self.shared.enter(
                    host, self.config.per_host_concurrency, self.config.min_interval_s, end - self._clock()
                )
                token = entry.token
                if entry.wait_s > 0:
                    await asyncio.sleep(entry.wait_s)
        except BaseException:
            await self._leave(host, state, token, end)
            raise
        return state, token

    async def _leave(self, host: str, state: _Host, token: str | None, end: float) -> None:
        """Give back the shared slot (if one was taken), then the local one, whatever happens."""
        try:
            if token is not None and self.shared is not None:
                # A task of its own: a cancelled request still gives its shared slot back (else it
                # would stay taken until its lease ran out), and a Redis that hangs delays the
                # answer by LEAVE_WAIT_S at most, and never past the request's deadline.
                leaving = asyncio.create_task(self.shared.leave(host, token))
                self._leaving.add(leaving)
                leaving.add_done_callback(self._leaving.discard)
                wait = min(LEAVE_WAIT_S, end - self._clock())
                if wait > 0:
                    await asyncio.wait({leaving}, timeout=wait)
        finally:
            self._release(host, state)

    async def _acquire(self, state: _Host, queued_at: float, end: float) -> None:
        if state.active < self.config.per_host_concurrency and not state.waiters:
            state.active += 1
            return
        remaining = end - queued_at
        if remaining <= 0:
            raise LimitWait(0.0, "concurrency")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        state.waiters.append(waiter)
        try:
            async with asyncio.timeout(remaining):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._hand_on(state)  # granted in the same instant we gave up: pass it on
            else:
                waiter.cancel()
                with suppress(ValueError):
                    state.waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise LimitWait(round(self._clock() - queued_at, 3), "concurrency") from None
            raise

    async def _wait_for_start(self, state: _Host, end: float) -> None:
        interval = self.config.min_interval_s
        while True:
            now = self._clock()
            remaining = end - now
            retry_after = state.retry_until - now
            if retry_after > 0 and retry_after > remaining:
                raise RetryAfterActive(round(retry_after, 3))
            start = max(now, state.retry_until, state.next_start if interval > 0 else now)
            wait = start - now
            if wait > 0 and wait > remaining:
                raise LimitWait(round(wait, 3), "pacing")
            previous = state.next_start
            if interval > 0:
                state.next_start = start + interval
            if wait <= 0:
                return
            try:
                await asyncio.sleep(wait)
            except BaseException:
                self._unreserve(state, start, previous)
                raise
            if state.retry_until <= start:
                return
            self._unreserve(state, start, previous)  # a new Retry-After moved the start: plan again

    def _unreserve(self, state: _Host, start: float, previous: float) -> None:
        """Give back a pacing reservation if no later one was made on top of it."""
        if self.config.min_interval_s > 0 and state.next_start == start + self.config.min_interval_s:
            state.next_start = previous

    def _hand_on(self, state: _Host) -> None:
        """Release one slot: to the first live waiter (FIFO), else back to the pool."""
        while state.waiters:
            waiter = state.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        state.active -= 1

    def _release(self, host: str, state: _Host) -> None:
        self._hand_on(state)
        self._drop_if_idle(host, state)

    # --- Retry-After -----------------------------------------------------------------------

    def note_retry_after(self, host: str, seconds: float) -> float:
        """A 429/503 ``Retry-After`` from ``host``: later requests wait until then (capped).

        Returns the seconds honoured (0 for a non-positive or NaN value).
        """
        if math.isnan(seconds) or seconds <= 0:
            return 0.0
        honoured = min(seconds, self.config.max_retry_after_s)
        if honoured <= 0:
            return 0.0
        state = self._state(host)
        state.retry_until = max(state.retry_until, self._clock() + honoured)
        return honoured

    async def share_retry_after(self, host: str, seconds: float) -> None:
        """Publish a Retry-After already noted here (``note_retry_after``'s result) to the other replicas."""
        if self.shared is not None and seconds > 0:
            await self.shared.note_retry_after(host, seconds)

    def blocked_for(self, host: str) -> float:
        """Seconds until ``host``'s Retry-After is over (0 if none is in force)."""
        state = self._hosts.get(host)
        return 0.0 if state is None else max(0.0, state.retry_until - self._clock())

    # --- introspection ---------------------------------------------------------------------

    def in_use(self, host: str) -> int:
        """Slots held for ``host``."""
        state = self._hosts.get(host)
        return 0 if state is None else state.active

    def waiting(self, host: str) -> int:
        """Requests queued for one of ``host``'s slots."""
        state = self._hosts.get(host)
        return 0 if state is None else sum(not waiter.done() for waiter in state.waiters)

    def __len__(self) -> int:
        """Hosts with state kept (in use, queued, paced or under a Retry-After, or not yet swept)."""
        return len(self._hosts)

    # --- bookkeeping -----------------------------------------------------------------------

    def _state(self, host: str) -> _Host:
        state = self._hosts.get(host)
        if state is None:
            if len(self._hosts) >= self._sweep_at:
                self._sweep()
            state = self._hosts[host] = _Host()
        return state

    def _drop_if_idle(self, host: str, state: _Host) -> None:
        if state.idle(self._clock()) and self._hosts.get(host) is state:
            del self._hosts[host]

    def _sweep(self) -> None:
        now = self._clock()
        for host in [host for host, state in self._hosts.items() if state.idle(now)]:
            del self._hosts[host]
        self._sweep_at = max(_SWEEP_FLOOR, 2 * len(self._hosts))
