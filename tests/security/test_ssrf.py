"""The network policy against SSRF, end to end: every vector through the real service, and canaries
that must never see a connection.

The layout. The fixture site on 127.0.0.1:P is the only target the service may fetch: its allow list
names exactly that ``host:port``. Canaries — servers that record every connection they accept and
every request, whatever the method — listen where an attacker would aim: 127.0.0.2:P (the same port
on another loopback address; also what the rebinding resolver answers the second time) and
127.0.0.1:Q (the allowed address, another port). Host names resolve only through an injected
resolver that knows a few names, all mapped to loopback, and fails every other name; the browser
has no DNS of its own (its names go to the egress proxy, which asks the same resolver). So no test
sends a packet to a non-loopback address; private, link-local and metadata *addresses* are covered
without traffic in tests/unit/test_guard.py.

Every test asserts the typed outcome — ``forbidden_target`` naming the rule for a main document,
``ok`` with the sub-resource blocked for a sub-resource — and (an autouse fixture) that no canary
saw a connection. Vectors a page carries out by itself (sub-resources, self-navigations) have a
positive control: the same page through a service that allows the control canary (127.0.0.3) must
reach it, so a vector that silently stopped making its request would be noticed.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

from browser_service.contract import FetchRequest, FetchResponse
from browser_service.engines.http import PinnedBackend
from browser_service.errors import ForbiddenTarget
from browser_service.fetcher import Fetcher
from browser_service.guard import NetworkPolicy
from tests.conftest import make_settings
from tests.site import EMBEDS, FixtureServer

pytestmark = pytest.mark.browser

RENDERS = ("http", "browser", "auto")


# --- the network ----------------------------------------------------------------------------------


class _CanaryHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: every request needs a new connection
    server: Canary

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _record(self) -> None:
        with self.server.lock:
            self.server.requests.append(f"{self.command} {self.path}")
        body = b"<html><body><p id='canary'>canary: internal data</p></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _record


class Canary(ThreadingHTTPServer):
    """Records every connection it accepts (a bare preconnect counts) and every request."""

    daemon_threads = True

    def __init__(self, host: str, port: int = 0) -> None:
        super().__init__((host, port), _CanaryHandler)
        self.lock = threading.Lock()
        self.connections = 0
        self.requests: list[str] = []
        threading.Thread(target=self.serve_forever, name=f"canary-{host}", daemon=True).start()

    def verify_request(self, request: object, client_address: object) -> bool:
        with self.lock:
            self.connections += 1
        return True

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def close(self) -> None:
        self.shutdown()
        self.server_close()


@dataclass
class Net:
    origin: FixtureServer  # 127.0.0.1:P, the one allowed target
    near: Canary  # 127.0.0.2:P
    other_port: Canary  # 127.0.0.1:Q
    control: Canary  # 127.0.0.3:R, reachable only through the lenient service

    @property
    def P(self) -> int:
        return int(self.origin.server_address[1])

    @property
    def Q(self) -> int:
        return self.other_port.port

    def canary_url(self, path: str = "/secret") -> str:
        return f"http://127.0.0.2:{self.P}{path}"

    def reached(self) -> dict[str, int]:
        return {"127.0.0.2:P": self.near.connections, "127.0.0.1:Q": self.other_port.connections}

    def site(self, path: str) -> str:
        return self.origin.url(path)


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    for _ in range(20):  # the canary needs the origin's port on 127.0.0.2: retry if it is taken
        origin = FixtureServer("127.0.0.1", 0).start()
        try:
            near = Canary("127.0.0.2", int(origin.server_address[1]))
        except OSError:
            origin.close()
            continue
        break
    else:
        pytest.skip("no port free on both 127.0.0.1 and 127.0.0.2")
    network = Net(origin, near, Canary("127.0.0.1"), Canary("127.0.0.3"))
    yield network
    for server in (network.near, network.other_port, network.control):
        server.close()
    origin.close()


class FakeDNS:
    """Names to successive answers (the last one repeats). Unknown names fail as NXDOMAIN does:
    nothing here ever asks real DNS, and every answer is a loopback address."""

    def __init__(self) -> None:
        self.table: dict[str, list[list[str]]] = {}
        self.calls: collections.Counter[str] = collections.Counter()

    def add(self, name: str, *answers: list[str]) -> None:
        assert all(ipaddress.ip_address(a).is_loopback for answer in answers for a in answer)
        self.table[name] = list(answers)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls[host] += 1
        answers = self.table.get(host)
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[min(self.calls[host], len(answers)) - 1]


SITE, NEAR = ["127.0.0.1"], ["127.0.0.2"]


@pytest.fixture(scope="module")
def dns() -> FakeDNS:
    resolver = FakeDNS()
    resolver.add("site.test", SITE)
    resolver.add("canary.test", NEAR)
    resolver.add("mixed.test", SITE + NEAR)
    resolver.add("metadata.google.internal", SITE)  # refused by name, even pointing at the allowed site
    for name in ("rebind-http.test", "rebind-browser.test", "rebind-auto.test", "rebind-hop.test", "rebind-pool.test"):
        resolver.add(name, SITE, NEAR)  # first the allowed site, then the canary: DNS rebinding
    return resolver


async def _service(tmp: Path, allow: list[str], dns: FakeDNS) -> Fetcher:
    service = Fetcher(make_settings(tmp, allow=allow, retry_attempts=1, pool_size=2, browser_route_checks=True))
    service.policy.resolver = dns  # one policy: the URL check, both engines, the routes and the proxy
    await service.start(launch_browser=True)
    return service


@pytest.fixture(scope="module")
async def strict(net: Net, dns: FakeDNS, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fetcher]:
    """The service under test: only the fixture site's exact host:port is allowed."""
    service = await _service(tmp_path_factory.mktemp("strict"), [f"127.0.0.1:{net.P}"], dns)
    yield service
    await service.close()


