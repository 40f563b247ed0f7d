from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

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
        # Controls and spaces inside the URL are percent-encoded, as a browser does: left raw, they
        # would be trimmed once the fragment is gone and they end it (found by test_guard_props.py).
        ("http://0?\x08#", "http://0.0.0.0/?%08"),
        ("http://example.com/a b? #top", "http://example.com/a%20b?%20"),
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


# --- odd spellings, as browsers parse them ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://127.1/", "http://127.0.0.1/"),
        ("http://0x7f.0.0.1:8080/", "http://127.0.0.1:8080/"),
        ("http://2130706433/", "http://127.0.0.1/"),
        ("http://0177.0.0.1/", "http://127.0.0.1/"),
        ("http://127.0.0.1./", "http://127.0.0.1/"),
        ("http://%31%32%37.0.0.1/", "http://127.0.0.1/"),
        ("http://①②⑦.0.0.1/", "http://127.0.0.1/"),
        ("http://127。0。0。1/", "http://127.0.0.1/"),
        ("http://ｌｏｃａｌｈｏｓｔ/", "http://localhost/"),
        ("http://ex%41mple.com/", "http://example.com/"),
        ("http://user:pw@example.com/", "http://example.com/"),
        ("http://example.com@127.0.0.1/", "http://127.0.0.1/"),
        ("http://127.0.0.1\\@example.com/", "http://127.0.0.1/@example.com/"),
        ("http://exa\tmple.com/\n", "http://example.com/"),
        ("http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/"),
        ("http://[fe80::1%25eth0]/", "http://[fe80::1]/"),
        ("https://example.com/a\\b?c\\d", "https://example.com/a/b?c\\d"),
    ],
)
def test_normalize_url_parses_hosts_as_browsers_do(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/",
        "gopher://127.0.0.1:70/",
        "data:text/html,hi",
        "javascript:alert(1)",
        "chrome://version",
        "about:blank",
        "ws://127.0.0.1/",
        "wss://example.com/",
        "dict://127.0.0.1:11211/",
        "//example.com/",
    ],
)
def test_every_other_scheme_is_forbidden(raw: str) -> None:
    with pytest.raises(ForbiddenTarget, match=r"\(rule: scheme\)"):
        normalize_url(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "http://example.com%40127.0.0.1/",
        "http://exam%0Aple.com/",  # a browser rejects a decoded control character; it is not example.com
        "http://0%09/",
        "http://example.com%7F/",
    ],
)
def test_host_with_forbidden_characters_is_invalid(raw: str) -> None:
    with pytest.raises(InvalidRequest, match="not a valid host"):
        normalize_url(raw)


# --- addresses: no traffic, the policy alone ----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://[::127.0.0.1]/", "loopback"),  # IPv4-compatible
        ("http://[64:ff9b::a00:1]/", "private"),  # NAT64 of 10.0.0.1
        ("http://[64:ff9b::a9fe:a9fe]/", "metadata"),  # NAT64 of 169.254.169.254
        ("http://[2002:a00:1::]/", "private"),  # 6to4 of 10.0.0.1
        ("http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/", "private"),  # Teredo of 10.0.0.1
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://169.254.170.2/v2/credentials", "metadata"),  # AWS ECS task credentials
        ("http://100.100.100.200/latest/meta-data/", "metadata"),  # Alibaba
        ("http://192.0.0.192/", "metadata"),  # Oracle (legacy)
        ("http://0251.0376.0251.0376/", "metadata"),  # 169.254.169.254 in octal
        ("http://0xa9fea9fe/", "metadata"),  # … in hex
        ("http://2852039166/", "metadata"),  # … in decimal
        ("http://[::ffff:169.254.169.254]/", "metadata"),
        ("http://[::]/", "unspecified"),
        ("http://0/", "unspecified"),
        ("http://198.18.0.1/", "private"),  # benchmarking range
        ("http://192.0.2.1/", "private"),  # documentation range
        ("http://[2001:db8::1]/", "private"),
        ("http://[ff02::1]/", "multicast"),
        ("http://255.255.255.255/", "reserved"),
        ("http://localhost./", "loopback"),
        ("http://app.localhost/", "loopback"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("http://METADATA.google.internal./", "metadata"),
        ("http://metadata/", "metadata"),
        ("http://instance-data/latest/", "metadata"),
    ],
)
async def test_policy_refuses_more_non_public_addresses(url: str, rule: str) -> None:
    async def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError(f"{host} must be refused without resolving it")

    with pytest.raises(ForbiddenTarget, match=rf"\(rule: {rule}\)"):
        await NetworkPolicy(resolver=no_dns).check(url, Deadline(5))


async def test_public_nat64_address_is_allowed() -> None:
    """On an IPv6-only network with DNS64, public IPv4 sites resolve into 64:ff9b::/96."""
    target = await NetworkPolicy().check("http://[64:ff9b::5db8:d70e]/", Deadline(5))
    assert str(target.addresses[0]) == "64:ff9b::5db8:d70e"


def fake_resolver(table: dict[str, list[str]]) -> Callable[[str, int], Awaitable[list[str]]]:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


@pytest.mark.parametrize(
    ("answers", "rule"),
    [
        (["10.0.0.7"], "private"),
        (["93.184.215.14", "127.0.0.1"], "loopback"),  # one bad answer is enough
        (["169.254.169.254"], "metadata"),
        (["::ffff:192.168.0.1"], "private"),
        (["fe80::1%eth0"], "link_local"),
    ],
)
async def test_names_are_judged_by_every_address_they_resolve_to(answers: list[str], rule: str) -> None:
    policy = NetworkPolicy(resolver=fake_resolver({"evil.example": answers}))
    with pytest.raises(ForbiddenTarget, match=rf"evil\.example resolves to .*\(rule: {rule}\)"):
        await policy.check("http://evil.example/", Deadline(5))


async def test_resolve_checked_returns_the_addresses_to_connect_to() -> None:
    policy = NetworkPolicy(resolver=fake_resolver({"site.example": ["93.184.215.14", "2606:2800:21f:cb07::1"]}))
    addresses = await policy.resolve_checked("Site.Example.", 443, Deadline(5))
    assert [str(a) for a in addresses] == ["93.184.215.14", "2606:2800:21f:cb07::1"]


async def test_allow_entries_for_names_and_addresses() -> None:
    resolver = fake_resolver({"intranet.example": ["10.1.2.3"], "metadata.google.internal": ["169.254.169.254"]})
    policy = NetworkPolicy(["intranet.example:8080", "metadata.google.internal:80"], resolver=resolver)
    assert (await policy.check("http://intranet.example:8080/", Deadline(5))).addresses[0].exploded == "10.1.2.3"
    assert (await policy.check("http://metadata.google.internal/", Deadline(5))).port == 80
    with pytest.raises(ForbiddenTarget, match="rule: private"):
        await policy.check("http://intranet.example:8081/", Deadline(5))  # the exception names one port


async def test_resolver_failures_are_dns_errors() -> None:
    async def broken(host: str, port: int) -> list[str]:
        return ["not-an-address"]

    with pytest.raises(DNSError, match="could not be resolved"):
        await NetworkPolicy(resolver=fake_resolver({})).check("http://nowhere.example/", Deadline(5))
    with pytest.raises(DNSError, match="not an address"):
        await NetworkPolicy(resolver=broken).check("http://odd.example/", Deadline(5))
