"""The on-disk format of a recording: what a fetch saw on the network, and what it answered.

A recording is a directory, small and diff-friendly, that replays offline (``replay.py``)::

    <name>/
      recording.json   metadata: date, versions, the settings that shape an answer, the requests,
                       the DNS answers the network policy checked
      snapshot.json    the expected answers (one FetchResponse per request), volatile fields normalised
      browser.har      every exchange the browser made (HAR 1.2, as Playwright writes it, trimmed)
      http.har         every exchange the HTTP engine made (the same format)
      bodies/          response bodies, one file per distinct body, named by its SHA-256

Bodies are files rather than base64 inside the HAR so that a re-recording shows up in ``git diff``
as changed HTML, and so that identical bodies are stored once. Timings, dates and connection
details of the HAR are blanked: they would make every re-recording differ. Playwright's
``route_from_har`` reads the same files (``content._file``), so the browser replays this HAR as is.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from browser_service.contract import FetchRequest, FetchResponse

FORMAT_VERSION = 1
RECORDING_FILE = "recording.json"
SNAPSHOT_FILE = "snapshot.json"
BROWSER_HAR = "browser.har"
HTTP_HAR = "http.har"
BODIES = "bodies"
#: What a blanked HAR date reads (Playwright's HAR reader wants a date there).
EPOCH = "1970-01-01T00:00:00.000Z"
#: Response types left out of a recording unless images are asked for (``--images``).
MEDIA_TYPES = ("image", "media", "font")

#: Fields of a FetchResponse that differ on every run; what they are replaced with in a snapshot.
VOLATILE: dict[str, Any] = {"trace_id": "-", "fetched_at": None, "duration_ms": None}
#: Timings inside messages ("the page was still changing after 5012 ms"): measured, not content.
_TIMING = re.compile(r"(?<=after )\d+ ms\b")


class RecordingError(Exception):
    """A recording that cannot be replayed as it is on disk: a file missing, broken or of the wrong shape."""


class Metadata(BaseModel):
    """``recording.json``."""

    format: int = FORMAT_VERSION
    name: str
    recorded_at: str = Field(description="ISO date of the recording.")
    versions: dict[str, str] = Field(default_factory=dict, description="contract, extractor, playwright, browser …")
    settings: dict[str, Any] = Field(default_factory=dict, description="The settings that shape an answer.")
    requests: list[dict[str, Any]] = Field(description="The FetchRequests, as sent.")
    dns: dict[str, list[str]] = Field(default_factory=dict, description="'host:port' -> the checked addresses.")
    images: bool = False

    def fetch_requests(self) -> list[FetchRequest]:
        return [FetchRequest.model_validate(r) for r in self.requests]


class Recording:
    """A recording directory: its metadata, expected answers and exchanges."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def name(self) -> str:
        return self.path.name

    def exists(self) -> bool:
        return (self.path / RECORDING_FILE).is_file()

    def metadata(self) -> Metadata:
        data = self._json(RECORDING_FILE)
        try:
            metadata = Metadata.model_validate(data)
            metadata.fetch_requests()
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
            raise RecordingError(f"{self.path / RECORDING_FILE} is not a recording's metadata ({problems}).") from None
        return metadata

    def snapshot(self) -> list[dict[str, Any]]:
        data = self._json(SNAPSHOT_FILE)
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise RecordingError(f"{self.path / SNAPSHOT_FILE} is not a snapshot: a JSON list of answers (objects).")
        return data

    def har(self, which: str) -> list[dict[str, Any]]:
        """The HAR entries of ``browser.har`` or ``http.har`` (none if the engine was not used)."""
        if not (self.path / which).is_file():
            return []
        data = self._json(which)
        entries = data.get("log", {}).get("entries") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise RecordingError(f"{self.path / which} is not a HAR file: no log.entries list.")
        return entries

    def _json(self, name: str) -> Any:
        """One of the recording's JSON files; a missing or broken one is a :class:`RecordingError`."""
        path = self.path / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RecordingError(f"{path} is missing.") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise RecordingError(f"{path} cannot be read: {exc}.") from None

    def body(self, content: dict[str, Any]) -> bytes:
        """A HAR entry's response body, from its file (or inline text)."""
        file = content.get("_file")
        if file:
            return (self.path / str(file)).read_bytes()
        text = content.get("text") or ""
        return base64.b64decode(text) if content.get("encoding") == "base64" else text.encode("utf-8")

    # --- writing --------------------------------------------------------------------------------

    def write_metadata(self, metadata: Metadata) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        _write_json(self.path / RECORDING_FILE, metadata.model_dump(mode="json"))

    def write_snapshot(self, responses: list[FetchResponse]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        _write_json(self.path / SNAPSHOT_FILE, [normalise(r) for r in responses])

    def write_har(self, which: str, entries: list[dict[str, Any]], *, images: bool = False) -> None:
        """Store ``entries`` (HAR entries whose bodies may still be inline) trimmed, bodies as files."""
        kept = [self._trim(e) for e in entries if images or not _is_media(e)]
        if not kept:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        har = {"log": {"version": "1.2", "creator": {"name": "browser-service", "version": "1"}, "entries": kept}}
        _write_json(self.path / which, har)

    def _trim(self, entry: dict[str, Any]) -> dict[str, Any]:
        request, response = entry["request"], entry["response"]
        content = dict(response.get("content") or {})
        if "_file" not in content:
            data = self.body(content)
            content = {"size": len(data), "mimeType": content.get("mimeType", "")}
            if data:
                content["_file"] = self._store_body(data, content["mimeType"])
        else:
            content = {k: content[k] for k in ("size", "mimeType", "_file") if k in content}
        trimmed: dict[str, Any] = {
            "startedDateTime": EPOCH,
            "time": 0,
            "request": {
                "method": request["method"],
                "url": request["url"],
                "httpVersion": request.get("httpVersion", "HTTP/1.1"),
                "headers": _headers(request.get("headers", [])),
                "queryString": request.get("queryString", []),
                "cookies": [],
                "headersSize": -1,
                "bodySize": request.get("bodySize", 0),
            },
            "response": {
                "status": response["status"],
                "statusText": response.get("statusText", ""),
                "httpVersion": response.get("httpVersion", "HTTP/1.1"),
                "headers": _headers(response.get("headers", [])),
                "cookies": [],
                "content": content,
                "redirectURL": response.get("redirectURL", ""),
                "headersSize": -1,
                "bodySize": -1,
            },
            "cache": {},
            "timings": {"send": 0, "wait": 0, "receive": 0},
        }
        if "postData" in request:
            trimmed["request"]["postData"] = request["postData"]
        if "_error" in entry:
            trimmed["_error"] = entry["_error"]
        return trimmed

    def _store_body(self, data: bytes, mime: str) -> str:
        digest = hashlib.sha256(data).hexdigest()[:32]
        ext = mimetypes.guess_extension(mime.split(";")[0].strip()) or ".bin"
        name = f"{BODIES}/{digest}{'.html' if ext == '.htm' else ext}"
        path = self.path / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return name


def normalise(response: FetchResponse) -> dict[str, Any]:
    """The answer as a snapshot compares it: volatile fields blanked, versions left to the metadata."""
    data = response.model_dump(mode="json", exclude={"versions"})
    data.update(VOLATILE)
    if data.get("age_s") is not None:
        data["age_s"] = 0.0
    for attempt in data.get("attempts") or []:
        attempt["duration_ms"] = 0
        if attempt.get("detail"):
            attempt["detail"] = _TIMING.sub("N ms", attempt["detail"])
    data["warnings"] = [_TIMING.sub("N ms", w) for w in data.get("warnings") or []]
    return data


def list_recordings(root: Path, names: list[str] | None = None) -> list[Recording]:
    """The recordings under ``root`` (sorted), or the ``names`` asked for (missing ones raise)."""
    root = Path(root)
    if names:
        found = [Recording(root / n) for n in names]
        missing = [r.name for r in found if not r.exists()]
        if missing:
            raise FileNotFoundError(f"no recording named {', '.join(missing)} in {root}")
        return found
    if not root.is_dir():
        return []
    return [Recording(p) for p in sorted(root.iterdir()) if (p / RECORDING_FILE).is_file()]


def _headers(headers: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{"name": h["name"], "value": h["value"]} for h in headers]


def _is_media(entry: dict[str, Any]) -> bool:
    mime = str((entry["response"].get("content") or {}).get("mimeType") or "")
    return mime.startswith(("image/", "video/", "audio/", "font/")) or entry.get("_resourceType") in MEDIA_TYPES


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")
