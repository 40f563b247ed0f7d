"""A page's refresh: ``<meta http-equiv="refresh" content="0; url=/next">`` or the Refresh header.

A refresh to another URL that comes soon is a redirect made by the page rather than by its status
(old sites moving pages, link shorteners, "you are being redirected" pages): the browser engine's
settle wait holds for one due within its cap (``settle.py``), and the HTTP engine follows one due
within the same cap as a redirect hop, checked by the network policy like any other. A refresh to
the same page (an auto-reloading dashboard) or a later one (a session that ends in 30 minutes) is
not a redirect: the page is what it shows.

The value is parsed as the HTML standard's "shared declarative refresh steps" do: a number of
seconds (its integer part), then optionally ``;`` or ``,``, ``url=`` and a URL, quoted or not. A
meta element inside ``<noscript>`` or a comment is not one: a browser running scripts ignores it
(sites send script-less readers to an "enable JavaScript" page that way).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

_VALUE = re.compile(r"\s*(\d*)([\d.]*)\s*[;,]?\s*(.*)\Z", re.S)
_URL_PREFIX = re.compile(r"\Aurl\s*=\s*", re.I)
#: A meta element's tag naming the refresh (any attribute order, any quotes), lower-cased.
_REFRESH_META = re.compile(r"<meta\b[^>]*\bhttp-equiv\s*=\s*[\"']?\s*refresh\b")


@dataclass(frozen=True)
class Refresh:
    delay_s: int
    url: str  # absolute, resolved against the page


def parse_refresh(value: str) -> tuple[int, str] | None:
    """``(delay in seconds, URL as written)`` of a refresh value, or None when it is not one."""
    match = _VALUE.match(value)
    if match is None or (not match[1] and not match[2].startswith(".")):
        return None
    target = _URL_PREFIX.sub("", match[3], count=1)
    if target[:1] in ("'", '"'):
        end = target.find(target[0], 1)
        target = target[1 : end if end >= 0 else None]
    return int(match[1] or 0), target.strip()


class _Content(HTMLParser):
    """The ``content`` attribute of the one tag it is fed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.content: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.content = next((value or "" for name, value in attrs if name == "content"), None)

    handle_startendtag = handle_starttag


def _meta_contents(html: str) -> list[str]:
    """The content of each refresh meta element, not in ``<noscript>`` nor a comment. Found with
    plain string searches on the lower-cased page (an ignore-case regex over the whole page takes
    ten times as long: ~2 ms on a 190 kB page, which every HTTP fetch would pay)."""
    # "İ" is the one character whose lower case is longer (two): offsets in both must match.
    lowered = html.replace("İ", "I").lower()
    if "refresh" not in lowered:
        return []
    contents = []
    at = lowered.find("<meta")
    while at >= 0:
        end = lowered.find(">", at)
        end = len(lowered) if end < 0 else end + 1
        if _REFRESH_META.match(lowered, at, end) and not _hidden(lowered, at):
            parser = _Content()
            parser.feed(html[at:end])
            if parser.content is not None:
                contents.append(parser.content)
        at = lowered.find("<meta", end)
    return contents


def _hidden(lowered: str, at: int) -> bool:
    """Whether position ``at`` is inside a ``<noscript>`` or a comment."""
    in_noscript = lowered.rfind("<noscript", 0, at) > lowered.rfind("</noscript", 0, at)
    return in_noscript or lowered.rfind("<!--", 0, at) > lowered.rfind("-->", 0, at)


def page_refresh(html: str | None, header: str | None, url: str) -> Refresh | None:
    """The soonest refresh of a page at ``url`` that moves it to another http(s) URL, from its
    Refresh header and its meta elements; None when it has none."""
    values = ([header] if header else []) + _meta_contents(html or "")
    here = urldefrag(url).url
    found: Refresh | None = None
    for value in values:
        parsed = parse_refresh(value)
        if parsed is None or not parsed[1]:
            continue
        target = urljoin(url, parsed[1])
        if urldefrag(target).url == here or urlsplit(target).scheme not in ("http", "https"):
            continue  # a reload, or a javascript:/data: URL no redirect goes to
        if found is not None and found.delay_s <= parsed[0]:
            continue
        found = Refresh(parsed[0], target)
    return found
