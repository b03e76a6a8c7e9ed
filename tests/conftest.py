"""Fixtures every test gets: an isolated state directory and no inherited SMTP settings."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared"


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
        "MAILER_IMAP_HOST",
        "MAILER_IMAP_PORT",
        "MAILER_IMAP_SECURITY",
        "MAILER_IMAP_USERNAME",
        "MAILER_IMAP_PASSWORD",
        "MAILER_IMAP_SENT",
    ):
        monkeypatch.delenv(name, raising=False)
    return state


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
