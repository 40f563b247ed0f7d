from __future__ import annotations

import pytest

from browser_service.detect import classify, parse_retry_after
from browser_service.engines.base import RawPage, content_kind
from browser_service.errors import HTTPStatusError, NotFound, RateLimited, UnsupportedContent


def raw(status: int = 200, kind: str = "html", headers: dict[str, str] | None = None) -> RawPage:
    return RawPage(url="http://a.test/", final_url="http://a.test/x", status_code=status, headers=headers or {},
                   content_type="text/html", kind=kind, body=b"", text="", engine="http")  # type: ignore[arg-type]


def test_ok_page_passes() -> None:
    classify(raw(200))
    classify(raw(304))


@pytest.mark.parametrize("status", [404, 410])
def test_not_found(status: int) -> None:
    with pytest.raises(NotFound) as info:
        classify(raw(status))
    assert info.value.status_code == status and not info.value.retryable


def test_rate_limited_keeps_retry_after() -> None:
    with pytest.raises(RateLimited) as info:
        classify(raw(429, headers={"retry-after": "12"}))
    assert info.value.retry_after_s == 12 and info.value.retryable


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (501, False), (403, False), (400, False)])
def test_http_errors(status: int, retryable: bool) -> None:
    with pytest.raises(HTTPStatusError) as info:
        classify(raw(status))
    assert info.value.status_code == status and info.value.retryable is retryable


def test_binary_is_unsupported() -> None:
    with pytest.raises(UnsupportedContent):
        classify(raw(200, kind="binary"))


def test_retry_after_forms() -> None:
    assert parse_retry_after("30") == 30
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("mime", "body", "kind"),
    [
        ("text/html", b"", "html"),
        ("application/xhtml+xml", b"", "html"),
        ("application/json", b"{}", "text"),
        ("application/vnd.api+json", b"{}", "text"),
        ("text/plain", b"x", "text"),
        ("application/pdf", b"%PDF-1.4", "binary"),
        ("image/png", b"\x89PNG", "binary"),
        ("", b"<!DOCTYPE html><html>", "html"),
        ("", b"%PDF-1.7 ...", "binary"),
        ("application/octet-stream", b"just some text", "text"),
    ],
)
def test_content_kind(mime: str, body: bytes, kind: str) -> None:
    assert content_kind(mime, body) == kind
