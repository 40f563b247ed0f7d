"""Schema-driven fuzzing of the REST API (schemathesis): no 5xx, every answer matches its schema.

The app runs in-process (ASGI) with real parts behind it. Generated fetch URLs are pointed at the
fixture site on 127.0.0.1 before sending: a generated host would make the guard resolve it, and
tests never send traffic (DNS included) beyond loopback. Every other field is fuzzed as generated.
"""

from __future__ import annotations

import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from browser_service.api import create_app
from browser_service.batch import BatchItem, BatchSummaryLine
from browser_service.contract import FetchResponse
from tests.conftest import make_settings
from tests.site import FixtureServer

SITE = FixtureServer().start()


def _serve() -> str:
    """The app under uvicorn in a thread of its own (its own event loop, one lifespan)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    settings = make_settings(Path(tempfile.mkdtemp(prefix="fuzz-")), pool_size=1, settle_cap_ms=1000, prelaunch=False)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="on"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    started = threading.Event()
    for _ in range(3000):  # wait for the state it needs (started), not for time
        if server.started:
            started.set()
            break
        started.wait(0.01)
    assert server.started, "uvicorn did not start"
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


BASE = _serve()
schema = schemathesis.openapi.from_url(f"{BASE}/openapi.json")


def to_loopback(body: Any) -> None:
    """Point a generated fetch at the fixture site (never a generated host: no traffic off loopback)."""
    if isinstance(body, dict) and isinstance(body.get("requests"), list):  # /v1/batch: each item is a fetch
        del body["requests"][3:]  # a few items fuzz the shape; a thousand would only take time
        for item in body["requests"]:
            to_loopback(item)
        return
    if isinstance(body, dict) and "url" in body and "html" not in body:
        body["url"] = SITE.url("/article.html")
        body["timeout_ms"] = 5_000
        body.pop("wait_for", None)  # a generated selector would only wait out the deadline
        body["wait_ms"] = 0


def typed_answer(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """Never a bare 500; an error status only with the contract's typed body (502/503/504 are the
    documented statuses of upstream and service failures)."""
    assert response.status_code != 500, response.text[:500]
    if case.path in ("/v1/fetch", "/v1/extract") and response.status_code != 405:  # 405: a probe of other methods
        answer = FetchResponse.model_validate_json(response.content)
        assert answer.ok == (response.status_code == 200), response.text[:500]
        assert answer.ok or answer.error is not None
    if case.path == "/v1/batch" and response.status_code != 405:
        if response.status_code != 200:  # the whole batch refused: the fetch's typed answer
            assert FetchResponse.model_validate_json(response.content).error is not None
            return None
        lines = response.text.splitlines()
        items = [BatchItem.model_validate_json(line) for line in lines[:-1]]
        summary = BatchSummaryLine.model_validate_json(lines[-1]).summary
        assert sorted(item.index for item in items) == list(range(summary.total))
    return None


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api(case: schemathesis.Case) -> None:
    to_loopback(case.body)
    case.call_and_validate(base_url=BASE, checks=[typed_answer, response_schema_conformance])
