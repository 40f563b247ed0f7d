"""The client's side of MCP's stdio transport: its messages, read from fd 0.

The MCP SDK's ``stdio_server`` parses each line strictly, and a line it cannot parse is dropped
before any handler sees it — so a request whose JSON holds a lone surrogate (``"\\ud800"``, which
JSON allows and a client cutting a string in half produces) got no answer at all, and its caller
waited for ever. :func:`client_lines` hands the SDK the same lines with each such escape replaced by
U+FFFD's (``encoding.json_utf8_safe``), as the browser engine treats a lone surrogate in a page it
reads, and the tool answers. (The REST API, which can answer a body it cannot use, answers it with
a typed 422 naming the field instead.)

Like the SDK's own reader, it reads from a private copy of fd 0 and points fd 0 itself at the null
device while it serves, so nothing the service starts (the Playwright driver, Chromium) can consume
the client's input; fd 0 is restored on exit.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TextIO

import anyio

from browser_service.encoding import json_utf8_safe


class SafeLines:
    """An async iterator of a text stream's lines, each made safe for a strict JSON parser."""

    def __init__(self, source: anyio.AsyncFile[str]) -> None:
        self._source = source

    def __aiter__(self) -> SafeLines:
        return self

    async def __anext__(self) -> str:
        line = await self._source.readline()
        if not line:
            raise StopAsyncIteration
        return json_utf8_safe(line)


@contextlib.contextmanager
def client_lines() -> Iterator[SafeLines]:
    """The client's lines from fd 0 (or from ``sys.stdin`` when it is not fd 0, as under a test runner)."""
    try:
        if sys.stdin.fileno() != 0:
            raise ValueError("sys.stdin is not fd 0")
        private = os.dup(0)  # not inherited by the processes the service starts
    except (AttributeError, OSError, ValueError):
        yield SafeLines(anyio.wrap_file(sys.stdin))
        return
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    # Never closed: a worker thread may still be blocked reading it when the transport ends.
    wire: TextIO = open(private, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    try:
        yield SafeLines(anyio.wrap_file(wire))
    finally:
        with contextlib.suppress(OSError):
            os.dup2(private, 0)
