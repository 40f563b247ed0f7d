from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from browser_service.breaker import (
    BreakerConfig,
    Breakers,
    Circuit,
    CircuitOpenRefusal,
    HostBreaker,
    Ticket,
    phrase,
)

HOST = "example.com"


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make(**config: float) -> tuple[Breakers, FakeClock]:
    clock = FakeClock()
    return Breakers(BreakerConfig(**config), clock=clock), clock  # type: ignore[arg-type]


def call(breakers: Breakers, outcome: str = "ok", *, failure: bool | None = None, host: str = HOST) -> None:
    """One admitted call with its outcome; failure defaults to outcome != 'ok'."""
    ticket = breakers.before(host)
    breakers.record(host, outcome, failure=outcome != "ok" if failure is None else failure, ticket=ticket)


def open_circuit(breakers: Breakers, host: str = HOST) -> None:
    for _ in range(5):
        call(breakers, "timeout", host=host)
    assert breakers.state(host).circuit is Circuit.OPEN


# --- closed -> open --------------------------------------------------------------------------


def test_two_failures_of_five_stay_closed() -> None:
    breakers, _ = make()
    for outcome in ["ok", "timeout", "ok", "timeout", "ok"]:
        call(breakers, outcome)
    status = breakers.state(HOST)
    assert (status.circuit, status.calls, status.failures, status.failure_rate) == (Circuit.CLOSED, 5, 2, 0.4)
    assert status.state == "degraded"  # a failure among the last 3 calls


def test_three_failures_of_five_open_on_the_fifth_call() -> None:
    breakers, _ = make()
    for outcome in ["ok", "ok", "timeout", "timeout"]:
        call(breakers, outcome)
    status = breakers.state(HOST)
    assert status.circuit is Circuit.CLOSED
    assert status.failure_rate is None  # 4 calls: no verdict before minimum_calls
    call(breakers, "timeout")
    status = breakers.state(HOST)
    assert (status.circuit, status.state, status.calls, status.failures, status.failure_rate) == (
        Circuit.OPEN,
        "unavailable",
        5,
        3,
        0.6,
    )


def test_no_verdict_before_minimum_calls() -> None:
    breakers, _ = make()
    for _ in range(4):
        call(breakers, "timeout")
    status = breakers.state(HOST)
    assert (status.circuit, status.state, status.failure_rate) == (Circuit.CLOSED, "degraded", None)


def test_minimum_calls_is_capped_at_the_window() -> None:
    breakers, _ = make(window=3, minimum_calls=10)
    for _ in range(3):
        call(breakers, "timeout")
    assert breakers.state(HOST).circuit is Circuit.OPEN


def test_window_slides() -> None:
    breakers, _ = make(window=5, minimum_calls=5, failure_rate=0.6)
    for outcome in ["timeout", "timeout", "ok", "ok", "ok", "ok"]:  # the first failure slides out
        call(breakers, outcome)
    status = breakers.state(HOST)
    assert (status.calls, status.failures, status.failure_rate) == (5, 1, 0.2)


# --- open: fail fast -------------------------------------------------------------------------


def test_open_circuit_fails_fast_with_the_time_left() -> None:
    breakers, clock = make()
    open_circuit(breakers)
    clock.advance(12)
    with pytest.raises(CircuitOpenRefusal) as refused:
        breakers.before(HOST)
    assert refused.value.retry_after_s == 18.0
    assert refused.value.state == "unavailable"
    assert refused.value.summary == (
        "all of the last 5 fetches of example.com timed out; the circuit opened 12 s ago; next trial in 18 s"
    )
    assert str(refused.value) == refused.value.summary
    status = breakers.state(HOST)
    assert (status.retry_after_s, status.open_for_s, status.failures_to_open) == (18.0, 12.0, None)


def test_outcome_recorded_while_open_does_not_close_it() -> None:
    breakers, _ = make()
    late = breakers.before(HOST)
    open_circuit(breakers)
    breakers.record(HOST, "ok", failure=False, ticket=late)
    status = breakers.state(HOST)
    assert (status.circuit, status.calls, status.failures) == (Circuit.OPEN, 6, 5)


# --- half-open -------------------------------------------------------------------------------


def test_goes_half_open_after_open_s_and_admits_exactly_the_trials() -> None:
    breakers, clock = make()
    open_circuit(breakers)
    clock.advance(29.5)
    assert breakers.state(HOST).circuit is Circuit.OPEN
    clock.advance(0.5)
    assert breakers.state(HOST).circuit is Circuit.HALF_OPEN
    assert breakers.state(HOST).state == "degraded"
    first, second = breakers.before(HOST), breakers.before(HOST)
    assert first.trial and second.trial
    with pytest.raises(CircuitOpenRefusal) as refused:
        breakers.before(HOST)
    assert (refused.value.retry_after_s, refused.value.state) == (1.0, "degraded")
    assert breakers.state(HOST).retry_after_s == 1.0


