"""Prometheus metrics for ``GET /metrics``, named by Prometheus conventions.

Two kinds, one registry per :class:`~browser_service.fetcher.Fetcher` (never the global one, so
two services in one process do not mix):

* **Per fetch** (:class:`FetchMetrics`), counted once when a fetch ends, from its trace
  (``telemetry.py``): requests by outcome kind and engine, request, attempt and phase latency
  histograms, cache results, fetches in flight.
* **State read at scrape time** (:class:`ServiceCollector`): the objects that already keep it are
  asked when Prometheus scrapes — the pool (``BrowserPool.health()``), the breakers, the cache, the
  quarantine, the watchdog — instead of counters sprinkled through their code.

Every name starts with ``browser_service_``; counters end in ``_total``; durations are histograms
in seconds, sizes in bytes. Label values are bounded: outcome kinds and engines are closed sets,
and the per-host breaker gauge exports at most ``BROWSER_SERVICE_METRICS_MAX_HOSTS`` hosts (open
and half-open circuits first, then the most recently active), with totals over all hosts beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from browser_service import quality
from browser_service.contract import API_VERSION, CONTRACT_VERSION, Circuit
from browser_service.traces import Trace
from extractors import EXTRACTOR_VERSION

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from browser_service.fetcher import Fetcher

__all__ = ["CONTENT_TYPE_LATEST", "FetchMetrics", "ServiceCollector"]

# No "<name>_created" series beside each counter: they double the output and nobody graphs them.
disable_created_metrics()  # type: ignore[no-untyped-call]

PREFIX = "browser_service_"
#: Request latency: a cached answer takes milliseconds, a rendered page seconds, the deadline up to minutes.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
#: A phase (one await kind) is usually shorter.
PHASE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CACHE_RESULTS = ("hit", "stale", "miss", "bypass")
#: Engine label of a fetch that ended before any engine ran (refused URL, open circuit, overload).
NO_ENGINE = "none"


class FetchMetrics:
    """The per-fetch counters and histograms, and the registry /metrics serves."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            PREFIX + "requests",
            "Fetches answered, by outcome ('ok' or the error kind; 'cancelled' when the client went away) "
            "and the engine that produced the answer ('none' when none ran).",
            ["outcome", "engine"],
            registry=r,
        )
        self.request_duration = Histogram(
            PREFIX + "request_duration_seconds",
            "Whole-fetch latency (queueing, every attempt, extraction), by the engine of the answer.",
            ["engine"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.attempts = Counter(
            PREFIX + "attempts",
            "Attempts at the origin, by engine and outcome ('ok', 'escalated' or the error kind).",
            ["engine", "outcome"],
            registry=r,
        )
        self.attempt_duration = Histogram(
            PREFIX + "attempt_duration_seconds",
            "Latency of one attempt at the origin, by engine.",
            ["engine"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.phase_duration = Histogram(
            PREFIX + "phase_duration_seconds",
            "Time a fetch spent awaiting in each phase (queue, dns, response, body, navigation, render, extract …).",
            ["phase"],
            buckets=PHASE_BUCKETS,
            registry=r,
        )
        self.cache = Counter(
            PREFIX + "cache_requests",
            "How fetches used the cache: hit (a fresh stored copy answered), stale (an old copy answered because "
            "the live fetch failed), miss (a stored copy was acceptable but none was fresh enough), bypass (live "
            "as asked).",
            ["result"],
            registry=r,
        )
        self.suspects = Counter(
            PREFIX + "quality_findings",
            "Results held as suspect (quarantined, not cached), by finding code: block_markers, thin, shrunk, "
            "lost_text, drift (a live page that became a different page since its cached good copy).",
            ["code"],
            registry=r,
        )
        for code in quality.CODES:
            self.suspects.labels(code)
        self.in_flight = Gauge(PREFIX + "requests_in_flight", "Fetches being worked on now.", registry=r)
        for result in CACHE_RESULTS:
            self.cache.labels(result)  # present from the start, so rates work from the first scrape
        for engine in ("http", "browser"):
            self.requests.labels("ok", engine)
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes, fds …
        PlatformCollector(registry=r)
        self._collector: ServiceCollector | None = None

    def observe(self, trace: Trace) -> None:
        engine = trace.engine or NO_ENGINE
        self.requests.labels(trace.outcome, engine).inc()
        self.request_duration.labels(engine).observe(trace.duration_ms / 1000)
        self.cache.labels(trace.cache).inc()
        for attempt in trace.attempts:
            self.attempts.labels(attempt.engine, str(attempt.outcome)).inc()
            self.attempt_duration.labels(attempt.engine).observe(attempt.duration_ms / 1000)
        for phase, ms in trace.phases_ms.items():
            self.phase_duration.labels(phase).observe(ms / 1000)

    def suspect(self, codes: Iterable[str]) -> None:
        for code in codes:
            self.suspects.labels(code).inc()

    def cancelled(self, engine: str | None, duration_s: float) -> None:
        self.requests.labels("cancelled", engine or NO_ENGINE).inc()
        self.request_duration.labels(engine or NO_ENGINE).observe(duration_s)

    def watch(self, fetcher: Fetcher) -> None:
        """Export ``fetcher``'s pool, breakers, cache, quarantine and watchdog, read at scrape time."""
        if self._collector is None:
            self._collector = ServiceCollector(fetcher)
            self.registry.register(self._collector)

    async def exposition(self) -> bytes:
        """The text format of every metric (what /metrics answers)."""
        if self._collector is not None:
            await self._collector.refresh()
        return generate_latest(self.registry)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, doc, value=value)  # exposed as <name>_total


class ServiceCollector(Collector):
    """The service's state, read from the objects that keep it whenever Prometheus scrapes."""

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher
        self.quarantined: int | None = None

    async def refresh(self) -> None:
        """Read what needs I/O before the (synchronous) collection: the quarantine's size on disk."""
        with contextlib.suppress(Exception):  # a slow disk leaves the gauge out, never fails the scrape
            self.quarantined = await asyncio.wait_for(self.fetcher.quarantine.count(), 1.0)

    def describe(self) -> Iterable[Metric]:
        return []  # names vary with what is present; nothing to check at registration

    def collect(self) -> Iterable[Metric]:
        yield from self._pool()
        yield from self._breakers()
        yield from self._cache()
        yield from self._watchdog()
        info = GaugeMetricFamily(
            PREFIX + "build_info",
            "Versions of the API, the contract and the extractors.",
            labels=["api", "contract", "extractor"],
        )
        info.add_metric([API_VERSION, CONTRACT_VERSION, EXTRACTOR_VERSION], 1)
        yield info
        yield _gauge("uptime_seconds", "Seconds since the service started.", time.monotonic() - self.fetcher._started)

    def _pool(self) -> Iterable[Metric]:
        pool = self.fetcher.pool
        health = pool.health()
        yield _gauge("pool_slots", "Browser page slots (BROWSER_SERVICE_POOL_SIZE).", health.size)
        yield _gauge("pool_slots_in_use", "Slots leased to a fetch (or being cleaned after one).", health.in_use)
        yield _gauge("pool_slots_idle", "Clean pages kept ready for the next lease.", pool.idle_slots)
        yield _gauge("pool_queue_length", "Fetches waiting for a browser slot.", health.queued)
        yield _gauge(
            "pool_queue_limit",
            "Fetches that may wait before 'overloaded' (BROWSER_SERVICE_QUEUE_SIZE).",
            health.queue_limit,
        )
        state = GaugeMetricFamily(PREFIX + "pool_state", "The pool's state: 1 for the current one.", labels=["state"])
        for name in ("available", "degraded", "unavailable"):
            state.add_metric([name], 1 if health.state == name else 0)
        yield state
        yield _gauge(
            "browser_connected", "1 while a browser is launched and connected.", 1 if health.browser_connected else 0
        )
        yield _counter("browser_launches", "Browser launches, the first included.", health.launches)
        relaunches = CounterMetricFamily(
            PREFIX + "browser_relaunches",
            "Browsers replaced: after a crash or disconnect (crash), or after recycle_after pages (recycle).",
            labels=["reason"],
        )
        relaunches.add_metric(["crash"], health.restarts)
        relaunches.add_metric(["recycle"], health.recycles)
        yield relaunches
        yield _counter(
            "pool_pages_served", "Leases served by the pool (fetches, /readyz canaries).", health.pages_served
        )

    def _breakers(self) -> Iterable[Metric]:
        settings = self.fetcher.settings
        circuits = self.fetcher.breakers.circuits()
        totals = GaugeMetricFamily(PREFIX + "breaker_hosts", "Hosts tracked, by circuit state.", labels=["state"])
        for circuit in Circuit:
            totals.add_metric([circuit.value], sum(1 for _, c, _ in circuits if c is circuit))
        yield totals
        lifecycle = GaugeMetricFamily(PREFIX + "hosts", "Hosts tracked, by lifecycle state.", labels=["state"])
        for name in ("available", "degraded", "unavailable"):
            lifecycle.add_metric([name], sum(1 for _, _, s in circuits if s == name))
        yield lifecycle
        rank = {Circuit.OPEN: 0, Circuit.HALF_OPEN: 1}
        ranked = sorted(
            enumerate(circuits), key=lambda item: (rank.get(item[1][1], 2 if item[1][2] != "available" else 3), item[0])
        )
        exported = [entry for _, entry in ranked[: settings.metrics_max_hosts]]
        per_host = GaugeMetricFamily(
            PREFIX + "breaker_state",
            "A host's circuit: 1 for its current state. At most BROWSER_SERVICE_METRICS_MAX_HOSTS hosts: open and "
            "half-open first, then the most recently active.",
            labels=["host", "state"],
        )
        for host, circuit, _ in exported:
            for name in Circuit:
                per_host.add_metric([host, name.value], 1 if circuit is name else 0)
        yield per_host
        yield _gauge(
            "breaker_hosts_not_exported",
            "Hosts left out of browser_service_breaker_state by BROWSER_SERVICE_METRICS_MAX_HOSTS.",
            len(circuits) - len(exported),
        )

    def _cache(self) -> Iterable[Metric]:
        with contextlib.suppress(Exception):
            health = self.fetcher.cache.health()
            if health.entries is not None:
                yield _gauge("cache_entries", "Stored answers in the cache.", health.entries)
            if health.size_bytes is not None:
                yield _gauge("cache_size_bytes", "Size of the cache on disk.", health.size_bytes)
        if self.quarantined is not None:
            yield _gauge("quarantine_items", "Suspect results held for review.", self.quarantined)

    def _watchdog(self) -> Iterable[Metric]:
        dog = self.fetcher.watchdog
        beats = CounterMetricFamily(
            PREFIX + "heartbeats", "Heartbeats of idle browser slots, by result (ok, failed).", labels=["result"]
        )
        for result, count in dog.heartbeats.items():
            beats.add_metric([result], count)
        yield beats
        recycled = CounterMetricFamily(
            PREFIX + "watchdog_recycled_slots",
            "Slots the watchdog closed and replaced: a failed heartbeat (heartbeat) or a lease held past its "
            "deadline (lease_overdue).",
            labels=["reason"],
        )
        for reason, count in dog.recycled.items():
            recycled.add_metric([reason], count)
        yield recycled
        yield _counter(
            "watchdog_wedged_browsers",
            "Browsers killed because a slot of theirs would not even close.",
            dog.wedged_browsers,
        )
        yield _counter("watchdog_relaunches", "Browsers the watchdog relaunched after one went down.", dog.relaunches)
        if dog.last_check is not None:
            yield _gauge(
                "watchdog_last_check_timestamp_seconds",
                "When the watchdog last checked the slots (Unix time): alert if it stops advancing.",
                dog.last_check,
            )
