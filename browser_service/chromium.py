"""Finding a Chromium to launch, and the flags it needs to behave as a quiet server component.

Order: ``BROWSER_SERVICE_CHROMIUM_PATH``; Playwright's own download (``playwright install
chromium``); the system's chromium. With none, :class:`BrowserNotFound` says how to get one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from playwright.async_api import BrowserType
from playwright.sync_api import BrowserType as SyncBrowserType

#: Chromium keeps only the last ``--disable-features`` it is given, so ours replaces Playwright's
#: own list: this is Playwright's list (driver 1.65, ``chromiumSwitches``) plus ours. Dropping it
#: would, among others, turn HTTPS-Upgrades back on (an http:// URL tried over https first).
DISABLED_FEATURES = (
    # Playwright's
    "AvoidUnnecessaryBeforeUnloadCheckSync",
    "DestroyProfileOnBrowserClose",
    "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable",
    "LensOverlay",
    "MediaRouter",
    "PaintHolding",
    "ThirdPartyStoragePartitioning",
    "AvoidCorsURLLoaderRestartOnRedirect",
    "OptimizationHints",
    "NetworkTimeServiceQuerying",
    "AimEnabled",
    "PreconnectToSearch",
    # ours: background traffic to Google services that a closed network refuses
    "Translate",
    "AutofillServerCommunication",
    # ours: RenderDocument builds a new frame host (document host, frame state, V8 setup in browser
    # and renderer) for every cross-document navigation, even within one site; without it Chromium
    # reuses the frame host for same-site navigations, which changes nothing a page can see. A slot
    # navigates twice per lease (to the page, then to about:blank): bench/throughput.py went from
    # 0.54-0.55x to 0.63-0.65x plain Playwright with it off.
    "RenderDocument",
    # ours: Chrome's omnibox popup, a web page of its own (chrome://omnibox-popup.top-chrome, and
    # its AI-mode variant) preloaded in a renderer of its own for every window — and each context's
    # first page opens a window. Nobody types into a headless omnibox; it cost ~510 ms of renderer
    # and ~120 ms of browser CPU per context opened (782 → 152 ms with these two off) and a
    # renderer process per pool slot.
    "WebUIOmniboxPopup",
    "WebUIOmniboxAimPopup",
)

#: Reuse a renderer process whenever one is suitable, rather than starting one per navigation.
#: Each pool slot is its own browser context, and a context's tab otherwise gets a new renderer
#: (plus a spare one kept warm) for nearly every navigation: ~1 process start per page, and
#: bench/throughput.py went 7.9 → 10.3 pages/s at concurrency 8 on a 2-core machine with this.
#: Not a weaker isolation: a renderer is never shared between contexts, and with site isolation
#: a process locked to one site never hosts another; the limit is soft (Chromium exceeds it when
#: no process is suitable). A stuck renderer would be reused too: the pool closes a slot whose
#: lease timed out instead of cleaning it (pool.py).
REUSE_RENDERERS = "--renderer-process-limit=1"

#: Playwright's default flags the service leaves out. ``--disable-ipc-flooding-protection`` turns off
#: Chromium's limit on how often a page may call ``history.pushState``/``replaceState`` and the like
#: (200 per 10 s): a page calling it in a loop then floods the browser process, whose navigation
#: of that tab never reaches ``load`` (measured: ``timeout`` at the deadline, and the slot's context
#: would not even close, so the browser was recycled). The service's own navigations are the
#: browser's, which the limit does not count.
IGNORED_DEFAULT_ARGS = ("--disable-ipc-flooding-protection",)

#: Without the networking flags Chromium keeps opening background connections (updates, sync,
#: safe browsing) that a closed network refuses; --no-sandbox is required when running as root.
BASE_ARGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-gpu",
    "--disable-dev-shm-usage",  # containers give /dev/shm 64 MB; use /tmp instead
    "--disable-breakpad",
    "--metrics-recording-only",
    "--mute-audio",
    "--disable-features=" + ",".join(DISABLED_FEATURES),
    REUSE_RENDERERS,
)

#: One identity for both engines: a current desktop Chrome, not "HeadlessChrome", which many sites
#: refuse on sight. Override with BROWSER_SERVICE_USER_AGENT.
DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
)

_SYSTEM_NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome", "chrome")


class BrowserNotFound(RuntimeError):
    pass


def launch_args(extra: list[str] | None = None) -> list[str]:
    args = list(BASE_ARGS)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")
    return args + list(extra or [])


def find_chromium(configured: str | None, bundled: str | None) -> str:
    """The executable to launch, by the documented order; raises :class:`BrowserNotFound`.

    ``bundled`` is Playwright's ``chromium.executable_path`` (which exists only after
    ``playwright install chromium``).
    """
    if configured:
        if Path(configured).is_file() and os.access(configured, os.X_OK):
            return configured
        raise BrowserNotFound(
            f"BROWSER_SERVICE_CHROMIUM_PATH={configured!r} is not an executable file. "
            "Point it at a Chromium or Chrome binary, or unset it to search automatically."
        )
    if bundled and Path(bundled).is_file():
        return bundled
    for name in _SYSTEM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserNotFound(
        "No Chromium found. Fix it with one of: `python -m playwright install chromium` (downloads "
        "Playwright's build); `apt-get install chromium` (Debian/Ubuntu); or set "
        "BROWSER_SERVICE_CHROMIUM_PATH to a Chromium/Chrome executable."
    )


def bundled_path(chromium: BrowserType | SyncBrowserType) -> str | None:
    """Where Playwright's own Chromium would be; the driver raises when it was never downloaded."""
    try:
        return chromium.executable_path
    except Exception:
        return None


def locate(configured: str | None) -> str:
    """:func:`find_chromium` from synchronous code (the CLI and setup script)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        return find_chromium(configured, bundled_path(playwright.chromium))