@pytest.fixture(scope="module")
async def lenient(net: Net, dns: FakeDNS, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fetcher]:
    """For positive controls only: allows the fixture site and the control canary."""
    service = await _service(
        tmp_path_factory.mktemp("lenient"), [f"127.0.0.1:{net.P}", f"127.0.0.3:{net.control.port}"], dns
    )
    yield service
    await service.close()


@pytest.fixture(autouse=True)
async def no_canary_is_reached(net: Net, strict: Fetcher) -> AsyncIterator[None]:
    before = net.reached()
    yield
    await strict.pool.drained()  # the lease's page is back on about:blank: nothing more will load
    assert net.reached() == before, f"a canary was reached: {net.near.requests + net.other_port.requests}"


async def fetch(
    service: Fetcher, url: str, render: str, timeout_ms: int = 15_000, wait_for: str | None = None
) -> FetchResponse:
    return await service.fetch(
        FetchRequest.model_validate(
            {
                "url": url,
                "render": render,
                "max_age_s": 0,
                "allow_stale": False,
                "timeout_ms": timeout_ms,
                "wait_for": wait_for,
            }
        )
    )


def kind(response: FetchResponse) -> str:
    return "ok" if response.ok else response.error.kind.value if response.error else "?"


def assert_forbidden(response: FetchResponse, rule: str) -> None:
    assert kind(response) == "forbidden_target", (kind(response), response.error)
    assert response.error is not None and f"(rule: {rule})" in response.error.message, response.error.message


def q(url: str) -> str:
    return quote(url, safe="")


# --- 1. URLs that point at a canary, in every spelling --------------------------------------------

