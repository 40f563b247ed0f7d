"""Graceful shutdown of ``serve``: on SIGTERM (or Ctrl-C) drain, answer, close Chromium, exit 0.

uvicorn alone stops listening and waits for connections, then cancels whatever is still running
— the client of a cancelled request gets a bare 500 or a dropped connection — and re-raises the
signal, so the process dies of SIGTERM. :class:`DrainingServer` puts the service's own drain
(``admission.py``) in front:

1. On the signal, new fetches and extracts are refused at once (``overloaded``, "shutting down"),
   even those that slip in before the listening socket closes.
2. uvicorn closes the listening socket and idle connections.
3. Requests in progress get ``BROWSER_SERVICE_SHUTDOWN_GRACE_S`` to finish; what is left is cut and
   answered ``overloaded`` (retryable, ``Retry-After``) — one typed answer each, never a 500.
4. uvicorn's own hard limit comes :data:`MARGIN_S` later, for anything that is not a fetch.
5. The app's lifespan closes the MCP sessions and the Fetcher: Chromium, the Playwright driver and
   the egress proxy. The process then exits 0: the signal was handled, not fatal.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import socket
from types import FrameType

import uvicorn

from browser_service.admission import Admission

log = logging.getLogger(__name__)

#: uvicorn's hard limit is the grace period plus this: time for the cut requests to answer.
MARGIN_S = 5.0


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, admission: Admission) -> None:
        super().__init__(config)
        self.admission = admission

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.admission.begin_drain()  # a flag: safe in a signal handler
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        drain = asyncio.ensure_future(self.admission.drain())
        try:
            await super().shutdown(sockets)  # stop listening; wait for connections; the lifespan's close
        finally:
            if not drain.done():
                drain.cancel()
        # The signal asked for exactly this; do not re-raise it after the drain (exit 0, not 143).
        self._captured_signals = [s for s in self._captured_signals if s != signal.SIGTERM]


def serve(app: object, admission: Admission, *, host: str, port: int, log_level: str) -> None:
    """Run ``app`` with uvicorn until SIGTERM or Ctrl-C, then shut down as described above."""
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        log_level=log_level,
        log_config=None,  # logging is configured by `serve` (logs.py): JSON lines, uvicorn's included
        timeout_graceful_shutdown=math.ceil(admission.grace_s + MARGIN_S),
    )
    DrainingServer(config, admission).run()
