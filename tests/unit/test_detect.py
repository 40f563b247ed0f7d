from __future__ import annotations

from pathlib import Path

import pytest

from browser_service.detect import (
    Verdict,
    block_markers,
    classify,
    judge,
    parse_retry_after,
    paywall,
    rate_limit_wait,
)
from browser_service.engines.base import RawPage, content_kind
from browser_service.errors import (
    Blocked,
    Captcha,
    EmptyContent,
    HTTPStatusError,
    LoginRequired,
    NotFound,
    RateLimited,
    UnsupportedContent,
)

ARTICLE = (
    "<html><head><title>Tide tables</title></head><body><article><h1>Tide tables</h1>"
    + "<p>High water at Newlyn is at 06:12 and 18:40 today; low water at 00:05 and 12:27.</p>" * 5
    + "</article></body></html>"
)
CF_CHALLENGE = (
    "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body><div id='challenge-running'></div>"
    "<script>window._cf_chl_opt={cType:'managed'};</script>"
    "<script src='/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1?ray=1'></script></body></html>"
)


def raw(
    status: int = 200,
    kind: str = "html",
    headers: dict[str, str] | None = None,
    html: str = "",
    engine: str = "http",
    url: str = "http://a.test/x",
    final_url: str | None = None,
) -> RawPage:
    return RawPage(
        url=url,
        final_url=final_url or url,
        status_code=status,
        headers=headers or {},
        content_type="text/html" if kind == "html" else "application/json",
        kind=kind,  # type: ignore[arg-type]
        body=html.encode(),
        text=html,
        engine=engine,
    )  # type: ignore[arg-type]


# --- statuses and binaries (unchanged behaviour) -------------------------------------------------


def test_ok_page_passes() -> None:
    classify(raw(200, html=ARTICLE))
    classify(raw(304))  # a revalidation answer has no body to judge
    assert judge(raw(200, html=ARTICLE)) == Verdict("ok")


@pytest.mark.parametrize("status", [404, 410])
def test_not_found(status: int) -> None:
    with pytest.raises(NotFound) as info:
        classify(raw(status))
    assert info.value.status_code == status and not info.value.retryable


def test_rate_limited_keeps_retry_after() -> None:
    with pytest.raises(RateLimited) as info:
        classify(raw(429, headers={"retry-after": "12"}))
    assert info.value.retry_after_s == 12 and info.value.retryable


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (501, False), (403, False), (400, False)])
def test_http_errors(status: int, retryable: bool) -> None:
    with pytest.raises(HTTPStatusError) as info:
        classify(raw(status))
    assert info.value.status_code == status and info.value.retryable is retryable


def test_http_error_keeps_retry_after_when_retryable() -> None:
    with pytest.raises(HTTPStatusError) as info:
        classify(raw(503, headers={"retry-after": "7"}, html="<html><body>Down for maintenance</body></html>"))
    assert info.value.retry_after_s == 7 and info.value.retryable


def test_binary_is_unsupported() -> None:
    with pytest.raises(UnsupportedContent):
        classify(raw(200, kind="binary"))
    assert judge(raw(404, kind="binary")).kind == "not_found"  # the status first


def test_retry_after_forms() -> None:
    assert parse_retry_after("30") == 30
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_rate_limit_wait_falls_back_to_reset_headers() -> None:
    assert rate_limit_wait({"retry-after": "5", "x-ratelimit-reset": "99"}) == 5
    assert rate_limit_wait({"x-ratelimit-reset": "1445412500"}, now=1445412470.0) == 30  # epoch seconds
    assert rate_limit_wait({"ratelimit-reset": "42"}) == 42  # delta seconds
    assert rate_limit_wait({}) is None


