"""The browser engine and render=auto escalation, with real Chromium against the fixture site."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.async_api import Error as PlaywrightError

from browser_service.deadline import Deadline
from browser_service.engines.settle import HOOK
from browser_service.fetcher import Fetcher
from tests.conftest import make_settings
from tests.integration.test_fetch_http import error_kind, fetch
from tests.site import FixtureServer, TLSFixtureServer


@pytest.fixture(scope="module")
async def patient(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fetcher]:
    """A service whose settle quiet time (100 ms) outlasts the pauses a loaded test machine puts
    between two steps of a page's work: what settles the page early is then only what the test is
    about (a signal the wait does not see), not the machine's load."""
    service = Fetcher(make_settings(tmp_path_factory.mktemp("patient"), settle_quiet_ms=100))
    await service.start(launch_browser=True)
    yield service
    await service.close()


@pytest.fixture(scope="module")
async def strict(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fetcher]:
    """A service with no settle quiet time at all: what holds its wait is only the work the wait
    counts, so a page it reads right is one whose work the wait saw, not one the quiet time's
    margin happened to cover."""
    service = Fetcher(make_settings(tmp_path_factory.mktemp("strict"), settle_quiet_ms=0))
    await service.start(launch_browser=True)
    yield service
    await service.close()


async def on_article(service: Fetcher, site: FixtureServer, script: str, arg: object = None) -> Any:
    """``script`` (a function of ``arg``) evaluated on the article page, in a lease of ``service``;
    ``SETTLE(…)`` in it calls the settle wait (under its per-process name, settle.HOOK)."""
    async with service.pool.lease(Deadline(10)) as lease:
        await lease.page.goto(site.url("/article.html"))
        return await lease.page.evaluate(script.replace("SETTLE(", f"window['{HOOK}'].settle("), arg)


async def test_a_page_that_breaks_the_reads_built_ins_is_read_from_playwrights_world(
    fetcher: Fetcher, site: FixtureServer
) -> None:
    # The page replaces Array.prototype.filter and makes outerHTML throw in its own world: the
    # settle wait and read fail there (at once, not at the deadline), and the page is read from
    # Playwright's isolated world, whose built-ins the page cannot reach.
    response = await fetch(fetcher, site.url("/sabotaged.html"), render="browser", timeout_ms=8000)
    assert response.ok and [a.outcome for a in response.attempts] == ["ok"]
    assert (response.markdown or "").startswith("# Breakwater Repairs Begin")
    assert "forty metres in the outer wall" in (response.markdown or "")
    assert response.warnings == [
        "the page's scripts broke the browser's reading of it (Error: no filter here): read as it was, "
        "without waiting for it to settle"
    ]


async def test_a_page_rewriting_its_url_in_a_loop_is_read(fetcher: Fetcher, site: FixtureServer) -> None:
    # 10,000 history.replaceState calls as the page loads. Without Chromium's limit on such calls
    # (Playwright turns it off by default; the pool turns it back on) they flooded the browser
    # process: the navigation never reached `load`, and the fetch was a timeout at its deadline.
    response = await fetch(fetcher, site.url("/history-flood.html"), render="browser", timeout_ms=8000)
    assert response.ok and [a.outcome for a in response.attempts] == ["ok"]
    assert (response.markdown or "").startswith("# Tide Gauge Readings")
    assert "storm surges do" in (response.markdown or "").lower()


async def test_the_settle_wait_leaves_no_trace_a_page_can_find_or_change(fetcher: Fetcher, site: FixtureServer) -> None:
    # A bot check can look for a known global; a page could replace one (and hold the fetch). The
    # wait's functions hang on one non-enumerable, read-only property with a random name per
    # process, and what it remembers about the page's objects is in WeakSets, not on them.
    async with fetcher.pool.lease(Deadline(10)) as lease:
        await lease.page.goto(site.url("/article.html"))
        found = await lease.page.evaluate(
            """async (hook) => {
              const script = document.createElement('script');  // one the wait counts until it runs
              script.src = '/cached.js';
              const ran = new Promise((done) => { script.onload = done; script.onerror = done; });
              document.head.append(script);
              await ran;
              const before = window[hook];
              window[hook] = null;
              return [Object.keys(window).includes(hook),
                      Object.getOwnPropertyNames(window).filter((name) => name.startsWith('__bs')),
                      window[hook] === before, typeof window[hook].settle, Object.getOwnPropertyNames(script)];
            }""",
            HOOK,
        )
    assert found == [False, [], True, "function", []]


