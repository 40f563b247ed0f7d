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
``drift``          the text shares < 5 % of its word 3-shingles with the last good copy of the same
                   request (``drift.live_similarity``; baseline ≥ 50 words; not with ``shrunk``;
                   live fetches only; ``BROWSER_SERVICE_LIVE_DRIFT_THRESHOLD``)
=================  ==========================================================================

The thresholds come from the extraction benchmark's real pages (``bench/quality.py --data
../shared/bench-data/wcxb-dev``): on its 1,358 good pages the checks fire twice, both ``thin`` on
single-page apps whose content needs JavaScript (reference text: 0 characters) — right. The
main-content share of visible text is below 13.5 % on 5 % of real pages (large navigation), so
``lost_text`` only catches near-total loss: at 3 % it flagged two correct extractions.

``drift`` must tell "a different page now" (a block, consent or error page served with 200 in place
of the article; a template change that makes the extractor return something else) from the churn
of real pages (news index pages replace most of their headlines daily). Measured on 300 pages of the
same benchmark (reference texts ≥ 50 words; ``/tmp``-only script, pages never copied): an unrelated
page of the same type scores ≤ 0.016 (median 0.001), a block/consent/soft-404 page ≤ 0.007; replacing
70 % of a page's paragraphs with another page's still scores ≥ 0.099 on 95 % of pages (median 0.32),
90 % scores median 0.11 (5th percentile 0.007); editing 10 % of the words scores 0.68–0.83. At 0.05
every unrelated and block pair is flagged with a 3× margin, and a page must have lost nearly all of
its text to a rewrite to be held. difflib's ratio (the replay measure) separates the same cases but
scores unrelated texts up to 0.08 (shared function words) and took 3.7 s on a 13 k-word page
against 7 ms for the shingles. A broken template that returns the whole page instead of the article
keeps most of the article's shingles (median 0.82), so it is not ``drift``; ``lost_text`` and
``shrunk`` cover the extractions that lose the article.
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
LIVE_DRIFT_THRESHOLD = 0.05
DRIFT_MIN_WORDS = 50
#: Every finding code (a closed set: the metrics label them).
CODES = ("block_markers", "thin", "shrunk", "lost_text", "drift")
#: Codes measured against the last good copy. Approving a held result makes it that copy, which
#: settles them; accepting them for the URL as well would hide the page's next change.
BASELINE_CODES = frozenset({"shrunk", "drift"})


@dataclass(frozen=True)
class Finding:
    code: str  # one of CODES
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
    similarity: float | None = None,
    drift_threshold: float = LIVE_DRIFT_THRESHOLD,
    title: str | None = None,
) -> list[Finding]:
    """What is wrong with the extraction ``text`` of ``html``; empty when it looks right.

    ``baseline_chars`` is the text length of the last good copy of the same request, if cached;
    ``similarity`` the new text's similarity to that copy (:func:`drift.live_similarity`), when measured;
    ``accepted`` holds the codes an operator approved for this URL (quarantine approval); ``title``
    the page's title when the browser read it (``document.title``), which spares a parse.
    """
    findings: list[Finding] = []
    chars = len(" ".join(text.split()))
    markers = detect.block_markers(html, title)
    if markers:
        findings.append(Finding("block_markers", ", ".join(markers[:3])))
    if chars < THIN_CHARS and len(html) >= THIN_PAGE_BYTES:
        findings.append(Finding("thin", f"{chars} characters of text on a {len(html) // 1024} KB page"))
    if baseline_chars is not None and baseline_chars >= SHRUNK_MIN_BASELINE and chars < SHRUNK_RATIO * baseline_chars:
        findings.append(Finding("shrunk", f"{chars} characters against {baseline_chars} in the last good copy"))
    # A text cut to a fraction of the good copy is ``shrunk`` (the more precise name): drift is for
    # a page that says something else.
    if similarity is not None and similarity < drift_threshold and not any(f.code == "shrunk" for f in findings):
        findings.append(
            Finding(
                "drift", f"similarity {similarity:.3f} to the last good copy (a different page below {drift_threshold})"
            )
        )
    ratio = LOST_RATIO_MAIN if main_content else LOST_RATIO_WHOLE
    # The page's visible text is never longer than its source (every character of it is written
    # there, and tags and entities only take room): when the source is too short, or the extraction
    # long enough against the source, nothing was lost, and the page need not be parsed to know.
    if not any(f.code == "thin" for f in findings) and len(html) >= LOST_MIN_VISIBLE and chars < ratio * len(html):
        visible = visible_chars(html)
        if visible >= LOST_MIN_VISIBLE and chars < ratio * visible:
            findings.append(Finding("lost_text", f"the extraction kept {chars} of {visible} visible characters"))
    return [f for f in findings if f.code not in accepted]
