"""``browser-service serve`` as an operator runs it: a subprocess on a free loopback port.

Its stderr is read line by line on a thread, so a test can wait for what the server says it did
(``wait_for("Application startup complete")``) instead of sleeping.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]


class ServeProcess:
    """``serve --port <free port>`` with ``env`` added to this process's environment."""

    def __init__(self, env: Mapping[str, str], name: str = "serve") -> None:
        self.name = name
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "browser_service.cli", "serve", "--port", str(self.port)],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)

    def wait_for(self, text: str, timeout_s: float = 60) -> None:
        """Block until a stderr line contains ``text`` (the server's own account of what it did)."""
        while True:
            try:
                line = self.lines.get(timeout=timeout_s)
            except queue.Empty:
                raise AssertionError(f"{self.name}: no log line with {text!r}; the log:\n{''.join(self.log)}") from None
            self.log.append(line)
            if text in line:
                return

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
