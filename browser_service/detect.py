"""Classification of a raw page before extraction: is this the content, or a failure dressed as a page?

Both engines' pages are judged here by the same rules, so a 404 is ``not_found`` whether it came over
HTTP or through Chromium. :func:`judge` returns a :class:`Verdict` — the kind, the vendor, the signals
that decided it, and whether a real browser may pass it by itself (``challenge``); :func:`classify`
raises the typed error the verdict stands for; :func:`block_markers` lists block-page markup found in
any HTML (to flag a page judged ``ok`` that still carries some).

Decision order — the first step that reaches a verdict wins:

1. **Status without content**: 1xx/3xx (e.g. a 304 revalidation) are ``ok``; nothing to judge.
2. **Headers** a vendor documents as its verdict: ``cf-mitigated: challenge``, ``x-amzn-waf-action``,
   ``x-vercel-mitigated``, ``x-sucuri-block``, Kasada ``x-kpsdk-*`` on 403/429.
3. **URLs**: a redirect to Google's ``/sorry/``, DataDome's CAPTCHA, Alibaba's ``punish`` page.
4. **Vendor page rules** (:data:`VENDOR_RULES`, data): each rule scores its evidence — the whole page
   title (2), structural markers in tags and scripts (2; 1 when normal pages carry them too), phrases
   in the visible text (1; distinctive sentences 2), +1 for a ≥ 400 status, +1 when the vendor's
   headers, cookies or scripts are present (:data:`PRESENCE`) — and fires at 3; the best score wins.
   Evidence is looked for only where it means something: titles must match whole; markup markers in
   tags and scripts only (an article's code sample quoting ``_cf_chl_opt`` is text, not markup);
   phrases in the visible text (scripts, styles, ``<noscript>`` and ``<head>`` removed). On a 2xx page,
   wording alone never gets the status or presence bonus, and counts at most 1 unless the page is
   tiny. Pages with much visible text are not judged by vendor markers at all (block pages are short),
   so vendor scripts, cookies and headers on normal pages never make a block by themselves.
   Post-rules: a Cloudflare error code decides between blocked (1005-1012, 1020), rate-limited (1015)
   and the origin's failure (5xx pages); DataDome's ``dd`` object between CAPTCHA, device check and IP
   ban; a hard block page that offers a CAPTCHA widget is a ``captcha``.
5. **Binary** content is ``unsupported_content`` (after the status: a binary 404 is still not found).
6. **Errors (≥ 400)**: 401, or a 403 login page → ``login_required``; 429, or a 403/503 "too many
   requests" page or ``x-ratelimit-remaining: 0`` → ``rate_limited``; bot-block wording on a short
   403/405/406/503 page (or "access denied" with a bot-management vendor present), or status 999 →
   ``blocked``; a short page whose main thing is a CAPTCHA → ``captcha``; then 404/410 →
   ``not_found``, anything else → ``http_error`` (retryable for :data:`RETRYABLE_STATUSES`).
7. **2xx pages**: login wall (final URL on a login path, or redirected to an auth path or host; a
   short page whose main thing is a password form; "sign in to continue" wording on a short page) →
   ``login_required``; soft 404 (a short page whose title or ``<h1>`` *is* "Page not found", with
   little running prose, or a redirect to ``/404``) → ``not_found``; a tiny page titled "Too Many
   Requests" → ``rate_limited``; a tiny page titled "Access Denied" → ``blocked``; a short CAPTCHA
   interstitial (a widget and CAPTCHA wording, no other form fields) → ``captcha``; no visible text →
   ``empty_content``; else ``ok``.

Size decides a lot, deliberately: the visible text length separates an interstitial from an article
about interstitials. Empty pages: the HTTP engine sees app shells before rendering, and ``render=auto``
escalates those to the browser before judging — so an empty HTTP page that has scripts is left ``ok``
(the caller chose ``render=http``; the answer stage still refuses empty text), while an empty page
without scripts, or an empty rendered page, is ``empty_content``; text inside ``<noscript>`` (Discourse
and some CMSs serve the whole content there) counts as content. JSON and plain-text answers are judged
by status and, on errors, by vendor markers only: they are never ``empty_content`` unless zero bytes.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser

from browser_service.engines.base import RawPage, binary_signature
from browser_service.errors import (
    Blocked,
    Captcha,
    EmptyContent,
    FetchError,
    HTTPStatusError,
    LoginRequired,
    NotFound,
    RateLimited,
    UnsupportedContent,
)
from browser_service.render_policy import LOADING_WORDS
from extractors.dom import flatten_shadow_roots

VerdictKind = Literal[
    "ok",
    "blocked",
    "captcha",
    "login_required",
    "not_found",
    "rate_limited",
    "empty_content",
    "http_error",
    "unsupported_content",
]

#: Statuses worth retrying: the origin may answer differently in a moment.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

#: A 2xx page with more visible text than this is content, whatever vendor scripts it carries.
BLOCK_PAGE_TEXT = 3_000
#: The same bound for ≥ 400 answers, whose error pages may carry the site's navigation and footer.
ERROR_PAGE_TEXT = 10_000
#: Below this a 2xx page is "tiny": visible phrases may count fully towards a vendor rule.
TINY_PAGE_TEXT = 1_000
#: Login walls and CAPTCHA interstitials are short.
SHORT_PAGE_TEXT = 2_000
#: Soft-404 titles are trusted up to this much visible text (real 404 pages carry navigation)…
SOFT_404_TEXT = 6_000
#: …and this much running prose: more is an article or documentation page about "not found".
SOFT_404_PROSE = 1_200
#: Fewer visible characters than this (placeholders such as "Loading…" removed) is an empty page.
EMPTY_TEXT = 20
#: …unless its ``<noscript>`` holds at least this much text: content served for readers without JavaScript.
NOSCRIPT_CONTENT = 200
#: "Prominent" text: the title, the ``<h1>`` and the first characters of the visible text.
LEAD_CHARS = 600
#: Markers are looked for in the first characters of a page only; block pages are small.
MAX_SCAN_CHARS = 2_000_000
#: The score at which a vendor rule fires.
FIRE = 3


# --- the verdict ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What a raw page is, who said so and why."""

    kind: VerdictKind
    vendor: str | None = None
    signals: tuple[str, ...] = ()
    #: True when a real browser running JavaScript may pass it by itself (a JS challenge or
    #: interstitial); False for hard blocks and for CAPTCHAs that need a human.
    challenge: bool = False

    @property
    def ok(self) -> bool:
        return self.kind == "ok"

    def error(self, page: RawPage) -> FetchError | None:
        """The typed error this verdict stands for, with a message written for an agent; None when ok."""
        return _ERROR_BUILDERS[self.kind](self, page)


# --- public API ----------------------------------------------------------------------------------


def judge(page: RawPage) -> Verdict:
    """Judge ``page``: usable content (``ok``) or which failure it is; see the module docstring."""
    status = page.status_code
    if status < 200 or 300 <= status < 400:
        return Verdict("ok", signals=(f"status={status}",))
    p = _Page(page)
    verdict = _by_headers(p) or _by_url(p) or _by_vendor_rules(p)
    if verdict is not None:
        return verdict
    if page.kind == "binary":
        return (
            _by_status(p) if status >= 400 else Verdict("unsupported_content", signals=(f"type={page.content_type}",))
        )
    if status >= 400:
        return _login_wall(p) or _rate_limit_page(p) or _generic_block(p) or _captcha_interstitial(p) or _by_status(p)
    return (
        _login_wall(p)
        or _soft_404(p)
        or _rate_limit_page(p)
        or _generic_block(p)
        or _captcha_interstitial(p)
        or _empty(p)
        or Verdict("ok")
    )


def classify(page: RawPage) -> None:
    """Raise the typed error that describes ``page`` if it is not usable content; return if it is."""
    error = judge(page).error(page)
    if error is not None:
        raise error


