"""Parsing and small DOM helpers shared by the other modules.

Everything here works on lxml trees because trafilatura (one of our content candidates) needs lxml,
and parsing a page once is a large part of the time budget.
"""

from __future__ import annotations

import itertools
import re
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree
from lxml.html import HtmlElement

# libxml2 refuses some inputs outright; bounded so a hostile 1 GB string cannot stall a worker.
MAX_HTML_CHARS = 8_000_000

_PARSER = lxml.html.HTMLParser(
    encoding="utf-8",
    remove_comments=True,
    remove_pis=True,
    # Without huge_tree libxml2 stops parsing at 256 levels of nesting: everything after that point
    # (a deep wrapper's article, the rest of the page) was lost and the page read as empty. With it,
    # the limit is 2048; what is deeper than MAX_DEPTH is then flattened (see _flatten_deep).
    huge_tree=True,
)
#: Elements nested deeper than this are unwrapped (see _flatten_deep), as Chromium flattens what is
#: nested deeper than 512: every recursive walk in this package and in trafilatura then stays as far
#: from Python's recursion limit as libxml2's old cap of 256 kept it.
MAX_DEPTH = 250
#: Levels kept for the content's own nesting (lists in lists, a table's cells) when the wrappers
#: above it are unwrapped.
ROOM = 20
_DEEPER = etree.XPath("/*" * (MAX_DEPTH + 1))  # the elements one level below MAX_DEPTH (the root is 1)
#: What deep nesting is made of: wrappers around wrappers, whose tags say nothing about the content.
_WRAPPERS = frozenset(["div", "span", "section", "article", "main", "header", "footer", "aside", "nav", "font", "g"])
#: Tags that end a line (render.py writes them as blocks).
BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "center",
        "dd",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "html",
        "legend",
        "li",
        "main",
        "menu",
        "nav",
        "ol",
        "p",
        "pre",
        "search",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
        "caption",
    ]
)


_WS = re.compile(r"\s+")
# Inline base64 payloads (images, fonts) carry no text; a large one would also make the page
# overrun MAX_HTML_CHARS mid-attribute and cost libxml2 its text-node limit, losing the content.
_DATA_URI = re.compile(r"data:[\w/+.-]*;base64,[A-Za-z0-9+/=\s]{1000,}")
# An XML declaration naming another encoding would make libxml2 re-decode our UTF-8 bytes.
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*>", re.I)


def parse_html(html: str) -> HtmlElement | None:
    """Parse a document; None when there is nothing to parse.

    Input is a str (already decoded by the caller); we hand libxml2 UTF-8 bytes so an inner
    `<?xml encoding=...?>` or `<meta charset>` cannot make it re-decode the text wrongly.
    """
    if not html or not html.strip():
        return None
    # NUL truncates text in libxml2; browsers drop it too.
    if "base64," in html:
        html = _DATA_URI.sub("data:,", html)
    text = _XML_DECL.sub("", html[:MAX_HTML_CHARS], count=1).replace("\x00", "")
    data = text.encode("utf-8", errors="replace")
    try:
        root = lxml.html.document_fromstring(data, parser=_PARSER)
    except (etree.ParserError, ValueError, etree.XMLSyntaxError):
        return None
    if not isinstance(root, HtmlElement):
        return None
    _flatten_deep(root)
    if _may_have_shadow_roots(text):
        _open_shadow_roots(root)
    return root


def _flatten_deep(root: HtmlElement) -> None:
    """Bring what is nested deeper than ``MAX_DEPTH`` up to it, text kept: first by unwrapping the
    wrappers below ``MAX_DEPTH - ROOM`` in the subtrees that go too deep (the headings, paragraphs,
    lists and tables inside keep their tags, with ``ROOM`` levels for their own nesting), then,
    where content itself nests that deep (quotes in quotes), by unwrapping everything below
    ``MAX_DEPTH``. One XPath on a page that has nothing that deep: ~0.1 ms."""
    too_deep = _DEEPER(root)
    if not too_deep:
        return
    tops = {next(itertools.islice(element.iterancestors(), ROOM, None)) for element in too_deep}
    for top in tops:
        _unwrap([element for element in top.iterdescendants() if element.tag in _WRAPPERS])
    for element in _DEEPER(root):
        _unwrap([element, *element.iterdescendants()])


def _unwrap(elements: list[HtmlElement]) -> None:
    for element in elements:
        if not isinstance(element, HtmlElement):
            continue
        if element.tag in BLOCK_TAGS or element.tag == "br":  # unwrapped, their texts must not run together
            element.tail = "\n" + (element.tail or "")
        element.drop_tag()


def flatten_shadow_roots(html: str) -> str:
    """``html`` with its declarative shadow roots opened (see :func:`_open_shadow_roots`), for
    parsers that read every ``<template>`` as inert; the same string, unparsed, when it has none."""
    if not _may_have_shadow_roots(html):
        return html
    root = parse_html(html)
    if root is None:
        return html
    root.attrib.pop(SHADOW_ROOTS_OPENED, None)  # ours, not the page's
    return str(lxml.html.tostring(root, encoding="unicode"))


