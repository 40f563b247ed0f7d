"""Per-host circuit breakers (Resilience4j semantics), the host lifecycle state and a compact history.

One :class:`HostBreaker` per host, kept in a bounded :class:`Breakers` registry. Pure logic: no I/O,
no awaits, an injectable monotonic clock. All methods are plain and run to completion, so one event
loop can share a registry without locks.

The circuit::

                 failure rate >= failure_rate
                 over >= minimum_calls calls
      ┌────────┐ in the sliding window        ┌──────┐
      │ CLOSED │ ───────────────────────────► │ OPEN │ ◄─────────────────┐
      └────────┘                              └──────┘                   │
          ▲                                      │ open_s elapsed        │ trial failure rate
          │ trial failure rate < failure_rate    │ (checked lazily on    │ >= failure_rate
          │ (window cleared)                     ▼  the next call/query) │
          │                                ┌───────────┐                 │
          └─────────────────────────────── │ HALF_OPEN │ ────────────────┘
                                           └───────────┘
                                   admits half_open_calls trial calls;
                                   decides once all of their outcomes are in

* **CLOSED** — every call is admitted. Outcomes go into a count-based sliding window of the last
  ``window`` calls. After each recorded outcome, if the window holds at least ``minimum_calls`` calls
  (capped at ``window``) and ``failures / calls >= failure_rate``, the circuit opens.
* **OPEN** — calls are refused at once with :class:`CircuitOpenRefusal`, whose ``retry_after_s`` is the
  time left until ``open_s`` has passed since the circuit opened. The first call or query after that
  moves the circuit to HALF_OPEN (no timers).
* **HALF_OPEN** — exactly ``half_open_calls`` trial calls are admitted (a released, i.e. cancelled,
  trial gives its place back); others are refused with ``retry_after_s = busy_retry_s``. Once all
  ``half_open_calls`` trial outcomes are recorded: ``trial failures / half_open_calls < failure_rate``
  closes the circuit with an empty window; otherwise it opens again for another ``open_s``.

Calls and tickets: :meth:`Breakers.before` admits a call and returns a :class:`Ticket` (or raises
:class:`CircuitOpenRefusal`). End every admitted call with exactly one of
:meth:`Breakers.record` (an outcome) or :meth:`Breakers.release` (no outcome, e.g. cancelled); the
ticket is also a context manager that releases on exit unless an outcome was recorded, which makes
cancellation safe::

    with breakers.before(host) as ticket:
        page = await fetch(...)
        breakers.record(host, "ok", failure=False, ticket=ticket)

Both are idempotent per ticket. A late outcome of a call admitted before the circuit last closed is
kept in the history but not in the fresh window; an outcome recorded while OPEN lands in the window
(as in Resilience4j) but only a CLOSED circuit judges it; in HALF_OPEN only the trial tickets decide.

Where the state lives is ``breaker_shared``'s business: :meth:`HostBreaker.snapshot` and
:meth:`HostBreaker.restore` let replicas keep one host's breaker in Redis and run this same logic on
it (:meth:`Ticket.bound` re-binds a ticket another replica's call was admitted with).

Lifecycle state (served as ``host_state``): **unavailable** while the circuit is open; **degraded**
while half-open, while a Retry-After noted with :meth:`Breakers.note_throttled` is in force, or when
the circuit is closed but one of the last ``recent_calls`` calls in the window failed or the window's
failure rate (once judged) is at least half the threshold; **available** otherwise.

The history keeps the last ``history`` outcome labels (``"ok"``, ``"blocked (cloudflare)"``,
``"timeout"``, ``"http_error 503"`` …: the kind, then an optional qualifier, shown in parentheses)
and renders the summary used in error messages and the health endpoints instead of raw error
dumps, e.g. ``3 of the last 5 fetches of example.com were blocked (cloudflare); the circuit opens
after 2 more failures``. "k more failures" is exact: the smallest k such that k consecutive
failures from now open the circuit, with the window sliding as they land. A healthy host reads
``all of the last 5 fetches of example.com succeeded`` ("reached the site" when some outcomes were
not failures but not "ok" either, e.g. a 404); an open one adds ``the circuit opened 12 s ago;
next trial in 18 s``, a half-open one ``the circuit is half-open: 1 of 2 trial fetches done``.
"""

