"""Record the fixture site through the real pipeline, then replay it offline: same answers, byte for
byte, with the origin never contacted; what the recording lacks is a typed error; a change is a
failing comparison with a readable report; the CLI does the same."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from browser_service.cli import app
from browser_service.contract import FetchRequest
from browser_service.recorder import check, record, replay, replaying
from browser_service.recording import Recording, normalise
from browser_service.settings import Settings
from tests.conftest import make_settings
from tests.site import FixtureServer

#: A replay runs with the machine's settings: here, ones that allow no loopback at all.
MACHINE = Settings(allow=[])  # type: ignore[call-arg]


async def _record(tmp_path: Path, site: FixtureServer, paths: list[str], **options: object) -> Recording:
    requests = [FetchRequest.model_validate({"url": site.url(p), **options}) for p in paths]
    recording, _ = await record(requests, "site", tmp_path / "recordings", settings=make_settings(tmp_path))
    return recording


async def test_a_recording_replays_offline_byte_for_byte(tmp_path: Path, site: FixtureServer) -> None:
    recording = await _record(tmp_path, site, ["/article.html", "/js-article", "/no-such-page", "/redirect?n=2"])
    files = {p.name for p in recording.path.iterdir()}
    assert files == {"recording.json", "snapshot.json", "browser.har", "http.har", "bodies"}
    meta = recording.metadata()
    assert meta.settings["allow"] == ["127.0.0.0/8"] and meta.versions["contract"]
    snapshot = recording.snapshot()
    assert [s["ok"] for s in snapshot] == [True, True, False, True]
    assert [s["engine"] for s in snapshot] == ["http", "browser", None, "http"]
    assert snapshot[2]["error"]["kind"] == "not_found"
    assert snapshot[0]["trace_id"] == "-" and snapshot[0]["fetched_at"] is None and snapshot[0]["duration_ms"] is None
    assert all(a["duration_ms"] == 0 for s in snapshot for a in s["attempts"])
    har = json.loads((recording.path / "browser.har").read_text())["log"]["entries"]
    assert [e["request"]["url"] for e in har] == [site.url("/js-article")]
    assert har[0]["response"]["content"]["_file"].startswith("bodies/")

    hits = dict(site.hits)
    first, second = await replay(recording, settings=MACHINE), await replay(recording, settings=MACHINE)
    assert dict(site.hits) == hits  # the origin saw nothing
    assert [normalise(r) for r in first.responses] == snapshot
    assert [normalise(r) for r in second.responses] == snapshot
    assert [r.content_sha256 for r in first.responses] == [r.content_sha256 for r in second.responses]
    assert first.responses[1].markdown is not None and "rendered" in first.responses[1].markdown.lower()
    assert first.misses == second.misses == []


@pytest.mark.parametrize("render", ["http", "browser"])
async def test_what_the_recording_lacks_is_invalid_request_never_fetched(
    tmp_path: Path, site: FixtureServer, render: str
) -> None:
    recording = await _record(tmp_path, site, ["/article.html"], render=render)
    hits = dict(site.hits)
    async with replaying(recording, settings=MACHINE) as fetcher:
        missing = await fetcher.fetch(FetchRequest.model_validate({"url": site.url("/gone"), "render": render}))
    assert dict(site.hits) == hits
    assert missing.ok is False and missing.error is not None
    assert missing.error.kind == "invalid_request"
    assert missing.error.message.startswith(f"{site.url('/gone')} is not in the recording 'site'")
    assert len(missing.attempts) == 1  # not retried


async def test_replay_never_contacts_the_network_even_for_a_preconnect(tmp_path: Path, site: FixtureServer) -> None:
    recording = await _record(tmp_path, site, ["/js-article"], render="browser")
    async with replaying(recording, settings=MACHINE) as fetcher:
        await fetcher.fetch(FetchRequest.model_validate({"url": site.url("/js-article"), "render": "browser"}))
        assert fetcher.pool.egress.tunnels_opened == 0


async def test_a_changed_answer_fails_with_a_readable_report_and_update_accepts_it(
    tmp_path: Path, site: FixtureServer
) -> None:
    recording = await _record(tmp_path, site, ["/article.html", "/no-such-page"])
    snapshot = recording.snapshot()
    snapshot[0]["markdown"] = snapshot[0]["markdown"].replace("lighthouse", "windmill")
    snapshot[1]["ok"], snapshot[1]["error"] = True, None
    (recording.path / "snapshot.json").write_text(json.dumps(snapshot))

    result = await check(recording, threshold=0.99, settings=MACHINE)
    assert not result.passed and result.drifted
    report = result.report()
    assert report.splitlines()[0].startswith("FAIL site (2 requests): similarity 0.")
    assert "LARGE DRIFT (below 0.99)" in report.splitlines()[0]
    assert "--- expected markdown" in report and "+++ replayed markdown" in report
    assert any(line.strip().startswith("-") and "windmill" in line for line in report.splitlines())
    assert "verdict: ok → not_found" in report
    assert "changed error: None → {'kind': 'not_found'" in report

    updated = await check(recording, update=True, settings=MACHINE)
    assert updated.passed and updated.updated and updated.summary().startswith("UPDATED site")
    assert (await check(recording, settings=MACHINE)).summary() == "PASS site (2 requests)"


def test_the_cli_records_and_replays(tmp_path: Path, site: FixtureServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROWSER_SERVICE_ALLOW", "127.0.0.0/8")
    monkeypatch.setenv("BROWSER_SERVICE_CACHE_DIR", str(tmp_path / "cache"))
    into = str(tmp_path / "recs")
    runner = CliRunner()
    recorded = runner.invoke(
        app, ["record", site.url("/article.html"), site.url("/gone"), "--name", "two", "--into", into]
    )
    assert recorded.exit_code == 0, recorded.output
    assert f"recorded 2 fetch(es) into {into}/two" in recorded.output
    monkeypatch.delenv("BROWSER_SERVICE_ALLOW")  # replaying needs no exception to the network policy
    hits = dict(site.hits)
    replayed = runner.invoke(app, ["replay", "--into", into])
    assert replayed.exit_code == 0, replayed.output
    assert replayed.output.splitlines() == ["PASS two (2 requests)", "1 passed, 0 failed"]
    snapshot = Path(into, "two", "snapshot.json")
    snapshot.write_text(snapshot.read_text().replace('"How Lighthouses Work"', '"How Windmills Work"'))
    failed = runner.invoke(app, ["replay", "two", "--into", into])
    assert failed.exit_code == 1
    assert "changed title: 'How Windmills Work' → 'How Lighthouses Work'" in failed.output
    assert runner.invoke(app, ["replay", "two", "--into", into, "--update"]).exit_code == 0
    assert runner.invoke(app, ["replay", "two", "--into", into]).exit_code == 0
    assert dict(site.hits) == hits
    unknown = runner.invoke(app, ["replay", "nope", "--into", into])
    assert unknown.exit_code == 2 and "no recording named nope" in unknown.output


def test_a_broken_recording_is_reported_and_the_others_still_run(tmp_path: Path) -> None:
    # A corrupt file was a traceback that stopped the whole run (and a snapshot of the wrong shape an
    # AttributeError inside the comparison).
    article = Path(__file__).parents[2] / "fixtures" / "recordings" / "article"
    for name in ("article", "bad-metadata", "bad-snapshot", "bad-har"):
        shutil.copytree(article, tmp_path / name)
    (tmp_path / "bad-metadata" / "recording.json").write_text("{not json")
    (tmp_path / "bad-snapshot" / "snapshot.json").write_text('{"title": "not a list"}')
    (tmp_path / "bad-har" / "http.har").write_text('{"log": {}}')
    result = CliRunner().invoke(app, ["replay", "--into", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "PASS article (1 request)",
        f"ERROR bad-har: {tmp_path}/bad-har/http.har is not a HAR file: no log.entries list.",
        f"ERROR bad-metadata: {tmp_path}/bad-metadata/recording.json cannot be read: Expecting property name "
        "enclosed in double quotes: line 1 column 2 (char 1).",
        f"ERROR bad-snapshot: {tmp_path}/bad-snapshot/snapshot.json is not a snapshot: a JSON list of answers "
        "(objects).",
        "1 passed, 3 failed",
    ]
