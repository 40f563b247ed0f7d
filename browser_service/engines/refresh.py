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
(sites send script-less readers to an "enable JavaScript" page that way). A meta element's URL
resolves against the page's ``<base href>`` when one comes before it (the base URL the browser has
when it reads the meta), the header's against the page's URL; a URL that does not parse is no
refresh, as in a browser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
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


class _Attribute(HTMLParser):
    """One attribute of the one tag it is fed."""

    def __init__(self, name: str) -> None:
        super().__init__(convert_charrefs=True)
        self.name = name
        self.value: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.value = next((value or "" for name, value in attrs if name == self.name), None)

    handle_startendtag = handle_starttag


def _attribute(tag: str, name: str) -> str | None:
    parser = _Attribute(name)
    parser.feed(tag)
    return parser.value


def _tags(lowered: str, name: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each ``<name …>`` tag not in ``<noscript>`` nor a comment."""
    at = lowered.find("<" + name)
    while at >= 0:
        end = lowered.find(">", at)
        end = len(lowered) if end < 0 else end + 1
        if not lowered[at + 1 + len(name) : at + 2 + len(name)].isalnum() and not _hidden(lowered, at):
            yield at, end
        at = lowered.find("<" + name, end)


def _meta_contents(html: str) -> list[tuple[str, str | None]]:
    """``(content, base href before it or None)`` of each refresh meta element. Found with plain
    string searches on the lower-cased page (an ignore-case regex over the whole page takes ten
    times as long: ~2 ms on a 190 kB page, which every HTTP fetch would pay)."""
    # "İ" is the one character whose lower case is longer (two): offsets in both must match.
    lowered = html.replace("İ", "I").lower()
    if "refresh" not in lowered:
        return []
    # The document's base URL is its first <base> with an href (HTML standard).
    base = next(((at, href) for at, end in _tags(lowered, "base") if (href := _attribute(html[at:end], "href"))), None)
    contents = []
    for at, end in _tags(lowered, "meta"):
        if _REFRESH_META.match(lowered, at, end) and (content := _attribute(html[at:end], "content")) is not None:
            contents.append((content, base[1] if base is not None and base[0] < at else None))
    return contents


def _hidden(lowered: str, at: int) -> bool:
    """Whether position ``at`` is inside a ``<noscript>`` or a comment."""
    in_noscript = lowered.rfind("<noscript", 0, at) > lowered.rfind("</noscript", 0, at)
    return in_noscript or lowered.rfind("<!--", 0, at) > lowered.rfind("-->", 0, at)


def page_refresh(html: str | None, header: str | None, url: str) -> Refresh | None:
    """The soonest refresh of a page at ``url`` that moves it to another http(s) URL, from its
    Refresh header and its meta elements; None when it has none."""
    values: list[tuple[str, str | None]] = [(header, None)] if header else []
    values += _meta_contents(html or "")
    here = urldefrag(url).url
    found: Refresh | None = None
    for value, base in values:
        parsed = parse_refresh(value)
        if parsed is None or not parsed[1]:
            continue
        try:
            target = urljoin(urljoin(url, base.strip()) if base else url, parsed[1])
        except ValueError:  # "http://[::1", or a base like it: no URL, no refresh (as in Chromium)
            continue
        if urldefrag(target).url == here or urlsplit(target).scheme not in ("http", "https"):
            continue  # a reload, or a javascript:/data: URL no redirect goes to
        if found is not None and found.delay_s <= parsed[0]:
            continue
        found = Refresh(parsed[0], target)
    return found
