"""IMAP settings: beside the SMTP ones, the SMTP login by default, provider
presets, TLS required off loopback, and which login IMAP uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailer.config import ImapSettings, Login, imap_settings
from mailer.errors import AuthError, ConfigError

SMTP = {"MAILER_SMTP_HOST": "smtp.example.com", "MAILER_SMTP_USERNAME": "ann@example.com",
        "MAILER_SMTP_PASSWORD": "smtp-secret"}


def test_nothing_configured_means_no_imap() -> None:
    assert imap_settings(SMTP) is None
    assert imap_settings({}) is None


def test_the_smtp_user_name_is_the_default_but_not_its_password() -> None:
    s = imap_settings({**SMTP, "MAILER_IMAP_HOST": "imap.example.com"})
    # whether the SMTP password goes along is Credentials.imap's decision, not the settings'
    assert s == ImapSettings("imap.example.com", 993, "tls", "ann@example.com", "")
    own = imap_settings({**SMTP, "MAILER_IMAP_HOST": "imap.example.com",
                         "MAILER_IMAP_PASSWORD": "imap-secret"})
    assert own is not None and own.password == "imap-secret" and "imap-secret" not in repr(own)


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
    ({"MAILER_IMAP_HOST": "imap.example.com", "MAILER_IMAP_PASSWORD_TIMEOUT": "soon"},
     "MAILER_IMAP_PASSWORD_TIMEOUT"),
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


def imap_login(env: dict[str, str]) -> tuple[Login | None, Login | None]:
    """(the SMTP login, the IMAP login) of one run."""
    from mailer.accounts.credentials import Credentials

    run = Credentials(env)
    imap = run.imap()
    assert imap is not None
    return run.smtp().login, imap.login


@pytest.mark.parametrize(("smtp_host", "imap_host"), [
    ("smtp.gmail.com", "imap.gmail.com"),  # one provider (the table)
    ("smtp.googlemail.com", "imap.gmail.com"),  # another submission server of it
    ("smtp.office365.com", "outlook.office365.com"),
    ("smtp-mail.outlook.com", "outlook.office365.com"),
    ("smtp.example.com", "imap.example.com"),  # one registrable domain
    ("mail.example.co.uk", "IMAP.Example.CO.UK."),  # under a two-label public suffix
    ("smtp.bücher.example", "imap.xn--bcher-kva.example"),  # one name, two spellings
    ("mail.example.org", "mail.example.org"),  # one server
    ("127.0.0.1", "localhost"),  # loopback: a test server, a local bridge
    ("::1", "127.0.0.1"),
])
def test_the_smtp_password_goes_to_imap_at_the_same_service(smtp_host: str,
                                                              imap_host: str) -> None:
    smtp, imap = imap_login({**SMTP, "MAILER_SMTP_HOST": smtp_host,
                             "MAILER_IMAP_HOST": imap_host, "MAILER_IMAP_SECURITY": "starttls"})
    assert imap is smtp and imap is not None  # one source, one lookup
    assert imap.secret() == "smtp-secret"


@pytest.mark.parametrize(("smtp_host", "imap_host"), [
    ("smtp.example.com", "imap.example.net"),  # another domain
    ("smtp.gmail.com", "imap.example.com"),  # a provider, and an IMAP server not its own
    ("smtp.example.com", "imap.gmail.com"),
    ("smtp.gmail.com", "outlook.office365.com"),  # two providers
    ("ann.github.io", "bob.github.io"),  # two owners under a shared suffix
    ("example.co.uk", "other.co.uk"),
    ("192.0.2.1", "192.0.2.2"),  # addresses have no registrable domain
    ("smtp.example.com", "127.0.0.1"),  # a local server is not the remote one's
    ("127.0.0.1", "imap.example.com"),
])
def test_the_smtp_password_never_goes_to_another_imap_server(smtp_host: str,
                                                             imap_host: str) -> None:
    smtp, imap = imap_login({**SMTP, "MAILER_SMTP_HOST": smtp_host,
                             "MAILER_IMAP_HOST": imap_host})
    assert imap is not None and imap is not smtp
    with pytest.raises(AuthError) as refused:
        imap.secret()
    message = str(refused.value)
    assert "set MAILER_IMAP_PASSWORD_COMMAND or MAILER_IMAP_PASSWORD" in message
    assert "smtp-secret" not in message


def test_no_smtp_password_source_reaches_another_domains_imap_server(tmp_path: Path) -> None:
    """Not the command (it does not even run), not the keyring entry, not the variable."""
    from mailer.accounts.keystore import PASSWORD_SERVICE, keyring_account, keyring_set

    runs = tmp_path / "runs"
    command = tmp_path / "smtp-password"
    command.write_text(f"#!/bin/sh\necho run >> {runs}\necho smtp-secret\n")
    command.chmod(0o700)
    keyring_set(PASSWORD_SERVICE, keyring_account("smtp.example.com", "ann@example.com"),
                "smtp-secret")
    elsewhere = {**SMTP, "MAILER_IMAP_HOST": "imap.example.net"}
    for env in (elsewhere, {**elsewhere, "MAILER_SMTP_PASSWORD_COMMAND": str(command)}):
        smtp, imap = imap_login(env)
        assert imap is not None and imap is not smtp
        with pytest.raises(AuthError, match="MAILER_IMAP_PASSWORD"):
            imap.secret()
    assert not runs.exists()


def test_imap_elsewhere_has_its_own_command_keyring_entry_or_variable(tmp_path: Path) -> None:
    from mailer.accounts.keystore import PASSWORD_SERVICE, keyring_account, keyring_set

    elsewhere = {**SMTP, "MAILER_IMAP_HOST": "imap.example.net"}
    keyring_set(PASSWORD_SERVICE, keyring_account("imap.example.net", "ann@example.com"),
                "from-the-keyring")
    _, imap = imap_login(elsewhere)
    assert imap is not None and imap.secret() == "from-the-keyring"
    command = tmp_path / "imap-password"
    command.write_text("#!/bin/sh\necho from-the-command\n")
    command.chmod(0o700)
    _, imap = imap_login({**elsewhere, "MAILER_IMAP_PASSWORD_COMMAND": str(command),
                          "MAILER_IMAP_PASSWORD": "from-the-variable"})
    assert imap is not None and imap.secret() == "from-the-command"
    assert imap.origin() == "password from MAILER_IMAP_PASSWORD_COMMAND"


def test_its_own_imap_password_wins_even_at_the_same_service(tmp_path: Path) -> None:
    same = {**SMTP, "MAILER_IMAP_HOST": "imap.example.com"}
    command = tmp_path / "imap-password"
    command.write_text("#!/bin/sh\necho from-the-command\n")
    command.chmod(0o700)
    for own, secret in (({"MAILER_IMAP_PASSWORD": "imap-secret"}, "imap-secret"),
                        ({"MAILER_IMAP_PASSWORD_COMMAND": str(command)}, "from-the-command")):
        smtp, imap = imap_login({**same, **own})
        assert imap is not None and imap is not smtp and imap.secret() == secret
