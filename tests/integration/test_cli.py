"""The command line, run as a user runs it: the installed console script in a subprocess."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.site import PNG, FixtureServer

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


def test_extract_says_what_it_cannot_read(tmp_path: Path) -> None:
    # Both were a Python traceback.
    missing = run("extract", str(tmp_path / "missing.html"))
    assert missing.returncode == 2
    assert missing.stderr == f"error: cannot read {tmp_path / 'missing.html'}: No such file or directory\n"
    directory = run("extract", str(tmp_path))
    assert directory.returncode == 2 and directory.stderr == f"error: cannot read {tmp_path}: Is a directory\n"


def test_extract_refuses_a_binary_file(tmp_path: Path) -> None:
    # It printed the bytes decoded as text, as the page's content.
    image = tmp_path / "photo.html"
    image.write_bytes(PNG)
    result = run("extract", str(image))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: unsupported_content: {image} is a PNG image, not HTML")
    utf16 = tmp_path / "utf16.html"
    utf16.write_bytes("<p>Text in UTF-16, NUL bytes and all.</p>".encode("utf-16"))  # with its BOM: text
    assert run("extract", str(utf16), "--format", "text").stdout.startswith("Text in UTF-16, NUL bytes and all.")


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


# --- fetch -i: a batch from a file of URLs -------------------------------------------------------


def batch_env(tmp_path: Path) -> dict[str, str]:
    return {**ENV, "BROWSER_SERVICE_CACHE_DIR": str(tmp_path / "cache")}


def test_fetch_input_file_writes_ndjson_and_a_summary(site: FixtureServer, tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text(
        f"# articles to read\n{site.url('/article.html')}\n\n   \n{site.url('/no-such-page')}\n"
        f"  {site.url('/data.json')}  \n# the end\n"
    )
    out = tmp_path / "out.ndjson"
    result = run("fetch", "-i", str(urls), "-o", str(out), "--format", "text", env=batch_env(tmp_path))
    assert result.returncode == 1, result.stderr  # the worst failure was the origin's (not_found)
    assert result.stdout == ""
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    items = {line["index"]: line["response"] for line in lines[:-1]}
    assert sorted(items) == [0, 1, 2]
    assert items[0]["ok"] and items[0]["text"].startswith("How Lighthouses Work") and items[0]["markdown"] is None
    assert items[1]["error"]["kind"] == "not_found" and items[1]["url"] == site.url("/no-such-page")
    assert items[2]["ok"] and items[2]["url"] == site.url("/data.json")
    summary = lines[-1]["summary"]
    assert (summary["total"], summary["ok"], summary["failed"]) == (3, 2, 1)
    assert summary["by_kind"] == {"ok": 2, "not_found": 1}
    # stderr is not a terminal: one plain line per URL, then the table and the latency line.
    progress = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert [line.split()[0] for line in progress] == ["[1/3]", "[2/3]", "[3/3]"]
    assert any("not_found" in line and site.url("/no-such-page") in line for line in progress)
    assert "3 URLs: 2 ok, 1 failed" in result.stderr
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip() for line in result.stderr.splitlines() if "│" in line
    }
    assert rows == {"ok": "2", "not_found": "1"}
    assert "latency p50 " in result.stderr and ", p95 " in result.stderr


def test_fetch_input_from_stdin_to_stdout(site: FixtureServer, tmp_path: Path) -> None:
    urls = f"{site.url('/article.html')}\nnotaurl\n{site.url('/error')}\n"
    result = run("fetch", "-i", "-", stdin=urls, env=batch_env(tmp_path))
    assert result.returncode == 2, result.stderr  # request (2) is more severe than upstream (1)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = {line["index"]: (line["response"]["error"] or {}).get("kind", "ok") for line in lines[:-1]}
    assert kinds == {0: "ok", 1: "invalid_request", 2: "http_error"}
    assert lines[-1]["summary"]["by_kind"] == {"ok": 1, "invalid_request": 1, "http_error": 1}
    ok = run("fetch", "-i", "-", stdin=site.url("/article.html") + "\n", env=batch_env(tmp_path))
    assert ok.returncode == 0 and "1 URLs: 1 ok, 0 failed" in ok.stderr


def test_fetch_needs_a_url_or_an_input(tmp_path: Path) -> None:
    neither = run("fetch")
    assert neither.returncode == 2 and "give either a URL or --input FILE" in neither.stderr
    both = run("fetch", "http://127.0.0.1/", "-i", "-", stdin="")
    assert both.returncode == 2 and "give either a URL or --input FILE" in both.stderr
    missing = run("fetch", "-i", str(tmp_path / "nope.txt"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_fetch_input_shows_a_progress_bar_on_a_terminal(site: FixtureServer, tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text(f"{site.url('/article.html')}\n{site.url('/gone')}\n")
    command = [*([CLI] if CLI else [sys.executable, "-m", "browser_service.cli"]), "fetch", "-i", str(urls)]
    master, slave = pty.openpty()
    env = {**batch_env(tmp_path), "COLUMNS": "100", "TERM": "xterm"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=slave, env=env, text=True) as process:
        os.close(slave)
        chunks: list[bytes] = []
        reader = threading.Thread(target=_drain, args=(master, chunks))
        reader.start()
        stdout, _ = process.communicate(timeout=120)
        reader.join(timeout=30)
    os.close(master)
    terminal = b"".join(chunks).decode(errors="replace")
    assert process.returncode == 1
    assert "fetching" in terminal and "━" in terminal  # the rich bar (the plain per-URL lines are not there)
    assert "[1/2]" not in terminal and "2 URLs: 1 ok, 1 failed" in terminal
    assert len(stdout.splitlines()) == 3


def _drain(fd: int, chunks: list[bytes]) -> None:
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return
        if not data:
            return
        chunks.append(data)
