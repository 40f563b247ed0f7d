"""URL normalisation and the network policy that keeps the service from being an SSRF proxy.

By default only public unicast addresses are fetched. Loopback, private, link-local (cloud metadata
at 169.254.169.254 included), CGNAT, multicast, unspecified and reserved addresses — and their IPv6
and IPv4-in-IPv6 forms — are refused with ``forbidden_target`` naming the rule, unless an entry of
``BROWSER_SERVICE_ALLOW`` (a CIDR, or ``host:port``) makes an exception. The check runs on the
resolved addresses, so a public name pointing at 127.0.0.1 is refused like the literal.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from browser_service.deadline import Deadline
from browser_service.errors import DNSError, ForbiddenTarget, InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_DEFAULT_PORTS = {"http": 80, "https": 443}
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


@dataclass(frozen=True)
class Target:
    """A checked URL: normalised, with the host, port and the addresses it resolved to."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


def normalize_url(url: str) -> str:
    """Canonical form: lower-case scheme and host (IDNA), no default port, no fragment, path '/'."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest(f"url: not a valid URL ({exc}).") from None
    if scheme not in _DEFAULT_PORTS:
        raise ForbiddenTarget(
            f"url: scheme {scheme or '(none)'!r} is not allowed (rule: scheme); only http and https are fetched."
        )
    if not host:
        raise InvalidRequest("url: the URL has no host.")
    host = _idna(host.rstrip("."))
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


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
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:
        # inet_aton accepts 127.1, 0x7f.0.0.1, 017700000001 and 2130706433 — as browsers and libc do.
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def refusal_rule(ip: IPAddress) -> str | None:
    """Why this address is refused by default, or None for a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and int(ip) >> 32 == 0 and int(ip) > 1:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)  # IPv4-compatible ::a.b.c.d
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


class NetworkPolicy:
    def __init__(self, allow: Iterable[str] = ()) -> None:
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
        self._host_ports.add((host.strip("[]").lower(), int(port)))

    def _allowed(self, host: str, port: int, ip: IPAddress) -> bool:
        if (host, port) in self._host_ports or (str(ip), port) in self._host_ports:
            return True
        return any(ip.version == net.version and ip in net for net in self._networks)

    async def check(self, url: str, deadline: Deadline) -> Target:
        """Normalise ``url``, resolve its host and check every address; raise a typed refusal."""
        normalized = normalize_url(url)
        parts = urlsplit(normalized)
        host = parts.hostname or ""
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
        literal = _literal_ip(host)
        if literal is not None:
            addresses: tuple[IPAddress, ...] = (literal,)
        else:
            addresses = await self._resolve(host, port, deadline)
        for ip in addresses:
            rule = refusal_rule(ip)
            if rule is not None and not self._allowed(host, port, ip):
                raise ForbiddenTarget(
                    f"{host} resolves to {ip}, a {rule.replace('_', '-')} address; the network policy "
                    f"refuses it (rule: {rule}). Fetch a public URL instead; an operator can allow it "
                    "with BROWSER_SERVICE_ALLOW."
                )
        return Target(normalized, parts.scheme, host, port, addresses)

    async def _resolve(self, host: str, port: int, deadline: Deadline) -> tuple[IPAddress, ...]:
        loop = asyncio.get_running_loop()
        try:
            infos = await deadline.run(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), "dns", f"resolving {host}"
            )
        except socket.gaierror as exc:
            raise DNSError(
                f"The host {host} could not be resolved ({exc.strerror}). Check the URL's spelling; "
                "the site may not exist."
            ) from None
        addresses = tuple(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        if not addresses:
            raise DNSError(f"The host {host} resolved to no address.")
        return addresses