def block_markers(html: str, title: str | None = None) -> tuple[str, ...]:
    """Strong block/CAPTCHA markers in ``html``: markup and titles that only block pages carry.

    Vendor scripts, cookies and widgets that sit on normal pages (Cloudflare's ``jsd`` script, the
    ``_Incapsula_Resource`` loader, Akamai's sensor, a PerimeterX app id, an embedded reCAPTCHA) are not
    markers; neither is text (an article may quote a block page). Used to flag block markers inside a
    page that was otherwise judged ``ok``. ``title``: the page's title when already known (as the
    browser read it), so the page is not parsed for it.
    """
    p = _Page.from_html(html, title)
    found: list[str] = []
    for rule in VENDOR_RULES:
        for marker in rule.titles:
            if marker.strong and marker.weight >= 2 and marker.pattern.fullmatch(p.norm_title):
                found.append(f"title={p.title}")
        for marker in rule.markup:
            if marker.strong and marker.weight >= 2 and marker.pattern.search(p.markup_lc):
                found.append(f"marker={marker.label}")
    return tuple(dict.fromkeys(found))


#: Schema.org markup Google asks publishers to put on paywalled articles.
_NOT_FREE = re.compile(r"[\"']isAccessibleForFree[\"']\s*:\s*(?:false\b|[\"']false[\"'])", re.I)
#: An element named as a paywall (class or id), the way paywall scripts and CMS templates name it.
_PAYWALL_ELEMENT = re.compile(
    r"<[a-z][^>]*\b(?:class|id)\s*=\s*[\"'][^\"']*\b(?:paywall|pay-wall|regwall|premium-wall|piano-offer|"
    r"tp-modal|meteredContent|subscriber-only|subscription-wall)\b",
    re.I,
)
_PAYWALL_WORDS = re.compile(
    r"\b(?:subscribe|subscription|sign up|register|log in|sign in) (?:now )?to (?:continue|keep) reading\b"
    r"|\bto continue reading,? (?:subscribe|sign in|log in|become a (?:member|subscriber))\b"
    r"|\b(?:this (?:article|story|content) is (?:only )?(?:for|available to) (?:subscribers|members))\b"
    r"|\bsubscribers only\b|\byou have read (?:all of )?your (?:\d+ )?free articles\b",
    re.I,
)


def paywall(html: str) -> tuple[str, ...]:
    """Why ``html`` looks like a paywalled article (a teaser and an offer), or ``()``.

    A paywall page is content, not a failure: the teaser is real text. So it is never a verdict, but the
    answer says it is only the teaser (a warning and the quality signal ``paywall``). Evidence: the
    schema.org ``isAccessibleForFree: false`` markup, or an element named as a paywall together with
    "subscribe to continue reading" wording — either alone on a page is weak (a site's subscribe box
    sits on free articles too), so the wording needs the element or the markup.
    """
    source = html[:MAX_SCAN_CHARS]
    signals: list[str] = []
    if _NOT_FREE.search(source):
        signals.append("isAccessibleForFree=false")
    element = _PAYWALL_ELEMENT.search(source)
    words = _PAYWALL_WORDS.search(source)
    if words and (element or signals):
        if element:
            signals.append("element=paywall")
        signals.append(f"text={_collapse(words.group(0)).lower()}")
    elif element and signals:
        signals.append("element=paywall")
    return tuple(signals)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date. None if absent or unparsable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def rate_limit_wait(headers: dict[str, str], now: float | None = None) -> float | None:
    """Seconds to wait before retrying: ``Retry-After``, else an ``x-ratelimit-reset``/``ratelimit-reset``."""
    wait = parse_retry_after(headers.get("retry-after"), now)
    if wait is not None:
        return wait
    for name in ("x-ratelimit-reset", "ratelimit-reset", "x-rate-limit-reset"):
        value = headers.get(name, "").strip()
        if value.isdigit():
            number = float(value)
            # Large values are an epoch time (GitHub, Twitter), small ones delta-seconds (IETF draft).
            return max(0.0, number - (time.time() if now is None else now)) if number > 1e9 else number
    return None


# --- page features -------------------------------------------------------------------------------

_MARKUP = re.compile(r"<script\b[^>]*>.*?</script\s*>|<[a-zA-Z!/][^>]*>", re.S | re.I)
_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.S | re.I)
_INVISIBLE = ["script", "style", "noscript", "template", "svg", "head"]
_WS = re.compile(r"\s+")
_PASSWORD = re.compile(r"<input\b[^>]*\btype\s*=\s*[\"']?password\b", re.I)
_INPUT = re.compile(r"<input\b[^>]*>", re.I)
_NOT_TYPING = re.compile(
    r"\btype\s*=\s*[\"']?(hidden|submit|button|checkbox|radio|image|reset|password|file|range|color)\b", re.I
)
_TEXTAREA = re.compile(r"<textarea\b", re.I)
_SCRIPT = re.compile(r"<script\b", re.I)
_NOSCRIPT = re.compile(r"<noscript\b[^>]*>(.*?)</noscript\s*>", re.S | re.I)
_PLACEHOLDERS = re.compile(
    rf"\b({LOADING_WORDS})\b\W*"
    r"|you need to enable javascript to run this app\W*"
    r"|(please )?(enable|turn on) javascript( to (continue|view this (page|site)))?\W*"
    r"|javascript is (required|disabled)\W*",
    re.I,
)
_SET_COOKIE_NAME = re.compile(r"(?:^|[,\n])\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)=")


