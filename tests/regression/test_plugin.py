"""The pytest plugin in a user's project: recordings in its own directory, parametrised over, replayed
through the comparison, a Fetcher and the Python client — run by pytest itself (``pytester``)."""

from __future__ import annotations

import json
import shutil
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTICLE = ROOT / "fixtures" / "recordings" / "article"

USER_TESTS = """
import pytest
from browser_service.contract import FetchRequest
from browser_service.testing import recordings

URL = "http://127.0.0.1:8765/article.html"


@pytest.mark.parametrize("name", recordings("recorded"))
def test_replays(replay_recording, name):
    result = replay_recording(name)
    assert result.passed, result.report()


@pytest.mark.asyncio
async def test_fetcher(replay_fetcher):
    async with replay_fetcher("article") as fetcher:
        page = await fetcher.fetch(FetchRequest(url=URL))
        missing = await fetcher.fetch(FetchRequest(url="http://127.0.0.1:8765/other"))
    assert page.ok and page.title == "How Lighthouses Work"
    assert missing.error.kind == "invalid_request"


@pytest.mark.asyncio
async def test_client(replay_client):
    async with replay_client("article") as client:
        page = await client.fetch(URL, formats=["text"])
    assert page.text.startswith("How Lighthouses Work")
"""


def test_the_entry_point_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"browser_service": "browser_service.testing"}


def test_a_users_project_replays_its_recordings(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(ARTICLE, pytester.path / "recorded" / "article")
    changed = pytester.path / "recorded" / "article-changed"
    shutil.copytree(ARTICLE, changed)
    snapshot = json.loads((changed / "snapshot.json").read_text())
    snapshot[0]["title"] = "How Windmills Work"
    (changed / "snapshot.json").write_text(json.dumps(snapshot))
    pytester.makeini("[pytest]\nbrowser_service_recordings = recorded\n")
    pytester.makepyfile(test_user=USER_TESTS)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # this checkout's browser_service, not an installed one
    monkeypatch.delenv("BROWSER_SERVICE_ALLOW", raising=False)
    installed = any(e.value == "browser_service.testing" for e in entry_points(group="pytest11"))
    args = [] if installed else ["-p", "browser_service.testing"]
    result = pytester.runpytest_subprocess(*args, "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_replays?article? PASSED*",
            "*test_replays?article-changed? FAILED*",
            "*test_fetcher PASSED*",
            "*test_client PASSED*",
            "*FAIL article-changed (1 request): similarity 1.000*",
            "*changed title: 'How Windmills Work' → 'How Lighthouses Work'*",
        ]
    )
