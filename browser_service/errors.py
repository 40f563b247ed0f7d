"""Every way a fetch can fail, one exception class per :class:`~browser_service.contract.ErrorKind`.

The tree (the HTTP status the REST API answers with is on the right)::

    FetchError
    ├── RequestError                 the caller's problem; never retried        4xx
    │   ├── InvalidRequest           invalid_request                              422
    │   ├── ForbiddenTarget          forbidden_target (network policy)            403
    │   ├── RobotsDisallowed         robots_disallowed                            403
    │   ├── SessionNotFound          session_not_found (unknown or expired)       404
    │   └── ActionFailed             action_failed (names the step)               422
    ├── UpstreamError                the origin's problem                         502
    │   ├── DNSError                 dns_error
    │   ├── ConnectError             connection_error
    │   ├── TLSError                 tls_error
    │   ├── FetchTimeout             timeout (with the phase)                     504
    │   ├── HTTPStatusError          http_error (origin status kept)
    │   ├── NotFound                 not_found
    │   ├── RateLimited              rate_limited (retry_after)
    │   ├── Blocked                  blocked (vendor)
    │   ├── Captcha                  captcha (vendor)
    │   ├── LoginRequired            login_required
    │   ├── EmptyContent             empty_content
    │   ├── UnsupportedContent       unsupported_content
    │   ├── TooLarge                 too_large
    │   └── SuspectContent           suspect_content (quarantined)
    └── ServiceError                 our side                                     503 + Retry-After
        ├── CircuitOpen              circuit_open (retry_after)
        ├── Overloaded               overloaded (retry_after)
        ├── BrowserError             browser_error
        └── InternalError            internal_error                               500

Stages raise these; only the adapters turn them into answers (``ErrorInfo`` via :meth:`FetchError.info`,
the HTTP status via ``http_status``). ``docs/errors.md`` documents the same table for agents.
"""

from __future__ import annotations

from typing import ClassVar

from browser_service.contract import ErrorInfo, ErrorKind, FetchResponse, HostState, Phase


class FetchError(Exception):
    kind: ClassVar[ErrorKind]
    http_status: ClassVar[int]
    #: Whether the same request may succeed if sent again (possibly after ``retry_after_s``).
    retryable_default: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        retryable: bool | None = None,
        retry_after_s: float | None = None,
        status_code: int | None = None,
        phase: Phase | None = None,
        vendor: str | None = None,
        host_state: HostState | None = None,
        quarantine_id: str | None = None,
        step: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = self.retryable_default if retryable is None else retryable
        self.retry_after_s = retry_after_s
        self.status_code = status_code
        self.phase = phase
        self.vendor = vendor
        self.host_state = host_state
        self.quarantine_id = quarantine_id
        self.step = step
        #: The whole answer, when a client rebuilt this error from one (``client.py``).
        self.response: FetchResponse | None = None

    def info(self) -> ErrorInfo:
        return ErrorInfo(
            kind=self.kind,
            message=self.message,
            retryable=self.retryable,
            retry_after_s=self.retry_after_s,
            vendor=self.vendor,
            status_code=self.status_code,
            phase=self.phase,
            host_state=self.host_state,
            quarantine_id=self.quarantine_id,
            step=self.step,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


# --- the caller's problem ----------------------------------------------------------------------


class RequestError(FetchError):
    http_status = 400


class InvalidRequest(RequestError):
    kind = ErrorKind.INVALID_REQUEST
    http_status = 422


class ForbiddenTarget(RequestError):
    kind = ErrorKind.FORBIDDEN_TARGET
    http_status = 403


class RobotsDisallowed(RequestError):
    kind = ErrorKind.ROBOTS_DISALLOWED
    http_status = 403


class SessionNotFound(RequestError):
    """The named session does not exist (never did, was deleted, or expired): create a new one."""

    kind = ErrorKind.SESSION_NOT_FOUND
    http_status = 404


class ActionFailed(RequestError):
    """A page action could not be carried out on the page that loaded (``step`` is its index).

    The caller's problem in the sense that matters: the page answered, the steps do not fit it, and
    sending the same steps again will not help (so it is never retried and never counts against the
    host's circuit breaker).
    """

    kind = ErrorKind.ACTION_FAILED
    http_status = 422


# --- the origin's problem ----------------------------------------------------------------------


class UpstreamError(FetchError):
    http_status = 502


class DNSError(UpstreamError):
    kind = ErrorKind.DNS_ERROR


class ConnectError(UpstreamError):
    kind = ErrorKind.CONNECTION_ERROR
    retryable_default = True


class TLSError(UpstreamError):
    kind = ErrorKind.TLS_ERROR


class FetchTimeout(UpstreamError):
    kind = ErrorKind.TIMEOUT
    http_status = 504
    retryable_default = True


class HTTPStatusError(UpstreamError):
    kind = ErrorKind.HTTP_ERROR


class NotFound(UpstreamError):
    kind = ErrorKind.NOT_FOUND


class RateLimited(UpstreamError):
    kind = ErrorKind.RATE_LIMITED
    retryable_default = True


class Blocked(UpstreamError):
    kind = ErrorKind.BLOCKED


class Captcha(UpstreamError):
    kind = ErrorKind.CAPTCHA


class LoginRequired(UpstreamError):
    kind = ErrorKind.LOGIN_REQUIRED


class EmptyContent(UpstreamError):
    kind = ErrorKind.EMPTY_CONTENT


class UnsupportedContent(UpstreamError):
    kind = ErrorKind.UNSUPPORTED_CONTENT


class TooLarge(UpstreamError):
    kind = ErrorKind.TOO_LARGE


class SuspectContent(UpstreamError):
    kind = ErrorKind.SUSPECT_CONTENT


# --- our side ----------------------------------------------------------------------------------


class ServiceError(FetchError):
    http_status = 503
    retryable_default = True


class CircuitOpen(ServiceError):
    kind = ErrorKind.CIRCUIT_OPEN


class Overloaded(ServiceError):
    kind = ErrorKind.OVERLOADED


class BrowserError(ServiceError):
    kind = ErrorKind.BROWSER_ERROR


class InternalError(ServiceError):
    kind = ErrorKind.INTERNAL_ERROR
    http_status = 500
    retryable_default = False


#: kind -> class; ``tests/unit/test_errors.py`` checks it covers the closed enum exactly once.
ERROR_CLASSES: dict[ErrorKind, type[FetchError]] = {
    cls.kind: cls
    for cls in (
        InvalidRequest,
        ForbiddenTarget,
        RobotsDisallowed,
        SessionNotFound,
        ActionFailed,
        DNSError,
        ConnectError,
        TLSError,
        FetchTimeout,
        HTTPStatusError,
        NotFound,
        RateLimited,
        Blocked,
        Captcha,
        LoginRequired,
        EmptyContent,
        UnsupportedContent,
        TooLarge,
        SuspectContent,
        CircuitOpen,
        Overloaded,
        BrowserError,
        InternalError,
    )
}


def from_info(info: ErrorInfo) -> FetchError:
    """Rebuild the exception from its wire form (clients raise the same classes as the server)."""
    return ERROR_CLASSES[info.kind](
        info.message,
        retryable=info.retryable,
        retry_after_s=info.retry_after_s,
        status_code=info.status_code,
        phase=info.phase,
        vendor=info.vendor,
        host_state=info.host_state,
        quarantine_id=info.quarantine_id,
        step=info.step,
    )
