"""IMAP settings: beside the SMTP ones, the SMTP login by default, provider
presets, TLS required off loopback, and which login IMAP uses."""

from __future__ import annotations

import pytest

from mailer.config import ImapSettings, imap_settings
from mailer.errors import AuthError, ConfigError

SMTP = {"MAILER_SMTP_HOST": "smtp.example.com", "MAILER_SMTP_USERNAME": "ann@example.com",
        "MAILER_SMTP_PASSWORD": "smtp-secret"}


def test_nothing_configured_means_no_imap() -> None:
    assert imap_settings(SMTP) is None
    assert imap_settings({}) is None


def test_the_smtp_login_is_the_default() -> None:
    s = imap_settings({**SMTP, "MAILER_IMAP_HOST": "imap.example.com"})
    assert s == ImapSettings("imap.example.com", 993, "tls", "ann@example.com", "smtp-secret")
    assert "smtp-secret" not in repr(s)
    other = imap_settings({**SMTP, "MAILER_IMAP_HOST": "imap.example.com",
                           "MAILER_IMAP_USERNAME": "bob@example.com"})
    assert other is not None and other.password == ""  # another login: not the SMTP password


def test_presets_fill_in_the_host_from_the_provider_or_the_smtp_host() -> None:
    gmail = imap_settings({"MAILER_SMTP_HOST": "smtp.gmail.com", "MAILER_SMTP_USERNAME": "a"})
    assert gmail is not None
    assert (gmail.host, gmail.port, gmail.provider_copies_sent) == ("imap.gmail.com", 993, True)
    m365 = imap_settings(SMTP, provider="m365")
    assert m365 is not None
    assert (m365.host, m365.provider_copies_sent) == ("outlook.office365.com", False)
    assert imap_settings(SMTP, provider="generic") is None
    own = imap_settings({**SMTP, "MAILER_IMAP_HOST": "127.0.0.1"}, provider="workspace")
    assert own is not None and own.host == "127.0.0.1" and own.provider_copies_sent


@pytest.mark.parametrize(("env", "message"), [
    ({"MAILER_IMAP_HOST": "imap.example.com", "MAILER_IMAP_SECURITY": "none"}, "unencrypted"),
    ({"MAILER_IMAP_HOST": "imap.example.com", "MAILER_IMAP_SECURITY": "ssl"}, "not one of"),
    ({"MAILER_IMAP_HOST": "imap.example.com", "MAILER_IMAP_PORT": "x"}, "not a port number"),
    ({"MAILER_IMAP_HOST": "imap.example.com", "MAILER_IMAP_PORT": "70000"}, "out of range"),
    ({"MAILER_IMAP_HOST": "imap.example.com", "MAILER_SMTP_USERNAME": ""}, "No IMAP login"),
])
def test_bad_settings_are_refused_with_the_variable_named(env: dict[str, str],
                                                          message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        imap_settings({**SMTP, **env})


def test_plain_imap_is_allowed_on_loopback_with_its_port() -> None:
    s = imap_settings({**SMTP, "MAILER_IMAP_HOST": "127.0.0.1", "MAILER_IMAP_SECURITY": "none"})
    assert s is not None and (s.port, s.is_loopback) == (143, True)


def test_imap_shares_the_smtp_login_only_for_the_same_user() -> None:
    from mailer.accounts.credentials import Credentials, PasswordSource

    env = {**SMTP, "MAILER_IMAP_HOST": "imap.example.com"}
    run = Credentials(env)
    imap = run.imap()
    assert imap is not None and imap.login is run.smtp().login  # one source, one lookup
    other = Credentials({**env, "MAILER_IMAP_USERNAME": "bob@example.com"}).imap()
    assert other is not None and isinstance(other.login, PasswordSource)
    assert other.login.host == "imap.example.com" and other.login.username == "bob@example.com"
    own = Credentials({**env, "MAILER_IMAP_PASSWORD": "imap-secret"}).imap()
    assert own is not None and own.login is not None and own.login.secret() == "imap-secret"


GMAIL_OAUTH = {"MAILER_SMTP_HOST": "smtp.gmail.com", "MAILER_SMTP_USERNAME": "ann@example.com",
               "MAILER_SMTP_AUTH": "oauth2", "MAILER_OAUTH2_CLIENT_ID": "client"}


def test_a_token_goes_only_to_its_providers_imap_server_for_the_same_login() -> None:
    from mailer.accounts.credentials import Credentials

    run = Credentials(GMAIL_OAUTH)
    same = run.imap()
    assert same is not None and same.host == "imap.gmail.com"
    assert same.login is run.smtp().login and same.login is not None and same.login.oauth
    elsewhere = [
        {"MAILER_IMAP_HOST": "imap.example.com"},  # another provider, the same user name
        {"MAILER_IMAP_USERNAME": "bob@example.com"},  # Gmail, another login
        {"MAILER_IMAP_HOST": "outlook.office365.com"},  # another OAuth2 provider
    ]
    for extra in elsewhere:
        imap = Credentials({**GMAIL_OAUTH, **extra}).imap()
        assert imap is not None and imap.login is not None and not imap.login.oauth, extra
        with pytest.raises(AuthError, match="MAILER_IMAP_PASSWORD"):
            imap.login.secret()