def _collapse(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _norm_title(title: str) -> str:
    """Lower-case, whitespace collapsed, trailing dots/ellipsis/exclamation removed: for whole-title rules."""
    return _collapse(title).lower().rstrip(" .…!")


class _Page:
    """The features of a raw page that the rules look at, each computed once and only when needed."""

    def __init__(self, raw: RawPage | None, html: str = "") -> None:
        self.status, self.kind, self.engine = 200, "html", "browser"
        self.headers: dict[str, str] = {}
        self.url = self.final_url = ""
        self.redirects: list[str] = []
        self.source = html[:MAX_SCAN_CHARS]
        self.body_bytes = len(html)
        self._title: str | None = None
        if raw is not None:
            self.status, self.kind, self.engine = raw.status_code, raw.kind, raw.engine
            self.headers, self.url, self.final_url, self.redirects = raw.headers, raw.url, raw.final_url, raw.redirects
            text = raw.text if raw.text is not None else raw.body[:MAX_SCAN_CHARS].decode("utf-8", "replace")
            self.source = text[:MAX_SCAN_CHARS] if raw.kind != "binary" else ""
            self.body_bytes = len(raw.body)
            self._title = raw.title

    @classmethod
    def from_html(cls, html: str, title: str | None = None) -> _Page:
        page = cls(None, html)
        page._title = title
        return page

    @property
    def is_html(self) -> bool:
        return self.kind == "html"

    @cached_property
    def markup(self) -> str:
        """Tags (with their attributes) and script bodies, without text: where structural markers live."""
        if not self.is_html:
            return self.source  # JSON / plain text: the whole answer
        return "\n".join(_MARKUP.findall(self.source))

    @cached_property
    def markup_lc(self) -> str:
        return self.markup.lower()

    @cached_property
    def text_lc(self) -> str:
        return self.text.lower()

    @cached_property
    def _parsed(self) -> tuple[str, str, str]:
        """(title, first h1, visible text)."""
        if not self.is_html:
            return "", "", _collapse(self.source)
        if not self.source.strip():
            return self._title or "", "", ""
        try:
            tree = LexborHTMLParser(flatten_shadow_roots(self.source))
            title_node = tree.css_first("title")
            title = self._title or (title_node.text() if title_node is not None else "")
            h1 = tree.css_first("h1")
            heading = _collapse(h1.text(separator=" ")) if h1 is not None else ""
            tree.strip_tags(_INVISIBLE)
            body = tree.body
            text = _collapse(body.text(deep=True, separator=" ", strip=False)) if body is not None else ""
        except Exception:  # lexbor raises its own errors on pathological input: fall back to regexes
            match = _TITLE.search(self.source)
            title = self._title or (match.group(1) if match else "")
            heading, text = "", _collapse(re.sub(r"<[^>]+>", " ", self.source))
        return _collapse(title), heading, text

    @property
    def title(self) -> str:
        if self._title:  # known (the browser read it): no parse needed for it
            return _collapse(self._title)
        return self._parsed[0]

    @cached_property
    def norm_title(self) -> str:
        return _norm_title(self.title)

    @property
    def h1(self) -> str:
        return self._parsed[1]

    @property
    def text(self) -> str:
        return self._parsed[2]

    @property
    def text_len(self) -> int:
        return len(self.text)

    @cached_property
    def lead(self) -> str:
        """Title, h1 and the start of the visible text: where a block or login page states its point."""
        return f"{self.title}\n{self.h1}\n{self.text[:LEAD_CHARS]}"

    @cached_property
    def cookies(self) -> frozenset[str]:
        """Names of the cookies the answer sets (``set-cookie`` joined by commas or newlines)."""
        return frozenset(_SET_COOKIE_NAME.findall(self.headers.get("set-cookie", "")))

    @cached_property
    def present(self) -> tuple[str, ...]:
        """Vendors whose headers, cookies or scripts are present — on normal pages too; never a verdict."""
        return tuple(presence.vendor for presence in PRESENCE if presence.found(self))

    @cached_property
    def noscript_text(self) -> str:
        """Text inside ``<noscript>``: a browser running JavaScript does not show it, but it is content."""
        if not self.is_html:
            return ""
        return _collapse(" ".join(re.sub(r"<[^>]+>", " ", m) for m in _NOSCRIPT.findall(self.source)))

    @cached_property
    def prose_len(self) -> int:
        """Characters of running prose (paragraphs, code, quotes, table cells) outside navigation and footers.

        A soft 404 says one or two sentences; a documentation page *about* HTTP 404 says a lot more.
        """
        if not self.is_html or not self.source.strip():
            return 0
        try:
            tree = LexborHTMLParser(self.source)
            for node in tree.css("nav, header, footer, aside, script, style, noscript, template"):
                node.decompose()
            return sum(len(_collapse(node.text(separator=" "))) for node in tree.css("p, pre, blockquote, dd, td"))
        except Exception:  # lexbor's own errors on pathological input: no prose known
            return 0

    @property
    def vendor_present(self) -> str | None:
        return self.present[0] if self.present else None

    @cached_property
    def has_password(self) -> bool:
        return bool(_PASSWORD.search(self.markup))

    @cached_property
    def typing_fields(self) -> int:
        """Visible fields a person types into (text, email, textarea…): forms, not a CAPTCHA page."""
        inputs = sum(1 for tag in _INPUT.findall(self.markup) if not _NOT_TYPING.search(tag))
        return inputs + len(_TEXTAREA.findall(self.markup))

    @cached_property
    def has_scripts(self) -> bool:
        return bool(_SCRIPT.search(self.markup))

    @cached_property
    def widget(self) -> str | None:
        """The vendor of a CAPTCHA widget in the page (embedded widgets sit on normal forms too)."""
        return next((vendor for vendor, pattern in WIDGETS if pattern.search(self.markup_lc)), None)

    def judged_by_markers(self) -> bool:
        """Whether the page is short enough for vendor markers to mean a block page."""
        if not self.is_html:
            return self.status >= 400
        return self.text_len < (ERROR_PAGE_TEXT if self.status >= 400 else BLOCK_PAGE_TEXT)


# --- vendor presence (never a verdict alone; names the vendor of a generic block) ----------------


@dataclass(frozen=True)
class Presence:
    """How to tell a vendor is in front of a site — true on its normal pages too, so never a verdict."""

    vendor: str
    headers: tuple[str, ...] = ()  # "name" (any value) or "name=value-regex"
    cookies: str | None = None  # regex matched at the start of a set-cookie name
    markup: str | None = None  # regex searched in tags and scripts

    def found(self, p: _Page) -> bool:
        for spec in self.headers:
            name, _, value = spec.partition("=")
            if name in p.headers and re.search(value, p.headers[name], re.I):
                return True
        if self.cookies and any(re.match(self.cookies, name) for name in p.cookies):
            return True
        return bool(self.markup and p.is_html and re.search(self.markup, p.markup))


#: Bot-management vendors first, CDNs last: the first vendor present names a generic block.
# fmt: off
PRESENCE: tuple[Presence, ...] = (
    Presence("datadome", ("x-datadome", "x-dd-b", "server=datadome"), "datadome", r"js\.datadome\.co|captcha-delivery"),
    Presence("perimeterx", (), r"_px3|_pxhd|_px2|_pxvid|pxcts", r"_pxAppId|perimeterx\.net|px-cdn\.net|px-cloud\.net"),
    Presence("kasada", ("x-kpsdk-ct", "x-kpsdk-cd", "x-kpsdk-st"), r"tkrm_alpekz_s1\.3", r"KPSDK\."),
    Presence("imperva", ("x-iinfo", "x-cdn=incapsula|imperva"), r"visid_incap_|incap_ses_|nlbi_|reese84|___utmvc",
             r"_Incapsula_Resource"),
    Presence("akamai", ("server=akamaighost|akamainetstorage",), r"_abck|ak_bmsc|bm_sz|bm_sv",
             r"errors\.edgesuite\.net"),
    Presence("aws_waf", ("x-amzn-waf-action",), r"aws-waf-token", r"awswaf\.com"),
    Presence("sucuri", ("server=sucuri", "x-sucuri-id", "x-sucuri-cache")),
    Presence("ddos_guard", ("server=ddos-guard",), r"__ddg1|__ddg2|__ddgid|__ddgmark"),
    Presence("f5", (), r"TS[0-9a-f]{6,8}$|BIGipServer"),
    Presence("radware", (), None, r"perfdrive\.com|SSJSConnectorObj"),
    Presence("vercel", ("x-vercel-mitigated",)),
    Presence("cloudflare", ("server=cloudflare", "cf-ray", "cf-mitigated"), r"__cf_bm|cf_clearance|__cfduid|cf_chl",
             r"/cdn-cgi/"),
)

#: CAPTCHA widgets: embedded in contact forms on normal pages, the main thing on an interstitial.
WIDGETS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((vendor, re.compile(regex)) for vendor, regex in (
    ("perimeterx", r"\bid\s*=\s*[\"']?px-captcha|captcha\.px-c(dn|loud)\.net|/captcha/captcha\.js\?a=c"),
    ("distil", r"distilcaptchaform"),
    ("datadome", r"captcha-delivery\.com/captcha"),
    ("aws_waf", r"captcha\.awswaf\.com|awswafcaptcha"),
    ("cloudflare", r"cf-captcha-container|cf_captcha_kind|chk_captcha|cf-challenge-hcaptcha-wrapper"),
    ("recaptcha", r"\bg-recaptcha\b|/recaptcha/(api|enterprise)|recaptcha\.net/recaptcha"),
    ("hcaptcha", r"\bh-captcha\b|hcaptcha\.com/(1/api|captcha)"),
    ("cloudflare", r"\bcf-turnstile\b|challenges\.cloudflare\.com/turnstile"),
    ("arkose", r"arkoselabs\.com|funcaptcha"),
    ("geetest", r"geetest\.com|initgeetest"),
    ("radware", r"captcha\.perfdrive\.com"),
    ("amazon", r"/errors/validatecaptcha"),
))
# fmt: on


# --- vendor rules (data) -------------------------------------------------------------------------


@dataclass(frozen=True)
class Marker:
    """One piece of evidence; ``strong`` (and weight 2): only block pages carry it (see :func:`block_markers`)."""

    label: str
    pattern: re.Pattern[str]
    weight: int = 2
    strong: bool = True


def _lit(*literals: str, weight: int = 2, strong: bool = True) -> tuple[Marker, ...]:
    return tuple(Marker(lit, re.compile(re.escape(lit.lower())), weight, strong) for lit in literals)


def _rx(label: str, regex: str, weight: int = 2, strong: bool = True) -> Marker:
    """A regex marker, written in lower case: it is matched against lower-cased pages (faster than re.I)."""
    return Marker(label, re.compile(regex), weight, strong)


@dataclass(frozen=True)
class VendorRule:
    """A vendor's block, challenge or CAPTCHA page, recognised by its title, markup and wording."""

    name: str
    vendor: str
    kind: Literal["blocked", "captcha", "rate_limited"]
    challenge: bool = False
    titles: tuple[Marker, ...] = ()  # matched against the whole normalised title
    markup: tuple[Marker, ...] = ()  # matched in tags, attributes and scripts
    text: tuple[Marker, ...] = ()  # matched in the visible text
    statuses: frozenset[int] | None = None  # fires only on these statuses


_CF_CODE = re.compile(
    r"cf-error-code[^>]*>\s*(\d{3,4})|error code:?\s*(?:</[^>]+>\s*)?(\d{3,4})|\berror\s+(\d{3,4})\b", re.I
)
_UUID = r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}"

