"""Render a cleaned HTML subtree as Markdown or as plain text.

Both formats come from the same walk over the same element so they always describe the same content;
only the syntax differs. Blocks are separated by a blank line, list items and table rows by a newline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree
from lxml.html import HtmlElement

from .dom import BLOCK_TAGS, collapse_ws, tag_of

SKIP_TAGS = frozenset(
    [
        "script",
        "style",
        "template",
        "head",
        "title",
        "meta",
        "link",
        "svg",
        "canvas",
        "iframe",
        "object",
        "embed",
        "audio",
        "video",
        "source",
        "track",
        "map",
        "area",
        "input",
        "select",
        "option",
        "optgroup",
        "textarea",
        "button",
        "img",
        "picture",
        "param",
        "base",
        "frameset",
        "frame",
    ]
)
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# Anything nested deeper than this is flattened to its text: real pages never need it, and it keeps
# the recursive walk far below Python's recursion limit whatever the input.
_MAX_DEPTH = 120

_BR = "\x00"  # a hard line break inside a paragraph
_STASH = re.compile("\x01(\\d+)\x01")  # a block found inside inline content, rendered separately
_INLINE_WS = re.compile(r"[^\S\x00]+")
_LANG = re.compile(r"(?:^|\s)(?:lang(?:uage)?-|highlight-(?:source-)?)([A-Za-z0-9_+#.-]+)")


@dataclass
class _Walk:
    markdown: bool
    stash: list[list[str]] = field(default_factory=list)


def render(root: HtmlElement | None, *, markdown: bool) -> str:
    """Markdown (markdown=True) or plain text of the subtree; '' for None."""
    if root is None:
        return ""
    walk = _Walk(markdown=markdown)
    tag = tag_of(root)
    blocks = _block(walk, root, tag, 0) if tag in BLOCK_TAGS else _container(walk, root, 0)
    return "\n\n".join(b for b in blocks if b.strip()).strip()


def _container(walk: _Walk, el: etree._Element, depth: int) -> list[str]:
    """Blocks of an element whose children mix inline content and blocks."""
    out: list[str] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            out.extend(_paragraphs(walk, "".join(buf)))
            buf.clear()

    if el.text:
        buf.append(el.text)
    for child in el:
        tag = tag_of(child)
        if tag in BLOCK_TAGS:
            flush()
            out.extend(_block(walk, child, tag, depth + 1))
        elif tag == "br":
            buf.append(_BR)
        elif tag and tag not in SKIP_TAGS:
            buf.append(_inline(walk, child, tag, depth + 1))
        if child.tail:
            buf.append(child.tail)
    flush()
    return out


def _paragraphs(walk: _Walk, raw: str) -> list[str]:
    """Split inline text at stashed blocks; each text run becomes one paragraph."""
    out: list[str] = []
    pos = 0
    for m in _STASH.finditer(raw):
        para = _finish(raw[pos : m.start()])
        if para:
            out.append(para)
        out.extend(walk.stash[int(m.group(1))])
        pos = m.end()
    para = _finish(raw[pos:])
    if para:
        out.append(para)
    return out


def _finish(raw: str) -> str:
    """Collapse whitespace; keep explicit <br> line breaks."""
    lines = (line.strip() for line in _INLINE_WS.sub(" ", raw).split(_BR))
    return "\n".join(line for line in lines if line)


def _flat(walk: _Walk, raw: str) -> str:
    """Inline content on one line (for headings and table cells): stashed blocks become text."""
    text = _STASH.sub(lambda m: " " + " ".join(walk.stash[int(m.group(1))]) + " ", raw)
    return collapse_ws(text.replace(_BR, " "))


def _inline_children(walk: _Walk, el: etree._Element, depth: int) -> str:
    parts: list[str] = []
    if el.text:
        parts.append(el.text)
    for child in el:
        tag = tag_of(child)
        if tag in BLOCK_TAGS:
            # A block inside inline content (e.g. a card: <a><h3>..</h3><p>..</p></a>): render it as
            # blocks and leave a placeholder so the enclosing paragraph is split around it.
            walk.stash.append(_block(walk, child, tag, depth + 1))
            parts.append(f"\x01{len(walk.stash) - 1}\x01")
        elif tag == "br":
            parts.append(_BR)
        elif tag and tag not in SKIP_TAGS:
            parts.append(_inline(walk, child, tag, depth + 1))
        if child.tail:
            parts.append(child.tail)
    return "".join(parts)


def _inline(walk: _Walk, el: etree._Element, tag: str, depth: int) -> str:
    if depth > _MAX_DEPTH:
        return " " + collapse_ws(_safe_text(el)) + " "
    inner = _inline_children(walk, el, depth)
    if not walk.markdown or not inner.strip():
        return inner
    if tag == "a":
        href = (el.get("href") or "").strip()
        if not href or href.startswith("#") or href.lower().startswith("javascript:"):
            return inner
        if _STASH.search(inner):
            _link_first_block(walk, inner, href)
            return inner
        text = _finish(inner).replace("\n", " ")
        return _wrap_preserving_space(inner, f"[{_escape_link_text(text)}]({_escape_url(href)})")
    if _STASH.search(inner) or _BR in inner:
        return inner
    if tag in ("strong", "b"):
        return _wrap_preserving_space(inner, f"**{collapse_ws(inner)}**")
    if tag in ("em", "i"):
        return _wrap_preserving_space(inner, f"*{collapse_ws(inner)}*")
    if tag in ("code", "kbd", "samp", "tt"):
        code = collapse_ws(inner)
        fence = "``" if "`" in code else "`"
        return _wrap_preserving_space(inner, f"{fence}{code}{fence}")
    if tag in ("del", "s", "strike"):
        return _wrap_preserving_space(inner, f"~~{collapse_ws(inner)}~~")
    return inner


def _wrap_preserving_space(inner: str, rendered: str) -> str:
    """Keep the whitespace around an inline element so words do not run together."""
    lead = " " if inner[:1].isspace() else ""
    trail = " " if inner[-1:].isspace() else ""
    return f"{lead}{rendered}{trail}"


def _escape_link_text(text: str) -> str:
    return text.replace("[", "\\[").replace("]", "\\]")


def _escape_url(url: str) -> str:
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def _link_first_block(walk: _Walk, inner: str, href: str) -> None:
    """A link wrapping blocks (a listing card): put the link on the card's heading or first line."""
    m = _STASH.search(inner)
    if m is None:
        return
    blocks = walk.stash[int(m.group(1))]
    if not blocks:
        return
    first = blocks[0]
    if "\n" in first or "](" in first or first.startswith(("```", ">", "- ", "|")):
        return
    heading = re.match(r"(#{1,6} )(.+)", first)
    if heading:
        blocks[0] = f"{heading.group(1)}[{_escape_link_text(heading.group(2))}]({_escape_url(href)})"
    else:
        blocks[0] = f"[{_escape_link_text(first)}]({_escape_url(href)})"


