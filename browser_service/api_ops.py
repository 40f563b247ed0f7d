"""The operator routes of the REST API: ``/metrics``, ``/healthz``, ``/readyz``, ``/v1/traces/{id}``.

Kept beside ``api.py`` (which includes this router) so the fetch routes stay about fetching.

* ``GET /metrics`` — Prometheus text format (``metrics.py``); behind the API key like ``/v1``.
* ``GET /healthz`` — liveness: the process and its event loop answer. No browser, no key.
* ``GET /readyz`` — readiness from a real canary render through the pool (``readiness.py``); 503
  with the reason when not ready. No key: load balancers poll it; answers are reused a few seconds.
* ``GET /v1/traces/{trace_id}`` — the trace of a recent fetch of this process (``traces.py``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from browser_service.fetcher import Fetcher
from browser_service.metrics import CONTENT_TYPE_LATEST
from browser_service.readiness import ReadinessProbe, ReadyReport
from browser_service.settings import Settings
from browser_service.shared import SharedUnavailable
from browser_service.traces import Trace


def operations_router(service: Fetcher, settings: Settings, auth: list[Any]) -> APIRouter:
    router = APIRouter()
    readiness = ReadinessProbe(
        service.pool,
        timeout_s=settings.ready_timeout_ms / 1000,
        cache_s=settings.ready_cache_s,
        draining=lambda: service.admission.draining,  # SIGTERM received: out of the load balancer at once
    )

    @router.get("/metrics", dependencies=auth, include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus metrics (text exposition format)."""
        return Response(await service.telemetry.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process and its event loop answer (nothing else is checked)."""
        return {"status": "alive"}

    @router.get("/readyz", response_model=ReadyReport, responses={503: {"model": ReadyReport}})
    async def readyz() -> JSONResponse:
        """Readiness: a canary page rendered through the browser pool just now (or a few seconds ago)."""
        report = await readiness.check()
        return JSONResponse(report.model_dump(mode="json"), status_code=200 if report.ready else 503)

    @router.get("/v1/traces/{trace_id}", response_model=Trace, dependencies=auth)
    async def trace(trace_id: str) -> Trace:
        """The trace of a recent fetch: the request (no header or cookie values), attempts, outcome, timings."""
        telemetry = service.telemetry
        size = telemetry.traces.size
        kept = f"this replica keeps the traces of its last {size} fetches (BROWSER_SERVICE_TRACE_BUFFER)"
        try:
            found = await telemetry.find(trace_id)
        except SharedUnavailable as exc:  # what this replica has is all it can say now
            raise StarletteHTTPException(
                503, f"No trace {trace_id!r} here ({kept}), and Redis, where every replica's are, did not answer: {exc}"
            ) from None
        if found is None:
            shared = telemetry.shared
            also = (
                f"; Redis, those of the last {shared.size} fetches of all replicas"
                " (BROWSER_SERVICE_SHARED_TRACE_BUFFER)"
                if shared is not None
                else ", in memory only"
            )
            raise StarletteHTTPException(404, f"No trace {trace_id!r}: {kept}{also}.")
        return found

    return router