async def test_auto_escalates_a_js_rendered_article(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/js-article?delay=300"))
    assert response.ok and response.engine == "browser"
    assert [(a.engine, a.outcome) for a in response.attempts] == [("http", "escalated"), ("browser", "ok")]
    assert response.attempts[0].detail == "little text: 27 visible characters and 1 scripts"
    md = response.markdown or ""
    assert md.startswith("# Tide Tables Explained")
    assert "Spring tides, near the full and new moon" in md and "Loading article" not in md


async def test_default_wait_catches_content_after_two_seconds(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/js-article?delay=2000"), render="browser")
    assert response.ok and "Rendered after 2000 ms by JavaScript." in (response.markdown or "")
    assert response.warnings == []


@pytest.mark.parametrize("query", ["ms=300", "ms=300&then=300"])
async def test_default_wait_catches_an_app_whose_code_arrives_by_import(
    fetcher: Fetcher, site: FixtureServer, query: str
) -> None:
    # import() holds neither load nor any counter the page's scripts keep: the wait sees the
    # chunk in flight from the browser's side (and, with then=, the chunk the chunk loads).
    response = await fetch(fetcher, site.url(f"/lazy-route.html?{query}"), render="browser")
    md = response.markdown or ""
    assert response.ok and md.startswith("# Reading the Sky"), md
    assert "Rendered by a chunk loaded with import()." in md and "Loading" not in md
    assert response.warnings == []


@pytest.mark.parametrize(
    "query",
    [
        "ms=1500",  # the worker's request, seen from the browser's side, outlasts the 1 s reply wait
        "work=300&ms=0",  # the worker computes for 300 ms before it asks anything: its answer is awaited
    ],
)
async def test_default_wait_catches_an_article_a_worker_fetched(
    fetcher: Fetcher, site: FixtureServer, query: str
) -> None:
    # Nothing the worker does is visible to the page's scripts; the article arrives as a message.
    response = await fetch(fetcher, site.url(f"/worker-render.html?{query}"), render="browser")
    md = response.markdown or ""
    assert response.ok and md.startswith("# How Lighthouses Work"), md
    assert "Fresnel designed a lens of concentric prisms" in md and "Loading" not in md
    assert response.warnings == []


async def test_default_wait_catches_a_render_sliced_into_tasks(patient: Fetcher, site: FixtureServer) -> None:
    # 400 ms of work in 5 ms tasks chained by MessageChannel messages, the DOM untouched until the
    # end: longer than the quiet time, so only the messages show the page is still busy.
    response = await fetch(patient, site.url("/sliced-render.html?ms=400"), render="browser")
    md = response.markdown or ""
    assert response.ok, response.error
    assert md.startswith("# Knots for Mooring"), md
    assert "Committed after 400 ms of sliced work." in md and "Loading" not in md
    assert response.warnings == []


@pytest.mark.parametrize(
    ("path", "heading", "sentence"),
    [
        # An offline-first app fills its IndexedDB store for 300 ms, then renders from it: nothing
        # on the page moves meanwhile, but a store request is always in flight.
        ("/idb-render.html", "# Offline Tide Tables", "Rendered from IndexedDB."),
        # A live page whose content is the server's first WebSocket message, 300 ms after it opens.
        ("/live-render.html", "# Harbour Live", "Sent over a WebSocket."),
    ],
)
async def test_default_wait_catches_content_from_indexeddb_and_websockets(
    fetcher: Fetcher, site: FixtureServer, path: str, heading: str, sentence: str
) -> None:
    response = await fetch(fetcher, site.url(path), render="browser")
    md = response.markdown or ""
    assert response.ok and md.startswith(heading) and sentence in md, (error_kind(response), md)
    assert response.warnings == []


async def test_a_socket_that_stays_silent_holds_the_wait_a_second_not_to_the_cap(
    fetcher: Fetcher, site: FixtureServer
) -> None:
    # The page's socket opens and says nothing. The page is read as it is once the first message
    # is a second late, well inside the 5 s cap (no "still changing" warning) — and what it shows,
    # its "Connecting…" placeholder, is no content: the agent gets a typed error naming it.
    response = await fetch(fetcher, site.url("/live-render.html?ms=60000"), render="browser")
    assert error_kind(response) == "empty_content" and response.markdown is None
    assert response.error is not None and response.status_code == 200
    assert "has no text content beyond a placeholder ('Connecting…') even after rendering" in response.error.message
    assert response.warnings == []


async def test_web_components_are_read_from_their_shadow_roots(fetcher: Fetcher, site: FixtureServer) -> None:
    # A closed root (reachable only through the init script), an open one inside it, slotted light DOM.
    # The slotted byline shows inside the article, and the article is isolated from the page.
    response = await fetch(fetcher, site.url("/web-component.html"), render="browser")
    md = response.markdown or ""
    assert response.ok and md.startswith("# Reading a Nautical Chart\n\nBy Ada Keeper\n\nSoundings give"), md
    assert "depths on older charts may be in fathoms, not metres." in md and "Home" not in md
    assert response.warnings == []


async def test_changes_inside_a_shadow_root_hold_the_wait(patient: Fetcher, site: FixtureServer) -> None:
    # The component changes its closed root on every animation frame for ~20 frames, then adds a
    # paragraph: only the root's own mutation watch shows the page is still changing.
    response = await fetch(patient, site.url("/web-component.html"), render="browser")
    md = response.markdown or ""
    assert response.ok and "Contour lines join points of equal depth" in md, md
    assert not [w for w in response.warnings if "still changing" in w]  # settled, not capped


async def test_a_server_rendered_web_component_is_read_over_http(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/declarative-shadow.html"))
    assert response.ok and [(a.engine, a.outcome) for a in response.attempts] == [("http", "ok")]
    md = response.markdown or ""
    assert md.startswith("# Flags at Sea\n\nThe international code of signals"), md
    assert "Flag O, red and yellow divided diagonally" in md and "An inert template" not in md


async def test_auto_renders_an_spa_shell(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/spa.html"), formats=["markdown", "raw_html"])
    assert response.ok and response.engine == "browser" and response.title == "Knots Every Sailor Knows"
    assert response.attempts[0].detail == "app shell: #root holds 0 characters of text"
    assert "The bowline makes a fixed loop" in (response.markdown or "")
    assert "<article>" in (response.raw_html or "")  # the rendered DOM, not the shell


async def test_wait_for_selector(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/js-article?delay=500"), wait_for="article h1")
    assert response.ok and response.engine == "browser"  # wait_for implies the browser
    assert "Tide Tables Explained" in (response.markdown or "")


async def test_wait_for_that_never_appears_times_out(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/article.html"), wait_for="#never", timeout_ms=1500)
    assert error_kind(response) == "timeout"
    assert response.error is not None and response.error.phase == "wait_for" and "'#never'" in response.error.message
    assert response.duration_ms is not None and response.duration_ms <= 1500


async def test_screenshot_is_a_png(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/article.html"), formats=["markdown", "screenshot"])
    assert response.ok and response.engine == "browser"
    assert base64.b64decode(response.screenshot or "")[:8] == b"\x89PNG\r\n\x1a\n"


async def test_browser_sends_cookies_and_headers(fetcher: Fetcher, site: FixtureServer) -> None:
    refused = await fetch(fetcher, site.url("/needs-cookie"), render="browser")
    assert error_kind(refused) == "http_error" and refused.error.status_code == 403  # type: ignore[union-attr]
    allowed = await fetch(fetcher, site.url("/needs-cookie"), render="browser", cookies={"session": "letmein"})
    assert allowed.ok and "Members Area" in (allowed.markdown or "")
    echo = await fetch(
        fetcher,
        site.url("/echo-headers"),
        render="browser",
        headers={"X-Agent-Test": "yes"},
        formats=["text"],
        main_content=False,
    )
    assert "x-agent-test: yes" in (echo.text or "").lower() and "HeadlessChrome" not in (echo.text or "")


@pytest.mark.parametrize(
    ("path", "kind", "status"),
    [
        ("/no-such-page", "not_found", 404),
        ("/error", "http_error", 500),
        ("/doc.pdf", "unsupported_content", None),
        ("/image.png", "unsupported_content", 200),
        ("/reset", "connection_error", None),
        ("/redirect-loop", "http_error", None),
        ("/redirect-to?to=http://%5Bbad/", "http_error", None),  # a Location that is no URL
    ],
)
async def test_browser_failures_are_typed(
    fetcher: Fetcher, site: FixtureServer, path: str, kind: str, status: int | None
) -> None:
    response = await fetch(fetcher, site.url(path), render="browser")
    assert error_kind(response) == kind
    if status is not None:
        assert response.error is not None and response.error.status_code == status


async def test_browser_json_is_text(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/data.json"), render="browser", formats=["text"])
    assert response.ok and response.text == '{"name": "widget", "price": 9.5, "tags": ["a", "b"]}'


async def test_browser_redirects_and_slow_origin(fetcher: Fetcher, site: FixtureServer) -> None:
    redirected = await fetch(fetcher, site.url("/redirect?n=2"), render="browser")
    assert redirected.ok and redirected.final_url == site.url("/article.html")
    slow = await fetch(fetcher, site.url("/slow?ms=10000"), render="browser", timeout_ms=1500)
    assert error_kind(slow) == "timeout" and slow.error.phase == "navigation"  # type: ignore[union-attr]
    assert slow.duration_ms is not None and slow.duration_ms <= 1500


@pytest.mark.parametrize(
    ("how", "kind", "status", "http_kind"),
    [
        # The body breaks after the document committed: Chromium never fires load (goto waited out
        # the deadline); now the failure ends the navigation at once.
        ("gzip", "connection_error", None, "connection_error"),
        ("short", "connection_error", None, "connection_error"),
        ("chunk", "connection_error", None, "connection_error"),
        ("two-lengths", "connection_error", None, "connection_error"),
        # These were browser_error, retried three times; one named a 204 "text/html".
        ("no-content", "empty_content", 204, "empty_content"),
        ("basic-auth", "login_required", 401, "login_required"),
        ("proxy-auth", "http_error", 407, "http_error"),
        ("attachment", "unsupported_content", 200, None),  # the browser saves it; HTTP reads it
    ],
)
async def test_broken_responses_are_typed_as_the_http_engine_types_them(
    fetcher: Fetcher, site: FixtureServer, how: str, kind: str, status: int | None, http_kind: str | None
) -> None:
    browser = await fetch(fetcher, site.url(f"/broken?how={how}"), render="browser", timeout_ms=8000)
    assert error_kind(browser) == kind and browser.error is not None
    assert browser.error.status_code == status and browser.error.phase is None  # not a timeout
    http = await fetch(fetcher, site.url(f"/broken?how={how}"), render="http", timeout_ms=8000)
    assert error_kind(http) == http_kind


async def test_malformed_xhtml_is_read_without_chromiums_error_report(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/broken?how=bad-xhtml"), render="browser", formats=["text"])
    assert response.ok and (response.text or "").startswith("Tidal streams run fastest")
    assert "following errors" not in (response.text or "")
    assert any(w.startswith("the page is malformed XHTML (error on line 1") for w in response.warnings)


async def test_a_page_reloading_itself_in_a_loop_is_not_retried(fetcher: Fetcher, site: FixtureServer) -> None:
    # It was a browser_error, tried three times over; the HTTP engine reads the page as sent.
    looping = await fetch(fetcher, site.url("/broken?how=reload-loop"), render="browser")
    assert error_kind(looping) == "http_error" and looping.error is not None and not looping.error.retryable
    assert len(looping.attempts) == 1 and "reloads or redirects itself in a loop" in looping.error.message
    sent = await fetch(fetcher, site.url("/broken?how=reload-loop"), render="http")
    assert sent.ok and (sent.markdown or "").startswith("# How Lighthouses Work")


async def test_half_an_emoji_left_by_a_script_is_answered(fetcher: Fetcher, site: FixtureServer) -> None:
    # A lone surrogate in the DOM made every answer unencodable: internal_error (a bare 500 over REST).
    response = await fetch(fetcher, site.url("/broken?how=half-emoji"), render="browser", formats=["text", "html"])
    assert response.ok and " cut \ufffd" in (response.text or "")
    response.model_dump_json()  # encodable as UTF-8


@pytest.mark.parametrize("render", ["browser", "auto"])
@pytest.mark.parametrize("how", ["frameset", "nested", "iframe"])
async def test_a_page_made_of_frames_is_read_through_them(
    fetcher: Fetcher, site: FixtureServer, how: str, render: str
) -> None:
    # The main document holds frames and no text: it was empty_content, while a reader sees the article.
    url = site.url(f"/framed?how={how}")
    response = await fetch(fetcher, url, render=render, formats=["markdown", "links"], max_age_s=0)
    assert response.ok and response.engine == "browser"
    assert (response.markdown or "").startswith("# How Lighthouses Work")
    assert render == "browser" or response.attempts[0].outcome == "escalated"  # auto: HTTP saw only frames
    frames = {"frameset": 2, "nested": 2, "iframe": 1}[how]  # nested: the top frameset's two frames
    assert f"read with the documents of {frames} frame(s) in place" in " ".join(response.warnings)
    if how != "iframe":  # the navigation frame's links resolve against its own URL, not the page's
        urls = {link.url for link in response.links or []}
        assert {site.url("/frames/intro.html"), site.url("/index.html")} <= urls


async def test_a_frame_the_browser_refused_is_left_out(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/framed?how=refused"), render="browser", formats=["text"])
    assert response.ok and (response.text or "").startswith("How Lighthouses Work")
    assert "read with the documents of 1 frame(s) in place" in " ".join(response.warnings)


async def test_a_page_with_text_of_its_own_keeps_its_frames_out(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/framed?how=own-text"), render="browser", formats=["links"])
    assert response.ok and not any("frames" in w for w in response.warnings)
    assert site.url("/frames/intro.html") not in {link.url for link in response.links or []}


async def test_an_attachment_is_named_as_one(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/broken?how=attachment"), render="browser")
    assert response.error is not None
    assert "sent as a download (Content-Disposition: attachment" in response.error.message


async def test_a_redirect_to_no_url_is_not_retried(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/redirect-to?to=http://%5Bbad/"), render="browser")
    assert response.error is not None and not response.error.retryable and len(response.attempts) == 1
    assert "redirected to a Location that is not a valid URL" in response.error.message


async def test_a_3xx_without_location_is_the_page_not_a_hop(tmp_path: Path, site: FixtureServer) -> None:
    # Chromium shows a 302 with an empty Location as the page. Counted as a redirect still in
    # flight, it held the answer for the settle cap (here 30 s, against ~0.3 s for the page).
    async with Fetcher(make_settings(tmp_path, settle_cap_ms=30_000)) as service:
        response = await fetch(service, site.url("/redirect-to?to="), render="browser", timeout_ms=20_000)
    assert error_kind(response) == "empty_content"
    assert response.duration_ms is not None and response.duration_ms < 10_000


async def test_empty_page_in_browser(fetcher: Fetcher, site: FixtureServer) -> None:
    response = await fetch(fetcher, site.url("/empty"), render="browser")
    assert error_kind(response) == "empty_content" and "even after rendering" in response.error.message  # type: ignore[union-attr]


async def test_untrusted_certificate_is_tls_error(fetcher: Fetcher) -> None:
    server = TLSFixtureServer().start()
    try:
        for render in ("http", "browser"):
            response = await fetch(fetcher, server.url("/article.html"), render=render)
            assert error_kind(response) == "tls_error", render
            assert response.error is not None and not response.error.retryable
    finally:
        server.close()


async def test_a_named_server_sent_event_is_content_and_ends_the_connecting_wait(
    fetcher: Fetcher, site: FixtureServer
) -> None:
    response = await fetch(fetcher, site.url("/sse-render.html"), render="browser")
    md = response.markdown or ""
    assert response.ok and md.startswith("# Harbour Live"), (error_kind(response), md)
    assert "Sent as a named server-sent event." in md and "Connecting" not in md
    assert response.warnings == []
    # The stream stops counting as work in flight when its first event comes, named or not (not
    # 1 s after it opened): the page's own listener, which runs after the wait's, sees nothing in flight.
    async with fetcher.pool.lease(Deadline(10)) as lease:
        await lease.page.goto(site.url("/sse-render.html"))
        await lease.page.wait_for_function("window.inflightAtArticle !== undefined")
        assert await lease.page.evaluate("window.inflightAtArticle") == 0


@pytest.mark.parametrize("via", ["message", "cache"])
async def test_the_wait_counts_work_the_browser_runs_later(strict: Fetcher, site: FixtureServer, via: str) -> None:
    # The article comes after 30 messages the page posts itself (older libraries' setImmediate) or
    # from a Cache API read, started in a frame after `load` that works for 200 ms first: no
    # request, no timer, no DOM change announces it. With no quiet time to cover it, the wait
    # holds only because it counts that work as due.
    response = await fetch(strict, site.url(f"/deferred-render.html?via={via}"), render="browser")
    md = response.markdown or ""
    assert response.ok and md.startswith("# Signals of the Coast"), (error_kind(response), md)
    assert f"Rendered by deferred work: {via}." in md and "Loading" not in md
    assert response.warnings == []


async def test_an_endless_animation_loop_does_not_hold_the_wait(strict: Fetcher, site: FixtureServer) -> None:
    # A canvas spinner re-arms its animation frame forever: a chain, like a poller's timers, that
    # the wait stops counting at its third link — the page is read once the article is in, not at
    # the cap with a "still changing" warning.
    response = await fetch(strict, site.url("/deferred-render.html?via=frames&loop=1"), render="browser")
    md = response.markdown or ""
    assert response.ok and "Rendered by deferred work: frames." in md, (error_kind(response), md)
    assert response.warnings == []


async def test_a_live_clock_redrawn_every_frame_does_not_hold_the_wait_to_the_cap(
    fetcher: Fetcher, site: FixtureServer
) -> None:
    # A worker's message every 10 ms asks for a frame to redraw a clock in: a frame is nearly always
    # due and the DOM changes at every one, forever. Frames due do not count as work in flight for the calm
    # rule, so the page is read after a second with nothing in flight, not at the cap.
    response = await fetch(fetcher, site.url("/deferred-render.html?via=frames&ticker=1"), render="browser")
    md = response.markdown or ""
    assert response.ok and "Rendered by deferred work: frames." in md, (error_kind(response), md)
    assert response.warnings == []


@pytest.mark.parametrize("delay", ["0", "1"])
@pytest.mark.parametrize("how", ["meta", "header"])
async def test_a_refresh_to_another_page_is_followed_like_a_redirect(
    strict: Fetcher, site: FixtureServer, how: str, delay: str
) -> None:
    # `<meta http-equiv=refresh>` or a Refresh header: the browser moves on `delay` s after load,
    # with nothing in flight or due meanwhile. With no quiet time, only the wait counting the
    # refresh keeps it from reading the "Moving…" page.
    response = await fetch(strict, site.url(f"/navigate?how={how}&delay={delay}&to=/article.html"), render="browser")
    md = response.markdown or ""
    assert response.ok and response.final_url == site.url("/article.html"), (error_kind(response), md)
    assert md.startswith("# How Lighthouses Work") and "Moving" not in md
    assert response.warnings == []


#: A refresh's value → whether the page moves on (the wait holds for it) or stays (reloads itself).
REFRESHES = {
    "3": "stays",  # no URL: the same page again, a dashboard's auto-refresh
    "3; url=": "stays",
    "3;URL='/article.html'": "stays",  # the same page, named
    "3; url=javascript:location.reload()": "stays",  # no URL a redirect goes to
    "1; url=/article.html?next": "moves",
    "1.9, 'http://127.0.0.1:{port}/article.html?next'": "moves",  # a comma, quotes, no url=; 1 s (digits only)
}


@pytest.mark.parametrize("refresh", list(REFRESHES))
async def test_the_wait_holds_for_a_refresh_that_moves_on_not_one_that_stays(
    strict: Fetcher, site: FixtureServer, refresh: str
) -> None:
    # The page adds the refresh as a `<meta http-equiv>` (which the browser acts on) and asks for
    # the wait in the same task. A refresh that leaves the page where it is is not waited for: the
    # page is what it shows (had the wait held, the title a timer it does not count — three links
    # deep — sets at 500 ms would be read). One that moves on holds the wait until the page is
    # replaced (the wait, with no quiet time, never gets to answer).
    value = refresh.format(port=site.server_address[1])
    settle = on_article(
        strict,
        site,
        "(r) => { const m = document.createElement('meta'); m.httpEquiv = 'refresh'; m.content = r; "
        "document.head.append(m); "
        "setTimeout(() => setTimeout(() => setTimeout(() => { document.title = 'late'; }, 500))); "
        "return SETTLE(0, 5000, false, null).then((s) => [s.settled, s.title]); }",
        value,
    )
    if REFRESHES[refresh] == "stays":
        assert await settle == [True, "How Lighthouses Work | The Coastal Review"]
    else:
        with pytest.raises(PlaywrightError, match="context was destroyed"):
            await settle


async def test_a_page_that_navigates_away_holds_the_wait_until_it_is_gone(strict: Fetcher, site: FixtureServer) -> None:
    # The page sets location to a slow page: it is going away, so the wait (no quiet time, nothing
    # else due) does not end on it — the page is replaced while the wait still holds.
    with pytest.raises(PlaywrightError, match="context was destroyed"):
        await on_article(
            strict, site, "() => { location.href = '/slow?ms=300'; return SETTLE(0, 2000, false, null); }"
        )


async def test_a_navigation_a_router_intercepts_does_not_hold_the_wait(strict: Fetcher, site: FixtureServer) -> None:
    # A router on the Navigation API turns the navigation into a same-document one: the page stays,
    # so the wait does not hold for it to go. Had it held (up to 1 s), the title a timer the wait
    # does not count (three links deep) sets at 500 ms would be read instead of the route's.
    result = await on_article(
        strict,
        site,
        "() => { navigation.addEventListener('navigate', (e) => e.intercept({ handler: () => { "
        "document.title = 'routed'; } })); "
        "setTimeout(() => setTimeout(() => setTimeout(() => { document.title = 'late'; }, 500))); "
        "location.href = '/article.html?route=2'; "
        "return SETTLE(0, 2000, false, null)"
        ".then((r) => [r.settled, document.title, location.search]); }",
    )
    assert result == [True, "routed", "?route=2"]


async def test_a_refresh_to_a_slow_page_is_followed(strict: Fetcher, site: FixtureServer) -> None:
    # The refresh's target takes 1.5 s to answer, longer than the wait holds for a page going away
    # (1 s): still the page it lands on is read, not "Moving…" (the read answered while the
    # navigation was in flight; the engine sees the new document commit after it and reads that).
    target = "/slow?ms=1500"
    response = await fetch(strict, site.url(f"/navigate?how=meta&to={quote(target)}"), render="browser")
    assert response.ok and response.final_url == site.url(target), (error_kind(response), response.markdown)
    assert "Moving" not in (response.markdown or "")


@pytest.mark.parametrize("tick", [1, 2])
async def test_an_interval_counts_until_its_second_tick(strict: Fetcher, site: FixtureServer, tick: int) -> None:
    # A poller that finds what it waits for on its first or second tick, with no quiet time: the
    # wait holds for it, as for a timer and the one it sets.
    result = await on_article(
        strict,
        site,
        "(tick) => { let n = 0; const i = setInterval(() => { if (++n === tick) { clearInterval(i); "
        "document.title = 'done'; } }, 50); "
        "return SETTLE(0, 2000, false, null).then((r) => [r.settled, document.title]); }",
        tick,
    )
    assert result == [True, "done"]


async def test_an_interval_that_ticks_forever_does_not_hold_the_wait(strict: Fetcher, site: FixtureServer) -> None:
    # A clock: from its third tick on it no longer counts (nor is each tick activity), so the
    # wait ends settled, not at its cap.
    result = await on_article(
        strict,
        site,
        "() => { setInterval(() => { window.ticks = (window.ticks || 0) + 1; }, 10); "
        "return SETTLE(0, 2000, false, null).then((r) => [r.settled, window.ticks >= 2]); }",
    )
    assert result == [True, True]


#: Work the browser runs at a moment of its own choosing; each calls ``done()`` when it runs.
DEFERRED = {
    "two animation frames": "requestAnimationFrame(() => requestAnimationFrame(done))",
    "an idle callback": "requestIdleCallback(done)",
    "an intersection observer's first notification": (
        "const o = new IntersectionObserver(() => { o.disconnect(); done(); }); o.observe(document.body)"
    ),
    "a resize observer's first notification": (
        "const o = new ResizeObserver(() => { o.disconnect(); done(); }); o.observe(document.body)"
    ),
    "a message to the window itself": (
        "addEventListener('message', (e) => e.data === 'bs-test' && done()); postMessage('bs-test', '*')"
    ),
    "a Cache API read": "caches.open('bs-test').then((cache) => cache.match('/nothing')).then(done)",
}


@pytest.mark.parametrize("work", list(DEFERRED))
async def test_work_the_browser_runs_later_is_due_until_it_runs(
    strict: Fetcher, site: FixtureServer, work: str
) -> None:
    # The wait is asked in the same task that starts the work, with no quiet time: it returns only
    # once the work has run (the title it sets is read), however soon that is.
    result = await on_article(
        strict,
        site,
        "() => { const done = () => { document.title = 'done'; }; "
        + DEFERRED[work]
        + "; return SETTLE(0, 2000, false).then((r) => [r.settled, document.title]); }",
    )
    assert result == [True, "done"]
