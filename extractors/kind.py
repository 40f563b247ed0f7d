"""Cheap page-kind signals that change what counts as content.

Only one decision depends on it today: on discussion pages (forums, Q&A threads) the replies are the
content, elsewhere "comments" sections are boilerplate.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from lxml.html import HtmlElement

# Not "Question": FAQ blocks on ordinary articles and product pages use it too.
_THREAD_TYPES = re.compile(r'"@type"\s*:\s*(?:\[[^\]]*)?"(?:DiscussionForumPosting|QAPage)"')
_THREAD_ITEMTYPE = re.compile(r"schema\.org/(?:DiscussionForumPosting|QAPage)\b", re.I)
_THREAD_PATH = re.compile(
    # "/topic/<slug>" alone is a tag page on news sites; forums number their topics and questions.
    r"/(?:forums?|threads?|discussions?|viewtopic\.php|showthread\.php)(?:/|\?|$|\.)"
    r"|/t/[^/]+/\d+|/(?:topic|questions)/\d+|/r/[^/]+/comments/",
    re.I,
)
_THREAD_HOST = re.compile(
    r"^(?:forums?|community|communities|discuss|discussions?|discourse|answers|boards|bbs)\.", re.I
)


def is_discussion(root: HtmlElement, url: str) -> bool:
    """True when the page looks like a forum thread or Q&A page."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is not None:
        if _THREAD_HOST.match(parts.hostname or ""):
            return True
        if _THREAD_PATH.search(parts.path or "") or re.search(r"(?:^|&)(?:topic|showtopic|t)=\d", parts.query or ""):
            return True
    for script in root.iterfind(".//script[@type='application/ld+json']"):
        if script.text and _THREAD_TYPES.search(script.text):
            return True
    return any(_THREAD_ITEMTYPE.search(el.get("itemtype") or "") for el in root.iterfind(".//*[@itemtype]"))


_PRODUCT_TYPES = re.compile(r'"@type"\s*:\s*(?:\[[^\]]*)?"(?:Product|ProductGroup)"')


def is_product(root: HtmlElement) -> bool:
    """True when the page declares a schema.org Product in JSON-LD (product pages, product grids)."""
    for script in root.iterfind(".//script[@type='application/ld+json']"):
        if script.text and _PRODUCT_TYPES.search(script.text):
            return True
    return False
