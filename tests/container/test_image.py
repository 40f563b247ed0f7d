"""Smoke test of the container image, as an operator runs it: ``podman run`` with an API key.

Collected only when ``BROWSER_SERVICE_TEST_IMAGE`` names a built image (``scripts/container-smoke``
builds it and sets it; ``./scripts/test`` runs that script after the suite). The container shares the
host's network (``--network host``), so it reaches the fixture site this test starts on 127.0.0.1 —
allowed with ``BROWSER_SERVICE_ALLOW`` exactly as an operator allows an intranet host.

Checked: the image's metadata (non-root user, health check, environment) and leanness (no pip, no
compiler, no apt lists); refusing to start on 0.0.0.0 without API keys; readiness; a
JavaScript-rendered page; typed errors (a 404 page, a forbidden target); an unauthenticated request
refused; ``/metrics``; the image's own health check; SIGTERM ending the container cleanly (exit 0).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.site import FixtureServer

IMAGE = os.environ.get("BROWSER_SERVICE_TEST_IMAGE", "localhost/browser-service:latest")
PODMAN = shlex.split(os.environ.get("BROWSER_SERVICE_TEST_PODMAN", "podman"))
START_TIMEOUT_S = 120

pytestmark = pytest.mark.container


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Container:
    """The image running as a service on a free port of the host's loopback, with one API key."""

    def __init__(self, site: FixtureServer, log: Path) -> None:
        self.name = f"browser-service-smoke-{secrets.token_hex(4)}"
        self.port = free_port()
        self.key = secrets.token_urlsafe(16)
        self.log = log
        env = {
            "BROWSER_SERVICE_API_KEYS": self.key,
            "BROWSER_SERVICE_PORT": str(self.port),
            "BROWSER_SERVICE_ALLOW": site.base_url.removeprefix("http://"),
            "BROWSER_SERVICE_POOL_SIZE": "2",
        }
        flags = [f"--env={name}={value}" for name, value in env.items()]
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [*PODMAN, "run", "--name", self.name, "--network", "host", *flags, IMAGE],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_serving(self) -> None:
        """Poll until the service answers HTTP (an external process: nothing to wait on but its port)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the container exited {self.process.returncode}:\n{self.output()}")
            try:
                self.http.get("/openapi.json", timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.25)
        raise AssertionError(f"the container did not answer within {START_TIMEOUT_S} s:\n{self.output()}")

    def fetch(self, url: str, **fields: Any) -> httpx.Response:
        return self.http.post("/v1/fetch", json={"url": url, **fields}, headers=self.auth)

    def remove(self) -> None:
        self.http.close()
        podman("rm", "--force", "--time", "0", self.name, check=False)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def service(site: FixtureServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    container = Container(site, tmp_path_factory.mktemp("container") / "output.log")
    try:
        container.wait_until_serving()
        yield container
    finally:
        container.remove()


def test_image_metadata_and_contents() -> None:
    image = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
    config = image["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["/usr/bin/tini", "--", "browser-service"]
    assert config["Cmd"] == ["serve"]
    healthcheck = image.get("Healthcheck") or config["Healthcheck"]  # podman: top level; docker: in Config
    assert healthcheck["Test"] == [
        "CMD",
        "/opt/venv/bin/python",
        "/usr/local/bin/browser-service-healthcheck",
    ]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["BROWSER_SERVICE_HOST"] == "0.0.0.0"
    assert env["BROWSER_SERVICE_CHROMIUM_PATH"] == "/usr/bin/chromium"
    # Lean: no pip, no compiler, no apt lists; the package installed, not editable.
    script = (
        "ls /opt/venv/bin/pip /usr/bin/gcc /usr/bin/cc 2>/dev/null; ls /var/lib/apt/lists | grep -v '^lock$'; "
        "ls /opt/venv/lib/python3.11/site-packages | grep -ci '__editable__'; "
        "/opt/venv/bin/python -c 'import browser_service; print(browser_service.__file__)'; id -u"
    )
    done = podman(
        "run", "--rm", "--no-healthcheck", "--network", "host", "--entrypoint", "sh", IMAGE, "-c", script, check=False
    )
    assert done.stdout.split() == [
        "0",
        "/opt/venv/lib/python3.11/site-packages/browser_service/__init__.py",
        "10001",
    ], done.stdout + done.stderr


def test_refuses_to_listen_without_api_keys() -> None:
    done = podman("run", "--rm", "--no-healthcheck", "--network", "host", IMAGE, check=False)
    assert done.returncode == 2
    assert "Refusing to listen on 0.0.0.0 without API keys" in done.stderr
    assert "--insecure" in done.stderr


def test_ready(service: Container) -> None:
    assert service.http.get("/healthz").status_code == 200
    ready = service.http.get("/readyz")  # no key: load balancers poll it
    assert ready.status_code == 200 and ready.json()["ready"] is True, ready.text
    health = service.http.get("/v1/health", headers=service.auth)
    assert health.status_code == 200 and health.json()["status"] == "available", health.text


def test_javascript_rendered_page(service: Container, site: FixtureServer) -> None:
    answer = service.fetch(site.url("/js-article?delay=300"))
    page = answer.json()
    assert answer.status_code == 200 and page["ok"] is True, answer.text
    assert page["engine"] == "browser"
    assert page["title"] == "Tide Tables Explained"
    assert "Spring tides, near the full and new moon, have the largest range" in page["markdown"]
    assert "Rendered after 300 ms by JavaScript." in page["markdown"]


def test_missing_page_is_not_found(service: Container, site: FixtureServer) -> None:
    answer = service.fetch(site.url("/no-such-page"))
    page = answer.json()
    assert answer.status_code == 502
    assert page["ok"] is False
    assert page["error"]["kind"] == "not_found"
    assert page["error"]["status_code"] == 404
    assert page["error"]["retryable"] is False


def test_target_outside_the_allowance_is_forbidden(service: Container) -> None:
    # Loopback on another port: the fixture site's host:port is the only exception allowed.
    answer = service.fetch(f"http://127.0.0.1:{free_port()}/")
    page = answer.json()
    assert answer.status_code == 403
    assert page["error"]["kind"] == "forbidden_target"
    assert "rule: loopback" in page["error"]["message"], page["error"]["message"]
    assert [attempt["outcome"] for attempt in page["attempts"]] == ["forbidden_target"]


def test_unauthenticated_requests_are_refused(service: Container, site: FixtureServer) -> None:
    anonymous = service.http.post("/v1/fetch", json={"url": site.url("/article.html")})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    wrong = service.http.get("/v1/health", headers={"Authorization": "Bearer not-the-key"})
    assert wrong.status_code == 401


def test_metrics(service: Container) -> None:
    assert service.http.get("/metrics").status_code == 401
    metrics = service.http.get("/metrics", headers=service.auth)
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    # The fetches above were counted (this module's tests run in order, on one container).
    assert 'browser_service_requests_total{engine="browser",outcome="ok"}' in metrics.text
    assert "browser_service_pool_slots 2.0" in metrics.text


def test_health_check(service: Container) -> None:
    done = podman("healthcheck", "run", service.name, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    inside = podman("exec", service.name, "/usr/local/bin/browser-service-healthcheck", check=False)
    assert (inside.returncode, inside.stdout.strip()) == (0, "healthy")


def test_sigterm_stops_it_cleanly(service: Container) -> None:
    """Last: ``podman stop`` (SIGTERM through tini) drains, closes Chromium, exits 0."""
    podman("stop", "--time", "30", service.name, timeout=60)
    assert service.process.wait(timeout=30) == 0, service.output()
    state = json.loads(podman("inspect", service.name).stdout)[0]["State"]
    assert state["ExitCode"] == 0
