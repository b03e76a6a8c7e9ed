"""The system tools some tests need, all of which `.ci/run` installs.

A test asks for one with `require_tool(name)`.  On a developer's machine a
missing tool skips the test with the command that installs it; under CI=true
(where `.ci/run` has installed every one of them) a missing tool fails the
test, so a broken install step can never pass as a green run of skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

# Where .ci/run installs ical.js (npm, once, outside the checkout); the tests never fetch it.
ICALJS_DIR = Path(
    os.environ.get("MAILER_ICALJS_DIR")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mailer-ci" / "icaljs"
)
ICALJS_VERSION = "2.2.1"  # .ci/run installs exactly this one


def _which(*names: str) -> Callable[[], str | None]:
    def find() -> str | None:
        for name in names:
            # /usr/sbin is not on every user's PATH (dovecot lives there)
            found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
            if found:
                return found
        return None

    return find


def _icaljs() -> str | None:
    package = ICALJS_DIR / "node_modules" / "ical.js" / "package.json"
    return str(ICALJS_DIR) if package.is_file() and shutil.which("node") else None


def _fonts() -> str | None:
    from tests.cardgen import FONT_DIRS, find_fonts

    return str(FONT_DIRS[0]) if find_fonts() else None


def _cjk_font() -> str | None:
    from tests.cardgen import CJK_FONT

    return str(CJK_FONT) if CJK_FONT.is_file() else None


# name -> (finder returning the tool's path or None, how to get it on Debian)
TOOLS: dict[str, tuple[Callable[[], str | None], str]] = {
    "spamassassin": (_which("spamassassin"), "apt-get install spamassassin"),
    "chromium": (_which("chromium"), "apt-get install chromium"),
    "chromium-driver": (_which("chromedriver"), "apt-get install chromium-driver"),
    "dovecot": (_which("dovecot"), "apt-get install dovecot-imapd"),
    "openssl": (_which("openssl"), "apt-get install openssl"),
    "node": (_which("node"), "apt-get install nodejs"),
    "ical.js": (
        _icaljs,
        f"apt-get install nodejs && npm install --prefix {ICALJS_DIR} ical.js@{ICALJS_VERSION}",
    ),
    "fonts": (_fonts, "apt-get install fonts-dejavu-core fonts-liberation2"),
    # the bilingual (Hangul/Kanji + Latin) names of the held-out cards
    "cjk font": (_cjk_font, "apt-get install fonts-wqy-zenhei"),
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def tool_missing(name: str, detail: str) -> NoReturn:
    """Skip, or under CI fail, a test whose tool is missing or cannot run."""
    if in_ci():
        pytest.fail(f"{name}: {detail}; .ci/run installs it, so CI must not skip this test")
    pytest.skip(f"{name}: {detail}")


def require_tool(name: str) -> str:
    """The tool's path (a folder for ical.js and fonts); skips or fails when it is absent."""
    find, install = TOOLS[name]
    found = find()
    if found is None:
        tool_missing(name, f"not installed ({install})")
    return found


def chromium_dom(page: Path, profile_dir: Path, *, width: int | None = None) -> str:
    """The DOM of `page` after headless Chromium has run its scripts (in a window
    `width` pixels wide when given); its profile lives in `profile_dir`."""
    chromium = require_tool("chromium")
    window = [f"--window-size={width},1200"] if width is not None else []
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile_dir}",
            *window,
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
