"""Finding Chromium, and the flags it is launched with."""

from __future__ import annotations

import re
from pathlib import Path

import playwright
import pytest

from browser_service.chromium import DISABLED_FEATURES, BrowserNotFound, find_chromium, launch_args


def playwright_disabled_features() -> list[str]:
    """The features the installed Playwright driver disables (its ``chromiumSwitches``)."""
    bundle = Path(playwright.__file__).parent / "driver" / "package" / "lib" / "coreBundle.js"
    source = bundle.read_text(encoding="utf-8")
    block = re.search(r"disabledFeatures = \[(.*?)\]\.filter", source, re.S)
    assert block is not None, "Playwright's driver no longer lists disabledFeatures where expected"
    return re.findall(r'^\s*"([A-Za-z]+)"', block.group(1), re.M)


def test_our_disable_features_keeps_playwrights_own() -> None:
    # Chromium keeps the last --disable-features only: ours must carry Playwright's list too.
    ours = [a for a in launch_args() if a.startswith("--disable-features=")]
    assert len(ours) == 1
    features = set(ours[0].removeprefix("--disable-features=").split(","))
    theirs = set(playwright_disabled_features()) - {"TcpPortRandomizationWin"}  # Windows only
    theirs = {f for f in theirs if not f.startswith("ms")}  # Edge only
    assert "HttpsUpgrades" in theirs
    assert theirs <= features, f"missing: {sorted(theirs - features)}"
    assert set(DISABLED_FEATURES) == features


def test_extra_args_come_last() -> None:
    assert launch_args(["--lang=de"])[-1] == "--lang=de"


def test_configured_path_wins(tmp_path: Path) -> None:
    exe = tmp_path / "chrome"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert find_chromium(str(exe), bundled=str(tmp_path / "other")) == str(exe)


def test_configured_path_that_is_not_executable_says_how_to_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(BrowserNotFound, match=r"BROWSER_SERVICE_CHROMIUM_PATH=.*is not an executable file"):
        find_chromium(str(missing), bundled=None)


def test_bundled_before_system(tmp_path: Path) -> None:
    bundled = tmp_path / "chrome-linux" / "chrome"
    bundled.parent.mkdir()
    bundled.write_text("")
    assert find_chromium(None, bundled=str(bundled)) == str(bundled)


def test_none_found_names_the_three_fixes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrowserNotFound) as info:
        find_chromium(None, bundled=str(tmp_path / "absent"))
    message = str(info.value)
    assert "playwright install chromium" in message
    assert "apt-get install chromium" in message
    assert "BROWSER_SERVICE_CHROMIUM_PATH" in message
