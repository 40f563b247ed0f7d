from __future__ import annotations

import pytest

from browser_service.deadline import Deadline
from browser_service.errors import DNSError, ForbiddenTarget, InvalidRequest
from browser_service.guard import NetworkPolicy, normalize_url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTP://Example.COM", "http://example.com/"),
        ("https://example.com:443/a?b=1#frag", "https://example.com/a?b=1"),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        ("http://example.com./", "http://example.com/"),
        ("http://bücher.example/", "http://xn--bcher-kva.example/"),
        ("http://[::1]:8080/", "http://[::1]:8080/"),
        ("  http://example.com/path  ", "http://example.com/path"),
    ],
)
def test_normalize_url(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected


@pytest.mark.parametrize("raw", ["ftp://example.com/", "file:///etc/passwd", "javascript:alert(1)", "example.com"])
def test_other_schemes_are_forbidden(raw: str) -> None:
    with pytest.raises(ForbiddenTarget, match="rule: scheme"):
        normalize_url(raw)


def test_url_without_host_is_invalid() -> None:
    with pytest.raises(InvalidRequest):
        normalize_url("http:///path")


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://0x7f.0.0.1/", "loopback"),
        ("http://0177.0.0.1/", "loopback"),
        ("http://localhost/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://10.1.2.3/", "private"),
        ("http://172.16.0.1/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://169.254.1.1/", "link_local"),
        ("http://[fe80::1]/", "link_local"),
        ("http://[fc00::1]/", "private"),
        ("http://100.64.0.1/", "cgnat"),
        ("http://224.0.0.1/", "multicast"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://240.0.0.1/", "reserved"),
        ("http://user@127.0.0.1/", "loopback"),
    ],
)
async def test_policy_refuses_non_public_addresses(url: str, rule: str) -> None:
    with pytest.raises(ForbiddenTarget, match=f"rule: {rule}"):
        await NetworkPolicy().check(url, Deadline(5))


async def test_policy_allows_public_literal_and_exceptions() -> None:
    target = await NetworkPolicy().check("http://93.184.215.14/page", Deadline(5))
    assert target.host == "93.184.215.14" and target.port == 80
    allowed = NetworkPolicy(["127.0.0.0/8", "10.0.0.5:8443"])
    assert (await allowed.check("http://127.0.0.2:9000/", Deadline(5))).port == 9000
    assert (await allowed.check("https://10.0.0.5:8443/", Deadline(5))).host == "10.0.0.5"
    with pytest.raises(ForbiddenTarget):
        await allowed.check("https://10.0.0.5:8444/", Deadline(5))  # the exception names one port


def test_bad_allow_entry_is_rejected() -> None:
    with pytest.raises(ValueError, match="neither a CIDR nor host:port"):
        NetworkPolicy(["not an entry"])


async def test_unresolvable_host_is_dns_error() -> None:
    with pytest.raises(DNSError, match="could not be resolved"):
        await NetworkPolicy().check("http://no-such-host.invalid/", Deadline(5))
