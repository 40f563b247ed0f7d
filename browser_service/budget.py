"""The context budget: a bounded page of a long text, cut where a reader would cut it.

A page ends at the last paragraph break in its second half, else at the last sentence end, else at
the last whitespace, else exactly at ``max_chars``. The next page starts right after the cut,
with leading whitespace skipped, so concatenating the pages (with that whitespace) gives back the
whole text and no word is split across pages unless a single word is longer than a page.
"""

from __future__ import annotations

import re

from browser_service.contract import ContentPage, Format

_SENTENCE_END = re.compile(r"[.!?…。！？][\"')\]]*\s")


def cut_point(text: str, start: int, max_chars: int) -> int:
    """Where the page that starts at ``start`` ends (exclusive)."""
    end = start + max_chars
    if end >= len(text):
        return len(text)
    floor = start + max_chars // 2
    window = text[floor:end]
    paragraph = window.rfind("\n\n")
    if paragraph >= 0:
        return floor + paragraph + 2
    sentences = list(_SENTENCE_END.finditer(window))
    if sentences:
        return floor + sentences[-1].end()
    space = max(window.rfind(" "), window.rfind("\n"), window.rfind("\t"))
    if space >= 0:
        return floor + space + 1
    return end


def page(text: str, fmt: Format, start_index: int, max_chars: int) -> tuple[str, ContentPage]:
    total = len(text)
    start = min(start_index, total)
    end = cut_point(text, start, max_chars)
    following = end
    while following < total and text[following].isspace():
        following += 1
    truncated = following < total
    return text[start:end], ContentPage(
        format=fmt,
        total_chars=total,
        start_index=start,
        next_start_index=following if truncated else None,
        truncated=truncated,
    )
