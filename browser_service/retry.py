"""Retries of partial failures: which errors are worth another try, and how long to wait first.

A retry must be able to succeed and must fit the request's one deadline. Retried now:

* ``connection_error`` (a reset or refused connection) and ``timeout`` of one phase when time is left;
* ``http_error`` 502, 503, 504 (and 408): a proxy or origin hiccup;
* ``rate_limited`` only when the origin said when (Retry-After) and that moment fits the deadline;
* ``browser_error`` marked retryable (the browser crashed under the page; the pool relaunches it).

Never retried: the caller's errors, other 4xx, ``not_found``, and block verdicts (blocked, captcha,
login) — sending the same request again only deepens a block. The one deliberate exception, the HTTP
engine escalating to the browser for a JavaScript challenge, is the pipeline's escalation, not a retry.

The waits are exponential with full jitter (tenacity's ``wait_random_exponential``) so that many
clients retrying a recovering origin do not arrive in lock-step; a Retry-After is a floor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_random_exponential

from browser_service.deadline import Deadline
from browser_service.errors import (
    BrowserError,
    ConnectError,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    RateLimited,
)

T = TypeVar("T")

#: Origin statuses a moment's wait can fix.
RETRY_STATUSES = frozenset({408, 502, 503, 504})

#: A retry is pointless with less time left than this: no page loads that fast.
MIN_TRY_S = 0.5


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # tries in total, the first included
    backoff_s: float = 0.25  # the first wait's upper bound; doubles each time (full jitter)
    backoff_cap_s: float = 4.0


def worth_retrying(exc: BaseException) -> bool:
    """Whether sending the same request again may succeed (the deadline is checked separately)."""
    if isinstance(exc, ConnectError | FetchTimeout):
        return True
    if isinstance(exc, HTTPStatusError):
        return exc.status_code in RETRY_STATUSES
    if isinstance(exc, RateLimited):
        return exc.retry_after_s is not None
    if isinstance(exc, BrowserError):
        return exc.retryable
    return False


async def with_retries(
    policy: RetryPolicy,
    deadline: Deadline,
    attempt: Callable[[], Awaitable[T]],
    *,
    on_retry: Callable[[FetchError, float], None] | None = None,
) -> T:
    """Run ``attempt`` until it succeeds, fails for good, or the next try would not fit the deadline.

    The last error is raised as it is, so the caller sees the real failure rather than a wrapper.
    ``on_retry(error, wait_s)`` is told about every retry before its wait.
    """
    backoff = wait_random_exponential(multiplier=policy.backoff_s, max=policy.backoff_cap_s)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        floor = (error.retry_after_s or 0.0) if isinstance(error, FetchError) else 0.0
        return max(floor, backoff(state))

    def stop(state: RetryCallState) -> bool:
        out_of_tries = state.attempt_number >= policy.attempts
        return out_of_tries or state.upcoming_sleep + MIN_TRY_S > deadline.remaining()

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        if on_retry is not None and isinstance(error, FetchError):
            on_retry(error, state.upcoming_sleep)

    retrying = AsyncRetrying(
        retry=retry_if_exception(worth_retrying),
        wait=wait,
        stop=stop,
        before_sleep=before_sleep,
        reraise=True,
    )
    async for trial in retrying:
        with trial:
            result = await attempt()
        if not trial.retry_state.outcome or not trial.retry_state.outcome.failed:
            return result
    raise AssertionError("unreachable: tenacity either returns a result or re-raises the last error")
