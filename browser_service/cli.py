"""The command line: ``serve``, ``fetch``, ``extract``, ``mcp``, ``record`` and ``replay`` — thin
adapters over the Fetcher (``record``/``replay``: ``cli_replay.py``).

``fetch`` and ``extract`` run in-process (no server needed). They print the content, or the typed
error on stderr with an exit code by category: 0 ok, 1 the origin failed (upstream), 2 the request
was invalid or refused (request), 3 the service could not do it (service), 4 internal error.
"""

from __future__ import annotations

import asyncio
import ipaddress
import sys
from pathlib import Path
from typing import Annotated, Any, get_args

import typer
from pydantic import ValidationError

from browser_service import cli_replay
from browser_service.contract import ErrorKind, ExtractRequest, FetchRequest, FetchResponse, Format, Render
from browser_service.errors import (
    ERROR_CLASSES,
    InvalidRequest,
    RequestError,
    ServiceError,
    UnsupportedContent,
    UpstreamError,
)
from browser_service.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="browser-service: web content for AI agents.")

FORMATS = get_args(Format)
RENDERS = get_args(Render)


def exit_code(response: FetchResponse) -> int:
    if response.ok or response.error is None:
        return 0
    cls = ERROR_CLASSES[response.error.kind]
    if response.error.kind == ErrorKind.INTERNAL_ERROR:
        return 4
    if issubclass(cls, RequestError):
        return 2
    if issubclass(cls, UpstreamError):
        return 1
    if issubclass(cls, ServiceError):
        return 3
    return 4


def _emit(response: FetchResponse, as_json: bool) -> None:
    if as_json:
        typer.echo(response.model_dump_json(indent=2))
    elif response.ok:
        fmt = response.content.format if response.content else None
        value: Any = getattr(response, fmt) if fmt else None
        if value is None:  # only non-text formats were asked for
            value = response.model_dump_json(
                indent=2, include={"title", "links", "metadata", "fields", "screenshot"}, exclude_none=True
            )
        typer.echo(value)
        if response.content and response.content.truncated:
            typer.echo(
                f"\n[truncated: {response.content.total_chars} characters in all; "
                f"continue with --start-index {response.content.next_start_index}]",
                err=True,
            )
    for warning in response.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if response.error is not None:
        typer.echo(f"error: {response.error.kind.value}: {response.error.message}", err=True)


def _binary(data: bytes) -> str | None:
    """What a file is when it is not text (an image, a PDF, random bytes), else None. A NUL byte
    is binary unless a UTF-16/32 byte order mark says the text has them."""
    from browser_service.engines.base import binary_signature

    if (signature := binary_signature(data)) is not None:
        return signature
    utf16_or_32 = data.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff"))
    return "binary data" if b"\x00" in data[:4096] and not utf16_or_32 else None


