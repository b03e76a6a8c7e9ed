"""One login per run, for SMTP and IMAP alike, and a secret only for its own server:
`mailer send` with a password command and Sent copies runs the command once;
an OAuth2 token never goes to another provider's IMAP server; `send` and `check`
fail on a wrong security setting with the same words.  Real servers on 127.0.0.1:
aiosmtpd (tests/smtpd.py), Dovecot (tests/imapd.py), the OAuth2 stand-in."""

# ruff: noqa: F811  (the fixture `idp` is imported)
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mailer.accounts.oauth import Grant, save_grant
from mailer.cli.app import main
from mailer.config import state_dir
from mailer.journal import Journal, journal_path
from mailer.models import State
from tests import imapd
from tests.conftest import PEOPLE
from tests.imapd import Dovecot
from tests.oauth_server import OAuthServer
from tests.smtpd import SmtpServer, make_draft
from tests.test_accounts import device_login, idp  # noqa: F401  (idp: a fixture)


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def use(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def plain_imap(dovecot: Dovecot) -> dict[str, str]:
    """Dovecot without TLS (loopback): the SMTP server's CA is the one SSL_CERT_FILE names."""
    return {"MAILER_IMAP_HOST": "127.0.0.1", "MAILER_IMAP_PORT": str(dovecot.port),
            "MAILER_IMAP_SECURITY": "none"}


@pytest.fixture
def counted_password(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A password command that prints the Dovecot user's password and counts its runs."""
    runs = tmp_path / "runs"
    script = tmp_path / "password-command"
    script.write_text(f"#!/bin/sh\necho run >> {runs}\necho '{imapd.PASSWORD}'\n")
    script.chmod(0o700)
    yield str(script), runs


def test_a_send_with_sent_copies_runs_the_password_command_once(
        work: Path, dovecot: Dovecot, counted_password: tuple[str, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    command, runs = counted_password
    with SmtpServer(auth=(imapd.USER, imapd.PASSWORD)) as server:
        use(monkeypatch, {**server.env(), **plain_imap(dovecot),
                          "MAILER_SMTP_USERNAME": imapd.USER, "MAILER_SMTP_PASSWORD": "",
                          "MAILER_SMTP_PASSWORD_COMMAND": command})
        result = cli("send", "contacts.csv", "--profile", "profile.toml", "--yes")
        assert result.exit_code == 0, result.output
        assert sorted(server.recipients()) == sorted(PEOPLE)
    assert len(dovecot.messages("Sent")) == len(PEOPLE)  # IMAP logged in with it too
    assert runs.read_text().splitlines() == ["run"]


def test_an_oauth2_token_never_goes_to_another_providers_imap_server(
        idp: OAuthServer, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch) -> None:
    user = "me@example.org"
    save_grant(user, Grant(device_login(idp).refresh_token, "ms-client"))  # `mailer login`
    use(monkeypatch, {
        "MAILER_SMTP_HOST": "smtp.office365.com", "MAILER_SMTP_USERNAME": user,
        "MAILER_SMTP_AUTH": "oauth2", "MAILER_OAUTH2_CLIENT_ID": "ms-client",
        "MAILER_OAUTH2_TENANT": "organizations", "MAILER_OAUTH2_ENDPOINT": idp.url,
        **plain_imap(dovecot),  # the inbox: another provider, its own login
        "MAILER_IMAP_USERNAME": imapd.USER, "MAILER_IMAP_PASSWORD": imapd.PASSWORD})
    sent_campaign()
    grants_before = list(idp.grants)
    result = cli("inbox", "--yes")
    assert result.exit_code == 0, result.output
    assert f"{imapd.USER} at 127.0.0.1" in result.output  # logged in with the IMAP password
    assert idp.grants == grants_before  # no access token was even asked for
    assert not any(token in dovecot.log() for token in idp.issued)


def sent_campaign() -> None:
    """A journal with one campaign that sent one message, as `mailer send` leaves it."""
    with Journal(journal_path(state_dir(os.environ))) as journal:
        journal.enqueue("event", [make_draft("p@example.com")])
        row = journal.claim("event")
        assert row is not None
        journal.mark(row.id, State.SENT, 250, "ok")


def test_send_and_check_say_the_same_about_tls_on_a_starttls_port(
        work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpServer(starttls=True, auth=("u", "p")) as server:
        use(monkeypatch, {**server.env(), "MAILER_SMTP_SECURITY": "tls",
                          "MAILER_SMTP_PORT": str(server.port)})
        checked = cli("check")
        sent = cli("send", "contacts.csv", "--profile", "profile.toml", "--yes")
        assert server.recipients() == []
    advice = f"port {server.port} speaks STARTTLS, not TLS from the start: set " \
             f"MAILER_SMTP_SECURITY=starttls"
    assert checked.exit_code != 0 and advice in checked.output, checked.output
    assert sent.exit_code != 0 and advice in sent.output, sent.output
    assert "Traceback" not in checked.output + sent.output
