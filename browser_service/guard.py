"""URL normalisation and the network policy that keeps the service from being an SSRF proxy.

By default only public unicast addresses are fetched. Loopback, private, link-local (cloud metadata
at 169.254.169.254 included), CGNAT, multicast, unspecified and reserved addresses — and their IPv6
forms (IPv4-mapped, -compatible, 6to4, Teredo, NAT64) — are refused with ``forbidden_target`` naming
the rule, unless an entry of ``BROWSER_SERVICE_ALLOW`` (a CIDR, or ``host:port``) makes an exception.
Cloud metadata service names (``metadata.google.internal`` …) are refused by name too, whatever
they resolve to; ``localhost`` and ``*.localhost`` are loopback without asking DNS.

The check runs on the resolved addresses, so a public name pointing at 127.0.0.1 is refused like the
literal — and the engines connect to exactly the addresses that were checked
(:meth:`NetworkPolicy.resolve_checked`), never resolving the name a second time, so a DNS answer
that changes between the check and the connection (DNS rebinding) cannot redirect a connection.
The resolver is injectable for tests; production uses ``getaddrinfo``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from browser_service.deadline import Deadline
from browser_service.errors import DNSError, ForbiddenTarget, InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Resolves ``(host, port)`` to address strings; raises ``OSError`` (``socket.gaierror``) on failure.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Cloud and container metadata endpoints: AWS/GCP/Azure/Oracle (169.254.169.254), AWS IPv6, AWS ECS
#: task metadata, Alibaba, Oracle's legacy address.
_METADATA = {
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200", "192.0.0.192")
}
#: Metadata services by name, refused whatever they resolve to (rule: metadata).
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    }
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCALHOST = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
#: Characters the URL standard removes anywhere in a URL before parsing it.
_TAB_NEWLINE = re.compile(r"[\t\n\r]")
_C0_SPACE = "".join(map(chr, range(0x21)))
#: What a browser percent-encodes in a path or query that a URL may still hold after the trim: C0
#: controls, space and DEL (left raw, a second pass would trim them once they end the URL).
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
#: Code points a host may not contain (the URL standard's forbidden host code points).
#: The WHATWG URL standard's forbidden domain code points: a host holding one after percent-decoding
#: is invalid in a browser, so here too (``exam%0Aple.com`` is not example.com).
_FORBIDDEN_HOST_CHARS = frozenset(" #%/:<>?@[\\]^|\x7f" + "".join(map(chr, range(0x20))))


@dataclass(frozen=True)
class Target:
    """A checked URL: normalised, with the host, port and the addresses it resolved to."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


def scheme_refusal(scheme: str) -> ForbiddenTarget:
    return ForbiddenTarget(
        f"The scheme {scheme or '(none)'!r} is not allowed (rule: scheme); only http and https URLs are fetched."
    )


def normalize_url(url: str) -> str:
    """Canonical form: lower-case scheme and host (IDNA), no default port, no fragment, path '/',
    controls and spaces in the path and query percent-encoded.

    Parsed the way browsers parse (the WHATWG URL standard) where it matters for the host: tabs
    and newlines are dropped, ``\\`` counts as ``/``, the host is percent-decoded, IDNA-mapped
    (full-width and other look-alike characters fold to ASCII), and an IPv4 address in any
    spelling (``127.1``, ``0x7f.0.0.1``, ``2130706433``, ``0177.0.0.1``) is rewritten canonically.
    User info (``user@``) is dropped: the host is what follows the last ``@``.
    """
    text = _TAB_NEWLINE.sub("", url).strip(_C0_SPACE)
    scheme, colon, rest = text.partition(":")
    if colon and scheme.lower() in _DEFAULT_PORTS:
        # Special schemes: a backslash is a slash before the query (as in every browser).
        cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
        text = f"{scheme}:{rest[:cut].replace(chr(92), '/')}{rest[cut:]}"
    try:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest(f"url: not a valid URL ({exc}).") from None
    if scheme not in _DEFAULT_PORTS:
        raise scheme_refusal(scheme)
    if not host:
        raise InvalidRequest("url: the URL has no host.")
    host = canonical_host(host)
    if not host or (":" not in host and _FORBIDDEN_HOST_CHARS.intersection(host)):
        raise InvalidRequest(f"url: {host!r} is not a valid host.")
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    path, query = (_CONTROL_OR_SPACE.sub(_percent, part) for part in (parts.path or "/", parts.query))
    return urlunsplit((scheme, netloc, path, query, ""))


def _percent(match: re.Match[str]) -> str:
    return f"%{ord(match[0]):02X}"


def canonical_host(host: str) -> str:
    """A host as the policy compares it: decoded, IDNA, lower case, no trailing dot, IPs canonical."""
    host = unquote(host).strip("[]")
    literal = _literal_ip(host)
    if literal is not None:
        return str(literal)
    host = _idna(host.rstrip("."))
    literal = _literal_ip(host)  # IDNA mapping can reveal one: ①②⑦.0.0.1, 127。0。0。1
    # ... and a trailing dot: "metadata.goog。" maps to "metadata.goog." (found by tests/unit/test_guard_props.py).
    return str(literal) if literal is not None else host.rstrip(".")


