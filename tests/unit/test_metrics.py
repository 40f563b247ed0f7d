"""/metrics: Prometheus naming conventions, values read at scrape time, bounded host labels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from browser_service.contract import Attempt, FetchRequest, FetchResponse
from browser_service.fetcher import Fetcher
from browser_service.timings import Timings
from browser_service.traces import build
from tests.conftest import make_settings


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Fetcher]:
    fetcher = Fetcher(make_settings(tmp_path, metrics_max_hosts=2, breaker_window=4, breaker_min_calls=2))
    yield fetcher
    await fetcher.close()


async def samples(fetcher: Fetcher) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = (await fetcher.telemetry.metrics.exposition()).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_names_follow_prometheus_conventions(service: Fetcher) -> None:
    text = (await service.telemetry.metrics.exposition()).decode()
    families = list(text_string_to_metric_families(text))
    ours = [f for f in families if f.name.startswith("browser_service_")]
    others = {f.name.split("_")[0] for f in families if f not in ours}
    assert others <= {"process", "python"}  # the standard process and platform collectors
    for family in ours:
        for sample in family.samples:
            if family.type == "counter":
                assert sample.name.endswith("_total"), sample.name
            if family.type == "histogram":
                assert family.name.endswith("_seconds"), family.name
            assert not sample.name.endswith("_created"), sample.name
    names = {f.name for f in ours}
    assert {
        "browser_service_requests",
        "browser_service_request_duration_seconds",
        "browser_service_attempt_duration_seconds",
        "browser_service_phase_duration_seconds",
        "browser_service_cache_requests",
        "browser_service_pool_slots",
        "browser_service_pool_slots_in_use",
        "browser_service_pool_queue_length",
        "browser_service_browser_relaunches",
        "browser_service_breaker_state",
        "browser_service_quarantine_items",
        "browser_service_heartbeats",
        "browser_service_watchdog_recycled_slots",
    } <= names


async def test_values_come_from_the_service(service: Fetcher) -> None:
    request = FetchRequest.model_validate({"url": "https://example.com/", "max_age_s": 60})
    response = FetchResponse(
        ok=True,
        url="https://example.com/",
        engine="http",
        trace_id="t",
        attempts=[Attempt(engine="http", url="https://example.com/", outcome="ok", duration_ms=120)],
    )
    timings = Timings(attempt_starts_s=[0.0])
    timings.totals_s = {"response": 0.1, "body": 0.02}
    service.telemetry.metrics.observe(build(request, response, timings, datetime.now(UTC), 0.2))
    got = await samples(service)
    assert got[("browser_service_requests_total", (("engine", "http"), ("outcome", "ok")))] == 1
    assert got[("browser_service_requests_total", (("engine", "browser"), ("outcome", "ok")))] == 0
    assert got[("browser_service_cache_requests_total", (("result", "miss"),))] == 1
    assert got[("browser_service_cache_requests_total", (("result", "hit"),))] == 0
    assert got[("browser_service_attempts_total", (("engine", "http"), ("outcome", "ok")))] == 1
    assert got[("browser_service_request_duration_seconds_count", (("engine", "http"),))] == 1
    assert got[("browser_service_request_duration_seconds_bucket", (("engine", "http"), ("le", "0.25")))] == 1
    assert got[("browser_service_request_duration_seconds_bucket", (("engine", "http"), ("le", "0.1")))] == 0
    assert got[("browser_service_phase_duration_seconds_count", (("phase", "body"),))] == 1
    # The pool, read at scrape time: not launched yet.
    assert got[("browser_service_pool_slots", ())] == 2
    assert got[("browser_service_pool_slots_in_use", ())] == 0
    assert got[("browser_service_pool_queue_limit", ())] == 8
    assert got[("browser_service_browser_launches_total", ())] == 0
    assert got[("browser_service_browser_relaunches_total", (("reason", "crash"),))] == 0
    assert got[("browser_service_quarantine_items", ())] == 0
    assert got[("browser_service_heartbeats_total", (("result", "failed"),))] == 0


async def test_breaker_hosts_are_capped_troubled_first(service: Fetcher) -> None:
    breakers = service.breakers
    for _ in range(2):
        breakers.record("down.example", "timeout", failure=True)  # opens: 2 of 2 failed
    for host in ("a.example", "b.example", "c.example"):  # c.example is the most recent
        breakers.record(host, "ok", failure=False)
    got = await samples(service)
    per_host = {labels: v for (name, labels), v in got.items() if name == "browser_service_breaker_state"}
    assert per_host == {
        (("host", "down.example"), ("state", "open")): 1,
        (("host", "down.example"), ("state", "closed")): 0,
        (("host", "down.example"), ("state", "half_open")): 0,
        (("host", "c.example"), ("state", "closed")): 1,
        (("host", "c.example"), ("state", "open")): 0,
        (("host", "c.example"), ("state", "half_open")): 0,
    }
    assert got[("browser_service_breaker_hosts_not_exported", ())] == 2
    assert got[("browser_service_breaker_hosts", (("state", "open"),))] == 1
    assert got[("browser_service_breaker_hosts", (("state", "closed"),))] == 3
    assert got[("browser_service_hosts", (("state", "unavailable"),))] == 1
