"""Configuration, from the environment only (prefix ``BROWSER_SERVICE_``), so a container needs no files.

Every setting is documented in the README's configuration table; keep the two in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BROWSER_SERVICE_", extra="ignore")

    # --- serving ---------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

    # --- browser pool ----------------------------------------------------------------------
    chromium_path: str | None = Field(None, description="Browser executable to launch.")
    browser_endpoint: str | None = Field(
        None,
        description=(
            "Connect to this browser instead of launching one: a Playwright browser server (ws://…) or a CDP "
            "endpoint (http://host:port, ws://…/devtools/browser/…)."
        ),
    )
    browser_protocol: Literal["auto", "playwright", "cdp"] = Field(
        "auto",
        description="How to speak to browser_endpoint; 'auto': CDP for http(s):// and /devtools/browser/ paths.",
    )
    pool_size: int = Field(4, ge=1, le=256, description="Concurrent page slots.")
    queue_size: int = Field(
        32, ge=0, le=100_000, description="Requests that may wait for a slot; more get `overloaded`."
    )
    isolation: Literal["reset", "context"] = Field(
        "reset",
        description="Between leases: 'reset' cleans and reuses a slot's page (fast); 'context' opens a fresh one.",
    )
    recycle_after: int = Field(
        500, ge=1, description="Relaunch the browser after this many pages (bounds memory growth)."
    )
    headless: bool = True
    browser_args: Annotated[list[str], NoDecode] = Field(default_factory=list)
    launch_timeout_ms: int = Field(30_000, ge=1_000)
    prelaunch: bool = Field(True, description="`serve` launches the browser at start-up, not on first use.")

    # --- fetching --------------------------------------------------------------------------
    user_agent: str | None = Field(
        None, description="User-Agent for both engines; default: the browser's own, without 'Headless'."
    )
    max_timeout_ms: int = Field(300_000, ge=1_000, description="Upper bound for a request's timeout_ms.")
    max_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="Largest response body accepted.")
    max_redirects: int = Field(10, ge=0, le=50)
    settle_cap_ms: int = Field(5_000, ge=0, description="Longest the default 'wait until the DOM settles' may wait.")
    challenge_wait_ms: int = Field(
        12_000,
        ge=0,
        le=120_000,
        description="Longest wait for a JavaScript challenge to pass by itself in the browser (Cloudflare's: ~5 s).",
    )
    settle_quiet_ms: int = Field(
        20,
        ge=0,
        description=(
            "DOM quiet time (no mutations, nothing in flight or due) that counts as settled: the margin for"
            " asynchronous work the wait does not count."
        ),
    )

    # --- network policy --------------------------------------------------------------------
    allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Exceptions to the network policy: CIDRs (127.0.0.0/8) or host:port (127.0.0.1:8123).",
    )
    egress_host: str = Field(
        "127.0.0.1",
        description=(
            "Address the egress proxy listens on and the browser is told to use; a remote browser must reach it."
        ),
    )
    egress_port: int = Field(0, ge=0, le=65535, description="The egress proxy's port; 0: any free one.")
    browser_route_checks: bool = Field(
        False,
        description=(
            "Also check every browser request with a Playwright route before Chromium sends it. The egress proxy "
            "checks and pins every connection either way (refusals typed the same); routes add a list of refused "
            "sub-requests to the warning, at one driver round trip per request and with Chromium's HTTP cache off."
        ),
    )

    # --- failure handling ------------------------------------------------------------------
    retry_attempts: int = Field(
        3, ge=1, le=10, description="Tries per fetch for retryable failures, the first included."
    )
    retry_backoff_ms: int = Field(
        250, ge=0, le=60_000, description="First retry's wait bound; doubles per retry, full jitter, capped at 4 s."
    )
    breaker_window: int = Field(20, ge=1, le=1_000, description="Calls per host the circuit breaker looks back on.")
    breaker_min_calls: int = Field(5, ge=1, le=1_000, description="Calls in the window before the breaker judges.")
    breaker_failure_rate: float = Field(0.5, gt=0, le=1, description="Failure share that opens a host's circuit.")
    breaker_open_s: float = Field(30.0, gt=0, le=86_400, description="How long an open circuit fails fast.")
    breaker_half_open_calls: int = Field(2, ge=1, le=100, description="Trial calls that decide a half-open circuit.")
    host_concurrency: int = Field(4, ge=1, le=1_000, description="Concurrent fetches to one host.")
    host_interval_ms: int = Field(0, ge=0, le=600_000, description="Minimum gap between request starts to one host.")
    max_retry_after_s: int = Field(
        3600, ge=0, description="Longest Retry-After honoured: later requests to the host wait or fail fast until then."
    )
    respect_robots: bool = Field(
        False,
        description=(
            "Default of a request's respect_robots: obey robots.txt. Off by default: a fetch on an agent's "
            "request is a user agent's visit, not a crawl; turn it on for crawling workloads."
        ),
    )
    drift_threshold: float = Field(
        0.9,
        ge=0,
        le=1,
        description="`replay`: text similarity to the recorded baseline below which a change is large drift.",
    )
    live_drift_threshold: float = Field(
        0.05,
        ge=0,
        le=1,
        description=(
            "Live fetches: similarity to the cached good copy of the same request below which the page is "
            "'a different page now' (finding 'drift': quarantined, not cached). 0 turns the check off."
        ),
    )
    quarantine_max_items: int = Field(1_000, ge=1, description="Suspect results kept for review; oldest go first.")

    # --- batch -----------------------------------------------------------------------------
    batch_max: int = Field(1_000, ge=1, le=100_000, description="Most requests in one POST /v1/batch.")
    batch_concurrency: int | None = Field(
        None, ge=1, description="A batch's default concurrency; unset: half the pool's slots. Never above pool_size."
    )

    # --- state -----------------------------------------------------------------------------
    cache_dir: Path = Field(Path(".cache/browser-service"), description="Embedded cache location.")
    cache_size_mb: int = Field(1024, ge=1, description="Embedded cache bound; least recently used go first.")
    stale_max_age_s: int = Field(
        7 * 86400, ge=0, description="Oldest stored copy served when a live fetch fails (and for paging)."
    )
    redis_url: str | None = Field(
        None,
        description="redis:// URL of the state replicas share (cache, breakers, limits, sessions); unset: embedded.",
    )
    redis_timeout_ms: int = Field(
        500, ge=10, le=10_000, description="Bound of every Redis call; past it, per-process state for a second."
    )
    session_ttl_s: int = Field(
        3600, ge=1, description="A named session's default lifetime after its last use (POST /v1/sessions ttl_s)."
    )
    session_max_ttl_s: int = Field(7 * 86400, ge=1, description="Longest ttl_s a session may ask for.")
    session_max_count: int = Field(
        1_000, ge=1, description="Sessions kept at most (in CACHE_DIR/sessions); creating more is refused."
    )

    # --- observability (logs.py, metrics.py, traces.py, readiness.py, watchdog.py) --------------
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="`serve`'s log level (its --log-level flag overrides it)."
    )
    log_format: Literal["json", "console"] = Field(
        "json", description="`serve`'s log lines on stderr: one JSON object each, or 'console' for people."
    )
    trace_buffer: int = Field(
        1_000, ge=0, le=100_000, description="Recent fetches whose trace GET /v1/traces/{id} can show (0: none)."
    )
    shared_trace_buffer: int = Field(
        10_000,
        ge=0,
        le=1_000_000,
        description="With Redis: recent fetches of all replicas together whose trace any replica can show (0: none).",
    )
    metrics_max_hosts: int = Field(
        50, ge=0, le=10_000, description="Hosts whose breaker state /metrics exports one by one (bounds cardinality)."
    )
    heartbeat_interval_s: float = Field(
        10.0, ge=0, le=3_600, description="How often the watchdog checks every browser slot (0: no watchdog)."
    )
    heartbeat_timeout_ms: int = Field(
        2_000, ge=50, le=60_000, description="An idle slot's page must answer a heartbeat within this."
    )
    lease_grace_s: float = Field(
        10.0, ge=0, le=3_600, description="A lease still held this long past its request's deadline is recycled."
    )
    ready_timeout_ms: int = Field(
        5_000, ge=100, le=60_000, description="Longest /readyz's canary render may take (slot wait included)."
    )
    ready_cache_s: float = Field(
        5.0, ge=0, le=600, description="/readyz answers from its last canary render for this long."
    )

    # --- exposure --------------------------------------------------------------------------
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Limits of what callers may send and hold (admission.py, body_limit.py, shutdown.py).
    max_body_bytes: int = Field(
        32 * 2**20,
        ge=1024,
        description="Largest request body: room for /v1/extract's 20 M characters of HTML, JSON-escaped; more → 413.",
    )
    key_concurrency: int = Field(
        8,
        ge=1,
        le=100_000,
        description="Fetches and extracts in progress at once per API key (no per-caller limit without keys).",
    )
    max_screenshot_bytes: int = Field(
        3 * 2**20,
        ge=1024,
        description="Largest screenshot PNG; a bigger one is clipped to its top, with a warning.",
    )
    shutdown_grace_s: float = Field(
        10.0, ge=0, le=3_600, description="On SIGTERM: how long requests in progress may take to finish."
    )

    @field_validator("browser_args", "allow", "api_keys", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return _split_csv(value)