# Weights: 2 = decisive for this vendor's page, 1 = supporting. strong=False: also on normal pages.
# fmt: off
VENDOR_RULES: tuple[VendorRule, ...] = (
    VendorRule("cloudflare_challenge", "cloudflare", "blocked", challenge=True,
        titles=(_rx("Just a moment...", r"just a moment|один момент|un moment|einen moment|un momento|um momento"
                    r"|un instant|even geduld|chwileczkę|bir dakika|un attimo|vérification en cours"
                    r"|checking your browser|please wait\W*\|\s*cloudflare"
                    r"|しばらくお待ちください|请稍候|잠시만 기다리십시오"),),
        markup=(*_lit("_cf_chl_opt", "cf-browser-verification", "cf-im-under-attack", "jschl_vc", "jschl_answer",
                      "/cdn-cgi/l/chk_jschl"),
                _rx("/cdn-cgi/challenge-platform/h/*/orchestrate/", r"/cdn-cgi/challenge-platform/h/\w+/orchestrate/"),
                _rx("#challenge-form",
                    r"\bid\s*=\s*[\"']?challenge-(form|running|stage|spinner|body-text|error-text)\b"),
                _rx("__cf_chl_*_tk", r"__cf_chl_(f|rt|jschl|managed)_tk")),
        text=(*_lit("checking if the site connection is secure", "needs to review the security of your connection"),
              *_lit("enable javascript and cookies to continue", "checking your browser before accessing",
                    "verify you are human by completing the action below", "performance & security by cloudflare",
                    "ddos protection by cloudflare", weight=1))),
    VendorRule("cloudflare_captcha", "cloudflare", "captcha",
        markup=_lit("cf-captcha-container", "cf_captcha_kind", "/cdn-cgi/l/chk_captcha", "why_captcha",
                    "__cf_chl_captcha_tk__", "cf-challenge-hcaptcha-wrapper", "cf-norobot-container"),
        text=(*_lit("please complete the security check to access", "why do i have to complete a captcha"),
              *_lit("one more step", weight=1))),
    VendorRule("cloudflare_rate_limit", "cloudflare", "rate_limited",
        titles=(_rx("... temporarily rate limited | Cloudflare", r".*temporarily rate limited.*cloudflare.*"),),
        text=_lit("you are being rate limited", "has banned you temporarily from accessing this website")),
    VendorRule("cloudflare_block", "cloudflare", "blocked",
        titles=(_rx("Attention Required! | Cloudflare", r"attention required!? \| cloudflare"),
                _rx("Access denied | ... used Cloudflare",
                    r"access denied \| .{1,200} used cloudflare to restrict access")),
        markup=(*_lit("cf-error-details", "cf-error-code"),
                *_lit("/cdn-cgi/styles/cf.errors.css", "cf-error-overview", weight=1)),
        text=(*_lit("sorry, you have been blocked", "why have i been blocked", "used cloudflare to restrict access"),
              _rx("error code: 10xx", r"^\s*error code:? 10\d\d\b"),
              *_lit("banned your ip address", "cloudflare ray id", weight=1))),
    VendorRule("datadome", "datadome", "captcha",
        markup=(*_lit("captcha-delivery.com/captcha", "captcha-delivery.com/interstitial",
                      "ct.captcha-delivery.com/c.js"),
                _rx("var dd={'rt':...}", r"var\s+dd\s*=\s*\{\s*['\"]rt['\"]"),
                _rx("captcha-delivery.com", r"captcha-delivery\.com", weight=1)),
        text=_lit("something about the behaviour of the browser has caught our attention")),
    VendorRule("perimeterx", "perimeterx", "blocked",
        titles=(_rx("Access to this page has been denied", r"access to this page has been (denied|blocked)"),),
        markup=(_rx("#px-captcha", r"\bid\s*=\s*[\"']?px-captcha"),
                *_lit("captcha.px-cdn.net", "perimeterx.com/whywasiblocked"),
                _rx("captcha.px-cloud.net", r"captcha\.px-c(dn|loud)\.net"),
                _rx("/<app>/captcha/captcha.js?a=c", r"/\w+/captcha/captcha\.js\?a=|px-captcha\.js"),
                _rx('"blockScript" (JSON block response)', r"[\"']blockscript[\"']\s*:")),
        text=(*_lit("we believe you are using automation tools"),
              *_lit("press & hold", "press and hold", "please verify you are a human", "human verification challenge",
                    weight=1))),
    VendorRule("akamai_block", "akamai", "blocked",
        titles=(_rx("Access Denied", r"access denied", weight=1, strong=False),),
        markup=_lit("errors.edgesuite.net"),
        text=(_rx("Reference #18.*", r"reference\s*#\s*\d{1,3}\.[0-9a-f]+\.\d{9,}\.[0-9a-f]+"),
              *_lit("you don't have permission to access", weight=1))),
    VendorRule("akamai_challenge", "akamai", "blocked", challenge=True,
        markup=(*_lit("/_sec/cp_challenge", "sec-if-cpt", "ak-challenge"), *_lit("behavioral-content", weight=1)),
        text=_lit("powered and protected by akamai", weight=1)),
    VendorRule("imperva_block", "imperva", "blocked",
        markup=(_rx("_Incapsula_Resource?CWUDNSAI=", r"_incapsula_resource\?cwudnsai="),
                _rx("incident_id=", r"[?&]incident_id=", weight=1), _rx("edet=", r"[?&]edet=\d+", weight=1)),
        text=(*_lit("incapsula incident id", "additional security check is required"),
              *_lit("request unsuccessful", weight=1))),
    VendorRule("imperva_interstitial", "imperva", "blocked", challenge=True,
        titles=(_rx("Pardon Our Interruption", r"pardon our interruption", weight=1, strong=False),),
        markup=_lit("reeseSkipExpirationCheck", "__imperva_interstitial_started__", "interstitial-inprogress",
                    "x-spa-interstitial"),
        text=(*_lit("something about your browser made us think you were a bot"),
              *_lit("pardon our interruption", weight=1))),
    VendorRule("distil", "distil", "blocked",
        markup=_lit("distilCaptchaForm", "distil_r_captcha", "distilnetworks.com", "distilCallbackGuard")),
    # Listed before the challenge: AWS CAPTCHA pages carry the challenge's gokuProps too.
    VendorRule("aws_waf_captcha", "aws_waf", "captcha",
        markup=(_rx("*.captcha.awswaf.com", r"captcha\.awswaf\.com"),
                *_lit("AwsWafCaptcha", "CaptchaScript.renderCaptcha")),
        text=_lit("let's confirm you are human", weight=1)),
    VendorRule("aws_waf_challenge", "aws_waf", "blocked", challenge=True,
        # awsWafCookieDomainList is also set on normal pages that load the AWS WAF SDK.
        markup=(*_lit("gokuProps", "awswafjschallenge"), *_lit("awsWafCookieDomainList", weight=1, strong=False),
                _rx("*.token.awswaf.com", r"\.token\.awswaf\.com"),
                *_lit("AwsWafIntegration", weight=1, strong=False))),
    VendorRule("cloudfront_block", "aws_waf", "blocked", statuses=frozenset({403}),
        titles=(_rx("ERROR: The request could not be satisfied", r"error: the request could not be satisfied"),),
        text=(*_lit("configured to block access from your country"),
              *_lit("request blocked", "generated by cloudfront", weight=1))),
    VendorRule("sucuri_block", "sucuri", "blocked",
        titles=(_rx("Sucuri WebSite Firewall - Access Denied", r"sucuri website firewall.*"),),
        markup=_lit("sucuri-firewall-block.css", "cloudproxy@sucuri.net"),
        text=(*_lit("access denied - sucuri website firewall"), *_lit("sucuri website firewall", weight=1))),
    VendorRule("sucuri_challenge", "sucuri", "blocked", challenge=True,
        titles=(_rx("You are being redirected...", r"you are being redirected", weight=1, strong=False),),
        markup=(*_lit("sucuri_cloudproxy_js"),
                _rx("S='<base64>'", r"\bs\s*=\s*'[a-z0-9+/=]{40,}'", weight=1, strong=False))),
    # Kasada's SDK also loads on normal pages of protected sites: decisive only with a 403/429.
    VendorRule("kasada", "kasada", "blocked", challenge=True, statuses=frozenset({403, 429}),
        markup=(_rx("KPSDK", r"kpsdk\.(scriptstart|now|configure)", strong=False),
                _rx("/<uuid>/<uuid>/ips.js", rf"/{_UUID}/{_UUID}/(ips|p)\.js", strong=False))),
    VendorRule("ddos_guard", "ddos_guard", "blocked", challenge=True,
        titles=(_rx("DDoS-Guard", r"ddos-guard|ddos guard"),),
        markup=(_rx("#link-ddg", r"\bid\s*=\s*[\"']?link-ddg"), *_lit("/.well-known/ddos-guard/"),
                *_lit("ddos-guard.net", weight=1, strong=False)),
        text=(*_lit("ddos protection by ddos-guard"), *_lit("checking your browser before accessing", weight=1))),
    VendorRule("google_sorry", "google", "captcha",
        markup=(_rx("google.com/sorry/", r"google\.[a-z.]+/sorry/|sorry\.google\.com"),),
        text=_lit("our systems have detected unusual traffic from your computer network",
                  "this page checks to see if it's really you sending the requests",
                  "your computer or network may be sending automated queries")),
    VendorRule("amazon_captcha", "amazon", "captcha",
        titles=(_rx("Robot Check", r"robot check", weight=1, strong=False),),
        markup=_lit("/errors/validateCaptcha"),
        text=_lit("enter the characters you see below", "to discuss automated access to amazon data",
                  "sorry, we just need to make sure you're not a robot")),
    VendorRule("vercel", "vercel", "blocked", challenge=True,
        titles=(_rx("Vercel Security Checkpoint", r"vercel security checkpoint"),),
        markup=_lit("/.well-known/vercel/security/"),
        text=_lit("vercel security checkpoint", weight=1)),
    VendorRule("radware", "radware", "captcha",
        titles=(_rx("Radware Captcha Page", r"radware (captcha|block) page"),),
        markup=_lit("captcha.perfdrive.com", "shieldsquare_styles"),
        text=_lit("made us think that you are a bot")),
    VendorRule("f5", "f5", "blocked",
        titles=(_rx("Request Rejected", r"request rejected", weight=1, strong=False),),
        text=(*_lit("the requested url was rejected. please consult with your administrator"),
              *_lit("your support id is", weight=1))),
    VendorRule("reddit", "reddit", "blocked", text=_lit("blocked by network security", "whoa there, pardner")),
    VendorRule("alibaba", "alibaba", "captcha",
        markup=(*_lit("/_____tmd_____/punish"), *_lit("acw_sc__v2", weight=1, strong=False))),
)
# fmt: on


