"""The v1 contract: every model that crosses a boundary (REST, MCP, CLI, tool schemas).

This module is the single source of truth. The REST API, the CLI, the tool definitions served
at ``/v1/tools`` and the docs are generated from these models, so a field described here is
described everywhere. Changing a field's name, type or meaning is a contract change: bump
``CONTRACT_VERSION`` (``tests/unit/test_contract.py`` pins the schema hash to catch it).
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from extractors import EXTRACTOR_VERSION, Link, PageMetadata, SelectorSpec, validate_selector
from extractors.models import FieldValue

API_VERSION = "v1"
#: Bumped on any change of the request/response schema (the tools' version).
CONTRACT_VERSION = "1.2.0"

Format = Literal["markdown", "text", "html", "raw_html", "links", "metadata", "screenshot"]
#: Formats whose value is text and which ``max_chars``/``start_index`` page through.
TEXT_FORMATS: tuple[Format, ...] = ("markdown", "text", "html", "raw_html")

Render = Literal["auto", "http", "browser"]
WaitUntil = Literal["load", "domcontentloaded", "networkidle", "commit"]
Engine = Literal["http", "browser"]
Source = Literal["live", "cache", "input"]
OnSuspect = Literal["error", "return"]
#: A session id as the service issues them (``secrets.token_urlsafe``); anything else is invalid_request.
SESSION_ID_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"


class ErrorKind(StrEnum):
    """The closed set of ways a fetch can fail. One exception class each (``errors.py``)."""

    # The caller's problem: never retried.
    INVALID_REQUEST = "invalid_request"
    FORBIDDEN_TARGET = "forbidden_target"
    ROBOTS_DISALLOWED = "robots_disallowed"
    SESSION_NOT_FOUND = "session_not_found"
    ACTION_FAILED = "action_failed"
    # The origin's problem.
    DNS_ERROR = "dns_error"
    CONNECTION_ERROR = "connection_error"
    TLS_ERROR = "tls_error"
    TIMEOUT = "timeout"
    HTTP_ERROR = "http_error"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    BLOCKED = "blocked"
    CAPTCHA = "captcha"
    LOGIN_REQUIRED = "login_required"
    EMPTY_CONTENT = "empty_content"
    UNSUPPORTED_CONTENT = "unsupported_content"
    TOO_LARGE = "too_large"
    SUSPECT_CONTENT = "suspect_content"
    # Our side.
    CIRCUIT_OPEN = "circuit_open"
    OVERLOADED = "overloaded"
    BROWSER_ERROR = "browser_error"
    INTERNAL_ERROR = "internal_error"


HostState = Literal["available", "degraded", "unavailable"]

#: Where in a fetch a timeout or failure happened.
Phase = Literal[
    "queue",  # waiting for a browser slot
    "dns",
    "connect",
    "response",  # waiting for the response headers
    "body",  # reading the response body
    "navigation",  # browser navigation (goto)
    "wait_for",  # the caller's wait_for selector
    "render",  # waiting for the DOM to settle / wait_ms
    "action",  # running the request's page actions
    "screenshot",
    "extract",
    "total",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- page actions ------------------------------------------------------------------------------

#: Most steps one request may run.
MAX_ACTIONS = 50
#: How long a step waits for its element by default (bounded by the request's deadline too).
STEP_TIMEOUT_MS = 5_000

_SELECTOR = Field(max_length=2_000, description="CSS selector; the first matching element is used.")
_STEP_TIMEOUT = Field(
    STEP_TIMEOUT_MS,
    ge=100,
    le=60_000,
    description="How long this step waits for its element to be there and usable (also bounded by timeout_ms).",
)


class _Step(_Strict):
    @field_validator("selector", check_fields=False)
    @classmethod
    def _check_selector(cls, css: str | None) -> str | None:
        if css is not None:
            validate_selector(css)
        return css


class ClickAction(_Step):
    """Click an element (scrolled into view first; waits until it is visible, stable and enabled)."""

    type: Literal["click"]
    selector: str = _SELECTOR
    timeout_ms: int = _STEP_TIMEOUT


class TypeAction(_Step):
    """Fill a text field with ``text`` (replacing what it holds)."""

    type: Literal["type"]
    selector: str = _SELECTOR
    text: str = Field(max_length=100_000)
    timeout_ms: int = _STEP_TIMEOUT


class PressAction(_Step):
    """Press a key (Playwright key names: Enter, Tab, ArrowDown, Control+A …), on an element or the page."""

    type: Literal["press"]
    key: str = Field(min_length=1, max_length=100, description="e.g. Enter, Escape, PageDown, Control+A.")
    selector: str | None = Field(None, max_length=2_000, description="Focus this element first; default: the page.")
    timeout_ms: int = _STEP_TIMEOUT


class ScrollAction(_Step):
    """Scroll the page to the top, the bottom, or a vertical position in pixels."""

    type: Literal["scroll"]
    to: Literal["top", "bottom"] | Annotated[int, Field(ge=0, le=10_000_000)] = Field(
        "bottom", description="top, bottom, or a y position in pixels."
    )


class WaitForAction(_Step):
    """Wait until an element is in a state (visible by default)."""

    type: Literal["wait_for"]
    selector: str = _SELECTOR
    state: Literal["attached", "visible", "hidden", "detached"] = "visible"
    timeout_ms: int = _STEP_TIMEOUT


class WaitMsAction(_Step):
    """Wait a fixed time (for animations or timers no selector reveals)."""

    type: Literal["wait_ms"]
    ms: int = Field(ge=0, le=30_000)


class ScrollUntilStableAction(_Step):
    """Scroll to the bottom again and again until the page stops growing (infinite scroll)."""

    type: Literal["scroll_until_stable"]
    max_steps: int = Field(20, ge=1, le=200, description="Most scrolls.")
    idle_ms: int = Field(
        1_000, ge=100, le=10_000, description="A scroll after which the page does not grow for this long ends it."
    )


Action = Annotated[
    ClickAction | TypeAction | PressAction | ScrollAction | WaitForAction | WaitMsAction | ScrollUntilStableAction,
    Field(discriminator="type"),
]


class ExtractOptions(_Strict):
    """Options shared by ``/v1/fetch`` and ``/v1/extract``: what to return and how much of it."""

    formats: list[Format] = Field(
        default_factory=lambda: list[Format](["markdown"]),
        min_length=1,
        description=(
            "What to return. markdown/text/html are the main content (cleaned); raw_html is the page as "
            "received or rendered; links and metadata cover the whole page; screenshot is a PNG "
            "(base64) and implies the browser engine."
        ),
    )
    main_content: bool = Field(
        True, description="Return only the main content (drop navigation, footers, ads). False: whole page."
    )
    max_chars: int = Field(
        20_000,
        ge=100,
        le=1_000_000,
        description=(
            "Context budget: at most this many characters of each text format. When more remains, "
            "content.truncated is true and content.next_start_index says where to continue."
        ),
    )
    start_index: int = Field(0, ge=0, description="Return the text formats from this character offset (pagination).")
    selectors: dict[str, str | SelectorSpec] | None = Field(
        None,
        description=(
            'Structured fields: {"field": "css selector"} or {"field": {"css": ..., "attr": ..., '
            '"all": false, "type": "string|integer|number|boolean"}}. Results land in `fields`.'
        ),
    )

    @field_validator("formats")
    @classmethod
    def _dedupe_formats(cls, formats: list[Format]) -> list[Format]:
        return list(dict.fromkeys(formats))

    @field_validator("selectors")
    @classmethod
    def _check_selectors(cls, selectors: dict[str, str | SelectorSpec] | None) -> dict[str, str | SelectorSpec] | None:
        for name, spec in (selectors or {}).items():
            css = spec if isinstance(spec, str) else spec.css
            try:
                validate_selector(css)
            except ValueError as exc:
                raise ValueError(f"selector {name!r}: {exc}") from exc
        return selectors

    def selector_specs(self) -> dict[str, SelectorSpec]:
        return {
            name: SelectorSpec(css=spec) if isinstance(spec, str) else spec
            for name, spec in (self.selectors or {}).items()
        }

    def primary_text_format(self) -> Format | None:
        """The text format that ``content`` and pagination describe: the first one requested."""
        return next((f for f in self.formats if f in TEXT_FORMATS), None)


class FetchRequest(ExtractOptions):
    """Fetch one URL. Unknown fields are rejected, so a typo never silently does nothing."""

    url: AnyHttpUrl = Field(description="The http(s) URL to fetch.")
    render: Render = Field(
        "auto",
        description=(
            "auto: plain HTTP first, the browser when the page needs JavaScript; http: never the browser; "
            "browser: always render with Chromium."
        ),
    )
    wait_for: str | None = Field(
        None, max_length=2_000, description="Browser: CSS selector to wait for before reading the page."
    )
    wait_ms: int = Field(0, ge=0, le=60_000, description="Browser: extra wait after the page is ready.")
    wait_until: WaitUntil | None = Field(
        None,
        description=(
            "Browser: navigation event to wait for. Default: 'load', then until the DOM settles "
            "(no pending requests or short timers, no DOM changes), capped."
        ),
    )
    timeout_ms: int = Field(
        30_000,
        ge=1_000,
        le=300_000,
        description="One deadline for the whole request: queueing, retries and rendering included.",
    )
    max_age_s: int | None = Field(
        None,
        ge=0,
        description=(
            "Accept a stored copy at most this old (source: cache, age_s). Default: a live fetch, except "
            "that start_index > 0 pages through the stored copy of the first page. 0 forces a live fetch."
        ),
    )
    allow_stale: bool = Field(
        True,
        description=(
            "If the live fetch fails, answer with the last stored copy, flagged stale: true, with the "
            "live failure in live_error."
        ),
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers (e.g. Accept-Language).")
    cookies: dict[str, str] = Field(default_factory=dict, description="Cookies sent to the URL's host: {name: value}.")
    respect_robots: bool | None = Field(
        None,
        description=(
            "Obey the site's robots.txt (refused: robots_disallowed). Default: the service's setting "
            "(BROWSER_SERVICE_RESPECT_ROBOTS, off unless the operator turned it on)."
        ),
    )
    on_suspect: OnSuspect = Field(
        "error",
        description=(
            "A page that loaded but looks wrong (nearly empty, far shorter than the last good copy, block "
            "markers, an extraction that lost most of the text) is quarantined. error: answer ok: false, "
            "suspect_content; return: answer the content with quality.verdict 'suspect'."
        ),
    )
    session: str | None = Field(
        None,
        pattern=SESSION_ID_PATTERN,
        description=(
            "A named session (create one with POST /v1/sessions or the session_create tool): the request "
            "shares cookies and localStorage with the session's earlier requests, and leaves its own for the "
            "next. Never served from or stored in the shared cache. Unknown or expired: session_not_found."
        ),
    )
    actions: list[Action] | None = Field(
        None,
        max_length=MAX_ACTIONS,
        description=(
            "Browser steps run in order after the page has loaded and settled, before it is read: click, "
            "type, press, scroll, wait_for, wait_ms, scroll_until_stable. Imply the browser. A step that "
            "cannot be done fails the fetch with action_failed naming the step."
        ),
    )

    @field_validator("actions")
    @classmethod
    def _actions_need_the_browser(cls, actions: list[Action] | None, info: ValidationInfo) -> list[Action] | None:
        if actions and info.data.get("render") == "http":
            raise ValueError("actions run in the browser, but render is 'http'; use render 'auto' or 'browser'")
        return actions

    @field_validator("wait_for")
    @classmethod
    def _check_wait_for(cls, css: str | None) -> str | None:
        if css is not None:
            validate_selector(css)
        return css

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            # RFC 9110: a name is a token; a value is visible Latin-1 (what HTTP/1.1 can carry).
            if not _TOKEN.fullmatch(name) or any(c in value for c in "\r\n\x00") or not _latin1(value):
                raise ValueError(f"invalid header {name!r}: names are tokens, values Latin-1 without line breaks")
            if name.lower() in _HOP_BY_HOP:
                raise ValueError(f"header {name!r} is managed by the service and cannot be set")
        return headers

    @field_validator("cookies")
    @classmethod
    def _check_cookies(cls, cookies: dict[str, str]) -> dict[str, str]:
        for name, value in cookies.items():
            if not _TOKEN.fullmatch(name) or any(c in value for c in "\r\n;\x00") or not value.isascii():
                raise ValueError(f"invalid cookie {name!r}: names are tokens, values ASCII without ';'")
        return cookies

    def needs_browser(self) -> bool:
        """Options that only the browser can honour."""
        return (
            "screenshot" in self.formats
            or self.wait_for is not None
            or self.wait_ms > 0
            or self.wait_until is not None
            or bool(self.actions)
        )


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


_HOP_BY_HOP = frozenset(
    {"host", "content-length", "connection", "transfer-encoding", "upgrade", "te", "keep-alive", "cookie"}
)


class ExtractRequest(ExtractOptions):
    """Run the extractors on HTML the caller supplies (no network)."""

    html: str = Field(max_length=20_000_000, description="The page's HTML.")
    url: AnyHttpUrl = Field(description="The page's URL: resolves relative links.")

    @field_validator("formats")
    @classmethod
    def _no_screenshot(cls, formats: list[Format]) -> list[Format]:
        if "screenshot" in formats:
            raise ValueError("screenshot needs a fetch; /v1/extract only reads the supplied HTML")
        return formats


class Attempt(BaseModel):
    """One try at the origin (one engine run)."""

    engine: Engine
    url: str
    outcome: Literal["ok", "escalated"] | ErrorKind = Field(
        description="ok, escalated (the HTTP result needed the browser), or the error kind."
    )
    status_code: int | None = None
    duration_ms: int
    detail: str | None = Field(None, description="Why: the escalation reason or the error message.")


class ErrorInfo(BaseModel):
    """What went wrong, written for an agent: what happened and what to do."""

    kind: ErrorKind
    message: str
    retryable: bool
    retry_after_s: float | None = None
    vendor: str | None = Field(None, description="Anti-bot vendor for blocked/captcha.")
    status_code: int | None = Field(None, description="The origin's HTTP status, when there was one.")
    phase: Phase | None = None
    host_state: HostState | None = None
    quarantine_id: str | None = Field(
        None, description="suspect_content: the quarantined result, for GET /v1/quarantine/{id} and approval."
    )
    step: int | None = Field(
        None, description="action_failed (or a timeout during actions): the failing step's index in actions, from 0."
    )


class ContentPage(BaseModel):
    """Which part of the primary text format this answer holds."""

    format: Format
    total_chars: int
    start_index: int
    next_start_index: int | None = Field(description="Call again with this start_index for the rest.")
    truncated: bool


class Quality(BaseModel):
    verdict: Literal["ok", "suspect"] = "ok"
    signals: list[str] = Field(default_factory=list)


class Versions(BaseModel):
    """Which contract and extractor produced an answer. Factories, not defaults, so the values stay
    out of the JSON schema: an extractor release is not a contract change."""

    api: str = Field(default_factory=lambda: API_VERSION)
    contract: str = Field(default_factory=lambda: CONTRACT_VERSION)
    extractor: str = Field(default_factory=lambda: EXTRACTOR_VERSION)


class FetchResponse(BaseModel):
    """The one answer shape for success and failure alike."""

    ok: bool
    url: str
    final_url: str | None = None
    status_code: int | None = None
    content_type: str | None = None
    engine: Engine | None = None
    source: Source = "live"
    stale: bool = False
    age_s: float | None = None
    fetched_at: datetime | None = None
    title: str | None = None
    markdown: str | None = None
    text: str | None = None
    html: str | None = None
    raw_html: str | None = None
    links: list[Link] | None = None
    metadata: PageMetadata | None = None
    screenshot: str | None = Field(None, description="Base64 PNG.")
    content: ContentPage | None = None
    fields: dict[str, FieldValue] | None = None
    quality: Quality | None = None
    warnings: list[str] = Field(default_factory=list)
    error: ErrorInfo | None = None
    live_error: ErrorInfo | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    trace_id: str
    versions: Versions = Field(default_factory=Versions)
    content_sha256: str | None = Field(
        None, description="SHA-256 of the whole primary text format (all pages), for change detection."
    )
    duration_ms: int | None = None


# --- hosts -------------------------------------------------------------------------------------


class Circuit(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class HostStatus(BaseModel):
    """One host's circuit and lifecycle state, as served by the health endpoints."""

    host: str
    state: HostState = Field(description="available, degraded (failing or recovering) or unavailable (open).")
    circuit: Circuit
    calls: int = Field(description="Calls in the sliding window (cleared when the circuit closes).")
    failures: int = Field(description="Failures among those calls.")
    failure_rate: float | None = Field(
        description="failures / calls once the window holds minimum_calls calls; null before (no verdict yet)."
    )
    failures_to_open: int | None = Field(
        description="Consecutive failures from now that would open the circuit; null unless closed."
    )
    retry_after_s: float | None = Field(
        description="Open: seconds until trial calls are let through. Half-open and full: a short wait."
    )
    open_for_s: float | None = Field(description="Seconds since the circuit opened, while open.")
    throttled_for_s: float | None = Field(description="Seconds left of a Retry-After the site asked for.")
    last_error: str | None = Field(description="The most recent failure's outcome label.")
    last_error_age_s: float | None = Field(description="Seconds since that failure.")
    recent: dict[str, int] = Field(description="Outcome label -> count over the recent history.")
    summary: str = Field(description="The compact history in one sentence.")


