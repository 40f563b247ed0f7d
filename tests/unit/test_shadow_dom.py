"""Declarative shadow DOM: the content of a web component's shadow root is its host's content.

The browser engine serialises every shadow root it saw as ``<template shadowrootmode>`` (and
server-rendered components arrive that way over HTTP). A plain ``<template>`` stays inert.
"""

from __future__ import annotations

from browser_service.detect import judge
from browser_service.engines.base import RawPage
from browser_service.render_policy import needs_browser
from extractors import extract
from extractors.dom import flatten_shadow_roots

PROSE = (
    "<p>Soundings give the depth of water at the lowest astronomical tide, so a harbour is rarely "
    "shallower than its chart shows.</p>"
    "<p>Contour lines join points of equal depth; the closer they lie, the steeper the seabed is, and "
    "the more care a pilot takes there.</p>"
)
PAGE = (
    "<!doctype html><html lang='en'><head><title>Charts</title></head><body>"
    "<nav><a href='/'>Home</a></nav>"
    "<chart-article><template shadowrootmode='closed'><article><h1>Reading a Chart</h1>"
    f"<slot name='byline'></slot>{PROSE}"
    "<chart-note><template shadowrootmode='open'><p>Depths on older charts may be in fathoms.</p>"
    "</template></chart-note></article></template>"
    "<span slot='byline'>By Ada Keeper</span></chart-article>"
    "<template id='row'><p>An inert row template.</p></template>"
    "<script>window.analytics = true;</script></body></html>"
)


def test_the_extractors_read_shadow_roots_as_their_hosts_content() -> None:
    result = extract(PAGE, "https://charts.example/reading")
    # The byline is slotted into the article, where the browser shows it; the main content is the
    # article inside the component (custom elements are containers on such a page), not the body.
    assert result.markdown.startswith("# Reading a Chart\n\nBy Ada Keeper\n\nSoundings give the depth of water")
    assert (result.main_content_found, result.warnings) == (True, [])
    assert "Contour lines join points of equal depth" in result.markdown
    assert "Depths on older charts may be in fathoms." in result.text  # a nested root
    assert "By Ada Keeper" in result.text  # slotted light DOM
    assert "An inert row template." not in result.text


def test_a_hand_written_shadow_root_in_camel_case_is_read() -> None:
    page = PAGE.replace("shadowrootmode=", "shadowRootMode=")
    assert "Contour lines join points of equal depth" in extract(page, "https://charts.example/r").text
    assert needs_browser(page) is None


def test_flattening_is_free_without_shadow_roots() -> None:
    plain = "<html><body><template><p>x</p></template></body></html>"
    assert flatten_shadow_roots(plain) is plain
    flat = flatten_shadow_roots(PAGE)
    assert "shadowrootmode" not in flat and '<template id="row">' in flat


def test_a_server_rendered_component_does_not_need_the_browser() -> None:
    assert needs_browser(PAGE) is None
    assert needs_browser(PAGE.replace(" shadowrootmode='closed'", "")) is not None  # inert: little text


def test_detection_sees_the_text_of_shadow_roots() -> None:
    page = RawPage(
        url="https://charts.example/reading",
        final_url="https://charts.example/reading",
        status_code=200,
        headers={"content-type": "text/html"},
        content_type="text/html",
        kind="html",
        body=PAGE.encode(),
        text=PAGE,
        engine="browser",
    )
    assert judge(page).kind == "ok"


def test_slotted_content_replaces_the_fallback_and_nothing_unassigned_is_lost() -> None:
    page = (
        "<html><body><tide-card><template shadowrootmode='open'><section>"
        "<h2><slot name='title'>Untitled</slot></h2><p><slot name='when'>Time unknown</slot></p>"
        "<div><slot></slot></div></section></template>"
        "<span slot='title'>High water at Dover</span>Light text, "
        "<b>kept</b> in its place.<span slot='nowhere'>A slot the card lacks.</span></tide-card></body></html>"
    )
    text = extract(page, "https://tides.example/", main_content=False).text
    assert text.startswith("High water at Dover\n\nTime unknown")  # assigned: no fallback; unassigned: fallback
    assert "Untitled" not in text
    assert "Light text, kept in its place." in text and "A slot the card lacks." in text


def test_custom_elements_are_containers_only_on_a_page_of_components() -> None:
    # Without shadow roots the rule the development data was measured with holds: a custom element
    # is not a container, so the finder stops at the body. With one, the page is built of
    # components, and it goes through them to the article.
    light = (
        "<html><body><nav><a href='/'>Home</a> <a href='/tides'>Tides</a></nav><app-shell><article-view>"
        f"<article><h1>Reading a Chart</h1>{PROSE}</article></article-view></app-shell>"
        "<footer><p>Harbour office, open daily.</p></footer>{icon}</body></html>"
    )
    assert extract(light.format(icon=""), "https://charts.example/").main_content_found is False
    icon = "<x-icon><template shadowrootmode='open'><svg></svg></template></x-icon>"
    assert extract(light.format(icon=icon), "https://charts.example/").main_content_found is True
    assert "data-shadow-roots-opened" not in flatten_shadow_roots(light.format(icon=icon))  # the flag is ours