# --- steps ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _HeaderRule:
    header: str
    value: re.Pattern[str]
    vendor: str
    kind: Literal["blocked", "captcha"]
    challenge: bool
    statuses: frozenset[int] | None = None


_HEADER_RULES: tuple[_HeaderRule, ...] = (
    _HeaderRule("cf-mitigated", re.compile(r"challenge", re.I), "cloudflare", "blocked", True),
    _HeaderRule("x-amzn-waf-action", re.compile(r"challenge", re.I), "aws_waf", "blocked", True),
    _HeaderRule("x-amzn-waf-action", re.compile(r"captcha", re.I), "aws_waf", "captcha", False),
    _HeaderRule("x-vercel-mitigated", re.compile(r"challenge", re.I), "vercel", "blocked", True),
    _HeaderRule("x-sucuri-block", re.compile(r"."), "sucuri", "blocked", False),
    _HeaderRule("x-kpsdk-ct", re.compile(r"."), "kasada", "blocked", True, frozenset({403, 429})),
    _HeaderRule("x-kpsdk-cd", re.compile(r"."), "kasada", "blocked", True, frozenset({403, 429})),
    _HeaderRule("x-kpsdk-st", re.compile(r"."), "kasada", "blocked", True, frozenset({403, 429})),
)


def _by_headers(p: _Page) -> Verdict | None:
    for rule in _HEADER_RULES:
        value = p.headers.get(rule.header)
        if value is None or not rule.value.search(value):
            continue
        if rule.statuses is not None and p.status not in rule.statuses:
            continue
        return Verdict(rule.kind, rule.vendor, (f"header {rule.header}={value}", f"status={p.status}"), rule.challenge)
    return None


_GOOGLE_SORRY = re.compile(r"^https?://(([a-z0-9-]+\.)*google\.[a-z.]+/sorry/|sorry\.google\.com/)", re.I)
_ALIBABA_PUNISH = re.compile(r"/_____tmd_____/punish", re.I)
_DATADOME_URL = re.compile(r"^https?://[a-z0-9.-]*captcha-delivery\.com/(captcha|interstitial)/", re.I)


def _by_url(p: _Page) -> Verdict | None:
    for url in (p.final_url, *p.redirects):
        if _GOOGLE_SORRY.match(url):
            kind: Literal["captcha", "blocked"] = "blocked" if _google_without_captcha(p) else "captcha"
            return Verdict(kind, "google", (f"url={_short(url)}", f"status={p.status}"))
        if _ALIBABA_PUNISH.search(url):
            return Verdict("captcha", "alibaba", (f"url={_short(url)}", f"status={p.status}"))
        if _DATADOME_URL.match(url):  # DataDome's own CAPTCHA page, reached directly
            signals = (f"url={_short(url)}", f"status={p.status}")
            if "/interstitial/" in url:
                return Verdict("blocked", "datadome", signals, challenge=True)
            return Verdict("blocked" if "t=bv" in url else "captcha", "datadome", signals)
    return None


def _google_without_captcha(p: _Page) -> bool:
    """Google's 403 "automated queries" variant offers no CAPTCHA: a block, not a CAPTCHA."""
    return p.is_html and p.widget is None and "captcha" not in p.text.lower() and "captcha" not in p.markup.lower()


