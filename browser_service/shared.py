"""The link to Redis, the shared-state engine several replicas act as one through.

With ``BROWSER_SERVICE_REDIS_URL`` set, the page cache (``RedisCacheStore``), the host breakers
(``breaker_shared.RedisBreakers``), a host's Retry-After and pacing (``limits.RedisHostTimes``),
named sessions (``sessions.RedisSessionStore``) and traces (``traces_shared.RedisTraces``) keep their
state in one Redis; without it everything stays embedded. Every store talks to Redis through
:meth:`RedisLink.call`, which:

* **bounds every call** (``timeout_s``, default 0.5 s, as the socket timeouts too), so a Redis that
  hangs costs a request at most that, never its deadline;
* **remembers failure**: after a failed call Redis is skipped for ``retry_s`` (1 s) — callers get
  :class:`SharedUnavailable` at once and fall back (cache: a miss; breakers and limits: the
  per-process state; sessions: ``overloaded``) — then the next call tries again;
* **reports** available / unavailable (with the last error) for ``/v1/health``.

Times that replicas compare (a circuit's opening, a Retry-After's end, the next paced start) are
Redis's own clock (``TIME``), so replicas on machines whose clocks drift still agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as redis
from redis.exceptions import RedisError

from browser_service.contract import SharedStateHealth

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Keys are namespaced so one Redis can hold other things (or several services, with other prefixes).
PREFIX = "browser-service:"


class SharedUnavailable(Exception):
    """Redis did not answer in time (or was skipped after a recent failure): fall back."""


class RedisLink:
    """One Redis client for every shared store, each call bounded, and its health."""

    def __init__(self, url: str, *, timeout_s: float = 0.5, retry_s: float = 1.0, prefix: str = PREFIX) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self.prefix = prefix
        self.client: redis.Redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry_on_timeout=False,
            health_check_interval=30,
        )
        self._down_until = 0.0
        self._error: str | None = None

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    @property
    def available(self) -> bool:
        return self._error is None

    async def call(self, fn: Callable[[redis.Redis], Awaitable[T]], *, timeout_s: float | None = None) -> T:
        """Run ``fn(client)`` within the timeout, or raise :class:`SharedUnavailable`."""
        if self._error is not None and time.monotonic() < self._down_until:
            raise SharedUnavailable(self._error)
        try:
            result = await asyncio.wait_for(fn(self.client), self.timeout_s if timeout_s is None else timeout_s)
        except (RedisError, OSError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if self._error is None:
                log.warning("redis unavailable; falling back to per-process state", extra={"error": error})
            self._error = error
            self._down_until = time.monotonic() + self.retry_s
            raise SharedUnavailable(error) from exc
        if self._error is not None:
            log.warning("redis available again", extra={"url": redact(self.url)})
            self._error = None
        return result

    async def now(self, client: redis.Redis) -> float:
        """Redis's clock, in seconds (the one replicas agree on)."""
        seconds, micros = await client.time()
        return float(seconds) + micros / 1e6

    async def health(self) -> SharedStateHealth:
        """Ping (bounded) and report; a health check never raises."""
        with contextlib.suppress(SharedUnavailable):
            await self.call(lambda client: client.ping())
        return SharedStateHealth(
            state="available" if self._error is None else "unavailable", url=redact(self.url), error=self._error
        )

    async def aclose(self) -> None:
        try:
            await asyncio.wait_for(self.client.aclose(), self.timeout_s)
        except Exception as exc:  # closing a dead link is not an error worth more than a line
            log.debug("closing redis failed", extra={"error": repr(exc)})


def redact(url: str) -> str:
    """The URL without its password (``redis://:secret@host`` → ``redis://:***@host``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