def test_closes_when_the_trials_succeed_and_clears_the_window() -> None:
    breakers, clock = make()
    open_circuit(breakers)
    clock.advance(30)
    first, second = breakers.before(HOST), breakers.before(HOST)
    breakers.record(HOST, "ok", failure=False, ticket=first)
    assert breakers.state(HOST).circuit is Circuit.HALF_OPEN  # decides once every trial is in
    breakers.record(HOST, "ok", failure=False, ticket=second)
    status = breakers.state(HOST)
    assert (status.circuit, status.state, status.calls, status.failures) == (Circuit.CLOSED, "available", 0, 0)
    assert not breakers.before(HOST).trial


def test_reopens_when_a_trial_fails() -> None:
    breakers, clock = make()
    open_circuit(breakers)
    clock.advance(30)
    first, second = breakers.before(HOST), breakers.before(HOST)
    breakers.record(HOST, "blocked (cloudflare)", failure=True, ticket=first)
    assert breakers.state(HOST).circuit is Circuit.HALF_OPEN
    clock.advance(5)
    breakers.record(HOST, "ok", failure=False, ticket=second)  # 1 of 2 = 0.5 >= 0.5
    status = breakers.state(HOST)
    assert (status.circuit, status.retry_after_s) == (Circuit.OPEN, 30.0)  # a fresh open period
    clock.advance(30)
    assert breakers.state(HOST).circuit is Circuit.HALF_OPEN


def test_trial_verdict_uses_the_threshold() -> None:
    breakers, clock = make(half_open_calls=4, failure_rate=0.5)
    open_circuit(breakers)
    clock.advance(30)
    tickets = [breakers.before(HOST) for _ in range(4)]
    for ticket, failed in zip(tickets, [True, False, False, False], strict=True):
        breakers.record(HOST, "timeout" if failed else "ok", failure=failed, ticket=ticket)
    assert breakers.state(HOST).circuit is Circuit.CLOSED  # 1 of 4 < 0.5


def test_released_trial_gives_its_place_back() -> None:
    breakers, clock = make()
    open_circuit(breakers)
    clock.advance(30)
    first = breakers.before(HOST)
    with breakers.before(HOST):  # cancelled: leaves without an outcome
        pass
    third = breakers.before(HOST)
    with pytest.raises(CircuitOpenRefusal):
        breakers.before(HOST)
    breakers.release(HOST, third)
    breakers.release(HOST, third)  # idempotent
    fourth = breakers.before(HOST)
    breakers.record(HOST, "ok", failure=False, ticket=first)
    breakers.record(HOST, "ok", failure=False, ticket=fourth)
    assert breakers.state(HOST).circuit is Circuit.CLOSED


def test_ticket_context_manager_releases_on_error_but_not_after_record() -> None:
    breakers, clock = make(half_open_calls=1)
    open_circuit(breakers)
    clock.advance(30)
    with pytest.raises(RuntimeError), breakers.before(HOST):
        raise RuntimeError("cancelled mid-call")
    with breakers.before(HOST) as ticket:
        breakers.record(HOST, "ok", failure=False, ticket=ticket)
        assert ticket.done
    assert breakers.state(HOST).circuit is Circuit.CLOSED


def test_record_is_idempotent_per_ticket() -> None:
    breakers, _ = make()
    ticket = breakers.before(HOST)
    breakers.record(HOST, "timeout", failure=True, ticket=ticket)
    breakers.record(HOST, "timeout", failure=True, ticket=ticket)
    assert breakers.state(HOST).calls == 1


def test_late_outcome_from_before_recovery_skips_the_new_window() -> None:
    breakers, clock = make()
    slow = breakers.before(HOST)
    open_circuit(breakers)
    clock.advance(30)
    for ticket in [breakers.before(HOST), breakers.before(HOST)]:
        breakers.record(HOST, "ok", failure=False, ticket=ticket)
    breakers.record(HOST, "timeout", failure=True, ticket=slow)
    status = breakers.state(HOST)
    assert (status.circuit, status.calls, status.failures) == (Circuit.CLOSED, 0, 0)
    assert status.recent == {"timeout": 6, "ok": 2}  # the history keeps it
    assert status.last_error == "timeout"