def _score(rule: VendorRule, p: _Page) -> tuple[int, list[str]]:
    """The rule's score on this page and the signals behind it (see the module docstring)."""
    if rule.statuses is not None and p.status not in rule.statuses:
        return 0, []
    structural, signals = 0, []
    for marker in rule.titles:
        if p.norm_title and marker.pattern.fullmatch(p.norm_title):
            structural += marker.weight
            signals.append(f"title={p.title}")
            break
    for marker in rule.markup:
        if marker.pattern.search(p.markup_lc):
            structural += marker.weight
            signals.append(f"marker={marker.label}")
    wording = 0
    for marker in rule.text:
        if marker.pattern.search(p.text_lc):
            wording += marker.weight
            signals.append(f"text={marker.label}")
    if p.status < 400:
        if p.text_len >= TINY_PAGE_TEXT:
            wording = min(wording, 1)  # an article may quote a block page; its wording alone is not one
        if structural == 0:
            return wording, signals  # wording alone on a 2xx page: no bonus from headers or status
    score = structural + wording
    if score == 0:
        return 0, []
    if rule.vendor in p.present:
        score += 1
        signals.append(f"present={rule.vendor}")
    if p.status >= 400:
        score += 1
        signals.append(f"status={p.status}")
    return score, signals


def _by_vendor_rules(p: _Page) -> Verdict | None:
    if not p.judged_by_markers():
        return None
    best: tuple[int, VendorRule, list[str]] | None = None
    for rule in VENDOR_RULES:
        score, signals = _score(rule, p)
        if score >= FIRE and (best is None or score > best[0]):
            best = (score, rule, signals)
    if best is None:
        return None
    _, rule, signals = best
    verdict = Verdict(rule.kind, rule.vendor, tuple(signals), rule.challenge)
    return _ADJUST.get(rule.name, _offer_captcha)(verdict, p)


#: Cloudflare error codes that mean "you are not allowed": banned IP/ASN/country/browser signature, firewall rule.
_CF_BLOCK_CODES = frozenset({1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1020})


def _cloudflare_code(verdict: Verdict, p: _Page) -> Verdict:
    """Cloudflare error pages share one template: the code says whose failure it is."""
    match = _CF_CODE.search(p.markup + "\n" + p.text) if p.is_html else _CF_CODE.search(p.source)
    code = int(next(g for g in match.groups() if g)) if match else None
    if code is None:
        return _offer_captcha(verdict, p)
    signals = (*verdict.signals, f"cloudflare_error={code}")
    if code == 1015:
        return Verdict("rate_limited", "cloudflare", signals)
    if code not in _CF_BLOCK_CODES and p.status >= 500:
        return Verdict("http_error", None, signals)  # the origin or its configuration failed: not a block
    return _offer_captcha(Verdict(verdict.kind, verdict.vendor, signals, verdict.challenge), p)


_DD_FIELD = re.compile(r"['\"](rt|t)['\"]\s*:\s*['\"](\w+)['\"]")


def _datadome_type(verdict: Verdict, p: _Page) -> Verdict:
    """DataDome's ``dd`` object: ``rt`` c = CAPTCHA, i = device check; ``t`` bv = IP banned."""
    fields = dict(_DD_FIELD.findall(p.markup))
    url_t = re.search(r"captcha-delivery\.com/[^\"'\s]*[?&]t=(\w+)", p.markup)
    ban = fields.get("t") == "bv" or (url_t is not None and url_t.group(1) == "bv")
    signals = (*verdict.signals, *(f"dd.{k}={v}" for k, v in sorted(fields.items())))
    if ban:
        return Verdict("blocked", "datadome", signals)
    if fields.get("rt") == "i" or "captcha-delivery.com/interstitial" in p.markup:
        return Verdict("blocked", "datadome", signals, challenge=True)
    if fields.get("rt") == "c" or "captcha-delivery.com/captcha" in p.markup:
        return Verdict("captcha", "datadome", signals)
    return Verdict("blocked", "datadome", signals)


def _google_kind(verdict: Verdict, p: _Page) -> Verdict:
    if _google_without_captcha(p):
        return Verdict("blocked", "google", verdict.signals)
    return verdict


def _offer_captcha(verdict: Verdict, p: _Page) -> Verdict:
    """A hard block page that offers a CAPTCHA (PerimeterX "Press & Hold", Cloudflare's legacy page)."""
    if verdict.kind == "blocked" and not verdict.challenge and p.widget is not None:
        return Verdict("captcha", verdict.vendor, (*verdict.signals, f"widget={p.widget}"))
    return verdict


_ADJUST = {
    "cloudflare_block": _cloudflare_code,
    "cloudflare_rate_limit": _cloudflare_code,
    "datadome": _datadome_type,
    "google_sorry": _google_kind,
}


# --- generic (vendor-agnostic) rules --------------------------------------------------------------

_LOGIN_PATH = re.compile(
    r"/(login|log-in|log_in|signin|sign-in|sign_in|logon|authwall|servicelogin|session/new)(/|\.\w+|$)", re.I
)
_LOGIN_PATH_IF_REDIRECTED = re.compile(r"/(checkpoint|auth|authorize|oauth2?|sso|cas|account/?)(/|$)", re.I)
_LOGIN_HOST = re.compile(r"^(login|signin|accounts?|auth|sso|id|idp)\.", re.I)
_LOGIN_WORDS = re.compile(r"\b(sign|log)[\s-]?(in|on)\b|\blogin\b|\bpassword\b|\banmelden\b|\bconnexion\b", re.I)
_TO_READ = r"( (first|again))?( to (view|see|access|continue|read|open|download|use|proceed)\b|\s*[.!]|\s*$)"
_LOGIN_WALL = re.compile(
    r"\b(sign|log)[\s-]?in (to|or (sign|join) up to) (continue|view|see|access|read|proceed|keep reading)"
    r"|\b(login|log[\s-]?in|sign[\s-]?in) (is )?required"
    # "you must be signed in to star a repository" is a button's tooltip, not a wall: only reading counts
    rf"|\byou (must|need to|have to|should) (be )?(signed|logged)[\s-]?in{_TO_READ}"
    rf"|\byou (must|need to|have to) (sign|log)[\s-]?in{_TO_READ}"
    rf"|\bplease (sign|log)[\s-]?in{_TO_READ}"
    r"|\bjoin (now )?to (view|see)"
    r"|\bauthentication required"
    r"|\bonly (available|visible) to (registered|logged[\s-]in|signed[\s-]in) (users|members)"
    r"|\bavailable only to (registered|logged[\s-]in|signed[\s-]in) (users|members)",
    re.I,
)


def _path(url: str) -> str:
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return "/"


def _redirected(p: _Page) -> bool:
    """Whether the site sent the request to another path (a trailing slash or http→https does not count)."""
    return bool(p.url) and _path(p.url).rstrip("/").lower() != _path(p.final_url).rstrip("/").lower()


def _login_wall(p: _Page) -> Verdict | None:
    if p.status == 401:
        scheme = p.headers.get("www-authenticate", "").split(" ", 1)[0]
        return Verdict("login_required", None, ("status=401", *((f"www-authenticate={scheme}",) if scheme else ())))
    if p.status not in (403,) and p.status >= 300:
        return None
    short = p.text_len < SHORT_PAGE_TEXT
    signals: list[str] = []
    final_path = _path(p.final_url)
    if _LOGIN_PATH.search(final_path) and (_redirected(p) or p.has_password or short):
        signals.append(f"final_url path={final_path}")
    elif _redirected(p) and (
        _LOGIN_PATH_IF_REDIRECTED.search(final_path) or _LOGIN_HOST.match(urlsplit(p.final_url).netloc)
    ):
        signals.append(f"redirected to {_short(p.final_url)}")
    if p.is_html and short:
        if p.has_password and _LOGIN_WORDS.search(p.lead):
            signals.append("password form on a short page")
        wall = _LOGIN_WALL.search(p.lead)
        if wall:
            signals.append(f"text={wall.group(0).lower()}")
    if not signals:
        return None
    return Verdict("login_required", None, (*signals, f"status={p.status}"))


