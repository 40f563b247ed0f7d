"""``browser-service fetch -i URLS``: a batch run in-process, with progress and a summary of outcomes.

The lines written (stdout, or ``-o FILE``) are exactly those of ``POST /v1/batch`` (``batch.py``):
one ``{"index", "response"}`` per URL as it completes, then ``{"summary": …}``. stderr gets the
progress — a rich progress bar when it is a terminal, one plain line per URL otherwise (logs,
CI) — and a table of outcomes by kind with the p50/p95 latency. The exit code is the most severe
failure's (``cli.exit_code``: 4 internal > 3 service > 2 request > 1 upstream), 0 when every URL
succeeded.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterable
from typing import IO, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from browser_service.batch import Batch, BatchItem, BatchRequest, BatchSummary, ndjson_line, outcome
from browser_service.contract import FetchResponse
from browser_service.settings import Settings


def read_urls(lines: Iterable[str]) -> list[str]:
    """One URL per line; blank lines and ``#`` comments skipped."""
    return [s for s in (line.strip() for line in lines) if s and not s.startswith("#")]


class _Progress:
    """A rich bar on a terminal; otherwise one plain line per finished URL."""

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.total = total
        self.done = 0
        self.failed = 0
        self.bar: Progress | None = None
        if console.is_terminal:
            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("fetching"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[failed]} failed"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self.task = self.bar.add_task("fetching", total=total, failed=0)
            self.bar.start()

    def advance(self, item: BatchItem) -> None:
        self.done += 1
        self.failed += not item.response.ok
        if self.bar is not None:
            self.bar.update(self.task, advance=1, failed=self.failed)
        else:
            took = f"{item.response.duration_ms} ms" if item.response.duration_ms is not None else "-"
            print(f"[{self.done}/{self.total}] {outcome(item.response)} {took} {item.response.url}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def summary_table(summary: BatchSummary) -> Table:
    """Outcomes by kind (ok first), then a line of latency and totals."""
    table = Table(title=f"{summary.total} URLs: {summary.ok} ok, {summary.failed} failed", title_justify="left")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    kinds = sorted(summary.by_kind.items(), key=lambda kv: (kv[0] != "ok", -kv[1], kv[0]))
    for kind, count in kinds:
        style = "green" if kind == "ok" else "red"
        table.add_row(f"[{style}]{kind}[/{style}]", str(count), f"{count / summary.total:.0%}")
    return table


def summary_line(summary: BatchSummary) -> str:
    def ms(value: int | None) -> str:
        return "-" if value is None else f"{value} ms"

    stale = f"; {summary.stale} stale copies" if summary.stale else ""
    return (
        f"latency p50 {ms(summary.p50_ms)}, p95 {ms(summary.p95_ms)}; "
        f"{summary.elapsed_ms / 1000:.1f} s in all, concurrency {summary.concurrency}{stale}"
    )


def run(
    urls: list[str],
    options: dict[str, Any],
    concurrency: int | None,
    out: IO[str],
    exit_code: Callable[[FetchResponse], int],
) -> int:
    """Fetch ``urls`` (each with ``options``), write the lines to ``out``; the exit code."""
    from browser_service.fetcher import Fetcher

    settings = Settings()
    console = Console(stderr=True)
    request = BatchRequest(
        requests=[{**options, "url": url} for url in urls], concurrency=concurrency or settings.pool_size
    )
    worst = 0

    async def fetch_all() -> BatchSummary:
        nonlocal worst
        progress = _Progress(console, len(urls))
        try:
            async with Fetcher(settings) as fetcher, Batch(fetcher, request, max_items=len(urls)) as batch:
                async for line in batch.lines():
                    out.write(ndjson_line(line))
                    out.flush()
                    if isinstance(line, BatchItem):
                        worst = max(worst, exit_code(line.response))
                        progress.advance(line)
                    else:
                        return line.summary
        finally:
            progress.close()
        raise AssertionError("a batch always ends with its summary")

    summary = asyncio.run(fetch_all())
    console.print(summary_table(summary))
    console.print(summary_line(summary), highlight=False)
    return worst
