"""robots.txt: whether a site's rules let this service fetch a URL (``respect_robots``).

Rules are fetched once per origin (scheme, host, port) through the HTTP engine — so the network
policy applies to them like to any page — parsed with protego (RFC 9309 matching, wildcards,
``Allow``/``Disallow`` precedence) and kept for an hour in a bounded table.

What an unusable robots.txt means:

* 4xx (none published) → everything allowed, as RFC 9309 says;
* 5xx, a network error or a timeout → allowed here, unlike RFC 9309's "assume complete disallow":
  this is an on-demand fetch, not a crawl, and the page fetch that follows reports the site's real
  failure (a ``robots_disallowed`` for a site that is merely down would mislead the agent);
* larger than 500 KiB → only the first 500 KiB is read (RFC 9309's minimum).

Rules are matched for the product token ``browser-service``; groups for ``*`` apply otherwise.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from urllib.parse import urlsplit

from protego import Protego

from browser_service.deadline import Deadline
from browser_service.engines.http import HttpEngine
from browser_service.errors import FetchError, RobotsDisallowed

#: The product token robots.txt groups are matched against.
AGENT = "browser-service"
TTL_S = 3600.0
#: An unreachable robots.txt is asked for again sooner.
RETRY_TTL_S = 60.0
MAX_ORIGINS = 10_000
MAX_BYTES = 500 * 1024
#: A slow robots.txt must not eat the request's deadline.
FETCH_CAP_S = 5.0


class RobotsRules:
    def __init__(self, http: HttpEngine) -> None:
        self._http = http
        # origin -> (expires at, rules or None for "everything allowed")
        self._rules: OrderedDict[str, tuple[float, Protego | None]] = OrderedDict()

    async def check(self, url: str, deadline: Deadline) -> None:
        """Raise ``RobotsDisallowed`` if the site's robots.txt disallows ``url`` for this service."""
        rules = await self._rules_for(url, deadline)
        if rules is not None and not rules.can_fetch(url, AGENT):
            parts = urlsplit(url)
            raise RobotsDisallowed(
                f"{parts.scheme}://{parts.netloc}/robots.txt disallows {parts.path or '/'} for automated "
                "clients, and this request respects robots.txt. Do not fetch it; look for the information "
                "elsewhere (or send respect_robots: false if your use is not automated crawling)."
            )

    async def _rules_for(self, url: str, deadline: Deadline) -> Protego | None:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        now = time.monotonic()
        cached = self._rules.get(origin)
        if cached is not None and now < cached[0]:
            self._rules.move_to_end(origin)
            return cached[1]
        rules, reachable = await self._fetch(origin, deadline)
        self._rules[origin] = (now + (TTL_S if reachable else RETRY_TTL_S), rules)
        self._rules.move_to_end(origin)
        while len(self._rules) > MAX_ORIGINS:
            self._rules.popitem(last=False)
        return rules

    async def _fetch(self, origin: str, deadline: Deadline) -> tuple[Protego | None, bool]:
        """(the parsed rules or None when everything is allowed, whether the site answered)."""
        budget = Deadline(min(FETCH_CAP_S, max(0.1, deadline.remaining() / 2)))
        try:
            page = await self._http.fetch(f"{origin}/robots.txt", budget)
        except FetchError:
            return None, False
        if page.status_code >= 500:
            return None, False
        if page.status_code >= 400 or not page.body:
            return None, True
        return Protego.parse(page.body[:MAX_BYTES].decode("utf-8", "replace")), True