from __future__ import annotations

import math
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from browser_service.contract import Circuit, HostState, HostStatus

Clock = Callable[[], float]


@dataclass(frozen=True)
class BreakerConfig:
    window: int = 20
    """Count-based sliding window: the last ``window`` recorded calls."""
    minimum_calls: int = 5
    """No failure-rate verdict before this many calls are in the window (capped at ``window``)."""
    failure_rate: float = 0.5
    """Open when ``failures / calls >= failure_rate`` (with at least ``minimum_calls`` calls)."""
    open_s: float = 30.0
    """How long an open circuit refuses calls before it lets trial calls through."""
    half_open_calls: int = 2
    """Trial calls admitted in HALF_OPEN; the circuit decides once all of their outcomes are in."""
    history: int = 20
    """Outcomes kept per host for the summary."""
    max_hosts: int = 10_000
    """Hosts kept in the registry; the least recently used is forgotten beyond this."""
    busy_retry_s: float = 1.0
    """``retry_after_s`` for a call refused because all half-open trial places are taken."""
    recent_calls: int = 3
    """A closed host is degraded when any of its last ``recent_calls`` calls failed."""

    def __post_init__(self) -> None:
        for name in ("window", "minimum_calls", "half_open_calls", "history", "max_hosts", "recent_calls"):
            if getattr(self, name) < 1:
                raise ValueError(f"BreakerConfig.{name} must be at least 1")
        if not 0 < self.failure_rate <= 1:
            raise ValueError("BreakerConfig.failure_rate must be in (0, 1]")
        if not (self.open_s >= 0 and self.busy_retry_s >= 0):
            raise ValueError("BreakerConfig.open_s and busy_retry_s must not be negative")

    @property
    def effective_minimum_calls(self) -> int:
        return min(self.minimum_calls, self.window)


class CircuitOpenRefusal(Exception):
    """A call refused by a host's circuit: open, or half-open with every trial place taken."""

    def __init__(self, retry_after_s: float, summary: str, state: HostState) -> None:
        super().__init__(summary)
        self.retry_after_s = retry_after_s
        self.summary = summary
        self.state = state


class Ticket:
    """Permission for one call. End it with exactly one record or release (or use it as a context manager)."""

    __slots__ = ("_breaker", "_done", "_epoch", "_era", "host", "trial")

    def __init__(self, breaker: HostBreaker, *, trial: bool) -> None:
        self.host = breaker.host
        self.trial = trial
        self._breaker = breaker
        self._epoch = breaker._epoch
        self._era = breaker._era
        self._done = False

    @classmethod
    def bound(cls, breaker: HostBreaker, *, trial: bool, epoch: int, era: int) -> Ticket:
        """A ticket issued earlier (by a replica, see ``breaker_shared``) bound to a restored breaker."""
        ticket = cls(breaker, trial=trial)
        ticket._epoch = epoch
        ticket._era = era
        return ticket

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def era(self) -> int:
        return self._era

    @property
    def done(self) -> bool:
        return self._done

    def release(self) -> None:
        """End the call without an outcome (cancelled, or a caller error): frees a half-open trial place."""
        if not self._done:
            self._done = True
            self._breaker._release(self)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Ticket({self.host!r}, trial={self.trial}, done={self._done})"


# --- summary phrasing ---------------------------------------------------------------------------