DIRECT = [
    ("plain", "http://127.0.0.2:{P}/secret", "loopback"),
    ("short-form", "http://127.2:{P}/secret", "loopback"),
    ("decimal", "http://2130706434:{P}/secret", "loopback"),
    ("hex", "http://0x7f000002:{P}/secret", "loopback"),
    ("hex-dotted", "http://0x7f.0.0.2:{P}/secret", "loopback"),
    ("octal", "http://0177.0.0.02:{P}/secret", "loopback"),
    ("trailing-dot", "http://127.0.0.2.:{P}/secret", "loopback"),
    ("ipv4-mapped", "http://[::ffff:127.0.0.2]:{P}/secret", "loopback"),
    ("ipv4-mapped-hex", "http://[::ffff:7f00:2]:{P}/secret", "loopback"),
    ("ipv4-compatible", "http://[::127.0.0.2]:{P}/secret", "loopback"),
    ("nat64", "http://[64:ff9b::7f00:2]:{P}/secret", "loopback"),
    ("6to4", "http://[2002:7f00:2::]:{P}/secret", "loopback"),
    ("userinfo", "http://example.com@127.0.0.2:{P}/secret", "loopback"),
    ("userinfo-allowed-host", "http://127.0.0.1:{P}@127.0.0.2:{P}/secret", "loopback"),
    ("backslash", "http://127.0.0.2:{P}\\@127.0.0.1:{P}/secret", "loopback"),
    ("percent-encoded", "http://%31%32%37.0.0.2:{P}/secret", "loopback"),
    ("idna-digits", "http://①②⑦.0.0.2:{P}/secret", "loopback"),
    ("ideographic-dots", "http://127。0。0。2:{P}/secret", "loopback"),
    ("https", "https://127.0.0.2:{P}/secret", "loopback"),
    ("other-port", "http://127.0.0.1:{Q}/secret", "loopback"),
    ("localhost", "http://localhost:{Q}/secret", "loopback"),
    ("localhost-caps-dot", "http://LOCALHOST.:{Q}/secret", "loopback"),
    ("localhost-fullwidth", "http://ｌｏｃａｌｈｏｓｔ:{Q}/secret", "loopback"),
    ("localhost-subdomain", "http://app.localhost:{Q}/secret", "loopback"),
    ("unspecified", "http://0.0.0.0:{Q}/secret", "unspecified"),
    ("unspecified-short", "http://0:{Q}/secret", "unspecified"),
    ("unspecified-v6", "http://[::]:{Q}/secret", "unspecified"),
    ("name", "http://canary.test:{P}/secret", "loopback"),
    ("one-bad-answer", "http://mixed.test:{P}/article.html", "loopback"),
    ("metadata-name", "http://metadata.google.internal:{P}/computeMetadata/v1/", "metadata"),
]


@pytest.mark.parametrize("render", RENDERS)
@pytest.mark.parametrize(("url", "rule"), [pytest.param(u, r, id=i) for i, u, r in DIRECT])
async def test_direct_url_is_refused(strict: Fetcher, net: Net, url: str, rule: str, render: str) -> None:
    response = await fetch(strict, url.format(P=net.P, Q=net.Q), render)
    assert_forbidden(response, rule)
    assert len(response.attempts) == 1  # refused by the engine's first check; never retried or escalated


async def test_metadata_name_is_refused_without_resolving(strict: Fetcher, dns: FakeDNS, net: Net) -> None:
    before = dns.calls["metadata.google.internal"]
    assert_forbidden(await fetch(strict, f"http://metadata.google.internal:{net.P}/", "browser"), "metadata")
    assert dns.calls["metadata.google.internal"] == before


async def test_the_allowed_target_itself_is_fetched(strict: Fetcher, net: Net) -> None:
    """The baseline every refusal is measured against: the same service fetches the allowed site,
    by address and by a name, with both engines."""
    for url in (net.site("/article.html"), f"http://site.test:{net.P}/article.html"):
        for render in ("http", "browser"):
            response = await fetch(strict, url, render)
            assert response.ok and "Fresnel" in (response.markdown or ""), (url, render, response.error)
            assert not [w for w in response.warnings if "network policy" in w]


# --- 2. Redirects from the allowed site -----------------------------------------------------------