def test_non_trial_outcome_in_half_open_does_not_decide() -> None:
    breakers, clock = make()
    open_circuit(breakers)
    clock.advance(30)
    breakers.record(HOST, "ok", failure=False)
    breakers.record(HOST, "ok", failure=False)
    assert breakers.state(HOST).circuit is Circuit.HALF_OPEN


# --- failures_to_open arithmetic -------------------------------------------------------------


def test_failures_to_open_accounts_for_the_sliding_window() -> None:
    # Window [F, F, ok, ok], threshold 0.75 over 4 calls. Without sliding it would take 4 more
    # failures ((2+4)/8); with sliding the two old failures leave first: 3 more give [ok, F, F, F].
    breakers, _ = make(window=4, minimum_calls=4, failure_rate=0.75)
    for outcome in ["timeout", "timeout", "ok", "ok"]:
        call(breakers, outcome)
    assert breakers.state(HOST).failures_to_open == 3
    call(breakers, "timeout")
    call(breakers, "timeout")
    assert breakers.state(HOST).circuit is Circuit.CLOSED
    call(breakers, "timeout")
    assert breakers.state(HOST).circuit is Circuit.OPEN


def test_failures_to_open_before_minimum_calls() -> None:
    breakers, _ = make()
    assert breakers.state(HOST).failures_to_open == 5
    call(breakers, "ok")
    call(breakers, "ok")
    assert breakers.state(HOST).failures_to_open == 3  # 3 of 5
    call(breakers, "ok")
    assert breakers.state(HOST).failures_to_open == 3  # 3 of 6


@given(
    st.integers(1, 8),
    st.integers(1, 10),
    st.sampled_from([0.1, 0.25, 0.3, 0.5, 0.6, 2 / 3, 0.75, 0.9, 1.0]),
    st.lists(st.booleans(), max_size=20),
)
def test_failures_to_open_matches_replay(window: int, minimum: int, rate: float, outcomes: list[bool]) -> None:
    config = BreakerConfig(window=window, minimum_calls=minimum, failure_rate=rate)
    clock = FakeClock()
    breaker = HostBreaker(HOST, config, clock)
    for failed in outcomes:
        if breaker.circuit is not Circuit.CLOSED:
            break
        breaker.record("timeout" if failed else "ok", failure=failed, ticket=breaker.acquire())
    k = breaker.failures_to_open()
    if breaker.circuit is not Circuit.CLOSED:
        assert k is None
        return
    assert k is not None and 1 <= k <= window
    circuits = []
    for _ in range(k):
        breaker.record("timeout", failure=True, ticket=breaker.acquire())
        circuits.append(breaker.circuit)
    assert circuits == [Circuit.CLOSED] * (k - 1) + [Circuit.OPEN]  # opens on exactly the k-th failure


# --- lifecycle -------------------------------------------------------------------------------


def test_available_once_recent_calls_succeed_and_rate_is_low() -> None:
    breakers, _ = make()
    call(breakers, "timeout")
    assert breakers.state(HOST).state == "degraded"
    for _ in range(3):
        call(breakers, "ok")
    assert breakers.host_state(HOST) == "available"  # 4 calls, not judged, last 3 fine
    call(breakers, "ok")
    assert breakers.host_state(HOST) == "available"  # 1 of 5 = 0.2 < 0.25


def test_degraded_at_half_the_threshold() -> None:
    breakers, _ = make()
    for outcome in ["timeout", "timeout", "ok", "ok", "ok"]:
        call(breakers, outcome)
    assert breakers.host_state(HOST) == "degraded"  # 2 of 5 = 0.4 >= 0.25


def test_throttled_host_is_degraded_until_the_pause_ends() -> None:
    breakers, clock = make()
    call(breakers, "ok")
    call(breakers, "ok")
    breakers.note_throttled(HOST, 30)
    status = breakers.state(HOST)
    assert (status.state, status.throttled_for_s) == ("degraded", 30.0)
    assert status.summary == (
        "all of the last 2 fetches of example.com succeeded; honouring the site's Retry-After for 30 s more"
    )
    clock.advance(30)
    status = breakers.state(HOST)
    assert (status.state, status.throttled_for_s) == ("available", None)
    assert status.summary == "all of the last 2 fetches of example.com succeeded"


def test_unknown_host_reads_available_without_being_remembered() -> None:
    breakers, _ = make()
    status = breakers.state("never.example")
    assert (status.state, status.circuit, status.calls, status.summary) == (
        "available",
        Circuit.CLOSED,
        0,
        "no fetches of never.example recorded yet",
    )
    assert breakers.host_state("never.example") == "available"
    assert len(breakers) == 0 and breakers.hosts() == []


