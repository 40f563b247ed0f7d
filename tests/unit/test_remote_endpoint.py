"""Which protocol a remote browser endpoint is spoken to with, and how it is named in messages."""

from __future__ import annotations

import pytest

from browser_service.pool import endpoint_protocol, redact_endpoint


@pytest.mark.parametrize(
    ("endpoint", "configured", "expected"),
    [
        ("ws://127.0.0.1:3000/abc123", "auto", "playwright"),
        ("wss://browsers.example/playwright?token=s3cret", "auto", "playwright"),
        ("http://127.0.0.1:9222", "auto", "cdp"),
        ("https://chrome.example:443", "auto", "cdp"),
        ("ws://127.0.0.1:9222/devtools/browser/0f3a-11", "auto", "cdp"),
        ("ws://browserless:3000/?token=s3cret", "cdp", "cdp"),
        ("http://127.0.0.1:9222", "playwright", "playwright"),
    ],
)
def test_endpoint_protocol(endpoint: str, configured: str, expected: str) -> None:
    assert endpoint_protocol(endpoint, configured) == expected


@pytest.mark.parametrize(
    ("endpoint", "shown"),
    [
        ("ws://127.0.0.1:3000/abc123", "ws://127.0.0.1:3000"),
        ("wss://user:pw@browsers.example/playwright?token=s3cret", "wss://browsers.example"),
        ("http://[::1]:9222", "http://[::1]:9222"),
    ],
)
def test_redact_endpoint_drops_credentials_path_and_query(endpoint: str, shown: str) -> None:
    assert redact_endpoint(endpoint) == shown