REDIRECTS = [
    ("301", 301, "{C}", "loopback"),
    ("302", 302, "{C}", "loopback"),
    ("303", 303, "{C}", "loopback"),
    ("307", 307, "{C}", "loopback"),
    ("308", 308, "{C}", "loopback"),
    ("chain", 302, "{S}/redirect-to?to={qC}", "loopback"),
    ("relative-then-away", 302, "/redirect-to?status=307&to={qC}", "loopback"),
    ("odd-spelling", 302, "http://0x7f000002:{P}/secret", "loopback"),
    ("name", 302, "http://canary.test:{P}/secret", "loopback"),
    ("other-port", 301, "http://localhost:{Q}/secret", "loopback"),
    ("metadata-name", 302, "http://metadata.google.internal:{P}/", "metadata"),
    ("protocol-relative", 302, "//127.0.0.2:{P}/secret", "loopback"),
]


@pytest.mark.parametrize("render", RENDERS)
@pytest.mark.parametrize(("status", "to", "rule"), [pytest.param(s, t, r, id=i) for i, s, t, r in REDIRECTS])
async def test_redirect_to_a_canary_is_refused(
    strict: Fetcher, net: Net, status: int, to: str, rule: str, render: str
) -> None:
    target = to.format(C=net.canary_url(), qC=q(net.canary_url()), S=net.site(""), P=net.P, Q=net.Q)
    response = await fetch(strict, net.site(f"/redirect-to?status={status}&to={q(target)}"), render)
    assert_forbidden(response, rule)
    if render != "browser":  # the HTTP engine names the hop; the browser's proxy names the target
        assert response.error is not None and "redirected" in response.error.message


SCHEME_REDIRECTS = [
    "file:///etc/passwd",
    "data:text/html,<h1>hi</h1>",
    "chrome://version",
    "about:config",
    "ws://127.0.0.2:{P}/",
    "ftp://127.0.0.2/",
    "gopher://127.0.0.2:70/",
    "javascript:alert(1)",
]
#: Chromium refuses these redirects itself and does not say where they pointed: the fetch fails
#: (``browser_error``), no request leaves; the HTTP engine names the scheme.
_BROWSER_OPAQUE = {"ftp://127.0.0.2/", "gopher://127.0.0.2:70/", "javascript:alert(1)"}


@pytest.mark.parametrize("render", RENDERS)
@pytest.mark.parametrize("to", SCHEME_REDIRECTS)
async def test_redirect_to_another_scheme_is_refused(strict: Fetcher, net: Net, to: str, render: str) -> None:
    response = await fetch(strict, net.site(f"/redirect-to?to={q(to.format(P=net.P))}"), render)
    if render == "browser" and to in _BROWSER_OPAQUE:
        assert kind(response) == "browser_error"
    else:
        assert_forbidden(response, "scheme")
    assert "root:" not in (response.markdown or "")


# --- 3. Pages that navigate themselves ------------------------------------------------------------

#: how the page moves on → (outcome with render=http, with render=auto). The browser always refuses.
#: The HTTP engine follows a refresh as a redirect hop, which the policy refuses; it runs no script,
#: so of the other ways it answers about the page itself, and auto escalates the script-driven
#: ones (a script and no text) and the framed one (an iframe and no text) to the browser, which
#: refuses them.
NAVIGATIONS = {
    "meta": ("forbidden_target", "forbidden_target"),
    "header": ("forbidden_target", "forbidden_target"),
    "location": ("ok", "forbidden_target"),
    "replace": ("ok", "forbidden_target"),
    "timer": ("ok", "forbidden_target"),
    "form": ("ok", "forbidden_target"),
    "top": ("empty_content", "forbidden_target"),
}


def navigation_url(net: Net, how: str, target: str) -> str:
    return net.site(f"/navigate?how={how}&to={q(target)}")


@pytest.mark.parametrize("render", RENDERS)
@pytest.mark.parametrize("how", NAVIGATIONS)
async def test_self_navigation_to_a_canary(strict: Fetcher, net: Net, how: str, render: str) -> None:
    response = await fetch(strict, navigation_url(net, how, net.canary_url()), render)
    expected = "forbidden_target" if render == "browser" else NAVIGATIONS[how][render == "auto"]
    if expected == "forbidden_target":
        assert_forbidden(response, "loopback")
    else:
        assert kind(response) == expected