# --- quarantine --------------------------------------------------------------------------------


class QuarantineItem(BaseModel):
    """A result that passed transport but looked wrong, kept for review instead of cached."""

    id: str
    url: str
    final_url: str
    engine: Engine
    status_code: int
    title: str | None = None
    quarantined_at: datetime
    findings: list[str] = Field(description="What looked wrong, e.g. 'shrunk: 120 characters against 5400 …'.")
    text_chars: int = Field(description="Length of the extracted text.")
    baseline_chars: int | None = Field(None, description="Length of the last good copy's text, if any.")
    excerpt: str = Field(description="The first characters of the extracted text.")


class QuarantineList(BaseModel):
    items: list[QuarantineItem]
    total: int


class QuarantineDecision(BaseModel):
    id: str
    decision: Literal["approved", "rejected"]
    url: str
    accepted: list[str] = Field(
        default_factory=list,
        description=(
            "Approved: finding codes no longer held against this URL (thin, block_markers, lost_text;"
            " shrunk and drift are judged against the approved copy from then on)."
        ),
    )


# --- sessions ----------------------------------------------------------------------------------


class SessionCreate(_Strict):
    """Create a named session: cookies and storage kept between the fetches that name it."""

    ttl_s: int | None = Field(
        None,
        ge=1,
        description=(
            "Seconds the session lives after its last use (each fetch renews it). Default and upper bound: "
            "the service's settings (BROWSER_SERVICE_SESSION_TTL_S, BROWSER_SERVICE_SESSION_MAX_TTL_S)."
        ),
    )


