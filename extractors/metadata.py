"""Document metadata: <head> tags, OpenGraph, JSON-LD, in that order of trust per field."""

from __future__ import annotations

import json
import re
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from lxml.html import HtmlElement

from .dom import absolute_url, collapse_ws
from .models import PageMetadata

_MAX_JSON_LD_BLOCKS = 32
_MAX_JSON_LD_CHARS = 2_000_000
_MAX_FIELD_CHARS = 2_000

_ARTICLE_TYPES = re.compile(r"Article|BlogPosting|Report|Posting|WebPage|Recipe|Review|HowTo|Event|Product")


def _meta_map(root: HtmlElement) -> dict[str, str]:
    """First non-empty content for each meta name/property/itemprop, keys lower-cased."""
    out: dict[str, str] = {}
    for meta in root.iter("meta"):
        key = meta.get("property") or meta.get("name") or meta.get("itemprop") or meta.get("http-equiv")
        value = meta.get("content")
        if not key or value is None:
            continue
        value = collapse_ws(value)[:_MAX_FIELD_CHARS]
        key = key.strip().lower()
        if value and key not in out:
            out[key] = value
    return out


def _opengraph(root: HtmlElement) -> dict[str, str]:
    out: dict[str, str] = {}
    for meta in root.iter("meta"):
        prop = (meta.get("property") or meta.get("name") or "").strip()
        if prop.lower().startswith("og:"):
            value = collapse_ws(meta.get("content") or "")[:_MAX_FIELD_CHARS]
            if value and prop not in out:
                out[prop] = value
    return out


def parse_json_ld(root: HtmlElement) -> list[dict[str, Any]]:
    """Every JSON-LD object of the page, @graph members flattened; invalid blocks skipped."""
    items: list[dict[str, Any]] = []
    budget = _MAX_JSON_LD_CHARS
    for count, script in enumerate(root.iterfind(".//script[@type]")):
        if count > 200:
            break
        if (script.get("type") or "").strip().lower() != "application/ld+json":
            continue
        raw = (script.text or "").strip()
        if not raw or len(raw) > budget or len(items) >= _MAX_JSON_LD_BLOCKS:
            continue
        budget -= len(raw)
        try:
            # strict=False: raw newlines inside strings are common in hand-written JSON-LD.
            data = json.loads(raw.removeprefix("<!--").removesuffix("-->"), strict=False)
        except (ValueError, RecursionError):
            continue
        for obj in data if isinstance(data, list) else [data]:
            if not isinstance(obj, dict):
                continue
            graph = obj.get("@graph")
            if isinstance(graph, list):
                items.extend(g for g in graph if isinstance(g, dict))
            else:
                items.append(obj)
    return items[:_MAX_JSON_LD_BLOCKS]


def _types(obj: dict[str, Any]) -> list[str]:
    t = obj.get("@type")
    if isinstance(t, str):
        return [t]
    if isinstance(t, list):
        return [x for x in t if isinstance(x, str)]
    return []


def _name_of(value: Any) -> str | None:
    """A person/organisation reference as a display name ('A, B' for lists)."""
    if isinstance(value, str):
        text = collapse_ws(value)
        return text if text and not text.startswith(("http://", "https://")) else None
    if isinstance(value, dict):
        name = value.get("name")
        return _name_of(name) if isinstance(name, str) else None
    if isinstance(value, list):
        names = [n for n in (_name_of(v) for v in value[:10]) if n]
        return ", ".join(dict.fromkeys(names)) or None
    return None


def _first_str(value: Any) -> str | None:
    if isinstance(value, str):
        return collapse_ws(value) or None
    if isinstance(value, dict):
        for key in ("url", "@id", "contentUrl"):
            if isinstance(value.get(key), str):
                return collapse_ws(value[key]) or None
    if isinstance(value, list) and value:
        return _first_str(value[0])
    return None