@pytest.mark.parametrize("how", ["meta", "header"])
async def test_a_later_refresh_to_a_canary_is_refused(strict: Fetcher, net: Net, how: str) -> None:
    """The refresh comes 1 s after load, with nothing else in flight: the wait holds for it."""
    response = await fetch(strict, net.site(f"/navigate?how={how}&delay=1&to={q(net.canary_url())}"), "browser")
    assert_forbidden(response, "loopback")


@pytest.mark.parametrize("render", ["browser", "auto"])
async def test_self_navigation_into_a_redirect_to_a_canary(strict: Fetcher, net: Net, render: str) -> None:
    """The page moves to an allowed URL (the route guard lets it through) that redirects to the
    canary: the redirect hop is refused by the egress proxy, and still named."""
    via = net.site(f"/redirect-to?to={q(net.canary_url())}")
    response = await fetch(strict, navigation_url(net, "location", via), render)
    assert_forbidden(response, "loopback")


async def test_self_navigations_reach_an_allowed_target(lenient: Fetcher, net: Net) -> None:
    """Positive control: through a service that allows the control canary, each page really goes there
    (the fetch waits for the canary's page, so a slow timer cannot end the fetch before it fires)."""
    control = f"http://127.0.0.3:{net.control.port}/moved"
    for how in NAVIGATIONS:
        before = net.control.connections
        response = await fetch(lenient, navigation_url(net, how, control), "browser", wait_for="#canary")
        assert net.control.connections > before, (how, kind(response))
    for how in ("meta", "header"):  # the HTTP engine follows a refresh
        before = net.control.connections
        response = await fetch(lenient, navigation_url(net, how, control), "http")
        assert net.control.connections > before, (how, kind(response))


# --- 4. Sub-resources: the page loads, the request does not -----------------------------------------

#: Refused by a layer that does not see the request as such (a WebSocket, a bare preconnect, a
#: worker's request): no warning can name them, but they are refused all the same.
UNCOUNTED = {"websocket", "preconnect", "worker", "worker-import"}
#: No network target: Chromium refuses these schemes to web pages itself.
LOCAL_SCHEMES = {"file-frame", "chrome-frame"}
#: Behind the egress proxy Chromium preconnects to the proxy only, not through it to the target, so
#: even an allowed target sees nothing: a preconnect cannot reach anything (its test still runs).
NO_CONTROL = LOCAL_SCHEMES | {"preconnect"}
SUB_RESOURCES = sorted(EMBEDS)


def embed_url(net: Net, embed: str, target: str) -> str:
    return net.site(f"/embed?kind={embed}&to={q(target)}")


@pytest.mark.parametrize("embed", SUB_RESOURCES)
async def test_sub_resource_to_a_canary_is_blocked(strict: Fetcher, net: Net, embed: str) -> None:
    response = await fetch(strict, embed_url(net, embed, net.canary_url("/secret.png")), "browser")
    assert response.ok, response.error
    assert "Fresnel" in (response.markdown or "") and "internal data" not in (response.markdown or "")
    blocked = [w for w in response.warnings if "network policy blocked" in w]
    if embed in UNCOUNTED or embed in LOCAL_SCHEMES:
        assert not blocked or "127.0.0.2" in blocked[0]
    elif embed == "fetch-redirect" and not blocked:
        # Chromium reports the refused hop of a fetch() either as its own request (then as above)
        # or as a failure of the first URL, whose host is allowed: then it is named as redirected.
        redirected = [w for w in response.warnings if "redirected to an address the network policy refuses" in w]
        assert len(redirected) == 1 and f"fetch {net.site('/redirect-to?to=')}" in redirected[0], response.warnings
    else:
        assert blocked and "127.0.0.2" in blocked[0], response.warnings
    assert "root:" not in (response.markdown or "")


