"""Reading a page's refresh (engines/refresh.py): the value's grammar, and which refreshes count."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from browser_service.engines.refresh import Refresh, page_refresh, parse_refresh


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("0; url=/next", (0, "/next")),
        ("5", (5, "")),
        ("0;url=", (0, "")),
        (' 3;URL="/q" ', (3, "/q")),
        ("1.9, 'http://example.org/y'", (1, "http://example.org/y")),  # the integer part only
        (".5;url=/z", (0, "/z")),
        ("2 url=/k", (2, "/k")),
        ("0; url='/a b", (0, "/a b")),  # an unclosed quote runs to the end
        ("soon", None),
        ("", None),
    ],
)
def test_a_refresh_value_is_read_as_the_html_standard_says(value: str, parsed: tuple[int, str] | None) -> None:
    assert parse_refresh(value) == parsed


PAGE = "http://example.org/page"


@pytest.mark.parametrize(
    ("html", "header", "refresh"),
    [
        (
            '<head><meta content="0; url=/next" http-equiv="Refresh"></head>',
            None,
            Refresh(0, "http://example.org/next"),
        ),
        (
            "<meta http-equiv=refresh content='2;url=/b'><meta http-equiv=refresh content='1;url=/a'>",
            None,
            Refresh(1, "http://example.org/a"),
        ),
        ("<meta http-equiv=refresh content='4;url=/m'>", "2; url=/h", Refresh(2, "http://example.org/h")),
        ("<noscript><meta http-equiv=refresh content='0; url=/nojs'></noscript>", None, None),
        ("<!-- <meta http-equiv=refresh content='0; url=/old'> -->", None, None),
        ("<meta http-equiv=refresh content='0; url=/page#top'>", None, None),  # the page itself
        ("<meta http-equiv=refresh content='60'>", None, None),  # a reload
        ("<meta http-equiv=refresh content='0; url=javascript:go()'>", None, None),
        ("<meta name=refresh content='0; url=/x'>", None, None),  # not http-equiv
        ("", "0; url=https://other.example/", Refresh(0, "https://other.example/")),
    ],
)
def test_the_soonest_refresh_to_another_page_counts(html: str, header: str | None, refresh: Refresh | None) -> None:
    assert page_refresh(html, header, PAGE) == refresh


def test_a_page_with_characters_whose_lower_case_is_longer_is_read_right() -> None:
    # "İ".lower() is two characters: the search on the lower-cased page must not shift the tag.
    html = "<p>İstanbul İzmir</p><META HTTP-EQUIV=Refresh CONTENT='0; URL=/moved'>"
    assert page_refresh(html, None, PAGE) == Refresh(0, "http://example.org/moved")


@pytest.mark.parametrize(
    ("html", "header", "refresh"),
    [
        # A <base href> before the meta is the base URL the browser resolves it against …
        ("<base href='/b/'><meta http-equiv=refresh content='0; url=next'>", None, Refresh(0, "http://example.org/b/next")),
        # … one after it is not there yet when the browser reads the meta, …
        ("<meta http-equiv=refresh content='0; url=next'><base href='/b/'>", None, Refresh(0, "http://example.org/next")),
        # … nor for the header, read before the page is parsed (all three checked against Chromium).
        ("<base href='/b/'>", "0; url=next", Refresh(0, "http://example.org/next")),
        # The first <base> with an href counts; one in a comment, or without href, does not.
        (
            "<!-- <base href='/c/'> --><base target=_top><basefont><base href='/d/'><base href='/e/'>"
            "<meta http-equiv=refresh content='0; url=next'>",
            None,
            Refresh(0, "http://example.org/d/next"),
        ),
    ],
)
def test_a_meta_refresh_resolves_against_the_base_before_it(html: str, header: str | None, refresh: Refresh) -> None:
    assert page_refresh(html, header, PAGE) == refresh


@pytest.mark.parametrize("target", ["http://[bad/", "http://[::1"])
def test_a_refresh_to_a_url_that_does_not_parse_is_none(target: str) -> None:
    # urljoin raises on these; a browser does not navigate to them either.
    assert page_refresh(f"<meta http-equiv=refresh content='0; url={target}'>", None, PAGE) is None
    # Nor against a base that does not parse: Chromium then stays on the page.
    assert page_refresh(f"<base href='{target}'><meta http-equiv=refresh content='0; url=y'>", None, PAGE) is None


# Pages are whatever an origin sends: reading one must never raise (a ValueError here was an
# internal_error answer), and what it finds is a refresh to an http(s) URL or nothing.
_bits = st.sampled_from(
    ["http://[", "::1", "]", "//", "a.test", "/p", "#", "?", "%", "\\", ":99999", "javascript:", "İ", "\x00", " ", "'"]
)
_urls = st.lists(_bits | st.text(max_size=3), max_size=6).map("".join)
_tags = st.one_of(
    st.builds("<meta http-equiv=refresh content='{}; url={}'>".format, st.sampled_from(["0", "1", ".5", "x"]), _urls),
    st.builds("<base href='{}'>".format, _urls),
    st.sampled_from(["<!--", "-->", "<noscript>", "</noscript>", "<meta http-equiv=refresh>", "<base>"]),
    st.text(max_size=5),
)


@settings(max_examples=500, deadline=None)
@given(html=st.lists(_tags, max_size=6).map("".join), header=st.none() | _urls.map("0; url={}".format))
def test_reading_any_page_never_raises(html: str, header: str | None) -> None:
    found = page_refresh(html, header, PAGE)
    assert found is None or urlsplit(found.url).scheme in ("http", "https")