def _safe_text(el: etree._Element) -> str:
    try:
        return "".join(el.itertext())
    except ValueError:
        return ""


def _block(walk: _Walk, el: etree._Element, tag: str, depth: int) -> list[str]:
    if depth > _MAX_DEPTH:
        text = collapse_ws(_safe_text(el))
        return [text] if text else []
    if tag in _HEADINGS:
        text = _flat(walk, _inline_children(walk, el, depth))
        if not text:
            return []
        return [f"{'#' * _HEADINGS[tag]} {text}" if walk.markdown else text]
    if tag in ("ul", "ol", "menu", "dir"):
        return _list(walk, el, tag == "ol", depth)
    if tag == "pre":
        return _pre(walk, el)
    if tag == "table":
        return _table(walk, el, depth)
    if tag == "blockquote":
        inner = _container(walk, el, depth)
        if not walk.markdown:
            return inner
        quoted = "\n>\n".join("\n".join("> " + line if line else ">" for line in b.split("\n")) for b in inner)
        return [quoted] if quoted else []
    if tag == "hr":
        return ["---"] if walk.markdown else []
    return _container(walk, el, depth)


def _list(walk: _Walk, el: etree._Element, ordered: bool, depth: int) -> list[str]:
    try:
        number = int(el.get("start") or 1)
    except ValueError:
        number = 1
    items: list[str] = []
    for child in el:
        tag = tag_of(child)
        if not tag or tag in SKIP_TAGS:
            continue
        if tag in ("ul", "ol"):
            # A list directly inside a list (invalid but common): indent it under the previous item.
            nested = _list(walk, child, tag == "ol", depth + 1)
            if nested and items:
                items[-1] += "\n" + _indent(nested[0], "  " if walk.markdown else "")
            elif nested:
                items.append(nested[0])
            continue
        blocks = _container(walk, child, depth + 1)
        if not blocks:
            continue
        if walk.markdown:
            marker = f"{number}. " if ordered else "- "
            pad = " " * len(marker)
        else:
            marker = pad = ""
        lines = [marker + _indent(blocks[0], pad, first=False)]
        lines.extend(_indent(b, pad) for b in blocks[1:])
        items.append("\n".join(lines))
        number += 1
    return ["\n".join(items)] if items else []


