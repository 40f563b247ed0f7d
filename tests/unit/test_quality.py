"""The quarantine checks on finished extractions: each finding fires exactly when it should."""

from __future__ import annotations

from pathlib import Path

from browser_service import quality

ARTICLE = "<p>" + "A sentence of the article that a reader came for. " * 40 + "</p>"


def page(body: str, padding: int = 0) -> str:
    script = f"<script>var pad = '{'x' * padding}';</script>" if padding else ""
    return f"<html><head><title>T</title>{script}</head><body>{body}</body></html>"


def codes(findings: list[quality.Finding]) -> list[str]:
    return [f.code for f in findings]


def test_a_normal_page_has_no_findings() -> None:
    html = page(f"<nav><a href='/'>Home</a></nav><article>{ARTICLE}</article>")
    assert quality.assess(html, ARTICLE[3:-4], main_content=True, baseline_chars=2000) == []


def test_thin_text_on_a_heavy_page() -> None:
    html = page("<div id='app'>Loading…</div>", padding=30_000)
    findings = quality.assess(html, "Loading…", main_content=True)
    assert codes(findings) == ["thin"]
    assert str(findings[0]) == "thin: 8 characters of text on a 29 KB page"
    assert quality.assess(page("<p>Short note.</p>"), "Short note.", main_content=True) == []  # a light page


def test_shrunk_against_the_last_good_copy() -> None:
    html = page("<p>" + "word " * 100 + "</p>")
    text = "word " * 100
    assert codes(quality.assess(html, text, main_content=True, baseline_chars=2000)) == ["shrunk"]
    assert quality.assess(html, text, main_content=True, baseline_chars=1600) == []  # 499 of 1600 ≥ 30 %
    assert quality.assess(html, text, main_content=True, baseline_chars=400) == []  # baseline too small to judge


def test_lost_text_depends_on_what_was_asked() -> None:
    html = page("<p>" + "visible words here " * 500 + "</p>")  # 9,499 visible characters
    assert codes(quality.assess(html, "x" * 150, main_content=True)) == ["lost_text"]
    assert quality.assess(html, "x" * 200, main_content=True) == []  # 2.1 %: a main part of a big page
    assert codes(quality.assess(html, "x" * 2000, main_content=False)) == ["lost_text"]  # the whole page: < 30 %


def test_block_markers_inside_an_ok_page() -> None:
    html = page(f"<article>{ARTICLE}</article><iframe src='/_Incapsula_Resource?CWUDNSAI=22'></iframe>")
    findings = quality.assess(html, ARTICLE, main_content=True)
    assert codes(findings) == ["block_markers"]


def test_accepted_codes_are_not_held_against_the_url() -> None:
    html = page("<p>" + "word " * 100 + "</p>")
    assert (
        quality.assess(html, "word " * 100, main_content=True, baseline_chars=5000, accepted=frozenset({"shrunk"}))
        == []
    )


def test_drift_below_the_threshold() -> None:
    html = page(f"<article>{ARTICLE}</article>")
    text = ARTICLE[3:-4]
    findings = quality.assess(html, text, main_content=True, baseline_chars=len(text), similarity=0.01)
    assert [str(f) for f in findings] == ["drift: similarity 0.010 to the last good copy (a different page below 0.05)"]
    assert quality.assess(html, text, main_content=True, similarity=0.05) == []  # at the threshold: kept
    assert quality.assess(html, text, main_content=True, similarity=0.3, drift_threshold=0.5)[0].code == "drift"
    assert quality.assess(html, text, main_content=True, similarity=0.01, accepted=frozenset({"drift"})) == []


def test_a_fraction_of_the_text_is_shrunk_not_drift() -> None:
    html = page("<article><p>Only the first paragraph is left of the story.</p></article>")
    findings = quality.assess(
        html, "Only the first paragraph is left.", main_content=True, baseline_chars=5_000, similarity=0.0
    )
    assert codes(findings) == ["shrunk"]


def test_lost_text_found_however_many_entities_and_tags_pad_the_page() -> None:
    # The check skips the parse when the extraction is long against the page's source; visible text
    # is never longer than the source, so the skip can only drop pages with nothing lost.
    padded = page("<p>" + "<b>a</b>&amp;" * 2000 + "</p>")  # "a & a & …": 4 visible per 13 in the source
    assert quality.visible_chars(padded) == 7999
    assert codes(quality.assess(padded, "x" * 159, main_content=True)) == ["lost_text"]  # < 2 % of 7,999
    assert quality.assess(padded, "x" * 160, main_content=True) == []


def test_visible_text_is_never_longer_than_its_source() -> None:
    pages = [p for p in (Path(__file__).parents[2] / "fixtures" / "pages").glob("*.html")]
    assert len(pages) >= 15
    for path in pages:
        html = path.read_text(encoding="utf-8", errors="replace")
        assert 0 <= quality.visible_chars(html) <= len(html), path.name


def test_block_markers_use_the_title_the_browser_read() -> None:
    # A script set the title: the markup has no <title>, the browser's document.title has it.
    html = page(f"<article>{ARTICLE}</article>").replace("<title>T</title>", "")
    assert codes(quality.assess(html, ARTICLE, main_content=True, title="Just a moment...")) == ["block_markers"]
    assert quality.assess(html, ARTICLE, main_content=True, title="Tide tables") == []
