"""Observability over real HTTP and real Chromium: /metrics, traces, /healthz, /readyz, logs, watchdog."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
from pathlib import Path

import httpx
import psutil
import pytest
from playwright.async_api import Error as PlaywrightError
from prometheus_client.parser import text_string_to_metric_families

from browser_service.deadline import Deadline
from browser_service.fetcher import Fetcher
from browser_service.readiness import ReadyReport
from browser_service.traces import Trace
from tests.conftest import make_settings
from tests.integration.test_api import running
from tests.integration.test_fetch_http import fetch
from tests.integration.test_pool import until
from tests.site import FixtureServer
from tests.unit.test_logs import captured  # noqa: F401  (fixture)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


async def test_metrics_count_fetches_by_outcome_engine_and_cache(tmp_path: Path, site: FixtureServer) -> None:
    async with running(make_settings(tmp_path, pool_size=1)) as (client, _):
        assert (await client.post("/v1/fetch", json={"url": site.url("/article.html")})).status_code == 200
        assert (await client.post("/v1/fetch", json={"url": site.url("/article.html"), "max_age_s": 600})).json()[
            "source"
        ] == "cache"
        assert (await client.post("/v1/fetch", json={"url": site.url("/no-such-page")})).status_code == 502
        assert (await client.post("/v1/fetch", json={"url": site.url("/spa.html")})).json()["engine"] == "browser"
        forbidden = await client.post("/v1/fetch", json={"url": "http://169.254.169.254/"})
        assert forbidden.status_code == 403
        got = await scrape(client)
    requests = {labels: v for (name, labels), v in got.items() if name == "browser_service_requests_total" and v}
    assert requests == {
        (("engine", "http"), ("outcome", "ok")): 2,  # live, then from the cache (stored by the http engine)
        (("engine", "http"), ("outcome", "not_found")): 1,
        (("engine", "browser"), ("outcome", "ok")): 1,
        (("engine", "http"), ("outcome", "forbidden_target")): 1,  # refused by the engine's address check
    }
    cache = {
        dict(labels)["result"]: v for (name, labels), v in got.items() if name == "browser_service_cache_requests_total"
    }
    assert cache == {"hit": 1, "stale": 0, "miss": 0, "bypass": 4}
    attempts = {labels: v for (name, labels), v in got.items() if name == "browser_service_attempts_total"}
    assert attempts == {
        (("engine", "http"), ("outcome", "ok")): 1,
        (("engine", "http"), ("outcome", "not_found")): 1,
        (("engine", "http"), ("outcome", "forbidden_target")): 1,
        (("engine", "http"), ("outcome", "escalated")): 1,
        (("engine", "browser"), ("outcome", "ok")): 1,
    }
    assert got[("browser_service_attempt_duration_seconds_count", (("engine", "browser"),))] == 1
    assert got[("browser_service_request_duration_seconds_count", (("engine", "http"),))] == 4
    assert got[("browser_service_phase_duration_seconds_count", (("phase", "navigation"),))] == 1
    assert got[("browser_service_requests_in_flight", ())] == 0
    assert got[("browser_service_pool_slots", ())] == 1
    assert got[("browser_service_browser_launches_total", ())] == 1
    assert got[("browser_service_pool_pages_served_total", ())] == 1
    assert got[("browser_service_browser_connected", ())] == 1
    assert got[("browser_service_cache_entries", ())] == 2  # the article and the rendered SPA
    host = site.url("/").split("/")[2]
    assert got[("browser_service_breaker_state", (("host", host), ("state", "closed")))] == 1


async def test_trace_of_a_recent_fetch(tmp_path: Path, site: FixtureServer) -> None:
    async with running(make_settings(tmp_path, pool_size=1)) as (client, _):
        answer = await client.post(
            "/v1/fetch",
            json={
                "url": site.url("/spa.html"),
                "formats": ["markdown", "links"],
                "headers": {"X-Secret": "hunter2"},
                "cookies": {"sid": "s3cr3t"},
            },
        )
        body = answer.json()
        response = await client.get(f"/v1/traces/{body['trace_id']}")
        assert response.status_code == 200
        assert "hunter2" not in response.text and "s3cr3t" not in response.text
        trace = Trace.model_validate(response.json())
        failed = (await client.post("/v1/fetch", json={"url": site.url("/no-such-page")})).json()
        failed_trace = Trace.model_validate((await client.get(f"/v1/traces/{failed['trace_id']}")).json())
        missing = await client.get("/v1/traces/0123456789abcdef")
    assert (trace.trace_id, trace.ok, trace.outcome, trace.engine, trace.source, trace.cache) == (
        body["trace_id"],
        True,
        "ok",
        "browser",
        "live",
        "bypass",
    )
    assert trace.request.url == site.url("/spa.html") and trace.request.formats == ["markdown", "links"]
    assert (trace.request.header_names, trace.request.cookie_names) == (["X-Secret"], ["sid"])
    assert [(a.engine, a.outcome) for a in trace.attempts] == [("http", "escalated"), ("browser", "ok")]
    assert [a.duration_ms for a in trace.attempts] == [a["duration_ms"] for a in body["attempts"]]
    assert set(trace.attempts[0].phases_ms) == {"response", "body"}
    assert {"navigation", "render"} <= set(trace.attempts[1].phases_ms) <= {"queue", "navigation", "render"}
    assert trace.phases_ms["extract"] > 0 and trace.duration_ms >= body["duration_ms"]
    assert (trace.spans[0].phase, trace.spans[0].what) == ("queue", "reading the cache")
    assert trace.content_sha256 == body["content_sha256"] and trace.status_code == 200
    assert (failed_trace.outcome, failed_trace.ok, failed_trace.error and failed_trace.error.kind) == (
        "not_found",
        False,
        "not_found",
    )
    assert missing.status_code == 404
    assert missing.json() == {
        "detail": "No trace '0123456789abcdef': this replica keeps the traces of its last 1000 fetches "
        "(BROWSER_SERVICE_TRACE_BUFFER), in memory only."
    }


async def test_the_fetch_that_launches_the_browser_is_traced_alone(tmp_path: Path, site: FixtureServer) -> None:
    # The browser (and its egress proxy) start lazily, inside this first fetch: the proxy's later
    # work — Chromium's own background lookups at start-up, other fetches' tunnels — is not its.
    async with Fetcher(make_settings(tmp_path)) as service:
        first = await fetch(service, site.url("/article.html"), render="browser")
        second = await fetch(service, site.url("/spa.html"), render="browser")
        traces = [service.telemetry.traces.get(r.trace_id) for r in (first, second)]
    assert first.ok and second.ok
    assert [s.what for s in traces[0].spans if s.phase == "queue"][:2] == ["reading the cache", "launching the browser"]
    for trace in traces:  # 127.0.0.1: nothing for this fetch to resolve
        assert [s.what for s in trace.spans if s.phase == "dns"] == []


async def test_healthz_and_readyz(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, pool_size=1, ready_cache_s=600)) as (client, server):
        service: Fetcher = server.config.app.state.fetcher  # type: ignore[attr-defined]
        assert (await client.get("/healthz")).json() == {"status": "alive"}
        first = await client.get("/readyz")
        assert first.status_code == 200
        report = ReadyReport.model_validate(first.json())
        assert report.ready and report.reason is None and report.age_s == 0
        served = service.pool.health().pages_served
        again = ReadyReport.model_validate((await client.get("/readyz")).json())
        # Reused within ready_cache_s: the same canary render, no new lease.
        assert again.checked_at == report.checked_at and again.age_s > 0
        assert service.pool.health().pages_served == served == 1


async def test_readyz_is_503_with_the_reason_when_no_slot_is_free(tmp_path: Path, site: FixtureServer) -> None:
    settings = make_settings(tmp_path, pool_size=1, queue_size=0, ready_cache_s=0)
    async with running(settings) as (client, server):
        service: Fetcher = server.config.app.state.fetcher  # type: ignore[attr-defined]
        slow = asyncio.create_task(
            client.post("/v1/fetch", json={"url": site.url("/slow?ms=2000"), "render": "browser"})
        )
        await until(lambda: service.pool.health().in_use == 1)
        busy = await client.get("/readyz")
        assert busy.status_code == 503
        report = ReadyReport.model_validate(busy.json())
        assert not report.ready and report.reason is not None
        assert report.reason.startswith("overloaded: All 1 browser slots are busy")
        assert (await slow).status_code == 200
        await service.pool.drained()
        assert (await client.get("/readyz")).status_code == 200
        service.admission.begin_drain()  # what SIGTERM does first (shutdown.py)
        draining = await client.get("/readyz")
        assert draining.status_code == 503
        assert draining.json()["reason"] == "draining: the service is shutting down and refuses new requests"


async def test_operator_routes_and_api_keys(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api_keys=["s3cret"], prelaunch=False, ready_timeout_ms=30000)
    async with running(settings) as (client, _):
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers={"Authorization": "Bearer nope"})).status_code == 401
        assert (await client.get("/v1/traces/abc")).status_code == 401
        got = await scrape(client, Authorization="Bearer s3cret")
        assert got[("browser_service_browser_launches_total", ())] == 0
        # Probes need no key (load balancers); the canary launches the browser on demand.
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).json()["ready"] is True


async def test_one_log_event_per_fetch(captured: io.StringIO, tmp_path: Path, site: FixtureServer) -> None:  # noqa: F811
    async with Fetcher(make_settings(tmp_path)) as service:
        ok = await fetch(service, site.url("/article.html?key=t0k"), cookies={"sid": "s3cr3t"})
        missing = await fetch(service, site.url("/no-such-page"))
        hits = site.hits["/slow"]
        slow = asyncio.create_task(fetch(service, site.url("/slow?ms=3000")))
        await until(lambda: site.hits["/slow"] > hits)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        got = await scrape_fetcher(service)
    events = [e for e in map(json.loads, captured.getvalue().splitlines()) if e["logger"] == "browser_service.fetch"]
    assert [(e.get("trace_id"), e["outcome"], e["event"]) for e in events] == [
        (ok.trace_id, "ok", "fetch"),
        (missing.trace_id, "not_found", "fetch"),
        (None, "cancelled", "fetch"),
    ]
    assert events[1]["error_kind"] == "not_found" and events[1]["status_code"] == 404
    assert events[0]["url"] == site.url("/article.html") and events[0]["attempt_count"] == 1
    assert set(events[0]["phases_ms"]) == {"queue", "response", "body", "extract"}
    assert set(events[2]["phases_ms"]) >= {"response"}
    assert "t0k" not in captured.getvalue() and "s3cr3t" not in captured.getvalue()
    assert got[("browser_service_requests_total", (("engine", "none"), ("outcome", "cancelled")))] == 1


async def scrape_fetcher(service: Fetcher) -> Samples:
    return parse((await service.telemetry.metrics.exposition()).decode())


# --- heartbeats and the watchdog ------------------------------------------------------------------

HANG = "setTimeout(() => { for (;;) {} }, 0)"


async def test_watchdog_replaces_a_wedged_idle_slot(tmp_path: Path, site: FixtureServer) -> None:
    settings = make_settings(tmp_path, pool_size=1, heartbeat_interval_s=0.2, heartbeat_timeout_ms=3000)
    async with running(settings) as (client, server):
        service: Fetcher = server.config.app.state.fetcher  # type: ignore[attr-defined]
        first = await client.post("/v1/fetch", json={"url": site.url("/article.html"), "render": "browser"})
        assert first.status_code == 200
        await until(lambda: bool(service.pool.idle()))
        wedged = service.pool.idle()[0]
        await wedged.page.evaluate(HANG)  # the page's renderer now spins forever
        await until(lambda: service.watchdog.recycled["heartbeat"] == 1, limit_s=30)
        assert wedged.page.is_closed()
        after = await client.post("/v1/fetch", json={"url": site.url("/article.html"), "render": "browser"})
        assert after.status_code == 200 and after.json()["attempts"][0]["outcome"] == "ok"
        got = await scrape(client)
    assert got[("browser_service_heartbeats_total", (("result", "failed"),))] == 1
    assert got[("browser_service_watchdog_recycled_slots_total", (("reason", "heartbeat"),))] == 1
    assert got[("browser_service_watchdog_recycled_slots_total", (("reason", "lease_overdue"),))] == 0
    assert got[("browser_service_watchdog_wedged_browsers_total", ())] == 0
    assert got[("browser_service_browser_launches_total", ())] == 1  # the browser itself was fine
    assert got[("browser_service_watchdog_last_check_timestamp_seconds", ())] > 0


async def test_watchdog_kills_and_relaunches_a_wedged_browser(tmp_path: Path, site: FixtureServer) -> None:
    settings = make_settings(tmp_path, pool_size=1, heartbeat_interval_s=0, heartbeat_timeout_ms=1000)
    async with Fetcher(settings) as service:
        await service.start(launch_browser=True)
        assert (await fetch(service, site.url("/article.html"), render="browser")).ok
        await service.pool.drained()
        pid = service.pool.health().browser_pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # the browser process stops answering, without dying
        try:
            await service.watchdog.check()
        finally:
            if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                os.kill(pid, signal.SIGCONT)
        dog = service.watchdog
        assert (dog.heartbeats["failed"], dog.recycled["heartbeat"], dog.wedged_browsers, dog.relaunches) == (
            1,
            1,
            1,
            1,
        )
        health = service.pool.health()
        assert health.browser_connected and health.browser_pid not in (None, pid)
        assert (health.launches, health.restarts) == (2, 1)
        after = await fetch(service, site.url("/article.html"), render="browser")
        assert after.ok and [a.outcome for a in after.attempts] == ["ok"]
        got = await scrape_fetcher(service)
    assert got[("browser_service_watchdog_wedged_browsers_total", ())] == 1
    assert got[("browser_service_watchdog_relaunches_total", ())] == 1
    assert got[("browser_service_browser_relaunches_total", (("reason", "crash"),))] == 1


async def test_watchdog_closes_a_lease_held_past_its_deadline(tmp_path: Path, site: FixtureServer) -> None:
    settings = make_settings(tmp_path, pool_size=1, heartbeat_interval_s=0, lease_grace_s=1)
    async with Fetcher(settings) as service:
        await service.start(launch_browser=True)
        deadline = Deadline(30)
        async with service.pool.lease(deadline) as lease:
            await service.watchdog.check()
            assert service.watchdog.recycled["lease_overdue"] == 0  # within its deadline
            deadline.expires -= 60  # as if its holder ignored the deadline for half a minute
            await service.watchdog.check()
            await service.watchdog.check()  # acted on once
            assert service.watchdog.recycled["lease_overdue"] == 1
            with pytest.raises(PlaywrightError):
                await lease.page.evaluate("1")
        await service.pool.drained()
        assert service.pool.health().in_use == 0
        after = await fetch(service, site.url("/article.html"), render="browser")
        assert after.ok and service.pool.health().launches == 1
        await service.pool.drained()
        assert service.pool.open_contexts() == service.pool.open_pages() == service.pool.idle_slots == 1
