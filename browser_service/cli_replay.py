"""``browser-service record`` and ``replay``: the command-line side of ``recorder.py``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from browser_service.contract import FetchRequest
from browser_service.recorder import DEFAULT_DIR
from browser_service.settings import Settings


def record(
    urls: Annotated[list[str], typer.Argument(help="The http(s) URLs to fetch and record, in order.")],
    name: Annotated[str, typer.Option("--name", help="The recording's name (a directory under --into).")],
    into: Annotated[Path, typer.Option(help="Where recordings live.")] = DEFAULT_DIR,
    render: Annotated[str, typer.Option(help="auto, http or browser.")] = "auto",
    format: Annotated[list[str] | None, typer.Option("--format", "-f", help="Formats to snapshot; repeatable.")] = None,
    wait_for: Annotated[str | None, typer.Option(help="Browser: CSS selector to wait for.")] = None,
    full_page: Annotated[bool, typer.Option("--full-page", help="The whole page, not only main content.")] = False,
    timeout_ms: Annotated[int, typer.Option(help="Each fetch's deadline.")] = 30_000,
    images: Annotated[bool, typer.Option("--images", help="Also record images, media and fonts.")] = False,
) -> None:
    """Fetch URLs live through the whole pipeline and record every exchange and the answers."""
    from browser_service import recorder

    options: dict[str, Any] = {"formats": format or ["markdown"], "render": render, "timeout_ms": timeout_ms}
    options.update({"main_content": not full_page, **({"wait_for": wait_for} if wait_for else {})})
    try:
        requests = [FetchRequest.model_validate({"url": url, **options}) for url in urls]
    except ValidationError as exc:
        typer.echo(f"error: invalid request: {exc.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from None
    recording, responses = asyncio.run(recorder.record(requests, name, into, images=images))
    for response in responses:
        outcome = "ok" if response.ok else response.error.kind.value if response.error else "error"
        typer.echo(f"{outcome:<16} {response.engine or '-':<8} {response.url}")
    typer.echo(f"recorded {len(responses)} fetch(es) into {recording.path}")


def replay(
    names: Annotated[list[str] | None, typer.Argument(help="Recordings to replay (default: all under --into).")] = None,
    into: Annotated[Path, typer.Option(help="Where recordings live.")] = DEFAULT_DIR,
    update: Annotated[bool, typer.Option("--update", help="Accept the new answers as the snapshots.")] = False,
    threshold: Annotated[
        float | None, typer.Option(help="Similarity below which drift is large [env BROWSER_SERVICE_DRIFT_THRESHOLD].")
    ] = None,
) -> None:
    """Replay recordings offline and compare with their snapshots; exit 1 on any difference."""
    from browser_service import recorder
    from browser_service.recording import RecordingError, list_recordings

    settings = Settings()
    try:
        recordings = list_recordings(into, names)
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not recordings:
        typer.echo(f"error: no recordings in {into}", err=True)
        raise typer.Exit(2)
    limit = settings.drift_threshold if threshold is None else threshold
    changed = 0
    for recording in recordings:
        try:
            comparison = asyncio.run(recorder.check(recording, threshold=limit, update=update, settings=settings))
        except RecordingError as exc:  # this one cannot run; the others still do
            typer.echo(f"ERROR {recording.name}: {exc}")
            changed += 1
            continue
        typer.echo(comparison.report())
        changed += comparison.changed
    typer.echo(f"{len(recordings) - changed} passed, {changed} {'updated' if update else 'failed'}")
    raise typer.Exit(1 if changed and not update else 0)