class SessionRef(_Strict):
    """Name a session (the id that session_create / POST /v1/sessions returned)."""

    session: str = Field(pattern=SESSION_ID_PATTERN, description="The session's id.")


class SessionInfo(BaseModel):
    """A session's lifetime and what it holds (names of cookie domains and storage origins, no values)."""

    id: str = Field(description="Pass it as the session field of fetch.")
    created_at: datetime
    expires_at: datetime = Field(description="ttl_s after the last use; each fetch in the session renews it.")
    ttl_s: int
    last_used_at: datetime | None = None
    requests: int = Field(0, description="Fetches run in the session.")
    cookies: int = Field(0, description="Cookies the session holds.")
    cookie_domains: list[str] = Field(default_factory=list)
    storage_origins: list[str] = Field(default_factory=list, description="Origins with localStorage kept.")


class SessionDeleted(BaseModel):
    id: str
    deleted: Literal[True] = True


class ErrorBody(BaseModel):
    """The answer of an endpoint other than fetch/extract when it fails: the typed error."""

    ok: Literal[False] = False
    error: ErrorInfo


# --- health ------------------------------------------------------------------------------------

PoolState = Literal["available", "degraded", "unavailable"]


class PoolHealth(BaseModel):
    state: PoolState
    size: int = Field(description="Page slots.")
    in_use: int
    queued: int
    queue_limit: int
    browser_connected: bool
    browser_pid: int | None = None
    browser_version: str | None = None
    launches: int = Field(description="Browser launches since start (first launch included).")
    restarts: int = Field(description="Relaunches after a crash or disconnect.")
    recycles: int = Field(description="Planned relaunches after recycle_after pages.")
    pages_served: int


class CacheHealth(BaseModel):
    backend: str
    entries: int | None = None
    size_bytes: int | None = None
    location: str | None = None


class SharedStateHealth(BaseModel):
    """The shared-state engine (Redis) replicas act as one through; null in Health when embedded."""

    backend: Literal["redis"] = "redis"
    state: Literal["available", "unavailable"] = Field(
        description="unavailable: Redis did not answer; this replica runs on per-process state until it does."
    )
    url: str = Field(description="Where it is, without the password.")
    error: str | None = Field(None, description="The last failure talking to it, while unavailable.")


class Health(BaseModel):
    status: PoolState
    uptime_s: float
    pool: PoolHealth
    cache: CacheHealth
    shared_state: SharedStateHealth | None = Field(
        None,
        description="Redis when BROWSER_SERVICE_REDIS_URL is set (status degraded while it is unreachable); "
        "null when all state is embedded.",
    )
    hosts: list[HostStatus] = Field(
        default_factory=list,
        description="Hosts that are degraded or unavailable now (all recent hosts: GET /v1/hosts).",
    )
    quarantined: int | None = Field(
        None, description="Suspect results waiting for review (GET /v1/quarantine); null if the store did not answer."
    )
    versions: Versions = Field(default_factory=Versions)