async def test_sub_resources_reach_an_allowed_target(lenient: Fetcher, net: Net) -> None:
    """Positive control: each embed really makes its request when the policy allows the target. A
    worker's request comes when the worker gets to it: its page says when (``#worker-done``)."""
    missed = []
    for embed in SUB_RESOURCES:
        if embed in NO_CONTROL:
            continue
        before = net.control.connections
        target = f"http://127.0.0.3:{net.control.port}/x.png"
        wait_for = "#worker-done" if embed.startswith("worker") else None
        response = await fetch(lenient, embed_url(net, embed, target), "browser", wait_for=wait_for)
        await lenient.pool.drained()
        if not (response.ok and net.control.connections > before):
            missed.append(embed)
    assert missed == []


# --- 5. DNS rebinding: the address checked is the address connected to ------------------------------


@pytest.mark.parametrize("render", RENDERS)
async def test_dns_rebinding_cannot_move_a_connection(strict: Fetcher, dns: FakeDNS, net: Net, render: str) -> None:
    """The resolver answers the allowed site first and the canary on every later lookup. Each
    engine resolves once, checks that answer and connects to it: the canary is never reached."""
    name = f"rebind-{render}.test"
    response = await fetch(strict, f"http://{name}:{net.P}/article.html", render)
    assert response.ok and "Fresnel" in (response.markdown or ""), response.error
    assert dns.calls[name] == 1
    # A later request asks again, gets the canary's address and is refused.
    assert_forbidden(await fetch(strict, f"http://{name}:{net.P}/article.html", render), "loopback")


async def test_dns_rebinding_on_a_browser_redirect_hop(strict: Fetcher, dns: FakeDNS, net: Net) -> None:
    """A redirect hop is not seen by the route guard: the egress proxy resolves it, once, and
    connects to the address it checked."""
    hop = f"http://rebind-hop.test:{net.P}/article.html"
    response = await fetch(strict, net.site(f"/redirect-to?to={q(hop)}"), "browser")
    assert response.ok and "Fresnel" in (response.markdown or ""), response.error
    assert dns.calls["rebind-hop.test"] == 1


async def test_pinned_backend_connects_to_the_checked_answer(dns: FakeDNS, net: Net) -> None:
    """The HTTP engine's network backend on its own: a host it was not handed checked addresses
    for is resolved and checked once, and the connection goes to that answer."""
    policy = NetworkPolicy([f"127.0.0.1:{net.P}"], resolver=dns)
    backend = PinnedBackend(policy)
    stream = await backend.connect_tcp("rebind-pool.test", net.P, timeout=5)
    try:
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", net.P)
    finally:
        await stream.aclose()
    assert dns.calls["rebind-pool.test"] == 1
    with pytest.raises(ForbiddenTarget, match="rule: loopback"):
        await backend.connect_tcp("rebind-pool.test", net.P, timeout=5)  # now the canary: refused
    with pytest.raises(ForbiddenTarget, match="rule: loopback"):
        await backend.connect_tcp("127.0.0.2", net.P, timeout=5)


async def test_browser_has_no_dns_of_its_own(strict: Fetcher, net: Net) -> None:
    """``site.test`` exists only in the injected resolver, so the browser loading it proves its names
    go to the egress proxy; an unknown name is a dns_error, not a leak to the system resolver."""
    assert (await fetch(strict, f"http://site.test:{net.P}/article.html", "browser")).ok
    assert kind(await fetch(strict, f"http://nowhere.test:{net.P}/", "browser")) == "dns_error"


async def test_egress_refusals_are_counted(strict: Fetcher) -> None:
    assert strict.pool.egress.refused > 0 and strict.pool.egress.tunnels_opened > 0


async def test_concurrent_vectors_do_not_interfere(strict: Fetcher, net: Net) -> None:
    """Refusals are per lease: a refused page and a clean page fetched at once each get their own answer."""
    refused, clean = await asyncio.gather(
        fetch(strict, navigation_url(net, "location", net.canary_url()), "browser"),
        fetch(strict, net.site("/article.html"), "browser"),
    )
    assert_forbidden(refused, "loopback")
    assert clean.ok and not [w for w in clean.warnings if "network policy" in w]