@pytest.mark.parametrize(
    ("mime", "body", "kind"),
    [
        ("text/html", b"", "html"),
        ("application/xhtml+xml", b"", "html"),
        ("application/json", b"{}", "text"),
        ("application/vnd.api+json", b"{}", "text"),
        ("text/plain", b"x", "text"),
        ("application/pdf", b"%PDF-1.4", "binary"),
        ("image/png", b"\x89PNG", "binary"),
        ("", b"<!DOCTYPE html><html>", "html"),
        ("", b"%PDF-1.7 ...", "binary"),
        ("application/octet-stream", b"just some text", "text"),
        # Labelled text, but a binary format's bytes: garbage if read as text.
        ("text/html", b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
        ("text/plain", b"%PDF-1.7\n", "binary"),
        ("application/json", b"\x1f\x8b\x08\x00", "binary"),
        ("text/html", b"%PDF is how a PDF starts", "html"),  # not the signature (no dash)
        ("text/html", b"\xff\xfe<\x00h\x00", "html"),  # UTF-16 with a BOM is text
    ],
)
def test_content_kind(mime: str, body: bytes, kind: str) -> None:
    assert content_kind(mime, body) == kind


# --- verdicts ------------------------------------------------------------------------------------


def test_challenge_verdict_names_vendor_and_signals() -> None:
    verdict = judge(raw(403, html=CF_CHALLENGE, headers={"server": "cloudflare"}))
    assert verdict.kind == "blocked" and verdict.vendor == "cloudflare" and verdict.challenge
    assert "title=Just a moment..." in verdict.signals and "marker=_cf_chl_opt" in verdict.signals
    assert "status=403" in verdict.signals


def test_header_verdicts() -> None:
    assert judge(raw(403, headers={"cf-mitigated": "challenge"})) == Verdict(
        "blocked", "cloudflare", ("header cf-mitigated=challenge", "status=403"), challenge=True
    )
    assert judge(raw(405, headers={"x-amzn-waf-action": "captcha"})).kind == "captcha"
    assert judge(raw(202, headers={"x-amzn-waf-action": "challenge"})).challenge
    # Kasada's headers mean a challenge only on 403/429; on 200 they ride along with normal pages.
    assert judge(raw(200, html=ARTICLE, headers={"x-kpsdk-ct": "abc"})).kind == "ok"


def test_vendor_presence_alone_is_not_a_block() -> None:
    headers = {"server": "cloudflare", "cf-ray": "1-FRA", "set-cookie": "__cf_bm=x; path=/\n_px3=y; path=/"}
    page = ARTICLE.replace("</body>", "<script src='/cdn-cgi/challenge-platform/scripts/jsd/main.js'></script></body>")
    assert judge(raw(200, html=page, headers=headers)).kind == "ok"
    # Even a plain 403 from an origin behind Cloudflare stays the origin's http_error.
    forbidden = "<html><head><title>403 Forbidden</title></head><body><h1>403 Forbidden</h1></body></html>"
    assert judge(raw(403, html=forbidden, headers=headers)).kind == "http_error"


def test_google_sorry_redirect_is_a_captcha() -> None:
    page = raw(
        429,
        html="<html><body><div class='g-recaptcha'></div></body></html>",
        final_url="https://www.google.com/sorry/index?continue=x",
    )
    assert judge(page).kind == "captcha" and judge(page).vendor == "google"


def test_login_wall_rules() -> None:
    login = "<html><head><title>Sign in</title></head><body><form><input type=password></form></body></html>"
    redirected = raw(200, html=login, url="https://s.example/a/b", final_url="https://s.example/login?next=/a/b")
    assert judge(redirected).kind == "login_required"
    assert judge(raw(401, headers={"www-authenticate": "Basic realm=x"})).signals[:2] == (
        "status=401",
        "www-authenticate=Basic",
    )
    nav = ARTICLE.replace("<article>", "<nav><a href='/login'>Log in</a> <a href='/signup'>Sign up</a></nav><article>")
    assert judge(raw(200, html=nav)).kind == "ok"


def test_soft_404_needs_a_short_page_that_says_so() -> None:
    soft = "<html><head><title>Page not found | Shop</title></head><body><p>Try the search.</p></body></html>"
    assert judge(raw(200, html=soft)).kind == "not_found"
    about = ARTICLE.replace("Tide tables</h1>", "Tide tables</h1><p>The station was not found on the map.</p>")
    assert judge(raw(200, html=about)).kind == "ok"


def test_empty_content_depends_on_the_engine_for_app_shells() -> None:
    shell = "<html><head><script src='/app.js'></script></head><body><div id='root'></div></body></html>"
    assert judge(raw(200, html=shell, engine="browser")).kind == "empty_content"
    assert judge(raw(200, html=shell, engine="http")).kind == "ok"  # not rendered yet: render=http's choice
    assert judge(raw(200, html="<html><body></body></html>", engine="http")).kind == "empty_content"
    assert judge(raw(200, kind="text", html="")).kind == "empty_content"  # zero bytes
    assert judge(raw(200, kind="text", html="{}")).kind == "ok"  # a tiny JSON answer is an answer


# --- errors --------------------------------------------------------------------------------------


def test_blocked_error_message_and_fields() -> None:
    verdict = Verdict("blocked", "cloudflare", ("title=Access denied", "cloudflare_error=1020"))
    page = raw(403, url="https://n.example/a")
    error = verdict.error(page)
    assert isinstance(error, Blocked)
    assert error.vendor == "cloudflare" and error.status_code == 403 and not error.retryable
    assert error.retry_after_s is None
    assert "Cloudflare" in error.message and "https://n.example/a" in error.message
    assert "do not retry immediately" in error.message.lower() and "cloudflare_error=1020" in error.message


def test_challenge_error_advice_depends_on_the_engine() -> None:
    verdict = Verdict("blocked", "cloudflare", ("title=Just a moment...",), challenge=True)
    from_http = verdict.error(raw(403, engine="http"))
    from_browser = verdict.error(raw(403, engine="browser"))
    assert from_http is not None and from_browser is not None
    assert "render=browser" in from_http.message and not from_http.retryable
    assert "did not clear in a real browser" in from_browser.message


def test_captcha_login_and_soft_404_errors() -> None:
    captcha = Verdict("captcha", "recaptcha", ("widget=recaptcha",)).error(raw(200))
    assert isinstance(captcha, Captcha) and captcha.vendor == "recaptcha" and not captcha.retryable
    assert "does not solve CAPTCHAs" in captcha.message and "reCAPTCHA" in captcha.message
    login = Verdict("login_required", None, ("final_url path=/login",)).error(raw(200))
    assert isinstance(login, LoginRequired) and not login.retryable and "logged-in session" in login.message
    soft = Verdict("not_found", None, ("title=Page not found",)).error(raw(200))
    assert isinstance(soft, NotFound) and soft.status_code == 200 and "soft 404" in soft.message


def test_rate_limited_error_keeps_vendor_and_wait() -> None:
    error = Verdict("rate_limited", "cloudflare", ("cloudflare_error=1015",)).error(
        raw(429, headers={"retry-after": "60"})
    )
    assert isinstance(error, RateLimited)
    assert error.retryable and error.retry_after_s == 60 and error.vendor == "cloudflare"
    assert "after 60 s" in error.message


def test_a_page_showing_only_a_placeholder_is_empty_and_the_error_names_it() -> None:
    connecting = "<html><body><nav><a href='/'>Home</a> <a href='/live'>Live</a></nav><p>Connecting…</p></body></html>"
    verdict = judge(raw(200, html=connecting, engine="browser"))
    assert verdict.kind == "empty_content" and "placeholder=Connecting…" in verdict.signals
    error = verdict.error(raw(200, engine="browser"))
    assert isinstance(error, EmptyContent)
    assert "has no text content beyond a placeholder ('Connecting…') even after rendering" in error.message
    # Only the placeholder word is discounted: a short page that says more is content.
    flights = "<html><body><p>Connecting flights from Oslo: none today.</p></body></html>"
    assert judge(raw(200, html=flights, engine="browser")).ok


def test_empty_error_mentions_rendering() -> None:
    error = Verdict("empty_content").error(raw(200, engine="browser"))
    assert isinstance(error, EmptyContent) and "even after rendering" in error.message
    assert Verdict("ok").error(raw(200)) is None


# --- block_markers ---------------------------------------------------------------------------------


def test_block_markers_finds_challenge_markup() -> None:
    markers = block_markers(CF_CHALLENGE)
    assert "title=Just a moment..." in markers and "marker=_cf_chl_opt" in markers
    assert "marker=#challenge-form" in markers
    incapsula = '<iframe src="/_Incapsula_Resource?CWUDNSAI=24&incident_id=1-2">Request unsuccessful.</iframe>'
    assert block_markers(incapsula) == ("marker=_Incapsula_Resource?CWUDNSAI=",)
    assert block_markers('<div id="px-captcha"></div>') == ("marker=#px-captcha",)


@pytest.mark.parametrize(
    "html",
    [
        ARTICLE,
        # vendor scripts that sit on normal pages
        ARTICLE + "<script src='/cdn-cgi/challenge-platform/h/b/scripts/jsd/e0c90b6a3ed1/main.js'></script>",
        ARTICLE + '<script src="/_Incapsula_Resource?SWJIYLWA=719d34d31c8e3a6e6fffd425f7e032f3"></script>',
        ARTICLE + "<script>window._pxAppId='PXabc';</script><script src='//client.perimeterx.net/PXabc/main.min.js'>",
        ARTICLE + "<script>var bazadebezolkohpepadr='1';</script><script src='/akam/13/3c1d9a2e'></script>",
        ARTICLE + "<script src='https://js.datadome.co/tags.js'></script>",
        ARTICLE + "<script>window.awsWafCookieDomainList=['x.example'];</script>",
        ARTICLE + '<script>this.pxElementId="px-captcha";</script>',
        ARTICLE + "<div class='g-recaptcha' data-sitekey='k'></div><div class='cf-turnstile'></div>",
        # an article quoting a block page in its text and code samples
        "<html><head><title>About Cloudflare's Just a moment... page</title></head><body><p>Sorry, you have been"
        ' blocked.</p><pre>&lt;div id="challenge-form"&gt; window._cf_chl_opt = {}</pre></body></html>',
    ],
)
def test_block_markers_ignores_normal_pages(html: str) -> None:
    assert block_markers(html) == ()


# --- paywalls: content, but only a teaser ---------------------------------------------------------


def test_the_fixture_paywall_is_recognised_by_markup_element_and_wording() -> None:
    page = (Path(__file__).resolve().parents[2] / "fixtures" / "pages" / "paywall.html").read_text()
    assert paywall(page) == ("isAccessibleForFree=false", "element=paywall", "text=subscribe to continue reading")


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (ARTICLE, ()),
        # a subscribe box on a free article is not a paywall
        (ARTICLE.replace("</article>", "</article><div class='newsletter'>Subscribe to continue reading us</div>"), ()),
        (ARTICLE.replace("</article>", "</article><div class='paywall'>Subscribe</div>"), ()),
        (
            ARTICLE.replace("</article>", "</article><div class='piano-offer'>Subscribe now to keep reading</div>"),
            ("element=paywall", "text=subscribe now to keep reading"),
        ),
        (
            '<script type="application/ld+json">{"isAccessibleForFree": "False"}</script>' + ARTICLE,
            ("isAccessibleForFree=false",),
        ),
    ],
)
def test_paywall_evidence(html: str, expected: tuple[str, ...]) -> None:
    assert paywall(html) == expected


# --- one judgment per rendered page ---------------------------------------------------------------


def test_a_rendered_page_is_judged_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The engine asks whether the page is a challenge, then the attempt judges the same page: the
    # second answer is the first one, not a second parse and ~50 rules.
    from browser_service import fetcher

    calls: list[RawPage] = []
    real = fetcher.detect.judge

    def counting(page: RawPage) -> Verdict:
        calls.append(page)
        return real(page)

    monkeypatch.setattr(fetcher.detect, "judge", counting)
    verdicts = fetcher._Verdicts()
    challenge, article = raw(403, html=CF_CHALLENGE, engine="browser"), raw(html=ARTICLE, engine="browser")
    assert verdicts.challenged(challenge) is True
    assert verdicts.of(challenge).kind == "blocked" and calls == [challenge]
    assert verdicts.challenged(article) is False  # a page read after the challenge passed: judged anew
    assert verdicts.of(article).ok and calls == [challenge, article]
