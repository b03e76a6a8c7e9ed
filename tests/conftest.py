"""Fixtures every test gets: an isolated state directory, no inherited SMTP settings,
and a file keyring (keyrings.alt) in a temporary home instead of the user's."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from hypothesis import settings
from keyrings.alt.file import PlaintextKeyring

from mailer.journal import Journal

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared"

# -- hypothesis profiles (issue 23) ------------------------------------------------------
# The suite passes the same way on every machine and every run: property tests draw
# their examples from a fixed seed and keep no example database between runs.
# `HYPOTHESIS_PROFILE=explore` looks further: fresh randomness on each run, failures kept
# in .hypothesis/ and replayed, 1000 examples where a test sets no number of its own.
# What it finds becomes an @example next to the test it broke.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, max_examples=1000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never touch the user's journal or .env, and never reach a real SMTP server."""
    state = tmp_path / "mailer-home"
    monkeypatch.setenv("MAILER_HOME", str(state))
    monkeypatch.setenv("MAILER_ENV_FILE", "")
    for name in (
        "MAILER_SMTP_HOST",
        "MAILER_SMTP_PORT",
        "MAILER_SMTP_USERNAME",
        "MAILER_SMTP_PASSWORD",
        "MAILER_SMTP_SECURITY",
        "MAILER_SMTP_ALLOW_INSECURE",
        "MAILER_SMTP_AUTH",
        "MAILER_SMTP_PASSWORD_COMMAND",
        "MAILER_SMTP_PASSWORD_TIMEOUT",
        "MAILER_OAUTH2_PROVIDER",
        "MAILER_OAUTH2_CLIENT_ID",
        "MAILER_OAUTH2_CLIENT_SECRET",
        "MAILER_OAUTH2_TENANT",
        "MAILER_OAUTH2_ENDPOINT",
        "MAILER_IMAP_HOST",
        "MAILER_IMAP_PORT",
        "MAILER_IMAP_SECURITY",
        "MAILER_IMAP_USERNAME",
        "MAILER_IMAP_PASSWORD",
        "MAILER_IMAP_SENT",
    ):
        monkeypatch.delenv(name, raising=False)
    # the keyring: a plain file under a temporary XDG_DATA_HOME, here and in subprocesses
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    keyring.set_keyring(PlaintextKeyring())
    return state


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """A fresh journal file of its own."""
    with Journal(tmp_path / "journal.sqlite3") as j:
        yield j


@pytest.fixture
def project_root() -> Path:
    return PROJECT


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} (the shared corpus, cards and tools) is not present")
    return SHARED


# the fixture `dovecot`: a real IMAP server per test (tests/imapd.py)
from tests.imapd import dovecot  # noqa: E402, F401
