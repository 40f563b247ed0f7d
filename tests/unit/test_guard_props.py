"""Properties of URL normalisation and the network policy (guard.py), over generated spellings.

The oracle is the address itself: whatever the spelling — IPv4 in decimal, octal or hex, per part
or whole, short forms (``127.1``), full-width digits and ideographic dots, a trailing dot, percent-
encoding, user info in front, IPv6 forms carrying an IPv4 address (mapped, compatible, NAT64, 6to4)
— the policy's verdict and the rule it names are those of the canonical address. Names reach the
injected resolver in canonical form and are judged by what it answers; nothing resolves over the
network (the resolver refuses to be asked about a literal). Parsing arbitrary text raises nothing
but the typed errors, and normalisation is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Iterator, Sequence
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from browser_service.deadline import Deadline
from browser_service.errors import DNSError, ForbiddenTarget, InvalidRequest
from browser_service.guard import METADATA_HOSTS, NetworkPolicy, canonical_host, normalize_url, refusal_rule

#: The URL standard's forbidden host code points (a host holding one is invalid).
FORBIDDEN_HOST_CHARS = frozenset(" #%/:<>?@[\\]^|\x7f" + "".join(map(chr, range(0x20))))
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Where the refused addresses are, so the generator visits every rule often (and public space too).
NETWORKS = [
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "169.254.169.254/32",
        "100.64.0.0/10",
        "100.100.100.200/32",
        "0.0.0.0/8",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "192.0.0.0/24",
        "198.18.0.0/15",
        "192.0.2.0/24",
        "0.0.0.0/0",
    )
]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


class Resolver:
    """Answers from a table; records what it was asked; refuses to be asked about an IP literal."""

    def __init__(self, answers: dict[str, Sequence[str]] | None = None) -> None:
        self.answers = answers or {}
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError(f"not in the test's table: {host}")
        return self.answers[host]


def expected_rule(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """An independent oracle: refused unless a global unicast address (the rule's name from guard)."""
    v4 = ip
    if isinstance(ip, ipaddress.IPv6Address):
        v4 = ip.ipv4_mapped or ip.sixtofour or ip
    public = v4.is_global and not v4.is_multicast and not v4.is_reserved and not v4.is_link_local
    metadata = str(v4) in {"169.254.169.254", "169.254.170.2", "100.100.100.200", "192.0.0.192"}
    assert (refusal_rule(ip) is None) == (public and not metadata)
    return refusal_rule(ip)


def verdict(loop: asyncio.AbstractEventLoop, policy: NetworkPolicy, url: str) -> str | None:
    """None if allowed, else the rule the refusal names."""
    try:
        loop.run_until_complete(policy.check(url, Deadline(5)))
    except ForbiddenTarget as exc:
        return exc.message.split("(rule: ")[1].split(")")[0]
    return None


# --- spellings -------------------------------------------------------------------------------------

addresses = st.sampled_from(NETWORKS).flatmap(
    lambda net: st.integers(int(net.network_address), int(net.broadcast_address)).map(ipaddress.IPv4Address)
)


@st.composite
def number(draw: st.DrawFn, value: int) -> str:
    """One part of an IPv4 address in a radix inet_aton and browsers accept."""
    radix = draw(st.sampled_from(["dec", "oct", "hex"]))
    if radix == "dec":
        return str(value)
    if radix == "oct":
        return "0" + format(value, "o")
    prefix = draw(st.sampled_from(["0x", "0X"]))
    digits = format(value, draw(st.sampled_from(["x", "X"])))
    return prefix + "0" * draw(st.integers(0, 2)) + digits


@st.composite
def ipv4_spelling(draw: st.DrawFn, ip: ipaddress.IPv4Address) -> str:
    n = int(ip)
    parts = draw(st.sampled_from([4, 3, 2, 1]))  # a.b.c.d, a.b.c16, a.b24, a32
    octets = [n >> 24, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF]
    values = {4: octets, 3: [*octets[:2], n & 0xFFFF], 2: [octets[0], n & 0xFFFFFF], 1: [n]}[parts]
    text = ".".join(draw(number(v)) for v in values)
    decimal = all(p.isdigit() and (p == "0" or not p.startswith("0")) for p in text.split("."))
    if parts == 4 and decimal and draw(st.booleans()):
        text = text.translate(str.maketrans("0123456789.", "０１２３４５６７８９。"))  # IDNA folds these
    if draw(st.booleans()):
        text += "."
    return text


@st.composite
def ipv6_spelling(draw: st.DrawFn, ip: ipaddress.IPv4Address) -> str:
    n = int(ip)
    hi, lo = n >> 16, n & 0xFFFF
    form = draw(st.sampled_from(["mapped", "mapped-hex", "nat64", "6to4"] + (["compatible"] if n > 1 else [])))
    text = {
        "mapped": f"::ffff:{ip}",
        "mapped-hex": f"::ffff:{hi:x}:{lo:x}",
        "compatible": f"::{ip}",
        "nat64": f"64:ff9b::{ip}",
        "6to4": f"2002:{hi:x}:{lo:x}::{draw(st.integers(0, 0xFFFF)):x}",
    }[form]
    text = text.upper() if draw(st.booleans()) else text
    return f"[{text}]"


def percent_encode(draw: st.DrawFn, host: str) -> str:
    if host.startswith("[") or not draw(st.booleans()):
        return host  # a bracketed IPv6 host is not percent-decoded by browsers either
    chosen = draw(st.sets(st.integers(0, len(host) - 1), max_size=len(host)))
    return "".join(quote(c, safe="") if i in chosen and c != "." else c for i, c in enumerate(host))


@st.composite
def urls_for(draw: st.DrawFn, host: str) -> str:
    """A URL whose host is ``host``, dressed up: scheme case, user info, a port, a path."""
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "hTtPs"]))
    userinfo = draw(st.sampled_from(["", "user@", "user:pass@", "example.com@", "a%40b@"]))
    port = draw(st.sampled_from(["", ":80", ":8080", ":443"]))
    path = draw(st.sampled_from(["", "/", "/a/b?c=d", "/x#frag"]))
    return f"{scheme}://{userinfo}{percent_encode(draw, host)}{port}{path}"