def _main_entity(json_ld: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The JSON-LD object describing the page itself (article, product...), not the site."""
    for obj in json_ld:
        if any(_ARTICLE_TYPES.search(t) for t in _types(obj)) and (
            obj.get("headline") or obj.get("author") or obj.get("datePublished")
        ):
            return obj
    for obj in json_ld:
        if obj.get("author") or obj.get("datePublished"):
            return obj
    return None


_MONTH_FORMATS = ("%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y", "%Y/%m/%d", "%d.%m.%Y", "%m/%d/%Y")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def normalize_date(value: str | None) -> str | None:
    """ISO 8601 for the formats pages actually use; the raw value when it cannot be read."""
    if not value:
        return None
    raw = collapse_ws(value)[:64]
    if not raw:
        return None
    if _ISO_DATE.match(raw):
        try:
            return datetime.strptime(raw, "%Y-%m-%d").date().isoformat()
        except ValueError:
            return raw
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).isoformat()
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(raw).isoformat()
    except (TypeError, ValueError, IndexError):
        pass
    cleaned = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", raw)
    for fmt in _MONTH_FORMATS:
        try:
            return datetime.strptime(cleaned, fmt).date().isoformat()
        except ValueError:
            continue
    m = re.match(r"^(\d{4}-\d{2}-\d{2})[T ]", raw)
    return m.group(1) if m else raw


def page_title(root: HtmlElement, meta: dict[str, str] | None = None) -> str | None:
    """The page's title: OpenGraph/Twitter title, else <title>, else the first <h1>."""
    meta = meta if meta is not None else _meta_map(root)
    for key in ("og:title", "twitter:title"):
        if meta.get(key):
            return meta[key]
    title = root.find(".//title")
    if title is not None:
        text = collapse_ws(title.text_content())
        if text:
            return text[:_MAX_FIELD_CHARS]
    for h1 in root.iter("h1"):
        text = collapse_ws(h1.text_content())
        if text:
            return text[:_MAX_FIELD_CHARS]
    return None


def extract_metadata(root: HtmlElement, page_url: str, base: str) -> PageMetadata:
    meta = _meta_map(root)
    json_ld = parse_json_ld(root)
    entity = _main_entity(json_ld) or {}

    def absolute(value: str | None) -> str | None:
        return absolute_url(value, base) if value else None

    canonical = None
    for link in root.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split() and link.get("href"):
            canonical = absolute(link.get("href"))
            break
    canonical = canonical or absolute(meta.get("og:url"))

    language = None
    html_el = root if root.tag == "html" else root.find(".//html")
    if html_el is not None:
        language = collapse_ws(html_el.get("lang") or html_el.get("xml:lang") or "") or None
    language = language or meta.get("content-language") or meta.get("og:locale")

    site_name = meta.get("og:site_name") or meta.get("application-name")
    if not site_name:
        for obj in json_ld:
            if "WebSite" in _types(obj) and _name_of(obj.get("name")):
                site_name = _name_of(obj.get("name"))
                break
    if not site_name:
        site_name = _name_of(entity.get("publisher"))

    author = (
        _name_of(entity.get("author"))
        or _name_of(meta.get("author"))
        or _name_of(meta.get("article:author"))
        or _name_of(meta.get("twitter:creator"))
    )
    if not author:
        for a in root.iterfind(".//a[@rel='author']"):
            author = collapse_ws(a.text_content()) or None
            if author:
                break

    published = (
        meta.get("article:published_time")
        or _first_str(entity.get("datePublished"))
        or meta.get("datepublished")
        or meta.get("date")
        or meta.get("pubdate")
        or meta.get("publishdate")
        or meta.get("dc.date.issued")
        or meta.get("dc.date")
    )
    if not published:
        time_el = root.find(".//time[@datetime]")
        if time_el is not None:
            published = time_el.get("datetime")

    image = meta.get("og:image") or meta.get("og:image:url") or meta.get("twitter:image")
    image = image or _first_str(entity.get("image"))

    return PageMetadata(
        title=page_title(root, meta),
        description=meta.get("description") or meta.get("og:description") or meta.get("twitter:description"),
        language=language,
        canonical_url=canonical,
        site_name=site_name,
        author=author,
        published_date=normalize_date(published),
        image=absolute(image),
        opengraph=_opengraph(root),
        json_ld=json_ld,
    )
