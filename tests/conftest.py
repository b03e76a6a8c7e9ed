"""Fixtures every test gets: an isolated state directory, no inherited SMTP settings,
and a file keyring (keyrings.alt) in a temporary home instead of the user's.  And the
ones the end-to-end tests share: `server` (a real SMTP server on loopback, with
STARTTLS and a login, set up as a .env would), `work` (a folder with contacts.csv
and profile.toml) and `imap_env` (a real Dovecot, set up the same way)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import keyring
import pytest
import tzlocal
from hypothesis import settings
from keyrings.alt.file import PlaintextKeyring

from mailer.journal import Journal
from tests.imapd import Dovecot, dovecot  # noqa: F401  (the fixture: a real IMAP server per test)
from tests.smtpd import SmtpServer

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared"
PEOPLE = ["anna@example.com", "ben@example.org", "chloe@example.net"]  # the `work` folder's

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


def write_contacts(folder: Path, people: list[tuple[str, str]]) -> None:
    """contacts.csv with these (name, address) rows."""
    rows = "".join(f"{name},{email}\n" for name, email in people)
    (folder / "contacts.csv").write_text("Name,Email\n" + rows, encoding="utf-8")


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current folder: contacts.csv (the three PEOPLE) and profile.toml."""
    monkeypatch.chdir(tmp_path)
    write_contacts(tmp_path, [(e.split("@")[0].title(), e) for e in PEOPLE])
    shutil.copy(PROJECT / "profile.example.toml", tmp_path / "profile.toml")
    return tmp_path


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[SmtpServer]:
    """SMTP with STARTTLS and a login on loopback, its settings in the environment
    as a .env would give them."""
    with SmtpServer(starttls=True, auth=("alex@example.com", "app-password")) as srv:
        use_env(srv.env(), monkeypatch, tmp_path)
        yield srv


@pytest.fixture
def imap_env(dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
             tmp_path: Path) -> Dovecot:
    """A real Dovecot with its settings in the environment (MAILER_IMAP_*)."""
    use_env(dovecot.env(), monkeypatch, tmp_path)
    return dovecot


def use_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Set a test server's variables; its CA joins the one trusted already (an SMTP
    and an IMAP test server each have their own, as a system store holds both)."""
    trusted = os.environ.get("SSL_CERT_FILE", "")
    if "SSL_CERT_FILE" in env and trusted and Path(trusted).is_file():
        bundle = tmp_path / f"trusted-{len(list(tmp_path.glob('trusted-*')))}.pem"
        bundle.write_bytes(Path(trusted).read_bytes() + Path(env["SSL_CERT_FILE"]).read_bytes())
        env = {**env, "SSL_CERT_FILE": str(bundle)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def berlin() -> Iterator[ZoneInfo]:
    """The local zone is Europe/Berlin for the test (tzlocal reads TZ)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    tzlocal.reload_localzone()
    yield ZoneInfo("Europe/Berlin")
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()
    tzlocal.reload_localzone()
