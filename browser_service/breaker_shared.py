"""Host breakers behind one async interface: per process (embedded) or shared through Redis.

The circuit logic stays in ``breaker.py`` (pure, one host's state in a :class:`HostBreaker`); this
module decides *where that state lives*:

* :class:`EmbeddedBreakers` — the process's own :class:`Breakers` registry (the default).
* :class:`RedisBreakers` — one JSON snapshot per host in Redis (``HostBreaker.snapshot``). Every
  change — admitting a call, recording its outcome, releasing it, a Retry-After — is an optimistic
  transaction: ``WATCH`` the host's key, read it and Redis's clock, restore the breaker, apply the
  change with the same code as the embedded registry, write it back in ``MULTI``/``EXEC``; a
  concurrent change by another replica aborts the ``EXEC`` and the change is applied again to the
  new state. So a circuit opened through replica A is open on replica B, and half-open trial places
  are counted across replicas (at most ``half_open_calls`` trials in all). A trial whose replica
  died without an outcome gives its place back after ``trial_lease_s`` (the longest a request may
  run). Within a process, changes to one host take turns (a lock per host), so transactions only
  conflict between replicas. Hosts are indexed by last use (a sorted set, trimmed to ``max_hosts``); each host's key
  expires ``ttl_s`` after its last change.

When Redis does not answer (``shared.RedisLink``: every call bounded, skipped for a second after a
failure), :class:`RedisBreakers` falls back to a per-process registry: fetches go on, judged by what
this replica sees, until Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from redis.exceptions import WatchError

from browser_service.breaker import BreakerConfig, Breakers, CircuitOpenRefusal, HostBreaker, Ticket
from browser_service.contract import HostState, HostStatus
from browser_service.shared import RedisLink, SharedUnavailable

R = TypeVar("R")

#: Optimistic transactions tried per change before giving up (then: the per-process fallback).
TXN_TRIES = 16
#: The pause after the n-th conflict is random in [0, n × this]: ~0.2 s at most in all, inside the link's timeout.
TXN_BACKOFF_S = 0.0015


@dataclass
class Permit:
    """Permission for one call to a host; end it with exactly one ``record`` or ``release``."""

    host: str
    trial: bool = False
    epoch: int = 0
    era: int = 0
    local: Ticket | None = None
    """Set when the per-process registry admitted the call (embedded, or Redis unavailable)."""
    done: bool = False


class HostBreakers(Protocol):
    async def before(self, host: str) -> Permit:
        """Admit a call or raise :class:`~browser_service.breaker.CircuitOpenRefusal`."""
        ...

    async def record(self, host: str, outcome: str, *, failure: bool, permit: Permit) -> None: ...

    async def release(self, host: str, permit: Permit) -> None: ...

    async def note_throttled(self, host: str, seconds: float) -> None: ...

    async def state(self, host: str) -> HostStatus: ...

    async def known(self, host: str) -> HostStatus | None: ...

    async def hosts(self) -> list[HostStatus]: ...


class EmbeddedBreakers:
    """The process's own registry, behind the async interface."""

    def __init__(self, breakers: Breakers) -> None:
        self.local = breakers

    async def before(self, host: str) -> Permit:
        ticket = self.local.before(host)
        return Permit(host, trial=ticket.trial, local=ticket)

    async def record(self, host: str, outcome: str, *, failure: bool, permit: Permit) -> None:
        if not permit.done:
            permit.done = True
            self.local.record(host, outcome, failure=failure, ticket=permit.local)

    async def release(self, host: str, permit: Permit) -> None:
        if not permit.done:
            permit.done = True
            if permit.local is not None:
                permit.local.release()

    async def note_throttled(self, host: str, seconds: float) -> None:
        self.local.note_throttled(host, seconds)

    async def state(self, host: str) -> HostStatus:
        return self.local.state(host)

    async def known(self, host: str) -> HostStatus | None:
        return self.local.known(host)

    async def host_state(self, host: str) -> HostState:
        return self.local.host_state(host)

    async def hosts(self) -> list[HostStatus]:
        return self.local.hosts()