_OOPS = r"((sorry|oops|o+ps|whoops|uh oh|hmm+|ouch|argh|darn|well|ah) )*"
_THE_PAGE = (
    r"(the |this |that )?page( you( re| are| were)? (requested|looking for|wanted|tried to (reach|access|visit)))?"
)
_NOT_FOUND = re.compile(
    rf"{_OOPS}("
    r"(error )?404( error)?( page)?( not found)?"
    r"|(404 )?(error )?(the )?(requested )?(page|file|url|document|resource|article|post|product|content|item|profile)?"
    r" ?(was |could not be |couldn t be |cannot be |can t be )?not found( error)?( 404)?"
    rf"|{_THE_PAGE} (does not|doesn t|doesnt|did not|no longer) exists?( anymore)?"
    rf"|(we )?(can ?not|can t|couldn t|could not) find (that|this|the|your) page"
    r"( you( re| are| were)? looking for| you requested)?"
    rf"|{_THE_PAGE} (can ?not|can t|could not|couldn t) be found"
    rf"|{_THE_PAGE} (is )?(no longer|not) available"
    # a few other languages
    r"|(404 )?(seite nicht gefunden|página no encontrada|pagina non trovata|page (introuvable|non trouvée)"
    r"|pagina niet gevonden|страница не найдена|página não encontrada|nie znaleziono strony|sidan hittades inte)"
    r")",
)
_TITLE_SEPARATORS = re.compile(r"\s+[|\-–—:·»]\s+|\s*[|·»]\s*|:\s+")
_NOT_FOUND_PATH = re.compile(r"/(404|error-?404|not-?found|page-?not-?found|pagenotfound)(\.\w+)?/?$", re.I)


def _words(text: str) -> str:
    return _collapse(re.sub(r"[^\w]+", " ", text.lower().replace("’", "'").replace("'", " ")))


def _soft_404(p: _Page) -> Verdict | None:
    if not p.is_html:
        return None
    final_path = _path(p.final_url)
    if _NOT_FOUND_PATH.search(final_path) and not _NOT_FOUND_PATH.search(_path(p.url or p.final_url)):
        return Verdict("not_found", None, (f"redirected to {final_path}", f"status={p.status}"))
    if p.text_len >= SOFT_404_TEXT:
        return None
    parts = (part for part in _TITLE_SEPARATORS.split(p.title) if part.strip())
    if any(_NOT_FOUND.fullmatch(_words(part)) for part in parts):
        evidence = f"title={p.title}"
    elif p.h1 and _NOT_FOUND.fullmatch(_words(p.h1)):
        evidence = f"h1={p.h1}"
    else:
        return None
    if p.prose_len >= SOFT_404_PROSE:
        return None  # a page about "404 Not Found", not one
    return Verdict("not_found", None, (evidence, "soft 404", f"status={p.status}"))


_RATE_LIMIT = re.compile(
    r"\btoo many requests\b|\brate[\s-]?limit(ed|ing)?\b|\byou are being rate limited\b"
    r"|\brequest limit (exceeded|reached)\b|\bquota exceeded\b|\bslow down\b",
    re.I,
)


def _rate_limit_page(p: _Page) -> Verdict | None:
    if p.status == 429:
        return Verdict("rate_limited", None, ("status=429",))
    if p.headers.get("x-ratelimit-remaining", "").strip() == "0" and p.status in (403, 503):
        return Verdict("rate_limited", None, ("header x-ratelimit-remaining=0", f"status={p.status}"))
    if p.status in (403, 503) and p.text_len < SHORT_PAGE_TEXT:
        match = _RATE_LIMIT.search(p.lead)
    elif p.status < 300 and p.is_html and p.text_len < TINY_PAGE_TEXT:
        match = _RATE_LIMIT.search(f"{p.title}\n{p.h1}")
    else:
        match = None
    if match is None:
        return None
    return Verdict("rate_limited", None, (f"text={match.group(0).lower()}", f"status={p.status}"))


_BLOCK_STATUSES = frozenset({403, 405, 406, 503, 999})
_BLOCK_WORDS = re.compile(
    r"\byou( have|'ve| are| were)? been blocked\b|\byou are blocked\b"
    r"|\b(request|access|connection)( has been| was| is)? (blocked|rejected)\b"
    r"|\bblocked (by|due to) (our |the )?(security|network|firewall|web application firewall)"
    r"|\bautomated (access|requests?|queries|traffic|tools?|bots?|scraping)\b"
    r"|\bunusual (traffic|activity)\b|\bsuspicious (activity|behaviou?r|traffic)\b"
    r"|\b(bot|robot) (detected|protection|detection)\b|\bdetected (as )?(a |an )?(bot|robot)\b"
    r"|\bweb application firewall\b|\byour ip( address)?( has been| is| was)? (banned|blocked|blacklisted)\b"
    r"|\bpardon our interruption\b|\brequest (was )?denied\b"
    r"|\baccess to this (page|resource|site|website) (has been|is) denied\b",
    re.I,
)
_ACCESS_DENIED = re.compile(r"\baccess (is )?denied\b", re.I)
#: CDNs that front every page of a site, blocked or not: their presence does not make "access denied" a bot block.
_CDNS = frozenset({"cloudflare", "vercel"})
_BLOCK_TITLES = re.compile(
    r"(403 )?(access denied|access blocked|blocked|request blocked|request rejected|you have been blocked"
    r"|you've been blocked|access to this page has been denied|forbidden - blocked)"
)
#: Wording that only a CAPTCHA page uses (no widget needed to believe it).
_CAPTCHA_STRONG = re.compile(
    r"captcha|\bhuman verification\b|\bare you (a )?(human|robot)\b|\brobot check\b|\bbot check\b"
    r"|\bnot a (ro)?bot\b|\bverify (that )?you(\W?re| are)( a)? human\b",
    re.I,
)
_CAPTCHA_WORDS = re.compile(
    r"captcha|\bnot a (ro)?bot\b|\bare you (a )?(human|robot)\b|\bverify (that )?you(\W?re| are)( a)? human\b"
    r"|\bverifying (that )?you(\W?re| are)( a)? human\b"
    r"|\bhuman verification\b|\bprove (that )?you(\W?re| are) (a )?(human|not a (ro)?bot)\b|\bsecurity check\b"
    r"|\bconfirm (that )?you(\W?re| are) (a )?human\b|\brobot check\b|\bbot check\b|\bi.m not a robot\b"
    r"|\bunusual (traffic|activity)\b",
    re.I,
)


def _generic_block(p: _Page) -> Verdict | None:
    """Bot-block wording without a known vendor's page: a short 403/405/503 page, or a tiny 2xx one."""
    if p.status == 999:  # LinkedIn / Yahoo answer crawlers with a non-standard 999
        return Verdict("blocked", p.vendor_present, ("status=999",))
    vendor = None
    if p.status in _BLOCK_STATUSES and p.text_len < ERROR_PAGE_TEXT:
        vendor = p.vendor_present
        match = _BLOCK_WORDS.search(p.lead) or (
            _ACCESS_DENIED.search(p.lead) if vendor and vendor not in _CDNS else None
        )
        if match is None:
            return None
        signals = (f"text={match.group(0).lower()}", f"status={p.status}", *(f"present={vendor}",) * bool(vendor))
    elif p.status < 300 and p.is_html and p.text_len < TINY_PAGE_TEXT and _BLOCK_TITLES.fullmatch(p.norm_title):
        signals = (f"title={p.title}", f"status={p.status}")
    else:
        return None
    if p.widget is not None or _CAPTCHA_STRONG.search(p.lead):
        return Verdict("captcha", p.widget or vendor, (*signals, f"widget={p.widget}"))
    return Verdict("blocked", vendor, signals)


def _captcha_interstitial(p: _Page) -> Verdict | None:
    """A short page whose main thing is a CAPTCHA — not a form that happens to embed one."""
    if not p.is_html or p.text_len >= SHORT_PAGE_TEXT or p.has_password or p.typing_fields > 1:
        return None
    words = _CAPTCHA_WORDS.search(p.lead)
    if p.widget is None and not (
        words and _CAPTCHA_STRONG.search(f"{p.title}\n{p.h1}") and p.text_len < TINY_PAGE_TEXT
    ):
        return None
    if p.widget is not None and words is None and p.status < 400:
        return None
    signals = tuple(
        s
        for s in (
            f"widget={p.widget}" if p.widget else "",
            f"text={words.group(0).lower()}" if words else "",
            f"status={p.status}",
        )
        if s
    )
    return Verdict("captcha", p.widget or p.vendor_present, signals)


