"""trafilatura as one content candidate, converted back to plain HTML.

trafilatura returns its own XML vocabulary (head, list/item, hi, ref, ...); we map it to HTML so the
same renderer produces markdown and text whichever candidate wins.
"""

from __future__ import annotations

import logging

from lxml import etree
from lxml.html import HtmlElement

_HI = {"#b": "strong", "#i": "em", "#u": "u", "#t": "code", "#sub": "sub", "#sup": "sup"}
_SIMPLE = {
    "p": "p",
    "item": "li",
    "quote": "blockquote",
    "lb": "br",
    "row": "tr",
    "table": "table",
    "del": "del",
    "label": "p",
    "div": "div",
    "span": "span",
    "details": "details",
    "summary": "summary",
}

# trafilatura logs every page it cannot handle at WARNING; that is an expected outcome here.
logging.getLogger("trafilatura").setLevel(logging.CRITICAL)


def _convert(el: etree._Element) -> None:
    """Rename trafilatura's XML tags to HTML in place."""
    for node in el.iter():
        tag = node.tag
        if not isinstance(tag, str):
            continue
        attrs = dict(node.attrib)
        node.attrib.clear()
        if tag == "head":
            rend = attrs.get("rend", "h3")
            node.tag = rend if rend in ("h1", "h2", "h3", "h4", "h5", "h6") else "h3"
        elif tag == "list":
            node.tag = "ol" if attrs.get("rend") == "ol" else "ul"
        elif tag == "hi":
            node.tag = _HI.get(attrs.get("rend", "#i"), "em")
        elif tag == "ref":
            node.tag = "a"
            if attrs.get("target"):
                node.set("href", attrs["target"])
        elif tag == "code":
            text = "".join(node.itertext())
            parent = node.getparent()
            inline = "\n" not in text and parent is not None and parent.tag in ("p", "item", "cell", "hi")
            node.tag = "code" if inline else "pre"
        elif tag == "cell":
            node.tag = "th" if attrs.get("role") == "head" else "td"
            if attrs.get("colspan"):
                node.set("colspan", attrs["colspan"])
        elif tag == "graphic":
            node.tag = "img"
            for key in ("src", "alt", "title"):
                if attrs.get(key):
                    node.set(key, attrs[key])
        else:
            node.tag = _SIMPLE.get(tag, "div")


def trafilatura_html(root: HtmlElement, url: str, *, with_comments: bool) -> etree._Element | None:
    """trafilatura's main content (plus comments when asked) as an HTML <div>; None when it finds none."""
    from trafilatura import bare_extraction  # imported lazily: it pulls in a lot at import time

    try:
        # bare_extraction copies an element input before cleaning it, so `root` stays intact.
        doc = bare_extraction(
            root,
            url=url,
            include_formatting=True,
            include_links=True,
            include_tables=True,
            include_images=False,
            include_comments=with_comments,
            with_metadata=False,
            # Any non-"python" format: bare_extraction then skips rendering a text we do not use.
            output_format="xml",
        )
    except Exception:  # trafilatura raises assorted errors on hostile input; it is one candidate of several
        return None
    if doc is None or isinstance(doc, dict):
        return None
    body = getattr(doc, "body", None)
    if body is None or len(body) == 0:
        return None
    wrapper = etree.Element("div")
    for child in list(body):
        wrapper.append(child)
    comments = getattr(doc, "commentsbody", None)
    if with_comments and comments is not None:
        for child in list(comments):
            wrapper.append(child)
    _convert(wrapper)
    wrapper.tag = "div"
    return wrapper
