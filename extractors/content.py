"""Main-content selection: run the candidates and decide which one describes the page.

The chosen content then loses blocks that repeat an earlier block word for word (region.drop_repeats).

Candidates:
- region (region.py): our DOM-region finder over a tree stripped of chrome. Keeps listing cards,
  product grids and feature sections; strongest overall.
- trafilatura: precise on prose, but drops link-heavy and short-text content. It is the fallback when
  the region finder lands on too little of the page. It is skipped when the region clearly holds the
  page's content (_region_is_clear): it is most of the cost of an extraction.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from lxml import etree
from lxml.html import HtmlElement

from .clean import drop_all, drop_buttons, drop_consent_notices, strip_chrome, strip_invisible
from .kind import is_discussion, is_product
from .region import drop_fragments, drop_repeats, find_region, text_len
from .trafcand import trafilatura_html


@dataclass
class Content:
    element: etree._Element | None
    main_content_found: bool
    source: str  # "region", "trafilatura", "page" (whole body) or "none"


def whole_page(root: HtmlElement) -> Content:
    """The visible body, without any boilerplate removal (main_content=False)."""
    strip_invisible(root)
    body = root.find("body")
    element = body if body is not None else root
    return Content(element=element, main_content_found=False, source="page" if text_len(element) else "none")


def main_content(root: HtmlElement, url: str) -> Content:
    """Pick the main content. Mutates `root` (it is stripped in place).

    On discussion pages comment sections are content and short fragments (user names, post dates,
    post counts) are dropped from the region; elsewhere comment sections are chrome.
    """
    discussion = is_discussion(root, url)
    product = is_product(root)
    # trafilatura needs the page as served, but it only runs when the region is in doubt (below), which
    # is known after our in-place cleaning: keep an untouched copy for it (copying is ~20x cheaper than
    # trafilatura itself).
    pristine = copy.deepcopy(root)
    strip_invisible(root)
    body = root.find("body")
    page_len = text_len(body if body is not None else root)
    strip_chrome(root, comments_are_chrome=not discussion)
    region = find_region(root)
    if region is not None and discussion:
        drop_fragments(region.element)
    if region is not None:
        # Images are not rendered, so their captions would dangle without them.
        drop_all(list(region.element.iter("figcaption")))
        drop_buttons(region.element)

    region_len = text_len(region.element) if region is not None else 0
    traf = None
    if product or discussion or not _region_is_clear(region_len, page_len):
        # Consent notices go first: trafilatura takes their legal text for content (clean.py).
        drop_consent_notices(pristine)
        traf = trafilatura_html(pristine, url, with_comments=discussion)
    traf_len = text_len(traf) if traf is not None else 0
    choice = _choose(region_len, traf_len, page_len, product=product)
    # Repeats are removed from the chosen content only: removing them before the choice, so both
    # candidates are compared without them, did worse on the development data.
    if choice == "region" and region is not None:
        drop_repeats(region.element)
        whole = region.element is body or region.element is root
        return Content(element=region.element, main_content_found=not whole or region.semantic, source="region")
    if choice == "trafilatura" and traf is not None:
        drop_repeats(traf)
        return Content(element=traf, main_content_found=True, source="trafilatura")
    return Content(element=None, main_content_found=False, source="none")


# Below this, what is left after removing chrome is leftovers (a cookie line, a "Loading..."), not content.
MIN_CONTENT_CHARS = 50
# trafilatura's answer is only trusted on its own when it is this long.
MIN_FALLBACK_CHARS = 500
MIN_PRODUCT_CHARS = 200


# The region is kept without consulting trafilatura when it holds this share of the visible text.
CLEAR_REGION_SHARE = 0.8


def _region_is_clear(region_len: int, page_len: int) -> bool:
    """True when trafilatura cannot improve on the region in practice, so it need not run.

    A region holding most of the visible text leaves trafilatura nothing to add but the chrome around
    it: on the development data its answer won about as often as it lost on such pages, and skipping
    it there saves about a third of its calls (overall F1 within 0.0003 on each half). Not used on
    product pages (see _choose) nor on threads, where the replies can dominate the region finder's
    descent and leave the first post out.
    """
    return region_len >= MIN_CONTENT_CHARS and region_len >= CLEAR_REGION_SHARE * page_len


def _choose(region_len: int, traf_len: int, page_len: int, *, product: bool) -> str:
    """Which candidate to return: 'region', 'trafilatura' or 'none'.

    Rules, each checked on both halves of the development data separately:
    - region (nearly) empty while the page has text: the visible page is all chrome (typically a
      JavaScript shell). trafilatura is only believed when it finds a real amount of text; otherwise
      "no content" is the honest answer and lets the service escalate to a browser.
    - product pages: the region keeps buy boxes, variant pickers and review widgets; trafilatura's
      prose focus matches the description + specs that make up a product page's content.
    - trafilatura somewhat longer than the region (x1.05 to x3): the region finder descended into one
      part of the content and missed a sibling part. Far longer means trafilatura took a menu or footer.
    """
    if region_len < MIN_CONTENT_CHARS and region_len < 0.5 * page_len:
        return "trafilatura" if traf_len >= MIN_FALLBACK_CHARS else "none"
    if region_len < MIN_CONTENT_CHARS:
        return "region" if region_len else "none"  # a tiny page: what little it says is the content
    if product and traf_len >= MIN_PRODUCT_CHARS:
        return "trafilatura"
    if 1.05 * region_len < traf_len < 3 * region_len:
        return "trafilatura"
    return "region"
