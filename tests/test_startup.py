"""Honest start-up: the commands that only list or read the journal do not load
the template engine, the vCard parser, the SMTP stack, the validators, the
keyring or the OAuth2 sign-in server; a send loads what it sends with, and
not what only another input or account would need.
(How long start-up takes is measured in bench/bench_startup.py, not here.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.smtpd import SmtpServer

PROJECT = Path(__file__).resolve().parents[1]
HEAVY = {"jinja2", "vobject", "aiosmtplib", "aiosmtpd", "email_validator", "phonenumbers",
         "charset_normalizer", "dateparser", "asyncio", "keyring", "http"}


def modules(args: list[str], home: Path, env: dict[str, str] | None = None) -> set[str]:
    """Every module `mailer ARGS` imported (full dotted names)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mailer", *args], cwd=home,
        env={**os.environ, "PYTHONPATH": str(PROJECT), "MAILER_HOME": str(home), **(env or {})},
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split("|")[2].strip() for line in done.stderr.splitlines()
            if line.startswith("import time:") and "|" in line]
    return set(rows[1:])


def imported(args: list[str], home: Path) -> set[str]:
    """The top-level packages `mailer ARGS` imported."""
    return {name.split(".")[0] for name in modules(args, home)}


@pytest.mark.parametrize("args", [["--help"], ["status"], ["campaigns"], ["send", "--help"]])
def test_listing_commands_load_no_heavy_package(args: list[str], tmp_path: Path) -> None:
    loaded = imported(args, tmp_path)
    assert "click" in loaded  # the measurement sees imports at all
    assert loaded & HEAVY == set()


def test_a_command_that_renders_still_loads_what_it_uses(tmp_path: Path) -> None:
    loaded = imported(["card", "--profile", str(PROJECT / "profile.example.toml")], tmp_path)
    assert "vobject" in loaded and "jinja2" not in loaded


def test_a_send_loads_only_what_its_input_and_account_need(tmp_path: Path) -> None:
    """A UTF-8 CSV file to a server without a login, no IMAP account: not the OCR
    engine's module and its process pool, not the legacy-encoding detector, not the
    keyring or the OAuth2 sign-in, not the IMAP client of the Sent copies."""
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("name,email\nAda Lovelace,ada@example.com\n", encoding="utf-8")
    with SmtpServer() as server:
        loaded = modules(["send", str(contacts), "--profile",
                          str(PROJECT / "profile.example.toml"), "--yes", "--rate", "none"],
                         tmp_path, server.env())
        assert server.recipients() == ["ada@example.com"]
    packages = {name.split(".")[0] for name in loaded}
    assert {"jinja2", "aiosmtplib", "email_validator"} <= packages  # what a send uses
    assert not packages & {"keyring", "imapclient", "charset_normalizer", "multiprocessing"}
    assert not loaded & {"mailer.contacts.scans", "mailer.accounts.oauth",
                         "mailer.mailbox.sentcopy"}
