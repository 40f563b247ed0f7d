"""Live drift: a repeat fetch is measured against the cached good copy of the same request, and a page
that became a different page is held in quarantine instead of replacing the good copy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from browser_service.contract import FetchResponse
from browser_service.fetcher import Fetcher
from tests.conftest import make_settings
from tests.integration.test_fetch_http import error_kind, fetch
from tests.site import PAGES, FixtureServer

#: Another article of about the same length (so not ``shrunk``): what a swapped page says instead.
OTHER_ARTICLE = (PAGES / "consent.html").read_text().replace('role="dialog"', 'role="dialog" hidden')


@pytest.fixture
def origin() -> Iterator[FixtureServer]:
    server = FixtureServer().start()
    yield server
    server.close()


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Fetcher]:
    async with Fetcher(make_settings(tmp_path)) as fetcher:
        yield fetcher


def signals(response: FetchResponse) -> dict[str, str]:
    assert response.quality is not None
    return dict(s.partition("=")[::2] for s in response.quality.signals)


def findings(service: Fetcher, code: str) -> float | None:
    return service.telemetry.metrics.registry.get_sample_value("browser_service_quality_findings_total", {"code": code})


async def test_a_page_swapped_for_another_is_quarantined_and_the_good_copy_kept(
    service: Fetcher, origin: FixtureServer
) -> None:
    url = origin.url("/swap")
    first = await fetch(service, url)
    assert first.ok and first.quality is None  # nothing to compare with yet
    assert first.markdown is not None and first.markdown.startswith("# How Lighthouses Work")

    # A small edit: measured, reported, not flagged; it becomes the good copy.
    origin.swapped = lambda page: page.replace("twenty miles", "twenty-two miles")
    edited = await fetch(service, url)
    assert edited.ok and edited.source == "live" and edited.quality is not None
    assert edited.quality.verdict == "ok" and sorted(signals(edited)) == ["baseline_age_s", "baseline_similarity"]
    assert 0.9 < float(signals(edited)["baseline_similarity"]) < 1.0
    assert 0 <= int(signals(edited)["baseline_age_s"]) < 600
    assert edited.markdown is not None and "twenty-two miles" in edited.markdown

    # Another article behind the same URL with 200: a different page now.
    origin.swapped = lambda page: OTHER_ARTICLE
    suspect = await fetch(service, url, max_age_s=0, allow_stale=False)
    assert error_kind(suspect) == "suspect_content" and suspect.error is not None
    assert "drift: similarity 0.0" in suspect.error.message
    item_id = suspect.error.quarantine_id
    assert item_id is not None
    held = await service.quarantined_item(item_id)
    assert held is not None and [f.split(":")[0] for f in held.findings] == ["drift"]
    assert held.excerpt.startswith("# Tide Tables Explained")

    flagged = await fetch(service, url, max_age_s=0, on_suspect="return")
    assert flagged.ok and flagged.quality is not None and flagged.quality.verdict == "suspect"
    assert flagged.quality.signals[-1] == "drift" and float(signals(flagged)["baseline_similarity"]) < 0.05
    assert flagged.markdown is not None and flagged.markdown.startswith("# Tide Tables Explained")

    cached = await fetch(service, url, max_age_s=3600)
    assert cached.source == "cache" and cached.markdown == edited.markdown  # the good copy stays
    assert findings(service, "drift") == 2 and findings(service, "shrunk") == 0


async def test_drift_off_when_the_threshold_is_zero(tmp_path: Path, origin: FixtureServer) -> None:
    async with Fetcher(make_settings(tmp_path, live_drift_threshold=0)) as service:
        url = origin.url("/swap")
        assert (await fetch(service, url)).ok
        origin.swapped = lambda page: OTHER_ARTICLE
        swapped = await fetch(service, url)
        assert swapped.ok and swapped.quality is None
        assert swapped.markdown is not None and swapped.markdown.startswith("# Tide Tables Explained")


async def test_approving_a_drifted_page_makes_it_the_good_copy_and_the_next_swap_is_caught(
    service: Fetcher, origin: FixtureServer
) -> None:
    url = origin.url("/swap?approve=1")
    assert (await fetch(service, url)).ok
    origin.swapped = lambda page: OTHER_ARTICLE
    suspect = await fetch(service, url, max_age_s=0, allow_stale=False)
    assert suspect.error is not None and suspect.error.quarantine_id is not None

    # The site really moved to the other article: approved, it is the copy later fetches are
    # measured against — not a licence for the URL to drift from then on.
    decision = await service.approve(suspect.error.quarantine_id)
    assert decision is not None and decision.decision == "approved" and decision.accepted == []
    moved = await fetch(service, url, max_age_s=0, allow_stale=False)
    assert moved.ok and moved.quality is not None and moved.quality.verdict == "ok"
    assert float(signals(moved)["baseline_similarity"]) == 1.0
    assert moved.markdown is not None and moved.markdown.startswith("# Tide Tables Explained")

    origin.swapped = None  # and back to the lighthouse article: a different page again
    again = await fetch(service, url, max_age_s=0, allow_stale=False)
    assert error_kind(again) == "suspect_content" and again.error is not None
    assert "drift: similarity 0.0" in again.error.message
