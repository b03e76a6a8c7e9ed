"""Honest start-up: the commands that only list or read the journal do not load
the template engine, the vCard parser, the SMTP stack, the validators, the
keyring or the OAuth2 sign-in server.
(How long start-up takes is measured in bench/bench_startup.py, not here.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
HEAVY = {"jinja2", "vobject", "aiosmtplib", "aiosmtpd", "email_validator", "phonenumbers",
         "charset_normalizer", "dateparser", "asyncio", "keyring", "http"}


def imported(args: list[str], home: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mailer", *args], cwd=home,
        env={**os.environ, "PYTHONPATH": str(PROJECT), "MAILER_HOME": str(home)},
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split("|")[2].strip() for line in done.stderr.splitlines()
            if line.startswith("import time:") and "|" in line]
    return {name.split(".")[0] for name in rows[1:]}


@pytest.mark.parametrize("args", [["--help"], ["status"], ["campaigns"], ["send", "--help"]])
def test_listing_commands_load_no_heavy_package(args: list[str], tmp_path: Path) -> None:
    loaded = imported(args, tmp_path)
    assert "click" in loaded  # the measurement sees imports at all
    assert loaded & HEAVY == set()


def test_a_command_that_renders_still_loads_what_it_uses(tmp_path: Path) -> None:
    loaded = imported(["card", "--profile", str(PROJECT / "profile.example.toml")], tmp_path)
    assert "vobject" in loaded and "jinja2" not in loaded