def host_key(url: str) -> str:
    """The host a URL's traffic goes to, as breakers and politeness count it: ``host[:port]``.

    The port is kept when it is not the scheme's default, since two services on one address fail
    independently.
    """
    return urlsplit(normalize_url(url)).netloc


def _idna(host: str) -> str:
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        # Not encodable by IDNA 2003: keep it lower-cased; DNS will refuse it if it is nonsense.
        return host.lower()


def _literal_ip(host: str) -> IPAddress | None:
    """The address a host string denotes without DNS, including the odd spellings C libraries accept."""
    host = host.strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        # A zone index (fe80::1%eth0) does not change which rule applies; drop it.
        return ipaddress.IPv6Address(int(ip)) if isinstance(ip, ipaddress.IPv6Address) else ip
    candidate = host[:-1] if host.endswith(".") else host
    if not candidate or not all(c.isascii() and (c.isalnum() or c == ".") for c in candidate):
        return None
    try:
        # inet_aton accepts 127.1, 0x7f.0.0.1, 017700000001 and 2130706433 — as browsers and libc do.
        return ipaddress.IPv4Address(socket.inet_aton(candidate))
    except OSError:
        return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, Teredo, NAT64), if any."""
    embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
    if embedded is None and ((int(ip) >> 32 == 0 and int(ip) > 1) or ip in _NAT64):
        embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)  # ::a.b.c.d and 64:ff9b::a.b.c.d
    return embedded


def refusal_rule(ip: IPAddress) -> str | None:
    """Why this address is refused by default, or None for a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return refusal_rule(embedded)
    if ip in _METADATA:
        return "metadata"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link_local"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "cgnat"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "reserved"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """The production resolver: the operating system's ``getaddrinfo``."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class NetworkPolicy:
    """What may be fetched. ``resolver`` (settable) answers DNS questions; tests inject their own."""

    def __init__(self, allow: Iterable[str] = (), *, resolver: Resolver | None = None) -> None:
        self.resolver: Resolver = resolver or system_resolver
        self._networks: list[IPNetwork] = []
        self._host_ports: set[tuple[str, int]] = set()
        for entry in allow:
            self._add(entry.strip())

    def _add(self, entry: str) -> None:
        try:
            self._networks.append(ipaddress.ip_network(entry, strict=False))
            return
        except ValueError:
            pass
        host, sep, port = entry.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ValueError(f"BROWSER_SERVICE_ALLOW entry {entry!r} is neither a CIDR nor host:port")
        self._host_ports.add((canonical_host(host), int(port)))

    def _allowed(self, host: str, port: int, ip: IPAddress | None) -> bool:
        if (host, port) in self._host_ports or (ip is not None and (str(ip), port) in self._host_ports):
            return True
        return ip is not None and any(ip.version == net.version and ip in net for net in self._networks)

    async def check(self, url: str, deadline: Deadline) -> Target:
        """Normalise ``url``, resolve its host and check every address; raise a typed refusal."""
        normalized = normalize_url(url)
        parts = urlsplit(normalized)
        host = (parts.hostname or "").strip("[]")
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
        addresses = await self.resolve_checked(host, port, deadline)
        return Target(normalized, parts.scheme, host, port, addresses)

    async def resolve_checked(self, host: str, port: int, deadline: Deadline) -> tuple[IPAddress, ...]:
        """The addresses to connect to for ``host:port``, every one allowed by the policy.

        Connect to these, not to the name: resolving the name again could answer differently.
        Raises ``forbidden_target`` naming the rule, or ``dns_error``.
        """
        host = canonical_host(host)
        if host in METADATA_HOSTS and not self._allowed(host, port, None):
            raise ForbiddenTarget(
                f"{host} is a cloud metadata service; the network policy refuses it (rule: metadata). "
                "Fetch a public URL instead."
            )
        literal = _literal_ip(host)
        if literal is not None:
            addresses: tuple[IPAddress, ...] = (literal,)
        elif host == "localhost" or host.endswith(".localhost"):
            addresses = _LOCALHOST  # loopback by definition (RFC 6761), as browsers treat it
        else:
            addresses = await self._resolve(host, port, deadline)
        for ip in addresses:
            rule = refusal_rule(ip)
            if rule is not None and not self._allowed(host, port, ip):
                what = f"{host} is" if literal is not None else f"{host} resolves to {ip},"
                raise ForbiddenTarget(
                    f"{what} a {rule.replace('_', '-')} address; the network policy refuses it "
                    f"(rule: {rule}). Fetch a public URL instead; an operator can allow it with "
                    "BROWSER_SERVICE_ALLOW."
                )
        return addresses

    async def _resolve(self, host: str, port: int, deadline: Deadline) -> tuple[IPAddress, ...]:
        try:
            answers = await deadline.run(self.resolver(host, port), "dns", f"resolving {host}")
        except OSError as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise DNSError(
                f"The host {host} could not be resolved ({reason}). Check the URL's spelling; the site may not exist."
            ) from None
        addresses: list[IPAddress] = []
        for answer in answers:
            ip = _literal_ip(str(answer))
            if ip is None:
                raise DNSError(f"The host {host} resolved to {answer!r}, which is not an address.")
            addresses.append(ip)
        if not addresses:
            raise DNSError(f"The host {host} resolved to no address.")
        return tuple(dict.fromkeys(addresses))
