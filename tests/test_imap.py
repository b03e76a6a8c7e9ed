"""The IMAP connection against a real Dovecot: implicit TLS, STARTTLS, plain
on loopback, XOAUTH2, and reading without touching a flag."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from mailer.errors import ImapError
from mailer.mailbox.imap import Mailbox
from tests.imapd import PASSWORD, USER, Dovecot


class Tokens:
    """A `config.Login` handing out OAuth2 access tokens in turn (the provider's token
    endpoint is tested in test_accounts.py)."""

    username = USER
    oauth = True
    provider = "google"

    def __init__(self, *tokens: str) -> None:
        self._tokens = iter(tokens)

    def secret(self) -> str:
        return next(self._tokens)

    def prepare(self) -> None:
        pass

    def renew(self, refused: str) -> str | None:
        return None

    def origin(self) -> str:
        return "OAuth2 token for google"


@pytest.mark.parametrize("security", ["tls", "starttls", "none"])
def test_each_security_mode_logs_in_and_finds_sent(dovecot: Dovecot, security: str) -> None:
    settings = dovecot.settings(security=security)
    with Mailbox(settings, tls_context=dovecot.client_tls()) as box:
        assert box.sent_folder() == "Sent"


def test_oauth2_logs_in_with_a_token(dovecot: Dovecot) -> None:
    tokens = [PASSWORD, "expired"]  # this Dovecot checks a token like a password
    settings = replace(dovecot.settings(), password="", login=Tokens(*tokens))
    with Mailbox(settings, tls_context=dovecot.client_tls()) as box:
        assert box.sent_folder() == "Sent"
    with pytest.raises(ImapError, match="OAuth2 sign-in"):
        Mailbox(settings, tls_context=dovecot.client_tls()).__enter__()


def test_reading_the_inbox_sets_no_flag(dovecot: Dovecot) -> None:
    dovecot.deliver(b"From: a@example.com\r\nSubject: one\r\n\r\nbody\r\n",
                    b"From: b@example.com\r\nSubject: two\r\n\r\nbody\r\n")
    with Mailbox(dovecot.settings(), tls_context=dovecot.client_tls()) as box:
        validity, uids = box.examine(date.today() - timedelta(days=1))
        fetched = dict(box.fetch(uids))
        assert validity > 0 and uids == [1, 2]
        assert fetched[2].endswith(b"Subject: two\r\n\r\nbody\r\n")
        assert box.examine(date.today() + timedelta(days=2))[1] == []  # SINCE is honoured
    kept = [tuple(f for f in flags if f != b"\\Recent") for _, flags in dovecot.messages("INBOX")]
    assert kept == [(), ()]  # not even \Seen


def test_a_closed_port_is_a_one_line_error(dovecot: Dovecot) -> None:
    from tests.smtpd import free_port

    settings = replace(dovecot.settings(), port=free_port())
    with pytest.raises(ImapError, match="Cannot connect") as err:
        Mailbox(settings, tls_context=dovecot.client_tls()).__enter__()
    assert "Check MAILER_IMAP_HOST, MAILER_IMAP_PORT" in str(err.value)  # the next step
    assert "\n" not in str(err.value)