#: outcome kind -> (phrase for one fetch, phrase for several).
_PHRASES: dict[str, tuple[str, str]] = {
    "ok": ("succeeded", "succeeded"),
    "blocked": ("was blocked", "were blocked"),
    "captcha": ("hit a captcha", "hit a captcha"),
    "login_required": ("hit a login wall", "hit a login wall"),
    "rate_limited": ("was rate limited", "were rate limited"),
    "timeout": ("timed out", "timed out"),
    "connection_error": ("failed to connect", "failed to connect"),
    "dns_error": ("failed DNS resolution", "failed DNS resolution"),
    "tls_error": ("failed the TLS handshake", "failed the TLS handshake"),
    "http_error": ("got an HTTP error", "got HTTP errors"),
    "not_found": ("was not found", "were not found"),
    "empty_content": ("came back empty", "came back empty"),
    "suspect_content": ("looked suspect", "looked suspect"),
    "too_large": ("was too large", "were too large"),
    "unsupported_content": ("had unsupported content", "had unsupported content"),
    "browser_error": ("hit a browser error", "hit browser errors"),
    "internal_error": ("hit an internal error", "hit internal errors"),
}

#: Failure kinds listed by name in a mixed summary; the rest are folded into "N other failures".
_MAX_GROUPS = 3


def phrase(label: str, count: int) -> str:
    """``"blocked (cloudflare)", 2`` -> ``"were blocked (cloudflare)"``; unknown kinds: ``"failed with X"``."""
    kind, _, qualifier = label.partition(" ")
    one, many = _PHRASES.get(kind, (f"failed with {kind}", f"failed with {kind}"))
    text = one if count == 1 else many
    if not qualifier:
        return text
    return f"{text} {qualifier}" if qualifier.startswith("(") else f"{text} ({qualifier})"


def _future_s(seconds: float) -> int:
    """Whole seconds for a wait, rounded up, at least 1."""
    return max(1, math.ceil(round(seconds, 3)))


