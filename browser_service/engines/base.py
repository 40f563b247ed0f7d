"""What an engine hands to the rest of the pipeline: a :class:`RawPage`, before any judgement.

An engine's only job is transport: get the bytes (and, for the browser, the rendered DOM). It
raises a typed error for transport failures (DNS, connect, TLS, timeout, size) but does not judge
statuses or content — that is ``detect.py``'s job — so both engines are judged by the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from browser_service.contract import Engine

ContentKind = Literal["html", "text", "binary"]

_TEXT_TYPES = {
    "application/json",
    "application/ld+json",
    "application/xml",
    "application/rss+xml",
    "application/atom+xml",
    "application/javascript",
    "application/x-javascript",
    "application/x-ndjson",
    "application/yaml",
    "application/x-yaml",
    "application/toml",
    "image/svg+xml",
}
_HTML_TYPES = {"text/html", "application/xhtml+xml"}


@dataclass
class RawPage:
    url: str  # the URL asked for (normalised)
    final_url: str  # after redirects
    status_code: int
    headers: dict[str, str]  # lower-cased names
    content_type: str  # the MIME type only, lower-cased ("" when the origin sent none)
    kind: ContentKind
    body: bytes  # as received (decompressed); for the browser's HTML, the rendered DOM encoded as UTF-8
    text: str | None  # decoded body for html/text kinds; the rendered DOM for the browser
    engine: Engine
    charset: str | None = None
    redirects: list[str] = field(default_factory=list)
    title: str | None = None
    screenshot: bytes | None = None
    warnings: list[str] = field(default_factory=list)


def mime_type(content_type_header: str | None) -> str:
    return (content_type_header or "").split(";", 1)[0].strip().lower()


def header_charset(content_type_header: str | None) -> str | None:
    for param in (content_type_header or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'").lower()
    return None


#: How a file that is not text begins: what an origin labelling it text/html sends (a misconfigured
#: server, an image behind a .html route). Read as text it is garbage an agent would take for content.
_SIGNATURES = {
    b"%PDF-": "a PDF",
    b"\x89PNG\r\n\x1a\n": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF87a": "a GIF image",
    b"GIF89a": "a GIF image",
    b"PK\x03\x04": "a ZIP archive",
    b"\x1f\x8b\x08": "gzip data",
}


def binary_signature(body: bytes) -> str | None:
    """What ``body`` is by its first bytes ("a PNG image"), when they are a binary format's."""
    return next((name for magic, name in _SIGNATURES.items() if body.startswith(magic)), None)


def content_kind(mime: str, body: bytes) -> ContentKind:
    """html, text or binary — by the declared type (unless the bytes are a binary format's), or by
    sniffing when the origin sent none."""
    textual = mime in _HTML_TYPES or mime.startswith("text/") or mime in _TEXT_TYPES or mime.endswith(("+json", "+xml"))
    if textual and binary_signature(body):
        return "binary"
    if mime in _HTML_TYPES:
        return "html"
    if textual:
        return "text"
    if mime in ("", "application/octet-stream", "binary/octet-stream"):
        return _sniff(body)
    return "binary"


def _sniff(body: bytes) -> ContentKind:
    head = body[:1024].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in head:
        return "html"
    if head.startswith((b"%pdf", b"\x89png", b"\xff\xd8", b"gif8", b"pk\x03\x04", b"\x1f\x8b")):
        return "binary"
    sample = body[:4096]
    if b"\x00" in sample:
        return "binary"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # not just a character cut at the sample's end
            return "binary"
    return "text"
