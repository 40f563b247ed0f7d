"""Validation of a finished extraction: does this result, which passed transport, look right?

Silent failures are the worst kind for an agent: a 200 answer whose content is a block notice, a
half-rendered shell, or a fraction of what the page held yesterday. Each check below names one such
failure; a result that trips any of them is *suspect* and goes to quarantine instead of the cache
(``fetcher``), unless the URL's operator approved that kind of result before.

=================  ==========================================================================
code               fires when
=================  ==========================================================================
``block_markers``  the page carries strong block/CAPTCHA markers although detection let it pass
``thin``           the text is nearly empty (< 100 chars) on a page of substance (≥ 20 KB HTML)
``shrunk``         the text is < 30 % of the last good copy of the same request (that had ≥ 500)
``lost_text``      the extraction kept < 2 % of the page's visible text (≥ 3,000 chars), or < 30 %
                   when the whole page was asked for (``main_content: false``)
=================  ==========================================================================

The thresholds come from the extraction benchmark's real pages (``bench/quality.py --data
../shared/bench-data/wcxb-dev``): on its 1,358 good pages the checks fire twice, both ``thin`` on
single-page apps whose content needs JavaScript (reference text: 0 characters) — right. The
main-content share of visible text is below 13.5 % on 5 % of real pages (large navigation), so
``lost_text`` only catches near-total loss: at 3 % it flagged two correct extractions.
"""

from __future__ import annotations

from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser

from browser_service import detect

THIN_CHARS = 100
THIN_PAGE_BYTES = 20_000
SHRUNK_RATIO = 0.3
SHRUNK_MIN_BASELINE = 500
LOST_MIN_VISIBLE = 3_000
LOST_RATIO_MAIN = 0.02
LOST_RATIO_WHOLE = 0.3


@dataclass(frozen=True)
class Finding:
    code: str  # block_markers | thin | shrunk | lost_text
    detail: str  # for people: the numbers behind it

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


def visible_chars(html: str) -> int:
    """Characters of text a reader would see: body text without scripts, styles and templates."""
    tree = LexborHTMLParser(html)
    for node in tree.css("script, style, noscript, template"):
        node.decompose()
    body = tree.body
    return len(" ".join(body.text(separator=" ").split())) if body is not None else 0


def assess(
    html: str,
    text: str,
    *,
    main_content: bool,
    baseline_chars: int | None = None,
    accepted: frozenset[str] = frozenset(),
) -> list[Finding]:
    """What is wrong with the extraction ``text`` of ``html``; empty when it looks right.

    ``baseline_chars`` is the text length of the last good copy of the same request, if cached;
    ``accepted`` holds the codes an operator approved for this URL (quarantine approval).
    """
    findings: list[Finding] = []
    chars = len(" ".join(text.split()))
    markers = detect.block_markers(html)
    if markers:
        findings.append(Finding("block_markers", ", ".join(markers[:3])))
    if chars < THIN_CHARS and len(html) >= THIN_PAGE_BYTES:
        findings.append(Finding("thin", f"{chars} characters of text on a {len(html) // 1024} KB page"))
    if baseline_chars is not None and baseline_chars >= SHRUNK_MIN_BASELINE and chars < SHRUNK_RATIO * baseline_chars:
        findings.append(Finding("shrunk", f"{chars} characters against {baseline_chars} in the last good copy"))
    if not any(f.code == "thin" for f in findings):
        visible = visible_chars(html)
        ratio = LOST_RATIO_MAIN if main_content else LOST_RATIO_WHOLE
        if visible >= LOST_MIN_VISIBLE and chars < ratio * visible:
            findings.append(Finding("lost_text", f"the extraction kept {chars} of {visible} visible characters"))
    return [f for f in findings if f.code not in accepted]
