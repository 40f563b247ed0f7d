"""The link to Redis, the shared-state engine several replicas act as one through.

With ``BROWSER_SERVICE_REDIS_URL`` set, the page cache (``RedisCacheStore``), the host breakers
(``breaker_shared.RedisBreakers``), a host's concurrency, Retry-After and pacing
(``limits_shared.RedisHostLimits``), named sessions (``sessions.RedisSessionStore``), traces
(``traces_shared.RedisTraces``) and the quarantine (``quarantine_shared.RedisQuarantineStore``)
keep their state in one Redis; without it everything stays embedded. Every store talks to Redis through
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
#: What a Redis read returns: bytes (strings when a client decodes responses).
Stored = bytes | str

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


#: KEYS: hash, order set, counter. ARGV: field, value, size. Returns how many old fields it dropped.
_BOUNDED_PUT = """
local seq = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if over > 0 then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, over - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
  redis.call('HDEL', KEYS[1], unpack(oldest))
end
return math.max(over, 0)
"""

#: KEYS: hash, order set. ARGV: field. The value, removed (nil if there was none).
_BOUNDED_POP = """
local value = redis.call('HGET', KEYS[1], ARGV[1])
if value then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return value
"""


class BoundedHash:
    """A Redis hash of at most ``size`` fields, the oldest dropped first — bounded by count, not
    time, so its memory does not grow with the request rate. Three keys under ``name``: the hash,
    an order set scored by a counter, the counter; every change is one atomic Lua script. Each
    call raises :class:`SharedUnavailable` when Redis does not answer."""

    def __init__(self, link: RedisLink, name: str, size: int) -> None:
        self.size = size
        self._link = link
        self._keys = [link.key(name), link.key(name, "order"), link.key(name, "seq")]
        self._put = link.client.register_script(_BOUNDED_PUT)
        self._pop = link.client.register_script(_BOUNDED_POP)

    async def put(self, field: str, value: str) -> None:
        await self._link.call(lambda _client: self._put(keys=self._keys, args=[field, value, self.size]))

    async def get(self, field: str) -> Stored | None:
        value: Stored | None = await self._link.call(lambda client: client.hget(self._keys[0], field))
        return value

    async def pop(self, field: str) -> Stored | None:
        """Remove and return a field's value: of two callers at once, one gets it."""
        value: Stored | None = await self._link.call(lambda _client: self._pop(keys=self._keys[:2], args=[field]))
        return value

    async def newest(self, limit: int) -> tuple[list[Stored], int]:
        """Up to ``limit`` values, newest first, and how many fields there are."""

        async def read(client: redis.Redis) -> tuple[list[Stored], int]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.zrevrange(self._keys[1], 0, limit - 1)
                pipe.zcard(self._keys[1])
                fields, total = await pipe.execute()
            values = await client.hmget(self._keys[0], fields) if fields else []
            return [value for value in values if value is not None], int(total)

        result: tuple[list[Stored], int] = await self._link.call(read)
        return result

    async def count(self) -> int:
        total: int = await self._link.call(lambda client: client.zcard(self._keys[1]))
        return total


def redact(url: str) -> str:
    """The URL without its password (``redis://:secret@host`` → ``redis://:***@host``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
