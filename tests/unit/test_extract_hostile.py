"""Hostile HTML through the extractors: no crash, no runaway, and the readable text survives.

The per-test timeout is a hang guard (a runaway regex or recursion would blow far past it), not a
performance measure; speed lives in bench/extraction.py.
"""

from __future__ import annotations

import pytest

from extractors import extract

ALL = frozenset({"markdown", "text", "html", "links", "metadata"})

pytestmark = pytest.mark.timeout(60)


def run(html: str) -> str:
    return extract(html, "https://example.com/", main_content=True, want=ALL).text


def test_a_huge_inline_image_does_not_hide_the_text() -> None:
    image = "data:image/png;base64," + "iVBORw0KGgo" * 1_000_000  # 11 MB of base64
    html = f"<html><body><img src='{image}'><article><h1>Title</h1><p>The text after the image.</p></article>"
    assert run(html) == "Title\n\nThe text after the image."


def test_a_huge_attribute() -> None:
    html = "<html><body><div data-state='" + "x" * 3_000_000 + "'><p>Text beside a 3 MB attribute.</p></div>"
    assert run(html) == "Text beside a 3 MB attribute."


def test_megabytes_of_text() -> None:
    html = "<html><body><article><p>" + "word " * 1_000_000 + "</p></article></body></html>"
    text = run(html)
    assert text.startswith("word word") and len(text) == len("word " * 1_000_000) - 1


@pytest.mark.parametrize("depth", [255, 300, 1000, 2000])
def test_content_inside_deep_wrappers_is_read_with_its_structure(depth: int) -> None:
    # libxml2 without huge_tree stopped parsing at 256 levels: the article, and all after it, was lost.
    article = "<article><h1>Deep</h1><p>The paragraph of a deeply wrapped article.</p><ul><li>one</li></ul></article>"
    html = "<html><body>" + "<div><span>" * (depth // 2) + article + "</span></div>" * (depth // 2)
    html += "<footer><p>After the wrappers.</p></footer></body></html>"
    assert extract(html, "https://example.com/", want=ALL).markdown.startswith(
        "# Deep\n\nThe paragraph of a deeply wrapped article.\n\n- one"
    )
    assert "After the wrappers." in extract(html, "https://example.com/", main_content=False, want=ALL).text


def test_content_that_itself_nests_deep_keeps_its_text() -> None:
    # Quotes in quotes 1500 deep: no wrapper to drop, so everything below MAX_DEPTH is unwrapped, text kept.
    html = "<html><body><main>" + "".join(f"<blockquote>Level {i} says so. " for i in range(1500))
    html += "</blockquote>" * 1500 + "<p>The closing paragraph.</p></main></body></html>"
    text = run(html)
    assert all(f"Level {i} says so." in text for i in (0, 249, 250, 1499)) and "The closing paragraph." in text


def test_nesting_beyond_the_parsers_hard_cap_is_cut_not_a_crash() -> None:
    # Even with huge_tree libxml2 stops at 2048 levels, so text deeper than that is not read (as a
    # browser would not show it either: Chromium flattens past 512).
    html = "<html><body><p>Shallow text.</p>" + "<div>" * 20_000 + "<p>deep</p>" + "</div>" * 20_000
    assert run(html) == "Shallow text."


def test_a_hundred_thousand_elements() -> None:
    html = "<html><body><ul>" + "<li>item</li>" * 100_000 + "</ul></body></html>"
    assert run(html).split("\n") == ["item"] * 100_000


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<html><body><p>nul\x00byte</p></body></html>", "nulbyte"),
        ("<html><body><p>lone \udcff surrogate</p></body></html>", "lone ? surrogate"),
        ("<p>unclosed <b><i><table><tr><td>cell", "unclosed\n\ncell"),
        ("<?xml version='1.0' encoding='latin-1'?><html><body><p>café</p></body></html>", "café"),
        ("", ""),
        ("   ", ""),
        ("<html><body><script>" + "x" * 1_000_000 + "</script></body></html>", ""),
    ],
)
def test_broken_markup(html: str, expected: str) -> None:
    assert run(html) == expected
