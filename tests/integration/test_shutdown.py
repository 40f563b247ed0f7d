"""Graceful shutdown, as an operator's SIGTERM meets it: ``browser-service serve`` in a subprocess.

In flight at the signal: one browser fetch the origin lets finish during the drain (answered ok) and
one it holds past the grace period (answered ``overloaded``, typed). After the signal the port is
closed; the process exits 0; none of its processes (Chromium, the Playwright driver) outlives it.
Every step waits on an event it can observe (the origin's record of an arrival, a log line).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from browser_service.contract import FetchResponse
from tests.serving import ServeProcess
from tests.site import FixtureServer

GRACE_S = 4


class Served(ServeProcess):
    """``browser-service serve`` on a free loopback port, allowed to fetch from ``site``."""

    def __init__(self, tmp: Path, site: FixtureServer) -> None:
        env = {
            "BROWSER_SERVICE_ALLOW": site.base_url.removeprefix("http://"),
            "BROWSER_SERVICE_CACHE_DIR": str(tmp / "cache"),
            "BROWSER_SERVICE_POOL_SIZE": "2",
            "BROWSER_SERVICE_SHUTDOWN_GRACE_S": str(GRACE_S),
        }
        super().__init__(env)


@pytest.fixture
def served(tmp_path: Path, site: FixtureServer) -> Iterator[Served]:
    server = Served(tmp_path, site)
    try:
        yield server
    finally:
        server.kill()


def _fetch(base: str, url: str) -> httpx.Response:
    body = {"url": url, "render": "browser", "timeout_ms": 60_000, "max_age_s": 0}
    return httpx.post(f"{base}/v1/fetch", json=body, timeout=90, trust_env=False)


def test_sigterm_drains_answers_and_leaves_nothing_running(served: Served, site: FixtureServer) -> None:
    served.wait_for("Application startup complete")
    children = psutil.Process(served.process.pid).children(recursive=True)
    browsers = [p for p in children if any("--browser-service-pool=" in arg for arg in p.cmdline())]
    assert browsers, "serve launches Chromium at start-up"

    with ThreadPoolExecutor(2) as pool:
        finishing: Future[httpx.Response] = pool.submit(_fetch, served.url, site.url("/hold?id=drain-finishes"))
        outlasting: Future[httpx.Response] = pool.submit(_fetch, served.url, site.url("/hold?id=drain-outlasts"))
        # Both requests are in the browser and at the origin before the signal.
        site.wait_until(lambda: bool(site.hits["/hold?id=drain-finishes"] and site.hits["/hold?id=drain-outlasts"]))

        served.process.send_signal(signal.SIGTERM)
        served.wait_for("shutting down: waiting up to 4 s for 2 request(s) in progress")
        # Draining: the listening socket is closed, so nothing new gets in.
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{served.url}/v1/health", timeout=5, trust_env=False)
        site.release("drain-finishes")  # this one finishes within the grace period

        done = finishing.result(timeout=30)
        assert done.status_code == 200, done.text
        page = FetchResponse.model_validate(done.json())
        assert page.ok and page.engine == "browser" and (page.markdown or "").startswith("# How Lighthouses Work")

        cut = outlasting.result(timeout=GRACE_S + 30)
        assert cut.status_code == 503 and cut.headers["retry-after"] == "5"
        error = FetchResponse.model_validate(cut.json()).error
        assert error is not None
        assert (error.kind.value, error.retryable, error.retry_after_s, error.message) == (
            "overloaded",
            True,
            5.0,
            f"The service is shutting down and this request did not finish within the shutdown grace period of "
            f"{GRACE_S} s (BROWSER_SERVICE_SHUTDOWN_GRACE_S), so it was stopped. Retry in a few seconds: the "
            "restarted service or another instance will answer.",
        )

    assert served.process.wait(timeout=GRACE_S + 20) == 0
    site.release("drain-outlasts")
    left = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], f"still running after serve exited: {[p.cmdline()[:2] for p in left]}"