async def test_nothing_outlives_its_lease(strict: Fetcher, net: Net) -> None:
    """Popups are closed as they open (the pool's rule), and between leases the route guard lets
    nothing load: no page outlives its lease."""
    response = await fetch(strict, embed_url(net, "popup", net.site("/article.html?popup")), "browser")
    assert response.ok
    await strict.pool.drained()
    await asyncio.sleep(0.5)  # time for a late popup to appear (and be closed)
    assert strict.pool.open_pages() == strict.pool.idle_slots


# --- 6. The egress proxy alone (BROWSER_SERVICE_BROWSER_ROUTE_CHECKS=false) ------------------------


@pytest.fixture(scope="module")
async def proxy_only(net: Net, dns: FakeDNS, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fetcher]:
    """The strict policy with the per-request route guard off: every connection still goes through
    the egress proxy, which must hold every vector by itself."""
    tmp = tmp_path_factory.mktemp("proxy-only")
    service = Fetcher(
        make_settings(tmp, allow=[f"127.0.0.1:{net.P}"], retry_attempts=1, pool_size=2, browser_route_checks=False)
    )
    service.policy.resolver = dns
    await service.start(launch_browser=True)
    yield service
    await service.close()


async def fetch_and_drain(service: Fetcher, url: str) -> FetchResponse:
    response = await fetch(service, url, "browser")
    await service.pool.drained()
    return response


@pytest.mark.parametrize(("status", "to", "rule"), [pytest.param(s, t, r, id=i) for i, s, t, r in REDIRECTS])
async def test_proxy_alone_refuses_redirects(proxy_only: Fetcher, net: Net, status: int, to: str, rule: str) -> None:
    target = to.format(C=net.canary_url(), qC=q(net.canary_url()), S=net.site(""), P=net.P, Q=net.Q)
    response = await fetch_and_drain(proxy_only, net.site(f"/redirect-to?status={status}&to={q(target)}"))
    assert_forbidden(response, rule)


@pytest.mark.parametrize("how", NAVIGATIONS)
async def test_proxy_alone_refuses_self_navigation(proxy_only: Fetcher, net: Net, how: str) -> None:
    assert_forbidden(await fetch_and_drain(proxy_only, navigation_url(net, how, net.canary_url())), "loopback")


#: Refusals the page's own request events report (the rest — popups, WebSockets, workers,
#: preconnects, and what Chromium drops itself — are refused without a trace on the page). A
#: frame's form submission is left out: it fails whenever the frame gets to it, possibly after the
#: page has been read (refused all the same: no canary is reached).
PROXY_COUNTED = {
    "img", "picture", "srcset", "iframe", "frame-redirect", "object", "embed", "script", "module",
    "stylesheet", "css-url", "css-import", "font", "svg-image", "fetch", "fetch-no-cors",
    "fetch-redirect", "xhr",
}  # fmt: skip


@pytest.mark.parametrize("embed", SUB_RESOURCES)
async def test_proxy_alone_blocks_sub_resources(proxy_only: Fetcher, net: Net, embed: str) -> None:
    response = await fetch_and_drain(proxy_only, embed_url(net, embed, net.canary_url("/secret.png")))
    assert response.ok, response.error
    assert "internal data" not in (response.markdown or "")
    if embed in PROXY_COUNTED:
        assert [w for w in response.warnings if "network policy blocked" in w], response.warnings


async def test_proxy_alone_pins_rebinding(proxy_only: Fetcher, dns: FakeDNS, net: Net) -> None:
    dns.add("rebind-proxy.test", SITE, NEAR)
    response = await fetch_and_drain(proxy_only, f"http://rebind-proxy.test:{net.P}/article.html")
    assert response.ok and dns.calls["rebind-proxy.test"] == 1
    assert_forbidden(await fetch_and_drain(proxy_only, f"http://rebind-proxy.test:{net.P}/"), "loopback")