def test_status_serialises_as_json() -> None:
    breakers, clock = make()
    open_circuit(breakers)
    clock.advance(2)
    data = breakers.state(HOST).model_dump(mode="json")
    assert data == {
        "host": HOST,
        "state": "unavailable",
        "circuit": "open",
        "calls": 5,
        "failures": 5,
        "failure_rate": 1.0,
        "failures_to_open": None,
        "retry_after_s": 28.0,
        "open_for_s": 2.0,
        "throttled_for_s": None,
        "last_error": "timeout",
        "last_error_age_s": 2.0,
        "recent": {"timeout": 5},
        "summary": "all of the last 5 fetches of example.com timed out; the circuit opened 2 s ago; next trial in 28 s",
    }


# --- registry --------------------------------------------------------------------------------


def test_registry_is_lru_bounded() -> None:
    breakers, _ = make(max_hosts=3)
    for host in ["a", "b", "c"]:
        call(breakers, host=host)
    call(breakers, host="a")  # a is now the most recent
    breakers.state("b")  # queries do not refresh
    call(breakers, host="d")  # evicts b, the least recently used
    assert [status.host for status in breakers.hosts()] == ["d", "a", "c"]
    assert "b" not in breakers and len(breakers) == 3
    breakers.note_throttled("e", 1)  # noting counts as activity
    assert [status.host for status in breakers.hosts()] == ["e", "d", "a"]


def test_evicted_host_starts_afresh() -> None:
    breakers, _ = make(max_hosts=1)
    open_circuit(breakers, "a")
    call(breakers, host="b")  # forgets "a"
    call(breakers, host="a")  # "a" is back, closed, with only the new call
    status = breakers.state("a")
    assert (status.circuit, status.calls, status.recent) == (Circuit.CLOSED, 1, {"ok": 1})


def test_ticket_from_a_forgotten_breaker_counts_as_an_ordinary_call() -> None:
    breakers, clock = make(max_hosts=1)
    open_circuit(breakers, "a")
    clock.advance(30)
    trial = breakers.before("a")
    assert trial.trial
    call(breakers, host="b")  # forgets "a"
    breakers.record("a", "timeout", failure=True, ticket=trial)
    status = breakers.state("a")
    assert (status.circuit, status.calls, status.failures) == (Circuit.CLOSED, 1, 1)


# --- summary ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([], "no fetches of example.com recorded yet"),
        (["ok"], "the last fetch of example.com succeeded"),
        (["ok"] * 5, "all of the last 5 fetches of example.com succeeded"),
        (
            ["blocked (cloudflare)"],
            "the last fetch of example.com was blocked (cloudflare); the circuit opens after 4 more failures",
        ),
        (
            ["ok", "ok", "ok", "ok", "timeout"],
            "1 of the last 5 fetches of example.com timed out; the circuit opens after 3 more failures",
        ),
        (
            ["http_error (503)", "http_error (503)"],
            "all of the last 2 fetches of example.com got HTTP errors (503); the circuit opens after 3 more failures",
        ),
        (
            ["ok", "weird_thing"],
            "1 of the last 2 fetches of example.com failed with weird_thing; the circuit opens after 3 more failures",
        ),
    ],
)
def test_summary(outcomes: list[str], expected: str) -> None:
    breakers, _ = make()
    for outcome in outcomes:
        call(breakers, outcome)
    assert breakers.state(HOST).summary == expected


def test_summary_of_the_issue() -> None:
    breakers, _ = make(failure_rate=0.7)
    for outcome in ["ok", "blocked (cloudflare)", "ok", "blocked (cloudflare)", "blocked (cloudflare)"]:
        call(breakers, outcome)
    assert breakers.state(HOST).summary == (
        "3 of the last 5 fetches of example.com were blocked (cloudflare); the circuit opens after 2 more failures"
    )


def test_summary_of_mixed_failures_names_the_dominant_first() -> None:
    breakers, _ = make(failure_rate=0.9)
    outcomes = ["timeout", "blocked (cloudflare)", "ok", "connection_error", "blocked (cloudflare)", "ok"]
    for outcome in outcomes:
        call(breakers, outcome)
    # ties are ordered by recency: connection_error happened after the timeout
    assert breakers.state(HOST).summary == (
        "4 of the last 6 fetches of example.com failed: 2 were blocked (cloudflare), 1 failed to connect, "
        "1 timed out; the circuit opens after 14 more failures"
    )