def _empty(p: _Page) -> Verdict | None:
    if not p.is_html:
        return Verdict("empty_content", None, ("zero bytes",)) if p.body_bytes == 0 else None
    if p.text_len >= 4 * EMPTY_TEXT + 100:
        return None  # more than any placeholder
    remaining = _PLACEHOLDERS.sub(" ", p.text).strip()
    if len(remaining) >= EMPTY_TEXT:
        return None
    if len(_PLACEHOLDERS.sub(" ", p.noscript_text).strip()) >= NOSCRIPT_CONTENT:
        return None  # the content is there for readers without JavaScript (Discourse, some CMSs): not empty
    if p.engine == "http" and p.has_scripts:
        return None  # an app shell the HTTP engine saw before rendering: the caller chose render=http
    signals: tuple[str, ...] = (f"visible_text={len(remaining)} chars", f"html={p.body_bytes} bytes")
    shown = _PLACEHOLDERS.search(p.text)
    if shown is not None:  # what the page showed instead: "Connecting…" says more to an agent than "empty"
        signals += (f"placeholder={shown.group(0).strip()[:40]}",)
    return Verdict("empty_content", None, signals)


def _by_status(p: _Page) -> Verdict:
    if p.status in (404, 410):
        return Verdict("not_found", None, (f"status={p.status}",))
    if p.status == 429:
        return Verdict("rate_limited", None, ("status=429",))
    return Verdict("http_error", None, (f"status={p.status}",))


def _short(url: str, limit: int = 80) -> str:
    return url if len(url) <= limit else url[: limit - 1] + "…"


# --- errors --------------------------------------------------------------------------------------

VENDOR_NAMES = {
    "cloudflare": "Cloudflare",
    "recaptcha": "Google reCAPTCHA",
    "hcaptcha": "hCaptcha",
    "datadome": "DataDome",
    "perimeterx": "PerimeterX (HUMAN)",
    "akamai": "Akamai",
    "imperva": "Imperva (Incapsula)",
    "distil": "Distil Networks",
    "aws_waf": "AWS WAF",
    "sucuri": "Sucuri",
    "kasada": "Kasada",
    "ddos_guard": "DDoS-Guard",
    "google": "Google",
    "amazon": "Amazon",
    "vercel": "Vercel",
    "radware": "Radware",
    "f5": "F5",
    "reddit": "Reddit",
    "alibaba": "Alibaba",
    "arkose": "Arkose Labs",
    "geetest": "GeeTest",
}

_NO_RETRY = "Do not retry immediately: the site blocks automated access. Use another source for this information"


def _vendor_name(vendor: str | None) -> str:
    return VENDOR_NAMES.get(vendor or "", vendor or "")


def _evidence(verdict: Verdict) -> str:
    return f" (signals: {'; '.join(verdict.signals[:4])})" if verdict.signals else ""


def _blocked(verdict: Verdict, page: RawPage) -> FetchError:
    url, by = page.final_url, _vendor_name(verdict.vendor)
    who = f"{by} bot protection" if by else "The site's bot protection"
    if verdict.challenge:
        where = "even in the browser" if page.engine == "browser" else "to the HTTP engine"
        advice = (
            "The challenge did not clear in a real browser. " + _NO_RETRY + ", or try again much later."
            if page.engine == "browser"
            else "A real browser running JavaScript may pass it (render=browser); otherwise "
            + _NO_RETRY[0].lower()
            + _NO_RETRY[1:]
            + "."
        )
        message = f"{who} answered {url} with a JavaScript challenge page instead of the content, {where}. {advice}"
    else:
        message = f"{who} blocked the request for {url} (HTTP {page.status_code}). {_NO_RETRY}."
    return Blocked(message + _evidence(verdict), status_code=page.status_code, vendor=verdict.vendor)


def _captcha(verdict: Verdict, page: RawPage) -> FetchError:
    by = _vendor_name(verdict.vendor)
    what = f"a {by} CAPTCHA" if by else "a CAPTCHA"
    return Captcha(
        f"{page.final_url} answered with {what} instead of the content: the site wants a human to prove they are "
        f"not a bot. This service does not solve CAPTCHAs. {_NO_RETRY}, or try again much later." + _evidence(verdict),
        status_code=page.status_code,
        vendor=verdict.vendor,
    )


def _login(verdict: Verdict, page: RawPage) -> FetchError:
    return LoginRequired(
        f"{page.url} requires signing in: the site answered with a login page or wall (final URL "
        f"{page.final_url}). Send the cookies of a logged-in session (cookies or session) or use a public "
        "source; retrying the same request will not help." + _evidence(verdict),
        status_code=page.status_code,
        vendor=verdict.vendor,
    )


def _not_found(verdict: Verdict, page: RawPage) -> FetchError:
    status = page.status_code
    if status in (404, 410):
        message = (
            f"{page.final_url} does not exist (HTTP {status}). Check the URL or look for the page elsewhere; "
            "retrying will not help."
        )
    else:
        message = (
            f"{page.final_url} answered HTTP {status} but the page says it does not exist (a soft 404). Check the "
            "URL or look for the page elsewhere; retrying will not help." + _evidence(verdict)
        )
    return NotFound(message, status_code=status)


def _rate_limited(verdict: Verdict, page: RawPage) -> FetchError:
    retry_after = rate_limit_wait(page.headers)
    wait = f" after {retry_after:.0f} s" if retry_after is not None else " later"
    by = f" ({_vendor_name(verdict.vendor)})" if verdict.vendor else ""
    return RateLimited(
        f"{page.final_url} is rate-limiting requests{by} (HTTP {page.status_code}). Retry{wait}; sending more now "
        "prolongs it.",
        status_code=page.status_code,
        retry_after_s=retry_after,
        vendor=verdict.vendor,
    )


def _empty_error(verdict: Verdict, page: RawPage) -> FetchError:
    placeholder = next((s.split("=", 1)[1] for s in verdict.signals if s.startswith("placeholder=")), None)
    return EmptyContent(
        f"{page.final_url} has no text content"
        + (f" beyond a placeholder ({placeholder!r})" if placeholder else "")
        + (" even after rendering in the browser." if page.engine == "browser" else ".")
        + " The page may be empty, or need a wait_for selector for content that loads late.",
        status_code=page.status_code,
    )


def _http_error(verdict: Verdict, page: RawPage) -> FetchError:
    status, url = page.status_code, page.final_url
    retryable = status in RETRYABLE_STATUSES
    if status >= 500:
        advice = "The origin server failed; retry shortly." if retryable else "The origin server failed."
    else:
        advice = "The origin refused the request; retrying the same request will not help."
    return HTTPStatusError(
        f"{url} answered HTTP {status}. {advice}",
        status_code=status,
        retryable=retryable,
        retry_after_s=parse_retry_after(page.headers.get("retry-after")) if retryable else None,
    )


def _unsupported(verdict: Verdict, page: RawPage) -> FetchError:
    what = page.content_type or "binary data"
    if page.content_type and (signature := binary_signature(page.body or b"")):
        what = f"labelled {page.content_type} but {signature} by its bytes"
    return UnsupportedContent(
        f"{page.final_url} is {what}, which this service does not convert to text (HTML, JSON and plain "
        "text are supported).",
        status_code=page.status_code,
    )


_ERROR_BUILDERS: dict[VerdictKind, Callable[[Verdict, RawPage], FetchError | None]] = {
    "ok": lambda verdict, page: None,
    "blocked": _blocked,
    "captcha": _captcha,
    "login_required": _login,
    "not_found": _not_found,
    "rate_limited": _rate_limited,
    "empty_content": _empty_error,
    "http_error": _http_error,
    "unsupported_content": _unsupported,
}
