"""The cache: freshness, paging from the stored copy, revalidation, stale fallback, good pages only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from browser_service.cache import CacheEntry, DiskCacheStore, cache_key
from browser_service.fetcher import Fetcher
from tests.conftest import make_settings
from tests.integration.test_fetch_http import error_kind, fetch, request
from tests.site import FixtureServer


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Fetcher]:
    async with Fetcher(make_settings(tmp_path)) as fetcher:
        yield fetcher


@pytest.fixture
def flaky(site: FixtureServer) -> Iterator[FixtureServer]:
    site.failing.clear()
    yield site
    site.failing.clear()


async def test_max_age_serves_the_stored_copy(service: Fetcher, site: FixtureServer) -> None:
    url = site.url("/article.html?cache=1")
    live = await fetch(service, url)
    hits = site.hits["/article.html"]
    cached = await fetch(service, url, max_age_s=600)
    assert live.source == "live" and cached.source == "cache" and not cached.stale
    assert cached.age_s is not None and 0 <= cached.age_s < 600
    assert cached.markdown == live.markdown and cached.content_sha256 == live.content_sha256
    assert cached.fetched_at == live.fetched_at and cached.attempts == []
    assert site.hits["/article.html"] == hits  # nothing reached the origin
    forced = await fetch(service, url, max_age_s=0)
    assert forced.source == "live" and site.hits["/article.html"] == hits + 1


async def test_other_options_are_other_entries(service: Fetcher, site: FixtureServer) -> None:
    url = site.url("/needs-cookie")
    assert (await fetch(service, url, cookies={"session": "letmein"})).ok
    without = await fetch(service, url, max_age_s=600)
    assert error_kind(without) == "http_error"  # the members page is not served to a request without the cookie
    same = await fetch(service, url, cookies={"session": "letmein"}, max_age_s=600, formats=["text", "links"])
    assert same.source == "cache" and same.text and same.links is not None  # formats are not part of the key


async def test_pages_of_a_document_come_from_the_stored_copy(service: Fetcher, site: FixtureServer) -> None:
    first = await fetch(service, site.url("/long?doc=paging"), formats=["text"], max_chars=5000)
    hits = site.hits["/long"]
    assert first.content is not None and first.content.truncated
    second = await fetch(
        service,
        site.url("/long?doc=paging"),
        formats=["text"],
        max_chars=5000,
        start_index=first.content.next_start_index,
    )
    assert second.source == "cache" and site.hits["/long"] == hits
    assert second.content_sha256 == first.content_sha256
    assert second.content is not None and second.content.start_index == first.content.next_start_index


async def test_stale_copy_when_the_live_fetch_fails(service: Fetcher, flaky: FixtureServer) -> None:
    url = flaky.url("/flaky")
    assert (await fetch(service, url)).source == "live"
    flaky.failing.set()
    degraded = await fetch(service, url)
    assert degraded.ok and degraded.source == "cache" and degraded.stale
    assert degraded.live_error is not None and degraded.live_error.kind == "http_error"
    assert degraded.live_error.status_code == 503 and degraded.error is None
    assert degraded.warnings[0].startswith("the live fetch failed (http_error); this is the copy stored")
    assert [a.outcome for a in degraded.attempts] == ["http_error"] * 3  # retried, then the stored copy
    assert "How Lighthouses Work" in (degraded.markdown or "")
    strict = await fetch(service, url, allow_stale=False)
    assert not strict.ok and error_kind(strict) == "http_error" and not strict.stale


async def test_stale_copy_respects_the_age_cap(tmp_path: Path, flaky: FixtureServer) -> None:
    async with Fetcher(make_settings(tmp_path, stale_max_age_s=0)) as strict:
        assert (await fetch(strict, flaky.url("/flaky?cap=0"))).ok
        flaky.failing.set()
        response = await fetch(strict, flaky.url("/flaky?cap=0"))
    assert error_kind(response) == "http_error"  # the stored copy is older than the cap allows


async def test_failures_are_never_stored(service: Fetcher, site: FixtureServer) -> None:
    for path in ("/error", "/no-such-page", "/empty", "/doc.pdf"):
        await fetch(service, site.url(path))
    assert service.cache.health().entries == 0
    hits = site.hits["/error"]
    again = await fetch(service, site.url("/error"), max_age_s=600)
    assert error_kind(again) == "http_error" and site.hits["/error"] == hits + 1


async def test_revalidation_with_etag(service: Fetcher, site: FixtureServer) -> None:
    url = site.url("/etag")
    first = await fetch(service, url)
    key = cache_key(request(url))
    entry = await service.cache.get(key)
    assert entry is not None and entry.etag == '"v1"'
    await service.cache.put(key, entry.model_copy(update={"fetched_at": entry.fetched_at - 3600}))  # an hour old
    revalidated = await fetch(service, url, max_age_s=60)
    assert revalidated.source == "cache" and revalidated.markdown == first.markdown
    assert revalidated.quality is not None and "revalidated=304" in revalidated.quality.signals
    assert [(a.engine, a.outcome, a.status_code) for a in revalidated.attempts] == [("http", "ok", 304)]
    assert revalidated.age_s is not None and revalidated.age_s < 60  # the copy counts as fresh again


async def test_disk_store_is_bounded_and_evicts_least_recently_used(tmp_path: Path) -> None:
    store = DiskCacheStore(tmp_path / "small", size_limit_bytes=1_000_000)
    entry = CacheEntry(
        url="http://e.test/",
        final_url="http://e.test/",
        fetched_at=0,
        status_code=200,
        content_type="text/html",
        engine="http",
        is_html=True,
        body="x" * 100_000,
    )
    for i in range(9):
        await store.put(f"k{i}", entry)
    assert await store.get("k0") is not None  # read: k0 is now the most recently used
    for i in range(9, 40):
        await store.put(f"k{i}", entry)
        if i == 10:  # the first evictions took the least recently used (k1, k2 …), not k0
            assert await store.get("k1") is None and await store.get("k0") is not None
    health = store.health()
    assert health.size_bytes is not None and health.size_bytes <= 1_000_000 + 100_000
    assert health.entries is not None and 5 <= health.entries <= 10
    assert await store.get("k0") is None and await store.get("k39") is not None
    await store.aclose()


async def test_unreadable_entry_is_a_miss(tmp_path: Path) -> None:
    store = DiskCacheStore(tmp_path / "c", size_limit_bytes=10_000_000)
    await store._run(store._cache.set, "bad", "{not json")
    assert await store.get("bad") is None
    await store.aclose()


async def test_health_reports_the_cache(service: Fetcher, site: FixtureServer) -> None:
    await fetch(service, site.url("/article.html?health=1"))
    health = (await service.health()).cache
    assert health.backend == "disk" and health.entries == 1 and (health.size_bytes or 0) > 0


async def test_a_corrupt_cache_database_is_moved_aside_not_a_service_that_will_not_start(
    tmp_path: Path, site: FixtureServer
) -> None:
    # A crash or a full disk mid-write leaves SQLite files that are no database: opening them raised
    # DatabaseError, and the service did not start. The cache and the quarantine's stores alike.
    settings = make_settings(tmp_path)
    async with Fetcher(settings) as fetcher:
        await fetch(fetcher, site.url("/article.html?corrupt=1"))
    databases = _corrupt_databases(Path(settings.cache_dir))
    assert len(databases) == 3  # the page cache, the quarantine's items and its accepted findings
    async with Fetcher(settings) as fetcher:
        assert fetcher.cache.health().entries == 0
        again = await fetch(fetcher, site.url("/article.html?corrupt=1"), max_age_s=600)
        assert again.ok and again.source == "live"
        assert (await fetch(fetcher, site.url("/article.html?corrupt=1"), max_age_s=600)).source == "cache"
    assert all(_moved_aside(db) == [b"not a database " * 100] for db in databases)


def _corrupt_databases(root: Path) -> list[Path]:
    databases = sorted(root.rglob("cache.db"))
    for db in databases:
        db.write_bytes(b"not a database " * 100)
    return databases


def _moved_aside(db: Path) -> list[bytes]:
    return [p.read_bytes() for p in db.parent.glob("cache.db.corrupt-*")]