class RedisBreakers(EmbeddedBreakers):
    """Breaker state shared by every replica through Redis; ``local`` is the fallback."""

    def __init__(
        self,
        link: RedisLink,
        config: BreakerConfig,
        fallback: Breakers,
        *,
        trial_lease_s: float,
        ttl_s: int = 86_400,
        max_listed: int = 1_000,
    ) -> None:
        super().__init__(fallback)
        self.link = link
        self.config = config
        self.trial_lease_s = trial_lease_s
        self.ttl_s = max(ttl_s, int(config.open_s) + 60)
        self.max_listed = max_listed
        self._index = link.key("breaker-hosts")
        self._locks: dict[str, asyncio.Lock] = {}

    def _key(self, host: str) -> str:
        return self.link.key("breaker", host)

    def _restore(self, host: str, now: float, raw: bytes | None) -> tuple[HostBreaker, dict[str, Any]]:
        data: dict[str, Any] = json.loads(raw) if raw else {}
        breaker = HostBreaker.restore(host, self.config, lambda: now, data)
        lease = data.get("trials_lease_until")
        if breaker.trials_in_flight and lease is not None and now > float(lease):
            breaker.release_trials()
        return breaker, data

    async def _update(self, host: str, change: Callable[[HostBreaker], R]) -> R:
        """Apply ``change`` to the host's shared breaker atomically (WATCH/MULTI, retried on conflict).

        A :class:`CircuitOpenRefusal` raised by ``change`` is raised after the state is written
        (acquiring may have moved an open circuit to half-open).
        """
        key = self._key(host)
        # One change per host at a time in this process: conflicts are then only between replicas.
        lock = self._locks.setdefault(host, asyncio.Lock())
        try:
            async with lock:
                return await self._transact(host, key, change)
        finally:
            if not lock.locked() and self._locks.get(host) is lock:
                del self._locks[host]

    async def _transact(self, host: str, key: str, change: Callable[[HostBreaker], R]) -> R:
        async def transaction(client: Any) -> R:
            async with client.pipeline(transaction=True) as pipe:
                for attempt in range(TXN_TRIES):
                    try:
                        await pipe.watch(key)
                        now = await self.link.now(pipe)
                        breaker, data = self._restore(host, now, await pipe.get(key))
                        lease = data.get("trials_lease_until")
                        refusal: CircuitOpenRefusal | None = None
                        result: Any = None
                        try:
                            result = change(breaker)
                        except CircuitOpenRefusal as exc:
                            refusal = exc
                        if isinstance(result, Ticket) and result.trial:
                            lease = now + self.trial_lease_s
                        snapshot = breaker.snapshot()
                        snapshot["trials_lease_until"] = lease
                        pipe.multi()
                        pipe.set(key, json.dumps(snapshot), ex=self.ttl_s)
                        pipe.zadd(self._index, {host: now})
                        pipe.zremrangebyrank(self._index, 0, -(self.config.max_hosts + 1))
                        await pipe.execute()
                    except WatchError:
                        # Another replica changed it first. A short random pause before trying again:
                        # two replicas retrying in lockstep can otherwise starve one of them.
                        await asyncio.sleep(random.uniform(0, TXN_BACKOFF_S * (attempt + 1)))
                        continue
                    if refusal is not None:
                        raise refusal
                    return result  # type: ignore[no-any-return]
            raise SharedUnavailable(f"{TXN_TRIES} conflicting updates of {host}'s breaker in a row")

        return await self.link.call(transaction)

    # --- calls -----------------------------------------------------------------------------------

    async def before(self, host: str) -> Permit:
        try:
            ticket = await self._update(host, lambda breaker: breaker.acquire())
        except SharedUnavailable:
            return await super().before(host)
        return Permit(host, trial=ticket.trial, epoch=ticket.epoch, era=ticket.era)

    async def record(self, host: str, outcome: str, *, failure: bool, permit: Permit) -> None:
        if permit.done:
            return
        if permit.local is not None:
            await super().record(host, outcome, failure=failure, permit=permit)
            return
        permit.done = True

        def change(breaker: HostBreaker) -> None:
            ticket = Ticket.bound(breaker, trial=permit.trial, epoch=permit.epoch, era=permit.era)
            breaker.record(outcome, failure=failure, ticket=ticket)

        try:
            await self._update(host, change)
        except SharedUnavailable:  # admitted by Redis, which is gone now: an ordinary call here
            self.local.record(host, outcome, failure=failure)

    async def release(self, host: str, permit: Permit) -> None:
        if permit.done:
            return
        if permit.local is not None or not permit.trial:  # only a trial place needs giving back
            await super().release(host, permit)
            return
        permit.done = True

        def change(breaker: HostBreaker) -> None:
            Ticket.bound(breaker, trial=True, epoch=permit.epoch, era=permit.era).release()

        with contextlib.suppress(SharedUnavailable):  # else the place comes back when the trial lease runs out
            await self._update(host, change)

    async def note_throttled(self, host: str, seconds: float) -> None:
        try:
            await self._update(host, lambda breaker: breaker.note_throttled(seconds))
        except SharedUnavailable:
            await super().note_throttled(host, seconds)

    # --- state -----------------------------------------------------------------------------------

    async def _read(self, hosts: list[str]) -> list[HostBreaker | None]:
        async def read(client: Any) -> tuple[float, list[bytes | None]]:
            async with client.pipeline(transaction=False) as pipe:
                pipe.time()
                pipe.mget([self._key(host) for host in hosts])
                (seconds, micros), raws = await pipe.execute()
            return float(seconds) + micros / 1e6, raws

        now, raws = await self.link.call(read)
        return [self._restore(host, now, raw)[0] if raw else None for host, raw in zip(hosts, raws, strict=True)]

    async def state(self, host: str) -> HostStatus:
        try:
            (breaker,) = await self._read([host])
        except SharedUnavailable:
            return await super().state(host)
        return (breaker or HostBreaker(host, self.config, time.time)).status()

    async def known(self, host: str) -> HostStatus | None:
        try:
            (breaker,) = await self._read([host])
        except SharedUnavailable:
            return await super().known(host)
        return breaker.status() if breaker is not None else None

    async def host_state(self, host: str) -> HostState:
        status = await self.known(host)
        return status.state if status is not None else "available"

    async def hosts(self) -> list[HostStatus]:
        """The most recently active hosts first (at most ``max_listed``)."""
        try:
            names = await self.link.call(lambda client: client.zrevrange(self._index, 0, self.max_listed - 1))
            hosts = [name.decode() if isinstance(name, bytes) else str(name) for name in names]
            breakers = await self._read(hosts) if hosts else []
        except SharedUnavailable:
            return await super().hosts()
        return [breaker.status() for breaker in breakers if breaker is not None]