def test_summary_folds_rare_failures() -> None:
    breakers, _ = make(failure_rate=1.0, minimum_calls=20)
    for outcome in ["captcha", "captcha", "timeout", "rate_limited", "dns_error", "tls_error", "ok"]:
        call(breakers, outcome)
    assert breakers.state(HOST).summary == (
        "6 of the last 7 fetches of example.com failed: 2 hit a captcha, 1 failed the TLS handshake, "
        "1 failed DNS resolution, 2 other failures; the circuit opens after 20 more failures"
    )


def test_summary_of_non_failures_that_are_not_successes() -> None:
    breakers, _ = make()
    call(breakers, "not_found", failure=False)
    assert breakers.state(HOST).summary == "the last fetch of example.com reached the site"
    call(breakers, "ok")
    assert breakers.state(HOST).summary == "all of the last 2 fetches of example.com reached the site"
    assert breakers.state(HOST).recent == {"not_found": 1, "ok": 1}
    assert breakers.state(HOST).state == "available"


def test_known_only_reports_remembered_hosts() -> None:
    breakers, _ = make()
    assert breakers.known(HOST) is None
    call(breakers, "timeout")
    status = breakers.known(HOST)
    assert status is not None and (status.failures, status.last_error) == (1, "timeout")


def test_summary_keeps_only_the_history() -> None:
    breakers, _ = make(history=3, failure_rate=0.9)
    for outcome in ["timeout", "timeout", "ok", "ok", "ok"]:
        call(breakers, outcome)
    status = breakers.state(HOST)
    assert (
        status.summary == "all of the last 3 fetches of example.com succeeded; the circuit opens after 18 more failures"
    )
    assert status.calls == 5  # the window is separate from the history


def test_summary_while_open_and_half_open() -> None:
    breakers, clock = make()
    for outcome in ["ok", "blocked (cloudflare)", "ok", "blocked (cloudflare)", "blocked (cloudflare)"]:
        call(breakers, outcome)
    clock.advance(12.25)
    assert breakers.state(HOST).summary == (
        "3 of the last 5 fetches of example.com were blocked (cloudflare); the circuit opened 12 s ago; "
        "next trial in 18 s"
    )
    clock.advance(17.75)
    trial = breakers.before(HOST)
    breakers.before(HOST)
    breakers.record(HOST, "ok", failure=False, ticket=trial)
    assert breakers.state(HOST).summary == (
        "3 of the last 6 fetches of example.com were blocked (cloudflare); "
        "the circuit is half-open: 1 of 2 trial fetches done"
    )


def test_phrase() -> None:
    assert phrase("blocked (cloudflare)", 1) == "was blocked (cloudflare)"
    assert phrase("blocked (cloudflare)", 3) == "were blocked (cloudflare)"
    assert phrase("timeout", 2) == "timed out"
    assert phrase("mystery", 1) == "failed with mystery"
    assert phrase("http_error 503", 2) == "got HTTP errors (503)"  # a bare qualifier is parenthesised


# --- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"window": 0},
        {"minimum_calls": 0},
        {"half_open_calls": 0},
        {"history": 0},
        {"max_hosts": 0},
        {"failure_rate": 0.0},
        {"failure_rate": 1.5},
        {"open_s": -1.0},
    ],
)
def test_config_is_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BreakerConfig(**bad)  # type: ignore[arg-type]


def test_a_snapshot_restores_the_same_breaker_and_its_tickets_still_count() -> None:
    """What the shared breakers keep in Redis: the restored breaker judges exactly as the original."""
    clock = FakeClock()
    config = BreakerConfig(window=5, minimum_calls=3, open_s=10, half_open_calls=2)
    original = HostBreaker(HOST, config, clock)
    for outcome in ("ok", "blocked (cloudflare)", "timeout"):
        original.record(outcome, failure=outcome != "ok", ticket=original.acquire())
    original.note_throttled(30)
    assert original.circuit is Circuit.OPEN
    restored = HostBreaker.restore(HOST, config, clock, original.snapshot())
    assert restored.status() == original.status()
    assert restored.snapshot() == original.snapshot()
    clock.advance(10)
    trial = restored.acquire()  # half-open now; the trial goes through a snapshot and back
    assert trial.trial
    again = HostBreaker.restore(HOST, config, clock, restored.snapshot())
    again.record("ok", failure=False, ticket=Ticket.bound(again, trial=True, epoch=trial.epoch, era=trial.era))
    assert again.status().summary.endswith(
        "the circuit is half-open: 1 of 2 trial fetches done; honouring the site's Retry-After for 20 s more"
    )
    assert HostBreaker.restore(HOST, config, clock, None).status().calls == 0