def _past_s(seconds: float) -> int:
    """Whole seconds elapsed, rounded down."""
    return max(0, math.floor(round(seconds, 3)))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class HostBreaker:
    """The circuit, sliding window and history of one host."""

    def __init__(self, host: str, config: BreakerConfig, clock: Clock = time.monotonic) -> None:
        self.host = host
        self._config = config
        self._clock = clock
        self._circuit = Circuit.CLOSED
        self._window: deque[bool] = deque(maxlen=config.window)
        self._history: deque[tuple[str, bool]] = deque(maxlen=config.history)
        self._opened_at = 0.0
        #: Bumped on every transition; trial tickets belong to one half-open epoch.
        self._epoch = 0
        #: Bumped when the window is cleared (on close); outcomes of older calls skip the window.
        self._era = 0
        self._trials_in_flight = 0
        self._trials_done = 0
        self._trial_failures = 0
        self._last_error: str | None = None
        self._last_error_at = 0.0
        self._throttled_until = -math.inf

    # --- snapshots (the shared breakers keep this state in Redis) -----------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything that decides the circuit, as JSON-ready values (times on this breaker's clock)."""
        return {
            "circuit": self._circuit.value,
            "opened_at": self._opened_at,
            "epoch": self._epoch,
            "era": self._era,
            "trials_in_flight": self._trials_in_flight,
            "trials_done": self._trials_done,
            "trial_failures": self._trial_failures,
            "window": [int(failure) for failure in self._window],
            "history": [[label, failure] for label, failure in self._history],
            "last_error": self._last_error,
            "last_error_at": self._last_error_at,
            "throttled_until": self._throttled_until if math.isfinite(self._throttled_until) else None,
        }

    @classmethod
    def restore(cls, host: str, config: BreakerConfig, clock: Clock, data: dict[str, Any] | None) -> HostBreaker:
        """A breaker in the state a :meth:`snapshot` recorded (a fresh one for None)."""
        breaker = cls(host, config, clock)
        if not data:
            return breaker
        breaker._circuit = Circuit(data["circuit"])
        breaker._opened_at = float(data["opened_at"])
        breaker._epoch = int(data["epoch"])
        breaker._era = int(data["era"])
        breaker._trials_in_flight = int(data["trials_in_flight"])
        breaker._trials_done = int(data["trials_done"])
        breaker._trial_failures = int(data["trial_failures"])
        breaker._window.extend(bool(failure) for failure in data["window"])
        breaker._history.extend((str(label), bool(failure)) for label, failure in data["history"])
        breaker._last_error = data.get("last_error")
        breaker._last_error_at = float(data.get("last_error_at") or 0.0)
        throttled = data.get("throttled_until")
        breaker._throttled_until = -math.inf if throttled is None else float(throttled)
        return breaker

    def release_trials(self) -> None:
        """Forget trial calls in flight (their replica went away without an outcome): places free again."""
        self._trials_in_flight = 0

    @property
    def trials_in_flight(self) -> int:
        return self._trials_in_flight

    # --- calls -----------------------------------------------------------------------------

    def acquire(self) -> Ticket:
        """Admit a call, or raise :class:`CircuitOpenRefusal`."""
        now = self._clock()
        self._advance(now)
        if self._circuit is Circuit.CLOSED:
            return Ticket(self, trial=False)
        if self._circuit is Circuit.OPEN:
            raise CircuitOpenRefusal(self._open_remaining(now), self._summary(now), "unavailable")
        if self._trials_in_flight + self._trials_done < self._config.half_open_calls:
            self._trials_in_flight += 1
            return Ticket(self, trial=True)
        raise CircuitOpenRefusal(self._config.busy_retry_s, self._summary(now), "degraded")

    def record(self, outcome: str, *, failure: bool, ticket: Ticket | None = None) -> None:
        """The outcome of a call. ``failure`` says whether it counts toward the failure rate."""
        now = self._clock()
        self._advance(now)
        trial = False  # a trial call of the current half-open round: it decides the circuit
        windowed = True  # an ordinary call of the current window's era
        if ticket is not None:
            if ticket._done:
                return
            ticket._done = True
            if ticket._breaker is self:  # else: issued by a forgotten breaker; an ordinary call
                if ticket.trial:
                    trial = ticket._epoch == self._epoch and self._circuit is Circuit.HALF_OPEN
                    windowed = False
                else:
                    windowed = ticket._era == self._era
        self._history.append((outcome, failure))
        if failure:
            self._last_error = outcome
            self._last_error_at = now
        if trial:
            self._trials_in_flight -= 1
            self._trials_done += 1
            self._trial_failures += failure
            if self._trials_done >= self._config.half_open_calls:
                if self._trial_failures / self._config.half_open_calls >= self._config.failure_rate:
                    self._open(now)
                else:
                    self._close()
            return
        if windowed:
            self._window.append(failure)
            if self._circuit is Circuit.CLOSED and self._judged_failing():
                self._open(now)

    def _release(self, ticket: Ticket) -> None:
        if ticket.trial and ticket._epoch == self._epoch and self._circuit is Circuit.HALF_OPEN:
            self._trials_in_flight -= 1

    def note_throttled(self, seconds: float) -> None:
        """The site asked for a pause (Retry-After): degraded until it is over."""
        if math.isfinite(seconds) and seconds > 0:
            self._throttled_until = max(self._throttled_until, self._clock() + seconds)

    # --- transitions -----------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        if self._circuit is Circuit.OPEN and now - self._opened_at >= self._config.open_s:
            self._circuit = Circuit.HALF_OPEN
            self._epoch += 1
            self._trials_in_flight = self._trials_done = self._trial_failures = 0

    def _open(self, now: float) -> None:
        self._circuit = Circuit.OPEN
        self._opened_at = now
        self._epoch += 1

    def _close(self) -> None:
        self._circuit = Circuit.CLOSED
        self._epoch += 1
        self._era += 1
        self._window.clear()

    def _verdict(self, calls: int, failures: int) -> bool:
        return calls >= self._config.effective_minimum_calls and failures / calls >= self._config.failure_rate

    def _judged_failing(self) -> bool:
        return self._verdict(len(self._window), sum(self._window))

    def _open_remaining(self, now: float) -> float:
        return round(max(0.0, self._config.open_s - (now - self._opened_at)), 3)

    def failures_to_open(self) -> int | None:
        """The smallest k such that k more failures open the circuit (the window slides as they land)."""
        self._advance(self._clock())
        return self._failures_to_open() if self._circuit is Circuit.CLOSED else None

    def _failures_to_open(self) -> int:
        calls = list(self._window)
        n, size, failures = len(calls), self._config.window, sum(calls)
        dropped = 0
        for k in range(1, size + 1):
            if n + k > size:
                dropped += calls[n + k - size - 1]
            if self._verdict(min(n + k, size), failures - dropped + k):
                return k
        return size  # unreachable: a window of failures only always opens (failure_rate <= 1)

    # --- state -----------------------------------------------------------------------------

    @property
    def circuit(self) -> Circuit:
        self._advance(self._clock())
        return self._circuit

    def lifecycle(self) -> HostState:
        now = self._clock()
        self._advance(now)
        return self._lifecycle(now)

    def _lifecycle(self, now: float) -> HostState:
        if self._circuit is Circuit.OPEN:
            return "unavailable"
        if self._circuit is Circuit.HALF_OPEN or self._throttled_until > now:
            return "degraded"
        recent = list(self._window)[-self._config.recent_calls :]
        if any(recent):
            return "degraded"
        calls, failures = len(self._window), sum(self._window)
        if calls >= self._config.effective_minimum_calls and failures / calls >= self._config.failure_rate / 2:
            return "degraded"
        return "available"

    def summary(self) -> str:
        now = self._clock()
        self._advance(now)
        return self._summary(now)

    def _summary(self, now: float) -> str:
        host = self.host
        n = len(self._history)
        failed = [label for label, failure in self._history if failure]
        f = len(failed)
        if n == 0:
            lead = f"no fetches of {host} recorded yet"
        elif f == 0:
            # "succeeded" only if every outcome was "ok"; a 404 is no host failure, but no success either
            verb = "succeeded" if all(label == "ok" for label, _ in self._history) else "reached the site"
            lead = f"the last fetch of {host} {verb}" if n == 1 else f"all of the last {n} fetches of {host} {verb}"
        else:
            counts = Counter(failed)
            last_seen = {label: i for i, label in enumerate(failed)}
            groups = sorted(counts, key=lambda label: (-counts[label], -last_seen[label]))
            if n == 1:
                subject = f"the last fetch of {host}"
            elif f == n:
                subject = f"all of the last {n} fetches of {host}"
            else:
                subject = f"{f} of the last {n} fetches of {host}"
            if len(groups) == 1:
                lead = f"{subject} {phrase(groups[0], f)}"
            else:
                parts = [f"{counts[label]} {phrase(label, counts[label])}" for label in groups[:_MAX_GROUPS]]
                rest = sum(counts[label] for label in groups[_MAX_GROUPS:])
                if rest:
                    parts.append(f"{_plural(rest, 'other failure')}")
                lead = f"{subject} failed: {', '.join(parts)}"
        clauses = [lead]
        if self._circuit is Circuit.OPEN:
            clauses.append(f"the circuit opened {_past_s(now - self._opened_at)} s ago")
            clauses.append(f"next trial in {_future_s(self._open_remaining(now))} s")
        elif self._circuit is Circuit.HALF_OPEN:
            clauses.append(
                f"the circuit is half-open: {self._trials_done} of {self._config.half_open_calls} trial fetches done"
            )
        elif f or any(self._window):
            k = self._failures_to_open()
            clauses.append(f"the circuit opens after {_plural(k, 'more failure')}")
        if self._throttled_until > now:
            clauses.append(f"honouring the site's Retry-After for {_future_s(self._throttled_until - now)} s more")
        return "; ".join(clauses)

    def status(self) -> HostStatus:
        now = self._clock()
        self._advance(now)
        calls, failures = len(self._window), sum(self._window)
        judged = calls >= self._config.effective_minimum_calls
        retry_after: float | None = None
        if self._circuit is Circuit.OPEN:
            retry_after = self._open_remaining(now)
        elif (
            self._circuit is Circuit.HALF_OPEN
            and self._trials_in_flight + self._trials_done >= self._config.half_open_calls
        ):
            retry_after = self._config.busy_retry_s
        return HostStatus(
            host=self.host,
            state=self._lifecycle(now),
            circuit=self._circuit,
            calls=calls,
            failures=failures,
            failure_rate=round(failures / calls, 4) if judged else None,
            failures_to_open=self._failures_to_open() if self._circuit is Circuit.CLOSED else None,
            retry_after_s=retry_after,
            open_for_s=round(now - self._opened_at, 3) if self._circuit is Circuit.OPEN else None,
            throttled_for_s=round(self._throttled_until - now, 3) if self._throttled_until > now else None,
            last_error=self._last_error,
            last_error_age_s=round(now - self._last_error_at, 3) if self._last_error is not None else None,
            recent=dict(Counter(label for label, _ in self._history)),
            summary=self._summary(now),
        )