def _indent(text: str, pad: str, first: bool = True) -> str:
    if not pad:
        return text
    lines = text.split("\n")
    return "\n".join((pad + line if (i > 0 or first) and line else line) for i, line in enumerate(lines))


def _pre(walk: _Walk, el: etree._Element) -> list[str]:
    code = _safe_text(el).strip("\n")
    if not code.strip():
        return []
    if not walk.markdown:
        return [code.rstrip()]
    classes = " ".join(filter(None, [el.get("class")] + [c.get("class") for c in el.iter("code")]))
    m = _LANG.search(classes)
    lang = m.group(1) if m else ""
    fence = "~~~~" if "```" in code else "```"
    return [f"{fence}{lang}\n{code.rstrip()}\n{fence}"]


_COMPLEX_CELL_CONTENT = frozenset(
    [
        "table",
        "ul",
        "ol",
        "dl",
        "pre",
        "blockquote",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "section",
        "article",
        "div",
        "p",
        "form",
    ]
)


def _own_rows(table: etree._Element) -> list[etree._Element]:
    """Rows of this table, not of tables nested in it."""
    rows: list[etree._Element] = []
    for tr in table.iter("tr"):
        parent = tr.getparent()
        while parent is not None and tag_of(parent) != "table":
            parent = parent.getparent()
        if parent is table:
            rows.append(tr)
    return rows


def _table(walk: _Walk, el: etree._Element, depth: int) -> list[str]:
    rows = _own_rows(el)
    cells_per_row = [[c for c in tr if tag_of(c) in ("td", "th")] for tr in rows]
    simple = bool(rows) and all(
        c.get("rowspan") in (None, "", "1") and not any(tag_of(d) in _COMPLEX_CELL_CONTENT for d in c.iterdescendants())
        for row in cells_per_row
        for c in row
    )
    width = max((sum(_span(c) for c in row) for row in cells_per_row), default=0)
    out: list[str] = []
    caption = next((c for c in el if tag_of(c) == "caption"), None)
    if caption is not None:
        out.extend(_container(walk, caption, depth + 1))
    if not simple or width < 2:
        # A layout table (or one we cannot express as GFM): keep its content as ordinary blocks.
        for row in cells_per_row:
            for cell in row:
                out.extend(_container(walk, cell, depth + 1))
        return out
    grid: list[list[str]] = []
    for row in cells_per_row:
        texts: list[str] = []
        for cell in row:
            text = _flat(walk, _inline_children(walk, cell, depth + 1))
            texts.append(text)
            texts.extend("" for _ in range(_span(cell) - 1))
        if any(texts):
            grid.append(texts + [""] * (width - len(texts)))
    if not grid:
        return out
    if not walk.markdown:
        out.append("\n".join(" | ".join(t for t in row if t) for row in grid))
        return out

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    lines = [line(grid[0]), "|" + "|".join(" --- " for _ in range(width)) + "|"]
    lines.extend(line(r) for r in grid[1:])
    out.append("\n".join(lines))
    return out


def _span(cell: etree._Element) -> int:
    try:
        return max(1, min(int(cell.get("colspan") or 1), 50))
    except ValueError:
        return 1
