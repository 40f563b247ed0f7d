"""The operator page at ``/``, driven in a real Chromium against a real service on 127.0.0.1."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from browser_service.chromium import BASE_ARGS, find_chromium
from browser_service.settings import Settings
from tests.conftest import make_settings
from tests.integration.test_api import running
from tests.site import FixtureServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
async def viewer() -> AsyncIterator[Browser]:
    """A browser of the test's own, looking at the service as an operator would."""
    async with async_playwright() as playwright:
        executable = find_chromium(Settings().chromium_path, None)
        browser = await playwright.chromium.launch(executable_path=executable, args=list(BASE_ARGS))
        yield browser
        await browser.close()


@pytest.fixture
async def page(viewer: Browser) -> AsyncIterator[Page]:
    context = await viewer.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def on_console(msg: ConsoleMessage) -> None:
        # An API answer with an error status (a typed 502, say) is logged as a failed load: that is
        # the page working. Anything else (a failed asset, a CSP refusal) is not.
        answered = msg.text.startswith("Failed to load resource") and "/v1/" in msg.location["url"]
        if msg.type == "error" and not answered:
            errors.append(f"{msg.text} ({msg.location['url']})")

    page.on("console", on_console)
    yield page
    await context.close()
    assert errors == []  # no script error, no CSP violation, no missing asset


@pytest.fixture
def origin() -> Iterator[FixtureServer]:
    """A fixture site of the test's own (its /shrinking page changes for this test only)."""
    server = FixtureServer().start()
    yield server
    server.close()


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


async def test_fetch_a_page_and_see_its_answer(tmp_path: Path, page: Page, site: FixtureServer) -> None:
    async with running(make_settings(tmp_path, pool_size=1)) as (client, _):
        base = str(client.base_url)
        loaded = await page.goto(base + "/")
        assert loaded is not None and loaded.status == 200
        csp = await loaded.header_value("content-security-policy")
        assert csp is not None and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        await expect(page.locator("#status-badge")).to_have_text("available")
        await expect(page.locator("#pool")).to_contain_text("slots in use0 / 1")

        await page.fill("#url", site.url("/article.html"))
        await page.click("#go")
        await expect(page.locator("#outcome")).to_contain_text("ok · http · live · HTTP 200", timeout=30_000)
        await expect(page.locator("#markdown")).to_contain_text("# How Lighthouses Work")
        assert await page.locator("#attempts tbody tr").count() == 1
        await expect(page.locator("#attempts tbody tr td").nth(1)).to_have_text("http")
        await expect(page.locator("#error")).to_be_hidden()
        trace_id = await page.locator("#trace-id").text_content()
        assert trace_id and len(trace_id) == 32
        await expect(page.locator("#trace")).to_contain_text(f'"trace_id": "{trace_id}"')
        await expect(page.locator("#trace")).to_contain_text('"outcome": "ok"')
        await expect(page.locator("#hosts tbody")).to_contain_text(site.base_url.removeprefix("http://"))

        # A typed error is shown as such, with its message.
        await page.fill("#url", site.url("/missing"))
        await page.click("#go")
        await expect(page.locator("#outcome")).to_contain_text("failed · not_found", timeout=30_000)
        await expect(page.locator("#error-kind")).to_have_text("not_found")
        await expect(page.locator("#error-retry")).to_have_text("not retryable")

        # It renders: styled (its stylesheet passed the CSP) and laid out in two columns.
        assert await page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor") == (
            "rgb(27, 31, 36)"
        )
        fetch_box = await page.locator("#try").bounding_box()
        live_box = await page.locator("#live").bounding_box()
        assert fetch_box and live_box and live_box["x"] > fetch_box["x"] + fetch_box["width"]
        shot = await page.screenshot(full_page=False)
        assert png_size(shot) == (1280, 900)
        blank = await page.context.new_page()
        await blank.set_content("<html><body></body></html>")
        empty = await blank.screenshot()
        await blank.close()
        assert len(shot) > 5 * len(empty)  # text, tables and colour, not a blank frame


async def test_fetched_content_is_shown_as_text_never_run(tmp_path: Path, page: Page, site: FixtureServer) -> None:
    """A page whose content spells HTML and script cannot script the operator page."""
    async with running(make_settings(tmp_path, pool_size=1)) as (client, _):
        await page.goto(str(client.base_url) + "/")
        await page.fill("#url", site.url("/hostile-text"))
        await page.click("#go")
        await expect(page.locator("#markdown")).to_contain_text("<img src=x onerror=", timeout=30_000)
        assert await page.locator("#markdown *").count() == 0
        assert await page.evaluate("window.pwned") is None


async def test_quarantine_approve_from_the_page(tmp_path: Path, page: Page, origin: FixtureServer) -> None:
    async with running(make_settings(tmp_path, pool_size=1, retry_attempts=1)) as (client, _):
        await page.goto(str(client.base_url) + "/")
        url = origin.url("/shrinking?operator=1")
        await page.fill("#url", url)
        await page.click("#go")
        await expect(page.locator("#outcome")).to_contain_text("ok ·", timeout=30_000)
        origin.shrunk.set()
        await page.check("#fresh")
        await page.click("#go")
        # The stale good copy is served, the live failure named; the suspect result waits for review.
        await expect(page.locator("#error-kind")).to_have_text("live fetch failed: suspect_content", timeout=30_000)
        row = page.locator("#quarantine tbody tr")
        await expect(row).to_have_count(1)
        await expect(row.locator("td").nth(1)).to_contain_text("shrunk:")
        await row.locator("button.approve").click()
        await expect(row).to_have_count(0)
        listed = (await client.get("/v1/quarantine")).json()
        assert listed["total"] == 0


async def test_with_api_keys_the_page_asks_for_one(tmp_path: Path, page: Page) -> None:
    settings = make_settings(tmp_path, pool_size=1, api_keys=["s3cret-key"])
    async with running(settings) as (client, _):
        base = str(client.base_url)
        assert (await httpx.AsyncClient().get(base + "/")).status_code == 200  # the page holds no data
        await page.goto(base + "/")
        await expect(page.locator("#auth-banner")).to_be_visible()
        await expect(page.locator("#status-badge")).to_have_text("…")
        await page.fill("#key", "s3cret-key")
        await page.locator("#key").dispatch_event("change")
        await expect(page.locator("#auth-banner")).to_be_hidden()
        await expect(page.locator("#status-badge")).to_have_text("available")