def _may_have_shadow_roots(html: str) -> bool:
    # Attribute names are case-insensitive: hand-written pages say shadowRootMode. Two plain
    # substring tests, not a case-insensitive regex: this runs on every page.
    return "shadowroot" in html or "shadowRoot" in html


#: Set on the root element of a page whose shadow roots were opened: web components make up its
#: layout, so the region finder goes through custom elements as through ``div`` s (region.py).
SHADOW_ROOTS_OPENED = "data-shadow-roots-opened"


def _open_shadow_roots(root: HtmlElement) -> None:
    """A declarative shadow root (``<template shadowrootmode="open">``, how a rendered page's web
    components are serialised and how server-rendered ones arrive) is its host's content, shown
    by the browser — unlike a plain ``<template>``, which is inert and dropped as invisible. Its
    tags go, its content stays in place."""
    templates = [el for el in root.iter("template") if _is_shadow_root(el)]
    for template in templates:
        host = template.getparent()
        if host is not None:
            _assign_slots(template, host)
    for template in templates:
        template.drop_tag()
    if templates:
        root.set(SHADOW_ROOTS_OPENED, "")


def _is_shadow_root(el: etree._Element) -> bool:
    return tag_of(el) == "template" and bool(el.get("shadowrootmode") or el.get("shadowroot"))


def _assign_slots(template: etree._Element, host: etree._Element) -> None:
    """Put the host's children named for a slot (``<span slot="byline">``) where the browser shows
    them: in the root's ``<slot name="byline">``, in place of that slot's fallback content. Light
    content for the default slot stays where it is (after the root's content): moving it would
    part elements from the text between them."""
    slots: dict[str, etree._Element] = {}
    for slot in template.iter("slot"):
        name = slot.get("name")
        if name and name not in slots and _scope_of(slot) is template:
            slots[name] = slot
    filled: set[str] = set()
    for child in [c for c in host if c is not template and isinstance(c.tag, str)]:
        name = child.get("slot")
        target = slots.get(name) if name else None
        if target is None:
            continue
        if name not in filled:  # the fallback content shows only while nothing is assigned
            filled.add(name)
            target.text = None
            for fallback in list(target):
                target.remove(fallback)
        _keep_tail(child)
        target.append(child)


def _scope_of(el: etree._Element) -> etree._Element | None:
    """The shadow root (its template) an element belongs to; None for the document's own tree."""
    for ancestor in el.iterancestors():
        if _is_shadow_root(ancestor):
            return ancestor
    return None


def _keep_tail(el: etree._Element) -> None:
    """Leave ``el``'s tail text where it is before ``el`` moves (lxml moves an element's tail with it)."""
    tail, el.tail = el.tail, None
    if not tail:
        return
    previous, parent = el.getprevious(), el.getparent()
    if previous is not None:
        previous.tail = (previous.tail or "") + tail
    elif parent is not None:
        parent.text = (parent.text or "") + tail


def collapse_ws(text: str) -> str:
    """Collapse every whitespace run to one space and trim."""
    return _WS.sub(" ", text).strip()


def base_url(root: HtmlElement | None, url: str) -> str:
    """The URL relative links resolve against: <base href> when present, else the page URL."""
    if root is not None:
        for base in root.iter("base"):
            href = (base.get("href") or "").strip()
            if href:
                try:
                    return str(urljoin(url, href))
                except ValueError:
                    return url
    return url


def absolute_url(href: str, base: str) -> str | None:
    """Resolve href against base; None for links that lead nowhere useful for a reader."""
    href = href.strip()
    if not href or href.startswith("#"):
        return None
    lowered = href[:16].lower().replace(" ", "")
    if lowered.startswith(("javascript:", "data:", "vbscript:", "about:", "blob:")):
        return None
    try:
        resolved = urljoin(base, href)
        urlsplit(resolved)  # raises on malformed IPv6 hosts and similar
    except ValueError:
        return None
    return resolved


def element_text(el: HtmlElement) -> str:
    """Whitespace-normalised text content of an element (no rendering rules)."""
    try:
        return collapse_ws(str(el.text_content()))
    except ValueError:
        return ""


def tag_of(el: etree._Element) -> str:
    """Lower-case tag name; '' for comments, processing instructions and entities."""
    tag = el.tag
    return tag.lower() if isinstance(tag, str) else ""


def text_lengths(root: etree._Element) -> dict[etree._Element, int]:
    """Stripped text length of every element of the subtree, as `sum(len(t.strip()) for t in itertext())`.

    One bottom-up pass instead of one walk per element: callers that compare the text of many nested
    elements (region finding, chrome guards) would otherwise walk the same subtrees again and again.
    The tree must not change while the result is in use.
    """
    lengths: dict[etree._Element, int] = {}
    try:
        elements = list(root.iter())
    except ValueError:
        return lengths
    for el in reversed(elements):
        text = el.text if isinstance(el.tag, str) else None  # a comment's text is not page text
        n = len(text.strip()) if text else 0
        for child in el:
            n += lengths.get(child, 0)
            tail = child.tail
            if tail:
                n += len(tail.strip())
        lengths[el] = n
    return lengths