def _invalid(url: str, exc: ValidationError) -> FetchResponse:
    details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
    return FetchResponse(ok=False, url=url, trace_id="-", error=InvalidRequest(f"Invalid request: {details}").info())


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [env BROWSER_SERVICE_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [env BROWSER_SERVICE_PORT].")] = None,
    insecure: Annotated[
        bool, typer.Option(help="Allow listening beyond loopback without BROWSER_SERVICE_API_KEYS.")
    ] = False,
    log_level: Annotated[
        str | None, typer.Option(help="debug, info, warning or error [env BROWSER_SERVICE_LOG_LEVEL, info].")
    ] = None,
) -> None:
    """Run the HTTP API (default 127.0.0.1:8000)."""
    from browser_service.api import create_app
    from browser_service.chromium import BrowserNotFound, locate
    from browser_service.fetcher import Fetcher
    from browser_service.logs import configure as configure_logging

    settings = Settings()
    host = host or settings.host
    port = port or settings.port
    if not settings.api_keys and not insecure and not _is_loopback(host):
        typer.echo(
            f"Refusing to listen on {host} without API keys: anyone who can reach it could make this "
            "machine fetch URLs. Set BROWSER_SERVICE_API_KEYS=key1,key2 (clients send "
            "'Authorization: Bearer key1'), or pass --insecure if a proxy in front does authentication.",
            err=True,
        )
        raise typer.Exit(2)
    if settings.browser_endpoint is None:
        try:
            locate(settings.chromium_path)
        except BrowserNotFound as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(3) from None
    from browser_service.shutdown import serve as run_server

    # Every log line, uvicorn's included, as JSON on stderr (logs.py); uvicorn's own config is not applied.
    level = (log_level or settings.log_level).lower()
    configure_logging(level, settings.log_format)
    service = Fetcher(settings)
    # SIGTERM drains (BROWSER_SERVICE_SHUTDOWN_GRACE_S), answers the rest, closes Chromium, exits 0.
    run_server(create_app(settings, service), service.admission, host=host, port=port, log_level=level)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def fetch(
    url: Annotated[str | None, typer.Argument(help="The http(s) URL to fetch (or --input).")] = None,
    format: Annotated[
        list[str] | None, typer.Option("--format", "-f", help=f"One of {', '.join(FORMATS)}; repeatable.")
    ] = None,
    render: Annotated[str, typer.Option(help=f"One of {', '.join(RENDERS)}.")] = "auto",
    timeout_ms: Annotated[int, typer.Option(help="One deadline for the whole fetch.")] = 30_000,
    max_chars: Annotated[int, typer.Option(help="Characters of content per page.")] = 20_000,
    start_index: Annotated[int, typer.Option(help="Continue from this character offset.")] = 0,
    wait_for: Annotated[str | None, typer.Option(help="Browser: CSS selector to wait for.")] = None,
    full_page: Annotated[bool, typer.Option("--full-page", help="The whole page, not only main content.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole FetchResponse as JSON.")] = False,
    input_file: Annotated[
        str | None, typer.Option("--input", "-i", help="A file of URLs, one per line (- for stdin): fetch them all.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="With --input: write the NDJSON lines here, not stdout.")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="With --input: fetches at once (default: the pool size).")
    ] = None,
) -> None:
    """Fetch URL and print its content (or the typed error; non-zero exit).

    With --input, fetch every URL of a file as a batch: NDJSON lines as in POST /v1/batch, a
    progress bar and a summary table on stderr; the exit code is the most severe failure's.
    """
    from browser_service.fetcher import Fetcher

    if (url is None) == (input_file is None):
        typer.echo("error: give either a URL or --input FILE.", err=True)
        raise typer.Exit(2)

    raw: dict[str, Any] = {
        "url": url,
        "formats": format or ["markdown"],
        "render": render,
        "timeout_ms": timeout_ms,
        "max_chars": max_chars,
        "start_index": start_index,
        "wait_for": wait_for,
        "main_content": not full_page,
    }
    if input_file is not None:
        raise typer.Exit(_fetch_batch(input_file, output, {k: v for k, v in raw.items() if k != "url"}, concurrency))
    assert url is not None
    try:
        request = FetchRequest.model_validate(raw)
    except ValidationError as exc:
        response = _invalid(url, exc)
    else:

        async def run() -> FetchResponse:
            async with Fetcher(Settings()) as fetcher:
                return await fetcher.fetch(request)

        response = asyncio.run(run())
    _emit(response, as_json)
    raise typer.Exit(exit_code(response))


def _fetch_batch(source: str, output: Path | None, options: dict[str, Any], concurrency: int | None) -> int:
    from browser_service import cli_batch

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"error: cannot read {source}: {exc}", err=True)
        return 2
    urls = cli_batch.read_urls(text.splitlines())
    if output is None:
        return cli_batch.run(urls, options, concurrency, sys.stdout, exit_code)
    with output.open("w", encoding="utf-8") as out:
        return cli_batch.run(urls, options, concurrency, out, exit_code)


@app.command()
def extract(
    file: Annotated[str, typer.Argument(help="An HTML file, or - for stdin.")],
    url: Annotated[str, typer.Option(help="The page's URL (resolves relative links).")] = "http://localhost/",
    format: Annotated[
        list[str] | None, typer.Option("--format", "-f", help="markdown, text, html, raw_html, links, metadata.")
    ] = None,
    max_chars: Annotated[int, typer.Option(help="Characters of content per page.")] = 1_000_000,
    start_index: Annotated[int, typer.Option(help="Continue from this character offset.")] = 0,
    full_page: Annotated[bool, typer.Option("--full-page", help="The whole page, not only main content.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole response as JSON.")] = False,
) -> None:
    """Extract clean content from an HTML file (no network)."""
    from browser_service.answer import extract_response
    from browser_service.encoding import decode

    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:  # no such file, a directory, no permission: say so, no traceback
        typer.echo(f"error: cannot read {file}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    if (what := _binary(data)) is not None:
        response = FetchResponse(
            ok=False,
            url=url,
            trace_id="-",
            error=UnsupportedContent(f"{file} is {what}, not HTML; extract reads HTML files.").info(),
        )
        _emit(response, as_json)
        raise typer.Exit(exit_code(response))
    html, _, _ = decode(data, None, html=True)
    raw = {
        "html": html,
        "url": url,
        "formats": format or ["markdown"],
        "max_chars": max_chars,
        "start_index": start_index,
        "main_content": not full_page,
    }
    try:
        request = ExtractRequest.model_validate(raw)
    except ValidationError as exc:
        response = _invalid(url, exc)
    else:
        response = extract_response(request)
    _emit(response, as_json)
    raise typer.Exit(exit_code(response))


@app.command()
def mcp(
    log_level: Annotated[str, typer.Option(help="Log level (logs go to stderr).")] = "warning",
) -> None:
    """Serve the MCP tools (fetch, extract) over stdio, for an agent that starts this as its MCP server."""
    import logging

    from browser_service.mcp_server import serve_stdio

    # stdout carries the protocol: every log line goes to stderr.
    logging.basicConfig(stream=sys.stderr, level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(serve_stdio(Settings()))


app.command()(cli_replay.record)
app.command()(cli_replay.replay)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
