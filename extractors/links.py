"""All hyperlinks of a page, absolute and de-duplicated."""

from __future__ import annotations

from urllib.parse import urlsplit

from lxml.html import HtmlElement

from .dom import absolute_url, collapse_ws
from .models import Link

# Only links a fetcher can follow are useful to an agent; mailto:/tel: and app schemes are dropped.
_FOLLOWABLE = ("http", "https")


def _site(host: str) -> str:
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def is_internal(url: str, page_url: str) -> bool:
    """Same site: same host ignoring 'www.', or one host a subdomain of the other."""
    try:
        a = _site(urlsplit(url).hostname or "")
        b = _site(urlsplit(page_url).hostname or "")
    except ValueError:
        return False
    if not a or not b:
        return False
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def _link_text(a: HtmlElement) -> str:
    try:
        text = collapse_ws(a.text_content())
    except ValueError:
        text = ""
    if text:
        return text
    # Icon links: the accessible name is the best text there is.
    for attr in ("aria-label", "title"):
        value = collapse_ws(a.get(attr) or "")
        if value:
            return value
    for img in a.iter("img"):
        alt = collapse_ws(img.get("alt") or "")
        if alt:
            return alt
    return ""


def extract_links(root: HtmlElement, page_url: str, base: str) -> list[Link]:
    """Links of the whole page in document order; the first text seen for a URL wins."""
    seen: dict[str, Link] = {}
    for a in root.iter("a", "area"):
        href = a.get("href")
        if not href:
            continue
        url = absolute_url(href, base)
        if url is None:
            continue
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError:
            continue
        if scheme not in _FOLLOWABLE:
            continue
        text = _link_text(a) if isinstance(a, HtmlElement) else ""
        existing = seen.get(url)
        if existing is None:
            seen[url] = Link(url=url, text=text, internal=is_internal(url, page_url))
        elif not existing.text and text:
            # An image link followed by a text link to the same place: keep the readable text.
            existing.text = text
    return list(seen.values())
