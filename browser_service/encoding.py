"""Turning response bytes into text when origins mislabel or omit their charset.

Order: a byte-order mark; the Content-Type charset; for HTML a ``<meta charset>``; then UTF-8;
then detection (charset-normalizer). A label is trusted only if the bytes decode cleanly under it,
and one exception beats browsers on purpose: bytes labelled as a single-byte charset (latin-1,
windows-1252) that are valid UTF-8 with multi-byte sequences are decoded as UTF-8 — that
combination is nearly always a server default label over UTF-8 content, and decoding it as
labelled produces mojibake ("CafÃ©") that an agent would take as the page's text.
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

_META_CHARSET = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([a-zA-Z0-9_\-:.]+)""", re.IGNORECASE
)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
#: codecs.lookup() names of the labels servers put on UTF-8 by default.
_SINGLE_BYTE = {"iso8859-1", "cp1252", "ascii", "iso8859-15"}


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    try:
        return codecs.lookup(label.strip().lower()).name
    except LookupError:
        return None


def _decodes(body: bytes, codec: str) -> str | None:
    try:
        return body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def decode(body: bytes, declared: str | None, *, html: bool) -> tuple[str, str, list[str]]:
    """Return ``(text, charset used, warnings)``; never raises."""
    warnings: list[str] = []
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body.decode(codec, errors="replace"), codec, warnings

    utf8 = _decodes(body, "utf-8")
    candidates: list[str] = []
    header_codec = _codec(declared)
    if declared and header_codec is None:
        warnings.append(f"unknown charset {declared!r} in Content-Type; detected the encoding instead")
    if header_codec:
        candidates.append(header_codec)
    if html:
        match = _META_CHARSET.search(body[:4096])
        meta_codec = _codec(match.group(1).decode("ascii", "replace")) if match else None
        if meta_codec and meta_codec not in candidates:
            candidates.append(meta_codec)

    for codec in candidates:
        if codec in _SINGLE_BYTE and utf8 is not None and not body.isascii():
            warnings.append(f"content labelled {codec} is valid UTF-8; decoded as UTF-8")
            return utf8, "utf-8", warnings
        # As browsers do (WHATWG Encoding), latin-1 and ascii labels mean windows-1252.
        text = (_decodes(body, "cp1252") if codec in ("iso8859-1", "ascii") else None) or _decodes(
            body, codec
        )
        if text is not None:
            return text, codec, warnings
        warnings.append(f"content is not valid {codec} as labelled; detected the encoding instead")

    if utf8 is not None:
        return utf8, "utf-8", warnings
    # Valid multi-byte sequences outnumbering the broken ones: UTF-8 with damage, not another charset.
    replaced = body.decode("utf-8", errors="replace")
    damage = replaced.count("\ufffd")
    if len(_UTF8_MULTIBYTE.findall(body)) >= damage:
        warnings.append(f"{damage} invalid UTF-8 sequence(s) were replaced")
        return replaced, "utf-8", warnings
    # Without a BOM, UTF-16/32 guesses on 8-bit text are noise.
    matches = [m for m in from_bytes(body[:200_000]) if not m.encoding.startswith(("utf_16", "utf_32"))]
    if matches:
        # Detection cannot tell close Western single-byte charsets apart on short texts; among the
        # near-best guesses prefer windows-1252, by far the web's most common legacy charset.
        best = min(m.chaos for m in matches)
        near = [m.encoding for m in matches if m.chaos <= best + 0.02]
        codec = "cp1252" if "cp1252" in near else _codec(near[0]) or "cp1252"
        return body.decode(codec, errors="replace"), codec, warnings
    warnings.append("could not determine the encoding; decoded as windows-1252")
    return body.decode("cp1252", errors="replace"), "cp1252", warnings


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8_safe(text: str) -> str:
    """``text`` as UTF-8 can carry it: each lone surrogate (legal in a JSON escape and in a page's
    JavaScript strings — a script cutting an emoji in half makes one) becomes U+FFFD. Text with one
    cannot be encoded: its fetch was internal_error, its session snapshot was lost."""
    return _LONE_SURROGATE.sub("\ufffd", text) if _LONE_SURROGATE.search(text) else text


#: In JSON text: an escaped backslash (kept as it is, so the ``\\ud800`` it may precede is not taken
#: for an escape), a surrogate pair's two escapes (kept), or a lone surrogate's escape.
_JSON_SURROGATE_ESCAPE = re.compile(
    r"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
)


def json_utf8_safe(text: str) -> str:
    """JSON text with each lone surrogate's escape (``"\\ud800"``, legal JSON) replaced by U+FFFD's:
    a strict parser rejects the whole message for it, as the MCP SDK's does."""
    if "\\u" not in text:
        return text
    return _JSON_SURROGATE_ESCAPE.sub(lambda m: "\\ufffd" if len(m[0]) == 6 else m[0], text)
