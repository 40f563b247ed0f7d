from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from browser_service.encoding import decode, json_utf8_safe, utf8_safe

FRENCH = "<html><body><p>Le café du port, crème brûlée.</p></body></html>"


def test_declared_charset_is_used() -> None:
    text, charset, warnings = decode(FRENCH.encode("utf-8"), "utf-8", html=True)
    assert text == FRENCH and charset == "utf-8" and warnings == []


def test_utf8_label_on_cp1252_bytes_falls_back_to_detection() -> None:
    text, _, warnings = decode(FRENCH.encode("cp1252"), "utf-8", html=True)
    assert "café" in text and "brûlée" in text
    assert any("not valid utf-8" in w for w in warnings)


def test_latin1_label_on_utf8_bytes_is_read_as_utf8() -> None:
    text, charset, warnings = decode(FRENCH.encode("utf-8"), "iso-8859-1", html=True)
    assert "café" in text and "Ã" not in text and charset == "utf-8"
    assert warnings == ["content labelled iso8859-1 is valid UTF-8; decoded as UTF-8"]


def test_latin1_label_means_windows_1252() -> None:
    text, _, _ = decode("“quoted” – dash".encode("cp1252"), "iso-8859-1", html=False)
    assert text == "“quoted” – dash"


def test_meta_charset_when_header_has_none() -> None:
    page = '<html><head><meta charset="windows-1251"></head><body>Маяк</body></html>'
    text, charset, _ = decode(page.encode("windows-1251"), None, html=True)
    assert "Маяк" in text and charset == "cp1251"


def test_bom_wins() -> None:
    text, charset, _ = decode("\ufeffhello".encode("utf-8"), "iso-8859-1", html=False)
    assert text == "hello" and charset == "utf-8-sig"


def test_invalid_bytes_never_raise() -> None:
    text, _, _ = decode(b"caf\xc3\x28 ok", "utf-8", html=False)
    assert text.endswith(" ok")


def test_unknown_label_is_reported() -> None:
    text, _, warnings = decode(b"plain ascii", "x-nonsense", html=False)
    assert text == "plain ascii"
    assert "unknown charset 'x-nonsense'" in warnings[0]


def test_utf8_safe_replaces_only_lone_surrogates() -> None:
    assert utf8_safe("cut \ud83d") == "cut \ufffd" and utf8_safe("\udc00 low") == "\ufffd low"
    assert utf8_safe("whole 😀 emoji, café") == "whole 😀 emoji, café"
    assert utf8_safe("a \ud800\udc00 b") == "a \ufffd\ufffd b"  # two halves a str holds apart stay apart


def test_json_utf8_safe_replaces_only_lone_surrogate_escapes() -> None:
    assert json_utf8_safe(r'{"a": "cut \ud83d"}') == r'{"a": "cut \ufffd"}'
    pairs = r'["\uDC00", "\uD83D\uDE00", "\ud83d\ude00\ude00"]'
    assert json_utf8_safe(pairs) == r'["\ufffd", "\uD83D\uDE00", "\ud83d\ude00\ufffd"]'
    # An escaped backslash before "ud800" is text, not an escape; after it, an escape follows.
    assert json_utf8_safe(r'["\\ud800", "\\\ud800"]') == r'["\\ud800", "\\\ufffd"]'
    assert json_utf8_safe('{"plain": "café \\u00e9"}') == '{"plain": "café \\u00e9"}'


@given(st.lists(st.one_of(st.text(), st.integers(0xD800, 0xDFFF).map(chr)), max_size=8))
def test_json_utf8_safe_keeps_json_meaning_and_makes_it_encodable(parts: list[str]) -> None:
    # Any JSON a client can send: after the repair it parses to what it meant (two halves side by
    # side are one character in JSON) with each lone surrogate as U+FFFD, which UTF-8 can encode.
    sent = json.dumps("".join(parts))
    repaired = json.loads(json_utf8_safe(sent))
    assert repaired == utf8_safe(json.loads(sent))
    repaired.encode("utf-8")
