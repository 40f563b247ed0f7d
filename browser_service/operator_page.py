"""The operator page at ``/``: try a URL, see the answer, watch the pool, hosts, cache and quarantine.

A static page (``browser_service/operator/``) that is a client of the service's own API: it holds
no data and needs no key to load, and every call it makes goes to ``/v1/*`` with the key the
operator types in (kept in the tab's sessionStorage), under the same checks as any client. It
writes what it shows with ``textContent`` only, and a strict Content-Security-Policy (no inline
script, same-origin everything, no framing) keeps a fetched page's content from running here.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

_ASSETS = {
    "operator.js": "text/javascript; charset=utf-8",
    "operator.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _read(name: str) -> bytes:
    return resources.files("browser_service").joinpath("operator", name).read_bytes()


def mount(app: FastAPI) -> None:
    """Serve the page at ``/`` and its assets under ``/operator/``."""

    @app.get("/", include_in_schema=False)
    async def operator_page() -> Response:
        return Response(_read("index.html"), media_type="text/html; charset=utf-8", headers=_HEADERS)

    @app.get("/operator/{name}", include_in_schema=False)
    async def operator_asset(name: str) -> Response:
        media_type = _ASSETS.get(name)
        if media_type is None:
            raise StarletteHTTPException(404, f"No operator asset {name!r}.")
        return Response(_read(name), media_type=media_type, headers=_HEADERS)