# --- properties --------------------------------------------------------------------------------------


@PROPS
@given(data=st.data(), ip=addresses)
def test_every_ipv4_spelling_gets_the_canonical_verdict(
    loop: asyncio.AbstractEventLoop, data: st.DataObject, ip: ipaddress.IPv4Address
) -> None:
    url = data.draw(urls_for(data.draw(ipv4_spelling(ip))))
    resolver = Resolver()
    assert verdict(loop, NetworkPolicy(resolver=resolver), url) == expected_rule(ip)
    assert resolver.asked == []  # a literal never reaches DNS
    assert urlsplit(normalize_url(url)).hostname == str(ip)


@PROPS
@given(data=st.data(), ip=addresses)
def test_ipv6_forms_are_judged_by_the_ipv4_they_carry(
    loop: asyncio.AbstractEventLoop, data: st.DataObject, ip: ipaddress.IPv4Address
) -> None:
    url = data.draw(urls_for(data.draw(ipv6_spelling(ip))))
    resolver = Resolver()
    assert verdict(loop, NetworkPolicy(resolver=resolver), url) == expected_rule(ip)
    assert resolver.asked == []


labels = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
names = st.lists(labels, min_size=1, max_size=3).map(lambda ls: ".".join([*ls, "example"]))


@PROPS
@given(data=st.data(), name=names, ips=st.lists(addresses, min_size=1, max_size=3))
def test_names_are_judged_by_every_address_they_resolve_to(
    loop: asyncio.AbstractEventLoop, data: st.DataObject, name: str, ips: list[ipaddress.IPv4Address]
) -> None:
    assume(name not in METADATA_HOSTS)
    spelled = "".join(c.upper() if data.draw(st.booleans()) else c for c in name)
    spelled += "." if data.draw(st.booleans()) else ""
    resolver = Resolver({name: [str(ip) for ip in ips]})
    rules = [expected_rule(ip) for ip in ips]
    refused = next((rule for rule in rules if rule is not None), None)
    assert verdict(loop, NetworkPolicy(resolver=resolver), data.draw(urls_for(spelled))) == refused
    assert resolver.asked == [name]  # asked once, in canonical form


@PROPS
@given(name=names, suffix=st.sampled_from(["localhost", "LOCALHOST.", "localhost."]))
def test_localhost_names_never_reach_dns(loop: asyncio.AbstractEventLoop, name: str, suffix: str) -> None:
    resolver = Resolver()
    for host in (suffix, f"{name}.{suffix}"):
        assert verdict(loop, NetworkPolicy(resolver=resolver), f"http://{host}/") == "loopback"
    assert resolver.asked == []


@PROPS
@given(
    metadata=st.sampled_from(sorted(METADATA_HOSTS)),
    ip=addresses,
    end=st.sampled_from(["", ".", "\u3002", "\uff0e", "%2E"]),
    upper=st.booleans(),
)
def test_metadata_names_are_refused_whatever_they_resolve_to(
    loop: asyncio.AbstractEventLoop, metadata: str, ip: ipaddress.IPv4Address, end: str, upper: bool
) -> None:
    resolver = Resolver({metadata: [str(ip)]})
    host = (metadata.upper() if upper else metadata) + end
    assert verdict(loop, NetworkPolicy(resolver=resolver), f"http://{host}/") == "metadata"
    assert resolver.asked == []


hosts = st.text(
    alphabet=st.sampled_from("abcXYZ019.-%[]:@_~ \u00e9\u0130\uff21\u3002\u2460\u00df\u0131\u200d"), max_size=20
)


@PROPS
@given(host=hosts)
def test_canonical_host_is_idempotent(host: str) -> None:
    """On every host that can be fetched (no forbidden host code point once decoded and mapped).

    Others are not: like a browser, the guard percent-decodes once, then maps (IDNA), so ``%3①``
    becomes ``%31``, which a second pass would decode — but a ``%`` left in a host makes the URL
    invalid (``invalid_request``), in the guard as in a browser.
    """
    once = canonical_host(host)
    assume(once and ":" not in once and not FORBIDDEN_HOST_CHARS.intersection(once))
    assert canonical_host(once) == once
    assert normalize_url(f"http://{once}/") == f"http://{once}/"


@PROPS
@given(text=st.text(max_size=60), prefix=st.sampled_from(["", "http://", "https://", "HTTP://user@", "http:\\\\"]))
@example(text="0?\x08#", prefix="http://")  # a control left raw, trimmed by the second pass once it ended the URL
def test_parsing_raises_only_typed_errors_and_is_idempotent(
    loop: asyncio.AbstractEventLoop, text: str, prefix: str
) -> None:
    url = prefix + text
    try:
        normalized = normalize_url(url)
    except (InvalidRequest, ForbiddenTarget):
        return
    assert normalize_url(normalized) == normalized
    with contextlib.suppress(InvalidRequest, ForbiddenTarget, DNSError):  # the whole check; no name resolves
        loop.run_until_complete(NetworkPolicy(resolver=Resolver()).check(url, Deadline(5)))