class Breakers:
    """The registry: one :class:`HostBreaker` per host (the key is used as given), LRU-bounded.

    Hosts are remembered from their first :meth:`before`, :meth:`record` or :meth:`note_throttled`;
    queries (:meth:`state`, :meth:`host_state`, :meth:`hosts`) never add or refresh one. Beyond
    ``config.max_hosts`` the least recently used host is forgotten (its state starts afresh if it
    comes back; an outcome whose ticket came from the forgotten breaker counts as an ordinary one).
    """

    def __init__(self, config: BreakerConfig | None = None, clock: Clock = time.monotonic) -> None:
        self.config = config or BreakerConfig()
        self._clock = clock
        self._hosts: OrderedDict[str, HostBreaker] = OrderedDict()

    def _touch(self, host: str) -> HostBreaker:
        breaker = self._hosts.get(host)
        if breaker is None:
            breaker = self._hosts[host] = HostBreaker(host, self.config, self._clock)
            while len(self._hosts) > self.config.max_hosts:
                self._hosts.popitem(last=False)
        else:
            self._hosts.move_to_end(host)
        return breaker

    def before(self, host: str) -> Ticket:
        """Admit a call to ``host`` or raise :class:`CircuitOpenRefusal`. End the ticket with record or release."""
        return self._touch(host).acquire()

    def record(self, host: str, outcome: str, *, failure: bool, ticket: Ticket | None = None) -> None:
        """An outcome label (``"ok"``, ``"blocked (cloudflare)"`` …); ``failure`` counts toward the rate.

        Without a ticket the outcome counts as an ordinary (non-trial) call. A ticket already ended
        is ignored, so recording twice is harmless.
        """
        self._touch(host).record(outcome, failure=failure, ticket=ticket)

    def release(self, host: str, ticket: Ticket) -> None:
        """End an admitted call without an outcome; idempotent. Same as ``ticket.release()``."""
        ticket.release()

    def note_throttled(self, host: str, seconds: float) -> None:
        """``host`` asked for a pause of ``seconds`` (Retry-After): it reads as degraded until then."""
        self._touch(host).note_throttled(seconds)

    def state(self, host: str) -> HostStatus:
        """The host's status; a host never seen reads as available with no calls."""
        breaker = self._hosts.get(host) or HostBreaker(host, self.config, self._clock)
        return breaker.status()

    def known(self, host: str) -> HostStatus | None:
        """The host's status if it is remembered, else None (for enriching errors about it)."""
        breaker = self._hosts.get(host)
        return breaker.status() if breaker is not None else None

    def host_state(self, host: str) -> HostState:
        """Just the lifecycle state (cheap; for ``ErrorInfo.host_state``)."""
        breaker = self._hosts.get(host)
        return breaker.lifecycle() if breaker is not None else "available"

    def hosts(self) -> list[HostStatus]:
        """Every remembered host's status, most recently active first."""
        return [breaker.status() for breaker in reversed(self._hosts.values())]

    def circuits(self) -> list[tuple[str, Circuit, HostState]]:
        """(host, circuit, lifecycle state) of every remembered host, most recently active first.

        Cheaper than :meth:`hosts` (no summaries): ``/metrics`` reads it on every scrape.
        """
        return [(host, breaker.circuit, breaker.lifecycle()) for host, breaker in reversed(self._hosts.items())]

    def __len__(self) -> int:
        return len(self._hosts)

    def __contains__(self, host: object) -> bool:
        return host in self._hosts
