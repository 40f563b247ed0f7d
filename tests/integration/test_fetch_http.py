"""The HTTP engine and render=auto against the fixture site: each page's exact outcome."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from browser_service.contract import FetchRequest, FetchResponse
from browser_service.fetcher import Fetcher
from tests.conftest import make_settings
from tests.site import LONG_PARAGRAPHS, FixtureServer


def request(url: str, **options: object) -> FetchRequest:
    return FetchRequest.model_validate({"url": url, **options})


async def fetch(fetcher: Fetcher, url: str, **options: object) -> FetchResponse:
    return await fetcher.fetch(request(url, **options))


def error_kind(response: FetchResponse) -> str | None:
    return response.error.kind.value if response.error else None


async def test_static_article_stays_on_http(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/article.html"), formats=["markdown", "text", "metadata"])
    assert response.ok and response.engine == "http" and response.source == "live"
    assert [(a.engine, a.outcome) for a in response.attempts] == [("http", "ok")]
    assert response.status_code == 200 and response.content_type == "text/html"
    md = response.markdown or ""
    assert md.startswith("# How Lighthouses Work")
    assert "## The Fresnel lens" in md
    assert "- First-order lenses served major coastal lights." in md
    assert f"[Fresnel biography]({site.url('/history/fresnel')})" in md
    for boilerplate in ("About us", "Copyright 2024", "Privacy policy"):
        assert boilerplate not in md
    assert "In 1822 Augustin Fresnel designed" in (response.text or "")
    assert response.metadata is not None
    assert response.metadata.author == "Ada Keeper"
    assert response.metadata.canonical_url == site.url("/article.html")
    assert response.metadata.published_date is not None and response.metadata.published_date.startswith("2024-03-05")
    assert response.content is not None and response.content.format == "markdown"
    assert response.content.total_chars == len(md) and not response.content.truncated
    assert response.content_sha256 is not None and len(response.content_sha256) == 64
    assert response.versions.api == "v1" and response.trace_id


async def test_render_http_never_uses_the_browser(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/spa.html"), render="http", formats=["raw_html"])
    assert response.ok and response.engine == "http"
    assert '<div id="root"></div>' in (response.raw_html or "")


async def test_redirect_chain_is_followed(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/redirect?n=3"))
    assert response.ok and response.final_url == site.url("/article.html")
    assert response.quality is not None and "redirects=3" in response.quality.signals


async def test_redirect_loop_is_a_typed_error(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/redirect-loop"))
    assert error_kind(response) == "http_error" and "More than 10 redirects" in response.error.message  # type: ignore[union-attr]


@pytest.mark.parametrize("how", ["meta", "header"])
async def test_a_refresh_to_another_page_is_followed_like_a_redirect(
    fetcher: Fetcher, site: FixtureServer, how: str
) -> None:
    start = site.url(f"/navigate?how={how}&delay=1&to=/article.html")
    response = await fetch(fetcher, start, render="http", max_age_s=0)
    assert response.ok and response.engine == "http" and response.final_url == site.url("/article.html")
    assert (response.markdown or "").startswith("# How Lighthouses Work")
    assert response.quality is not None and "redirects=1" in response.quality.signals


@pytest.mark.parametrize("render", ["http", "auto", "browser"])
@pytest.mark.parametrize(
    ("how", "named"),
    [("png-as-html", "labelled text/html but a PNG image"), ("pdf-as-text", "labelled text/plain but a PDF")],
)
async def test_a_binary_file_labelled_text_is_not_read_as_text(
    fetcher: Fetcher, site: FixtureServer, render: str, how: str, named: str
) -> None:
    # Chromium shows such a file as text; the HTTP engine decoded it: kilobytes of garbage, answered ok.
    response = await fetch(fetcher, site.url(f"/broken?how={how}"), render=render)
    assert error_kind(response) == "unsupported_content" and response.markdown is None
    assert f"is {named} by its bytes" in response.error.message  # type: ignore[union-attr]


@pytest.mark.parametrize("render", ["http", "browser"])
async def test_headers_as_large_as_chromium_takes_are_read(fetcher: Fetcher, site: FixtureServer, render: str) -> None:
    # 150 kB of Set-Cookie headers: the HTTP engine stopped at httpcore's 100 kB (connection_error).
    response = await fetch(fetcher, site.url("/broken?how=big-headers"), render=render, max_age_s=0)
    assert response.ok and (response.markdown or "").startswith("# How Lighthouses Work")


async def test_a_redirect_to_no_url_is_a_typed_error(fetcher: Fetcher, site: FixtureServer) -> None:
    # urljoin raises on "http://[bad/": that was an internal_error.
    response = await fetch(fetcher, site.url("/redirect-to?to=http://%5Bbad/"), render="http")
    assert error_kind(response) == "http_error" and response.error.status_code == 302  # type: ignore[union-attr]
    assert "redirected (302) to 'http://[bad/', which is not a valid URL" in response.error.message  # type: ignore[union-attr]


async def test_a_meta_refresh_resolves_against_the_pages_base(fetcher: Fetcher, site: FixtureServer) -> None:
    # "?ref=1" against the page's URL would be /navigate?ref=1, another "Moving…" page.
    start = site.url("/navigate?how=meta&base=/article.html&to=%3Fref%3D1")
    response = await fetch(fetcher, start, render="http", max_age_s=0)
    assert response.ok and response.final_url == site.url("/article.html?ref=1")


@pytest.mark.parametrize(
    "query",
    [
        "how=header&delay=30&to=/article.html",  # later than the settle cap: a page in its own right
        "how=meta&to=",  # the page itself: a reload
        "how=meta&to=%23top",  # the page itself, at an anchor
        "how=noscript&to=/article.html",  # for readers without scripts only, as a browser would
        "how=header&to=javascript:location.reload()",  # no URL a redirect goes to
        "how=meta&to=http://%5Bbad/",  # no URL at all (Chromium does not follow it either)
    ],
)
async def test_a_refresh_that_is_no_redirect_is_not_followed(fetcher: Fetcher, site: FixtureServer, query: str) -> None:
    before = dict(site.hits)
    response = await fetch(fetcher, site.url(f"/navigate?{query}"), render="http", max_age_s=0)
    # The "Moving…" page itself, read once: too little text to be content.
    assert error_kind(response) == "empty_content"
    assert {path: n - before.get(path, 0) for path, n in site.hits.items() if n != before.get(path, 0)} == {
        "/navigate": 1
    }


@pytest.mark.parametrize(("path", "status"), [("/no-such-page", 404), ("/gone", 410)])
async def test_not_found_keeps_the_origin_status(fetcher: Fetcher, site: FixtureServer, path: str, status: int) -> None:
    response = await fetch(fetcher, site.url(path))
    assert not response.ok and error_kind(response) == "not_found"
    assert response.error is not None and response.error.status_code == status and not response.error.retryable
    assert response.markdown is None


async def test_server_error_is_retryable_http_error(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/error"))
    assert error_kind(response) == "http_error"
    assert response.error is not None and response.error.status_code == 500 and response.error.retryable
    # A 503 with Retry-After: tests/integration/test_failures.py (it pauses the whole host).


async def test_cookie_gated_page(fetcher: Fetcher, site: FixtureServer) -> None:
    refused = await fetch(fetcher, site.url("/needs-cookie"))
    assert error_kind(refused) == "http_error" and refused.error.status_code == 403  # type: ignore[union-attr]
    allowed = await fetch(fetcher, site.url("/needs-cookie"), cookies={"session": "letmein"})
    assert allowed.ok and "only shown to visitors who send the session cookie" in (allowed.markdown or "")


async def test_request_headers_are_sent(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(
        fetcher, site.url("/echo-headers"), headers={"X-Agent-Test": "yes"}, formats=["text"], main_content=False
    )
    text = response.text or ""
    assert "X-Agent-Test: yes" in text and "Chrome/" in text and "HeadlessChrome" not in text


async def test_slow_origin_times_out_within_the_deadline(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/slow?ms=10000"), render="http", timeout_ms=1500)
    assert error_kind(response) == "timeout"
    assert response.error is not None and response.error.phase == "response" and response.error.retryable
    assert response.duration_ms is not None and response.duration_ms <= 1500


async def test_stalled_body_times_out_in_body_phase(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/slow-body?ms=10000"), render="http", timeout_ms=1500)
    assert error_kind(response) == "timeout" and response.error.phase == "body"  # type: ignore[union-attr]


async def test_connection_reset(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/reset"))
    assert error_kind(response) == "connection_error" and response.error.retryable  # type: ignore[union-attr]


async def test_refused_connection(fetcher: Fetcher) -> None:
    response = await fetch(fetcher, "http://127.0.0.1:9/")  # the discard port: nothing listens
    assert error_kind(response) == "connection_error" and response.error.phase == "connect"  # type: ignore[union-attr]


async def test_unresolvable_host(fetcher: Fetcher) -> None:
    response = await fetch(fetcher, "http://no-such-host.invalid/")
    assert error_kind(response) == "dns_error" and not response.error.retryable  # type: ignore[union-attr]


@pytest.mark.parametrize("path", ["/huge?mb=25", "/huge-chunked?mb=25"])
async def test_huge_page_is_too_large(fetcher: Fetcher, site: FixtureServer, path: str) -> None:
    response = await fetch(fetcher, site.url(path), render="http")
    assert error_kind(response) == "too_large" and "20,971,520 bytes" in response.error.message  # type: ignore[union-attr]


async def test_json_and_text_come_back_as_text(fetcher: Fetcher, site: FixtureServer) -> None:
    data = await fetch(fetcher, site.url("/data.json"), formats=["markdown", "text"])
    assert data.ok and data.content_type == "application/json"
    assert data.markdown == data.text == '{"name": "widget", "price": 9.5, "tags": ["a", "b"]}'
    notes = await fetch(fetcher, site.url("/notes.txt"))
    assert notes.ok and notes.markdown == "Plain text notes.\nSecond line: ünïcödé.\n"


@pytest.mark.parametrize(
    ("path", "mime"), [("/doc.pdf", "application/pdf"), ("/image.png", "image/png"), ("/octet", None)]
)
async def test_binaries_are_unsupported(fetcher: Fetcher, site: FixtureServer, path: str, mime: str | None) -> None:
    response = await fetch(fetcher, site.url(path))
    assert error_kind(response) == "unsupported_content"
    assert response.error is not None and (mime or "binary data") in response.error.message


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/latin1-as-utf8", ["Le café du port", "crème brûlée", "Noël", "été"]),
        ("/utf8-as-latin1", ["Le café du port", "crème brûlée", "Noël", "été"]),
        ("/meta-charset", ["Маяк на острове", "Смотрители жили"]),
    ],
)
async def test_mislabelled_encodings_decode_correctly(
    fetcher: Fetcher, site: FixtureServer, path: str, expected: list[str]
) -> None:
    response = await fetch(fetcher, site.url(path), formats=["text"])
    assert response.ok
    for phrase in expected:
        assert phrase in (response.text or "")
    assert "Ã" not in (response.text or "")


async def test_broken_utf8_keeps_the_rest(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/broken-utf8"), formats=["text"])
    assert response.ok and "Le propriétaire, Noël" in (response.text or "")


async def test_malformed_html_is_extracted(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/malformed.html"), formats=["text"], main_content=False)
    text = response.text or ""
    assert response.ok
    assert "The first paragraph never closes its tag" in text
    assert "A second paragraph starts before the first one ended" in text
    assert "Deeply nested text stays readable." in text


async def test_empty_page_is_empty_content(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/empty"))
    assert error_kind(response) == "empty_content"
    # No scripts: nothing for a browser to add, so the HTTP engine's page is judged at once.
    assert [a.outcome for a in response.attempts] == ["empty_content"]


async def test_gzip_body(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/gzip"))
    assert response.ok and "How Lighthouses Work" in (response.markdown or "")


async def test_paging_through_a_long_article(fetcher: Fetcher, site: FixtureServer) -> None:
    start, pages, texts, digests = 0, 0, [], set()
    while True:
        response = await fetch(fetcher, site.url("/long"), formats=["text"], max_chars=5000, start_index=start)
        assert response.ok and response.content is not None
        assert len(response.text or "") <= 5000
        texts.append(response.text or "")
        digests.add(response.content_sha256)
        pages += 1
        if not response.content.truncated:
            assert response.content.next_start_index is None
            break
        assert (response.text or "").endswith("\n\n")  # cut at a paragraph boundary
        start = response.content.next_start_index  # type: ignore[assignment]
    whole = "".join(texts)
    assert pages >= response.content.total_chars // 5000 + 1
    for i in (1, 200, LONG_PARAGRAPHS):
        assert f"Paragraph {i} of the long article." in whole
    assert len(digests) == 1  # the digest is of the whole document, the same on every page


async def test_secondary_text_format_is_cut_with_a_warning(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/long"), formats=["text", "markdown"], max_chars=1000)
    assert response.content is not None and response.content.format == "text"
    assert len(response.markdown or "") <= 1000
    assert any(w.startswith("markdown was cut to") for w in response.warnings)
    later = await fetch(fetcher, site.url("/long"), formats=["text", "markdown"], max_chars=1000, start_index=1000)
    assert later.markdown is None and "markdown is omitted: start_index pages through text only" in later.warnings


async def test_selectors_give_typed_fields(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(
        fetcher,
        site.url("/article.html"),
        formats=["links"],
        selectors={
            "headline": "h1",
            "sections": {"css": "article h2", "all": True},
            "more": {"css": "article a", "attr": "href"},
            "missing": ".nope",
        },
    )
    assert response.fields == {
        "headline": "How Lighthouses Work",
        "sections": ["The Fresnel lens"],
        "more": site.url("/history/fresnel"),
        "missing": None,
    }
    assert any("missing" in w for w in response.warnings)
    links = {link.url: link for link in response.links or []}
    assert links[site.url("/about")].internal and not links["https://social.example.org/coastal"].internal


async def test_loopback_is_refused_by_default(site: FixtureServer, tmp_path: Path) -> None:
    before = site.hits["/article.html"]
    async with Fetcher(make_settings(tmp_path, allow=[])) as strict:
        response = await fetch(strict, site.url("/article.html"))
        browser = await fetch(strict, site.url("/article.html"), render="browser")
    for refused in (response, browser):
        assert error_kind(refused) == "forbidden_target"
        assert refused.error is not None and "rule: loopback" in refused.error.message
    assert site.hits["/article.html"] == before  # nothing reached the origin


async def test_a_stage_that_never_returns_still_answers_on_time(tmp_path: Path) -> None:
    """The pipeline's backstop: even an await that ignores the deadline cannot hold the answer."""
    async with Fetcher(make_settings(tmp_path)) as service:

        async def hang(*args: object, **kwargs: object) -> None:
            await asyncio.Event().wait()

        service.http.fetch = hang  # type: ignore[method-assign, assignment]
        response = await fetch(service, "http://127.0.0.1:9/", render="http", timeout_ms=1000)
    assert error_kind(response) == "timeout" and response.error.phase == "total"  # type: ignore[union-attr]
    assert response.duration_ms is not None and response.duration_ms <= 1000
