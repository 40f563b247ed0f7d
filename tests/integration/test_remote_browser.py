"""Remote browsers (``BROWSER_SERVICE_BROWSER_ENDPOINT``): the pool connects instead of launching.

Both kinds are real processes on loopback: a Playwright browser server (the driver's
``launch-server``, spoken to with ``chromium.connect``) and a Chromium started with
``--remote-debugging-port`` (spoken to over CDP). The service must fetch through them, type a
dropped connection as ``browser_error`` and reconnect, hold them to the network policy through the
per-context egress proxy, and leave them running when it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from playwright._impl._driver import compute_driver_executable

from browser_service.chromium import find_chromium, launch_args
from browser_service.fetcher import Fetcher
from tests.conftest import make_settings
from tests.integration.test_fetch_http import error_kind, fetch
from tests.integration.test_pool import until
from tests.site import FixtureServer

JS_ARTICLE = "Tide Tables Explained"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[str]) -> None:
    """Stop a process we started and every process it started (its browser)."""
    with _suppress_gone():
        children = psutil.Process(process.pid).children(recursive=True)
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        for child in children:
            with _suppress_gone():
                child.kill()


def _suppress_gone() -> contextlib.suppress:
    return contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError)


def _browser_main(process: subprocess.Popen[str]) -> psutil.Process:
    """The Chromium main process (no ``--type=``) among ``process``'s descendants."""
    for child in psutil.Process(process.pid).children(recursive=True):
        cmdline = child.cmdline()
        if cmdline and "chrom" in Path(cmdline[0]).name and not any(a.startswith("--type=") for a in cmdline):
            return child
    raise AssertionError("no browser process under the server")


