"""The command line, run as a user runs it: the installed console script in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.site import FixtureServer

CLI = shutil.which("browser-service") or ""
ENV = {**os.environ, "BROWSER_SERVICE_ALLOW": "127.0.0.0/8"}


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [CLI, *args] if CLI else [sys.executable, "-m", "browser_service.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, input=stdin, env=env or ENV, timeout=120)


def test_fetch_prints_markdown(site: FixtureServer) -> None:
    result = run("fetch", site.url("/article.html"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# How Lighthouses Work")


def test_fetch_json_and_browser(site: FixtureServer) -> None:
    result = run("fetch", site.url("/spa.html"), "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["ok"] and body["engine"] == "browser" and "bowline" in body["markdown"]


@pytest.mark.parametrize(
    ("path", "code", "kind"),
    [("/no-such-page", 1, "not_found"), ("/doc.pdf", 1, "unsupported_content")],
)
def test_fetch_errors_exit_non_zero(site: FixtureServer, path: str, code: int, kind: str) -> None:
    result = run("fetch", site.url(path))
    assert result.returncode == code
    assert result.stdout == "" and f"error: {kind}: " in result.stderr


def test_forbidden_and_invalid_exit_2(site: FixtureServer) -> None:
    refused = run("fetch", site.url("/article.html"), env={**os.environ, "BROWSER_SERVICE_ALLOW": ""})
    assert refused.returncode == 2 and "error: forbidden_target" in refused.stderr
    invalid = run("fetch", "not-a-url")
    assert invalid.returncode == 2 and "error: invalid_request: Invalid request: url:" in invalid.stderr


def test_extract_from_stdin() -> None:
    html = (
        "<html><body><nav>Menu</nav><article><h1>Notes</h1><p>"
        + "A calm sea today. " * 20
        + "</p></article></body></html>"
    )
    result = run("extract", "-", "--format", "text", stdin=html)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Notes\n\nA calm sea today.") and "Menu" not in result.stdout


def test_serve_refuses_public_bind_without_keys() -> None:
    result = run("serve", "--host", "0.0.0.0", "--port", "8999", env={**ENV, "BROWSER_SERVICE_API_KEYS": ""})
    assert result.returncode == 2 and "Refusing to listen on 0.0.0.0 without API keys" in result.stderr


def test_missing_browser_is_explained(site: FixtureServer) -> None:
    env = {**ENV, "BROWSER_SERVICE_CHROMIUM_PATH": "/nonexistent/chromium"}
    served = run("serve", "--port", "8998", env=env)
    assert served.returncode == 3
    assert "BROWSER_SERVICE_CHROMIUM_PATH='/nonexistent/chromium' is not an executable file" in served.stderr
    fetched = run("fetch", site.url("/spa.html"), "--render", "browser", env=env)
    assert fetched.returncode == 3 and "error: browser_error: BROWSER_SERVICE_CHROMIUM_PATH=" in fetched.stderr
    assert run("fetch", site.url("/article.html"), "--render", "http", env=env).returncode == 0  # no browser needed