class PlaywrightServer:
    """``playwright launch-server`` on a fixed loopback port and path, so a restart has the same endpoint."""

    def __init__(self, tmp: Path) -> None:
        self.config = tmp / "server.json"
        self.config.write_text(
            json.dumps(
                {
                    "executablePath": find_chromium(None, None),
                    "args": launch_args(),
                    "headless": True,
                    "host": "127.0.0.1",
                    "port": _free_port(),
                    "wsPath": "/remote-test",
                }
            )
        )
        self.process: subprocess.Popen[str] | None = None
        self.endpoint = ""

    def start(self) -> str:
        node, cli = compute_driver_executable()
        self.process = subprocess.Popen(
            [node, cli, "launch-server", "--browser", "chromium", "--config", str(self.config)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.endpoint = self.process.stdout.readline().strip()  # printed once the server listens
        assert self.endpoint.startswith("ws://127.0.0.1:"), self.endpoint
        return self.endpoint

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None


@pytest.fixture
def pw_server(tmp_path: Path) -> Iterator[PlaywrightServer]:
    server = PlaywrightServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def cdp_chromium(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Chromium with a DevTools endpoint on a free loopback port: (``http://127.0.0.1:port``, process)."""
    process = subprocess.Popen(
        [
            find_chromium(None, None),
            *launch_args(),
            "--headless",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={tmp_path / 'profile'}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    endpoint = ""
    for line in process.stderr:  # Chromium announces its endpoint on stderr once it listens
        if line.startswith("DevTools listening on ws://"):
            ws = line.split(" on ", 1)[1].strip()
            endpoint = "http://" + ws.removeprefix("ws://").split("/", 1)[0]
            break
    assert endpoint, "Chromium never announced its DevTools endpoint"
    process.stderr.close()
    yield endpoint, process
    _stop(process)


async def test_fetch_through_a_playwright_server_and_reconnect(
    site: FixtureServer, tmp_path: Path, pw_server: PlaywrightServer
) -> None:
    settings = make_settings(tmp_path, browser_endpoint=pw_server.endpoint, retry_attempts=1)
    async with Fetcher(settings) as service:
        response = await fetch(service, site.url("/js-article?delay=200"), render="browser")
        assert response.ok and response.engine == "browser"
        assert JS_ARTICLE in (response.markdown or "")
        assert "Rendered after 200 ms by JavaScript." in (response.markdown or "")
        health = service.pool.health()
        assert health.state == "available" and health.browser_connected
        assert health.browser_pid is None and health.launches == 1  # not ours: no pid to kill

        # The server's browser dies while a page is loading: that request gets a typed browser_error.
        hits = site.hits["/slow"]
        assert pw_server.process is not None
        browser = _browser_main(pw_server.process)
        in_flight = asyncio.create_task(fetch(service, site.url("/slow?ms=5000"), render="browser", timeout_ms=20000))
        await until(lambda: site.hits["/slow"] > hits)
        browser.kill()
        pw_server.stop()
        failed = await in_flight
        assert error_kind(failed) == "browser_error" and not failed.ok
        assert failed.error is not None and failed.error.retryable
        await until(lambda: not service.pool.health().browser_connected)
        assert service.pool.health().state == "degraded"

        # While the server is down, connecting fails typed — with the endpoint, not a 500 or a hang.
        down = await fetch(service, site.url("/article.html"), render="browser")
        assert error_kind(down) == "browser_error"
        assert down.error is not None and "remote browser at ws://127.0.0.1:" in down.error.message
        assert "/remote-test" not in down.error.message  # the path may hold a token: never shown

        pw_server.start()
        after = await fetch(service, site.url("/js-article?delay=50"), render="browser")
        assert after.ok and JS_ARTICLE in (after.markdown or "")
        await service.pool.drained()
        health = service.pool.health()
        assert health.browser_connected and health.state == "available"
        assert (health.launches, health.restarts, health.in_use) == (2, 1, 0)


async def test_recycling_a_remote_browser_reconnects(
    site: FixtureServer, tmp_path: Path, pw_server: PlaywrightServer
) -> None:
    settings = make_settings(tmp_path, browser_endpoint=pw_server.endpoint, recycle_after=2, pool_size=1)
    assert pw_server.process is not None
    browser = _browser_main(pw_server.process)
    async with Fetcher(settings) as service:
        for i in range(3):
            response = await fetch(service, site.url(f"/article.html?i={i}"), render="browser")
            assert response.ok
        await service.pool.drained()
        health = service.pool.health()
        assert (health.recycles, health.launches, health.restarts) == (1, 2, 0)
        assert browser.is_running()  # recycling disconnected and reconnected; the browser lives on
    assert browser.is_running()  # and so does closing the service


async def test_cdp_endpoint_fetches_and_keeps_the_network_policy(
    site: FixtureServer, tmp_path: Path, cdp_chromium: tuple[str, subprocess.Popen[str]]
) -> None:
    endpoint, chromium = cdp_chromium
    canary = FixtureServer().start()  # another loopback port: not in the strict allow list
    try:
        host, port = site.server_address[:2]
        strict = make_settings(tmp_path / "strict", browser_endpoint=endpoint, allow=[f"{host}:{port}"])
        async with Fetcher(strict) as service:
            response = await fetch(service, site.url("/js-article?delay=100"), render="browser")
            assert response.ok and JS_ARTICLE in (response.markdown or "")
            assert service.pool.health().browser_connected

            # A sub-resource on the canary: the page loads, the canary is never reached.
            page = site.url(f"/embed?kind=img&to={canary.url('/image.png')}")
            embedded = await fetch(service, page, render="browser")
            assert embedded.ok and "How Lighthouses Work" in (embedded.markdown or "")
            # A navigation to it: refused typed, not reached.
            direct = await fetch(service, canary.url("/article.html"), render="browser")
            assert error_kind(direct) == "forbidden_target"
            navigated = await fetch(
                service, site.url(f"/navigate?how=location&to={canary.url('/article.html')}"), render="browser"
            )
            assert "How Lighthouses Work" not in (navigated.markdown or "")
            assert sum(canary.hits.values()) == 0

        # Positive control: with the canary allowed, the same page does reach it through the same browser.
        loose = make_settings(tmp_path / "loose", browser_endpoint=endpoint)
        async with Fetcher(loose) as service:
            embedded = await fetch(service, page, render="browser")
            assert embedded.ok
            await until(lambda: canary.hits["/image.png"] > 0)
    finally:
        canary.close()
    assert chromium.poll() is None  # the service disconnected; it never closed the remote browser


async def test_unreachable_endpoint_is_typed_and_the_service_still_starts(site: FixtureServer, tmp_path: Path) -> None:
    endpoint = f"ws://127.0.0.1:{_free_port()}/playwright?token=s3cret"  # nothing listens there
    async with Fetcher(make_settings(tmp_path, browser_endpoint=endpoint, retry_attempts=1)) as service:
        await service.start(launch_browser=True)  # as `serve` does: no crash at start-up
        health = service.pool.health()
        assert health.state == "unavailable" and not health.browser_connected
        response = await fetch(service, site.url("/js-article"), render="browser")
        assert error_kind(response) == "browser_error" and response.error is not None
        assert response.error.retryable
        assert response.error.message.startswith(f"The remote browser at {endpoint.split('/play')[0]} could not")
        assert "s3cret" not in response.error.message
