"""`mailer init`, `login`, `logout` and `check` end to end: real files, the keyrings.alt
file keyring in a temporary home, aiosmtpd with STARTTLS on 127.0.0.1, and the HTTP
stand-in for the OAuth2 providers; `init` also through a real terminal (pexpect)."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import aiosmtplib
import keyring
import pytest
import requests
from click.testing import CliRunner, Result
from dotenv import dotenv_values

import mailer.cli  # registers every command
from mailer.accounts.keystore import PASSWORD_SERVICE, keyring_account
from mailer.accounts.oauth import load_grant
from mailer.cli.app import main
from mailer.compose.profile import load_profile
from mailer.smtp.transport import connect_hint
from tests.oauth_server import OAuthServer
from tests.smtpd import SmtpServer

USER = "alex@example.com"
PASSWORD = "app-pass-Z7q!"
PROJECT = Path(__file__).resolve().parents[1]
assert mailer.cli


def mailer_cli(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT)
    env.pop("MAILER_ENV_FILE", None)  # read ./.env as a user would
    env.update(extra)
    return env


@pytest.fixture
def empty_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current folder, empty (conftest's `work` holds a profile.toml `init` would refuse)."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def use_env_file(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setenv("MAILER_ENV_FILE", str(folder / ".env"))


# -- init with options only ---------------------------------------------------------


def test_init_with_options_writes_private_files_without_secrets(empty_work: Path) -> None:
    result = mailer_cli("init", "--name", "Alex Example", "--email", "alex@gmail.com",
                        "--event", "FOSDEM 2026", "--channel", "linkedin=alex-example",
                        "--channel", "github=alex")
    assert result.exit_code == 0, result.output
    assert "Provider: Gmail (from the address)" in result.output
    assert "app password" in result.output and "mailer login" in result.output
    for name in ("profile.toml", ".env"):
        assert stat.S_IMODE((empty_work / name).stat().st_mode) == 0o600
    profile = load_profile(empty_work / "profile.toml")
    assert (profile.name, profile.email, profile.event) == ("Alex Example", "alex@gmail.com",
                                                          "FOSDEM 2026")
    assert [(c.network, c.url) for c in profile.channels] == [
        ("linkedin", "https://www.linkedin.com/in/alex-example"), ("github", "https://github.com/alex")]
    env = dotenv_values(empty_work / ".env")
    assert env["MAILER_SMTP_HOST"] == "smtp.gmail.com" and env["MAILER_SMTP_PORT"] == "587"
    assert env["MAILER_SMTP_USERNAME"] == "alex@gmail.com" and env["MAILER_PROVIDER"] == "gmail"
    assert not any("PASSWORD=" in line for line in (empty_work / ".env").read_text().splitlines()
                   if not line.startswith("#"))


def test_init_never_overwrites_without_asking(empty_work: Path) -> None:
    (empty_work / "profile.toml").write_text("# mine\n")
    result = mailer_cli("init", "--name", "A", "--email", "a@outlook.de",
                        "--client-id", "cid")
    assert result.exit_code == 2 and "--force" in result.output
    assert (empty_work / "profile.toml").read_text() == "# mine\n"
    assert not (empty_work / ".env").exists()
    result = mailer_cli("init", "--name", "A", "--email", "a@outlook.de", "--client-id", "cid",
                        "--force")
    assert result.exit_code == 0, result.output
    env = dotenv_values(empty_work / ".env")
    assert (env["MAILER_SMTP_HOST"], env["MAILER_SMTP_AUTH"], env["MAILER_OAUTH2_PROVIDER"],
            env["MAILER_OAUTH2_TENANT"]) == ("smtp-mail.outlook.com", "oauth2", "microsoft",
                                             "consumers")


@pytest.mark.parametrize("name", [".env", "profile.toml"])
def test_init_counts_a_broken_link_as_there(empty_work: Path, name: str) -> None:
    """A dangling symlink is something in the way: refused before anything is
    written (not profile.toml written and then .env refused), replaced with --force."""
    link = empty_work / name
    link.symlink_to(empty_work / "gone")
    args = ("init", "--name", "A", "--email", "a@example.org", "--provider", "generic",
            "--host", "mail.example.org")
    result = mailer_cli(*args)
    assert result.exit_code == 2 and name in result.output and "--force" in result.output
    assert sorted(p.name for p in empty_work.iterdir()) == [name]
    result = mailer_cli(*args, "--force")
    assert result.exit_code == 0, result.output
    assert not link.is_symlink() and not (empty_work / "gone").exists()
    assert dotenv_values(empty_work / ".env")["MAILER_SMTP_HOST"] == "mail.example.org"
    assert load_profile(empty_work / "profile.toml").email == "a@example.org"


def test_init_force_updates_the_profile_keeping_what_init_never_asks(empty_work: Path) -> None:
    (empty_work / "profile.toml").write_text(
        '# mine\nname = "A"\nemail = "a@example.org"\norganisation = "Example Labs"\n'
        'title = "Developer"\nphones = ["+49 30 1234567"]\n\n[address]\ncity = "Berlin"\n',
        encoding="utf-8")
    result = mailer_cli("init", "--email", "a@example.net", "--provider", "ionos",
                        "--security", "SSL", "--channel", "github=a", "--force")
    assert result.exit_code == 0, result.output
    profile = load_profile(empty_work / "profile.toml")
    assert (profile.name, profile.email, profile.org, profile.title, profile.phones) == (
        "A", "a@example.net", "Example Labs", "Developer", ("+49 30 1234567",))
    assert profile.address is not None and profile.address.city == "Berlin"
    assert [c.network for c in profile.channels] == ["github"]
    assert (empty_work / "profile.toml").read_text(encoding="utf-8").startswith("# mine\n")
    env = dotenv_values(empty_work / ".env")
    assert (env["MAILER_SMTP_SECURITY"], env["MAILER_SMTP_PORT"]) == ("tls", "465")
    assert not any(line.startswith("Password:") for line in result.output.splitlines())


def test_init_refuses_a_profile_it_cannot_read_before_asking(empty_work: Path) -> None:
    (empty_work / "profile.toml").write_text('name = "A\n', encoding="utf-8")
    result = mailer_cli("init", "--name", "A", "--email", "a@gmail.com", "--force")
    assert result.exit_code == 2 and "not valid TOML" in result.output
    assert "move it away" in result.output and not (empty_work / ".env").exists()


@pytest.mark.parametrize(("args", "message"), [
    (("--name", "A", "--email", "a@example.org"), "--host is needed"),
    (("--name", "A", "--email", "not an address"), "--email"),
    (("--name", "A", "--email", "a@example.org", "--host", "h", "--security", "ssh"),
     "--security"),
    (("--name", "A", "--email", "a@example.org", "--provider", "ionos", "--auth", "oauth2"),
     "needs --auth password"),
    (("--name", "A", "--email", "a@gmail.com", "--channel", "myspace=x"), "not one of"),
    (("--name", "A", "--email", "a@gmail.com", "--channel", "other=x"),
     'by hand afterwards (network = "other" with a label)'),
    (("--email", "a@gmail.com",), "--name is needed"),
    (("--name", "A", "--email", "a@gmail.com", "--channel", "mastodon=not a handle"),
     "channels[1].value"),
])
def test_init_refuses_incomplete_options_writing_nothing(
    empty_work: Path, args: tuple[str, ...], message: str
) -> None:
    result = mailer_cli("init", *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert list(empty_work.iterdir()) == []


# -- login, logout, check against a real server ---------------------------------------


@pytest.fixture
def bare_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    """SMTP with STARTTLS and a login, only its CA trusted: unlike conftest's `server`
    its settings are not in the environment, as `init` writes them to .env."""
    with SmtpServer(starttls=True, auth=(USER, PASSWORD)) as srv:
        monkeypatch.setenv("SSL_CERT_FILE", str(srv.ca_file))
        yield srv


def init_for(bare_server: SmtpServer, *extra: str) -> Result:
    return mailer_cli("init", "--name", "Alex Example", "--email", USER, "--provider",
                      "generic", "--host", bare_server.host, "--port", str(bare_server.port),
                      "--security", "starttls", *extra)


def test_login_check_logout_with_the_keyring(
    empty_work: Path, bare_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert init_for(bare_server).exit_code == 0
    use_env_file(monkeypatch, empty_work)
    result = mailer_cli("login", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    account = keyring_account(bare_server.host, USER)
    assert keyring.get_password(PASSWORD_SERVICE, account) == PASSWORD
    result = mailer_cli("check")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "certificate subject O=trustme" in out and "names: 127.0.0.1, localhost" in out
    assert re.search(r"valid until \d{4}-\d\d-\d\d \(\d+ days\)", out), out
    assert re.search(r"SIZE 32\.0 MiB, SMTPUTF8 yes, PIPELINING no, 8BITMIME yes, AUTH "
                     r"LOGIN PLAIN", out), out
    assert f"Logged in as {USER} with PLAIN (password from the OS keyring" in out
    assert "Largest message the profile produces" in out and "fits" in out
    assert bare_server.received == []  # check sends nothing
    result = mailer_cli("check", "--send-test")
    assert result.exit_code == 0 and bare_server.recipients() == [USER]
    result = mailer_cli("logout")
    assert "Removed the password" in result.output
    assert keyring.get_password(PASSWORD_SERVICE, account) is None
    result = mailer_cli("check")
    assert result.exit_code == 2 and "run `mailer login`" in result.output


def test_login_without_any_keyring_says_what_to_use_instead(
    empty_work: Path, bare_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A headless machine without Secret Service: one line naming the alternatives,
    not keyring's paragraph about installing backends."""
    from keyring.backends.fail import Keyring as NoKeyring

    assert init_for(bare_server).exit_code == 0
    use_env_file(monkeypatch, empty_work)
    monkeypatch.setattr(keyring.core, "_keyring_backend", NoKeyring())
    result = mailer_cli("login", input=PASSWORD + "\n")
    assert result.exit_code == 2 and PASSWORD not in result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("mailer: error: Cannot store the secret in the OS keyring: "
                                     "this machine has none")
    assert "MAILER_SMTP_PASSWORD_COMMAND" in result.stderr and ".." not in result.stderr
    result = mailer_cli("logout")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "this machine has none" in result.stderr and "backend" not in result.stderr


def test_login_with_nothing_entered_says_how_to_give_it(
    empty_work: Path, bare_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert init_for(bare_server).exit_code == 0
    use_env_file(monkeypatch, empty_work)
    result = mailer_cli("login", input="")
    assert result.exit_code == 2
    assert "nothing was stored" in result.stderr and "| mailer login" in result.stderr


def test_check_failures_say_what_to_change(
    empty_work: Path, bare_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert init_for(bare_server).exit_code == 0
    use_env_file(monkeypatch, empty_work)
    monkeypatch.setenv("MAILER_SMTP_PASSWORD", "wrong")
    result = mailer_cli("check")
    assert result.exit_code == 2 and "535" in result.output
    assert "from MAILER_SMTP_PASSWORD" in result.output and "app password" in result.output
    monkeypatch.setenv("MAILER_SMTP_SECURITY", "tls")
    result = mailer_cli("check")
    assert result.exit_code == 2 and "MAILER_SMTP_SECURITY" in result.output, result.output
    monkeypatch.setenv("MAILER_SMTP_SECURITY", "starttls")
    with SmtpServer() as closed:  # a port nobody listens on once this server stops
        port = closed.port
    monkeypatch.setenv("MAILER_SMTP_PORT", str(port))
    result = mailer_cli("check")
    assert result.exit_code == 2 and "Check MAILER_SMTP_PORT: nothing listens" in result.output
    with socket.socket() as silent:  # accepts, never greets: like TLS-only port 465
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        monkeypatch.setenv("MAILER_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("MAILER_SMTP_PORT", str(silent.getsockname()[1]))
        monkeypatch.setenv("MAILER_SMTP_TIMEOUT", "1")
        result = mailer_cli("check")
    assert result.exit_code == 2 and "port 465 wants tls" in result.output
    assert "Traceback" not in result.output
    unresolved = aiosmtplib.SMTPConnectError("Error connecting to smtp.example.invalid")
    unresolved.__cause__ = socket.gaierror(-2, "Name or service not known")
    assert "Check MAILER_SMTP_HOST" in connect_hint(unresolved)  # no DNS query in tests
    with SmtpServer() as open_relay:  # no AUTH at all, like `mailer capture`
        monkeypatch.setenv("MAILER_SMTP_PORT", str(open_relay.port))
        monkeypatch.setenv("MAILER_SMTP_SECURITY", "none")
        result = mailer_cli("check")
    assert result.exit_code == 2 and "offers no login" in result.stderr, result.output
    assert "remove it" in result.stderr and "via TLS" not in result.stderr


def test_check_reports_a_message_too_large_for_size(
    empty_work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpServer(starttls=True, auth=(USER, PASSWORD), size_limit=2000) as small:
        monkeypatch.setenv("SSL_CERT_FILE", str(small.ca_file))
        assert init_for(small).exit_code == 0
        use_env_file(monkeypatch, empty_work)
        monkeypatch.setenv("MAILER_SMTP_PASSWORD", PASSWORD)
        result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 1
    assert "does NOT fit" in result.output and "photo" in result.output


def test_password_command_is_used_by_check(
    empty_work: Path, bare_server: SmtpServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert init_for(bare_server).exit_code == 0
    use_env_file(monkeypatch, empty_work)
    cmd = tmp_path / "pass-show"
    cmd.write_text(f"#!/bin/sh\necho '{PASSWORD}'\n")
    cmd.chmod(0o700)
    monkeypatch.setenv("MAILER_SMTP_PASSWORD_COMMAND", str(cmd))
    result = mailer_cli("check")
    assert result.exit_code == 0, result.output
    assert "password from MAILER_SMTP_PASSWORD_COMMAND" in result.output


# -- OAuth2 through the commands ---------------------------------------------------------


@pytest.fixture
def idp() -> Iterator[OAuthServer]:
    with OAuthServer(clients={"ms-client": None, "g-client": "g-secret"}) as server:
        yield server


def oauth_env(idp: OAuthServer, smtp: SmtpServer, provider: str, client: str) -> dict[str, str]:
    return {"MAILER_SMTP_HOST": smtp.host, "MAILER_SMTP_PORT": str(smtp.port),
            "MAILER_SMTP_SECURITY": "starttls", "MAILER_SMTP_USERNAME": USER,
            "MAILER_SMTP_AUTH": "oauth2", "MAILER_OAUTH2_PROVIDER": provider,
            "MAILER_OAUTH2_CLIENT_ID": client, "MAILER_OAUTH2_ENDPOINT": idp.url,
            "SSL_CERT_FILE": str(smtp.ca_file)}


def run_login(env: dict[str, str], respond: object, stdin: str = "",
              *args: str) -> tuple[int, str]:
    """`mailer login` in a subprocess; `respond(line)` acts on each line it prints,
    as the user in the browser would."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailer", "login", *args], env=subprocess_env(**env),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(stdin)
    proc.stdin.close()
    lines = []
    timer = threading.Timer(60, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            lines.append(line)
            respond(line)  # type: ignore[operator]
        return proc.wait(), "".join(lines)
    finally:
        timer.cancel()


def test_microsoft_device_code_login_then_check(
    empty_work: Path, idp: OAuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpServer(starttls=True, oauth=idp.token_valid, mechanisms=("XOAUTH2",)) as smtp:
        env = oauth_env(idp, smtp, "microsoft", "ms-client")

        def respond(line: str) -> None:
            found = re.search(r"open (\S+) in a browser and enter the code (\w+)", line)
            if found:
                requests.post(found[1], data={"user_code": found[2]}, timeout=5)

        code, out = run_login(env, respond)
        assert code == 0, out
        assert "Signed in as alex@example.com" in out
        grant = load_grant(USER)
        assert grant is not None and grant.client_id == "ms-client"
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        result = mailer_cli("check")
        assert result.exit_code == 0, result.output
        assert "with XOAUTH2 (OAuth2 token for microsoft" in result.output
        for token in idp.issued:
            assert token not in out and token not in result.output


def test_google_loopback_login_with_the_secret_on_stdin(
    empty_work: Path, idp: OAuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpServer(starttls=True, oauth=idp.token_valid, mechanisms=("OAUTHBEARER",)) as smtp:
        env = oauth_env(idp, smtp, "google", "g-client")

        def respond(line: str) -> None:
            if line.startswith(idp.url + "/o/oauth2/v2/auth?"):
                assert requests.get(line.strip(), timeout=5).status_code == 200

        code, out = run_login(env, respond, "g-secret\n", "--no-browser")
        assert code == 0, out
        assert load_grant(USER).client_secret == "g-secret"  # type: ignore[union-attr]
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        result = mailer_cli("check")
        assert result.exit_code == 0, result.output
        assert "with OAUTHBEARER" in result.output and "g-secret" not in result.output


def test_revoked_sign_in_stops_send_before_anyone_is_marked(
    empty_work: Path, idp: OAuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpServer(starttls=True, oauth=idp.token_valid) as smtp:
        env = oauth_env(idp, smtp, "microsoft", "ms-client")

        def respond(line: str) -> None:
            found = re.search(r"open (\S+) in a browser and enter the code (\w+)", line)
            if found:
                idp.approve(found[2])

        assert run_login(env, respond)[0] == 0
        idp.revoke_refresh_tokens()
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        (empty_work / "contacts.csv").write_text("Name,Email\nAnna,anna@example.com\n")
        (empty_work / "profile.toml").write_text((PROJECT / "profile.example.toml").read_text())
        result = mailer_cli("send", "contacts.csv", "--profile", "profile.toml", "--yes")
        assert result.exit_code == 2 and "run `mailer login` again" in result.output
        assert smtp.received == []
        counts = json.loads(mailer_cli("status", "--json").output)["counts"]
        assert counts["queued"] == 1
        assert counts["sent"] == counts["failed"] == counts["unknown"] == counts["claimed"] == 0


# -- init through a real terminal ------------------------------------------------------


def test_init_interactive_in_a_terminal_then_login_and_check(
    tmp_path: Path, bare_server: SmtpServer
) -> None:
    pexpect = pytest.importorskip("pexpect")
    folder = tmp_path / "setup"
    child = pexpect.spawn(sys.executable, ["-m", "mailer", "init", "--dir", str(folder)],
                          env=subprocess_env(), encoding="utf-8", timeout=30,
                          dimensions=(50, 200))
    transcript: list[str] = []
    child.logfile_read = _Sink(transcript)

    def answer(prompt: str, text: str) -> None:
        child.expect_exact(prompt)
        child.sendline(text)

    answer("Your name:", "Alex Example")
    answer("Your e-mail address:", "alex.example.com")  # said, and asked again in place
    child.expect_exact("is not an e-mail address")
    answer("Your e-mail address:", USER)
    answer("Where did you meet people", "FOSDEM 2026")
    answer("Mail language (en, de) [en]:", "")
    answer("Channel:", "linkedin=alex-example")
    answer("Channel:", "myspace=alex")  # refused with the list, asked again
    child.expect_exact("is not one of")
    answer("Channel:", "")
    answer("[generic]:", "")
    answer("SMTP server:", bare_server.host)
    answer("[starttls]:", "tls please")
    answer("Security (starttls, tls, none) [starttls]:", "STARTTLS")  # any case
    answer("SMTP port [587]:", "587x")
    child.expect_exact("is not a port number")
    answer("SMTP port [587]:", str(bare_server.port))
    child.expect_exact("Wrote ")
    answer("Sign in now (mailer login)? [Y/n]:", "y")
    child.expect_exact("The password is your mail password")  # with the question it is for
    answer(f"Password for {USER} at {bare_server.host}:", PASSWORD)
    child.expect_exact("Stored the password")
    answer("Check the account now (mailer check)? [Y/n]:", "y")
    child.expect_exact(f"Logged in as {USER} with PLAIN")
    child.expect_exact("Largest message the profile produces")
    child.expect(pexpect.EOF)
    child.close()
    text = "".join(transcript)
    assert child.exitstatus == 0, text
    assert PASSWORD not in text  # never echoed
    assert "--email" not in text and "Traceback" not in text and "Password: " not in text
    assert [c.network for c in load_profile(folder / "profile.toml").channels] == ["linkedin"]
    assert stat.S_IMODE((folder / ".env").stat().st_mode) == 0o600
    assert dotenv_values(folder / ".env")["MAILER_SMTP_SECURITY"] == "starttls"


def test_init_again_asks_about_env_first_and_updates_the_profile(tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    folder = tmp_path / "setup"
    result = mailer_cli("init", "--dir", str(folder), "--name", "Alex Example", "--email",
                        "alex@example.org", "--provider", "ionos", "--event", "FOSDEM 2026",
                        "--channel", "linkedin=alex-example")
    assert result.exit_code == 0, result.output
    text = (folder / "profile.toml").read_text(encoding="utf-8")  # the README's next step
    for line in ('organisation = "Example Labs"', 'title = "Developer"',
                 'phones = ["+49 30 1234567"]'):
        key = line.partition(" ")[0]
        text = re.sub(rf"^# {key} = .*$", line, text, count=1, flags=re.M)
    (folder / "profile.toml").write_text(text + EXTRA_KEYS, encoding="utf-8")
    env_before = (folder / ".env").read_bytes()
    child = pexpect.spawn(sys.executable, ["-m", "mailer", "init", "--dir", str(folder),
                                           "--name", "Alex B. Example", "--email",
                                           "alex@example.net"],
                          env=subprocess_env(), encoding="utf-8", timeout=30,
                          dimensions=(50, 200))
    transcript: list[str] = []
    child.logfile_read = _Sink(transcript)
    # before any question: the profile is updated, not replaced; .env is asked about
    child.expect_exact("your answers update it")
    child.expect_exact(".env exists. Replace it? [y/N]:")
    child.sendline("")
    child.expect_exact("Where did you meet people (e.g. FOSDEM 2026; empty: nowhere) "
                       "[FOSDEM 2026]:")
    child.sendline("")
    child.expect_exact("[en]:")
    child.sendline("")
    child.expect_exact("The profile lists linkedin")
    child.expect_exact("Channel:")
    child.sendline("github=alex-b")
    child.expect_exact("Channel:")
    child.sendline("")
    child.expect_exact("Wrote ")
    child.expect_exact("Sign in now (mailer login)? [Y/n]:")
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    text = "".join(transcript)
    assert child.exitstatus == 0, text
    assert "provider" not in text.lower()  # .env kept: no server questions
    assert (folder / ".env").read_bytes() == env_before
    profile = load_profile(folder / "profile.toml")
    assert (profile.name, profile.email, profile.event) == ("Alex B. Example",
                                                          "alex@example.net", "FOSDEM 2026")
    assert (profile.org, profile.title, profile.phones) == ("Example Labs", "Developer",
                                                            ("+49 30 1234567",))
    assert profile.address is not None and profile.address.city == "Berlin"
    assert [c.network for c in profile.channels] == ["linkedin", "web", "github"]
    assert "# my own note" in (folder / "profile.toml").read_text(encoding="utf-8")


EXTRA_KEYS = """
# my own note
[address]
city = "Berlin"

[[channels]]
network = "web"
value = "https://alex.example.org/"
"""


def test_init_takes_ssl_for_tls_and_its_port(tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    folder = tmp_path / "setup"
    child = pexpect.spawn(sys.executable, ["-m", "mailer", "init", "--dir", str(folder),
                                           "--name", "Alex Example", "--email",
                                           "alex@example.org", "--channel", "github=alex",
                                           "--provider", "generic"],
                          env=subprocess_env(), encoding="utf-8", timeout=30,
                          dimensions=(50, 200))
    for prompt, text in (("Where did you meet", ""), ("[en]:", ""),
                         ("SMTP server:", "mail.example.org"),
                         ("[starttls]:", "SSL"), ("SMTP port [465]:", ""),
                         ("Sign in now (mailer login)? [Y/n]:", "n")):
        child.expect_exact(prompt)
        child.sendline(text)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    env = dotenv_values(folder / ".env")
    assert (env["MAILER_SMTP_SECURITY"], env["MAILER_SMTP_PORT"]) == ("tls", "465")


class _Sink:
    def __init__(self, into: list[str]) -> None:
        self.into = into

    def write(self, text: str) -> None:
        self.into.append(text)

    def flush(self) -> None:
        pass


def test_without_a_keyring_login_points_to_the_password_command(
    empty_work: Path, bare_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keyring.backends.fail import Keyring as NoKeyring

    assert init_for(bare_server).exit_code == 0
    use_env_file(monkeypatch, empty_work)
    keyring.set_keyring(NoKeyring())
    result = mailer_cli("login", input=PASSWORD + "\n")
    assert result.exit_code == 2 and "MAILER_SMTP_PASSWORD_COMMAND" in result.output
    assert PASSWORD not in result.output
    monkeypatch.setenv("MAILER_SMTP_PASSWORD", PASSWORD)  # no keyring: the next source is used
    assert mailer_cli("check").exit_code == 0


def test_the_provider_init_wrote_sets_the_rate_of_send(empty_work: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    with SmtpServer() as smtp:
        result = mailer_cli("init", "--name", "Alex Example", "--email", USER, "--provider",
                            "ionos", "--host", smtp.host, "--port", str(smtp.port),
                            "--security", "none", "--username", "")
        assert result.exit_code == 0, result.output
        assert dotenv_values(empty_work / ".env")["MAILER_SMTP_USERNAME"] == ""  # no login at all
        (empty_work / "contacts.csv").write_text("Name,Email\nAnna,anna@example.com\n")
        child = pexpect.spawn(sys.executable, ["-m", "mailer", "send", "contacts.csv",
                                               "--profile", "profile.toml"],
                              cwd=str(empty_work), env=subprocess_env(), encoding="utf-8",
                              timeout=30, dimensions=(50, 200))
        child.expect_exact("pace one message every 2 s (30/min), at most 500/hour")  # IONOS (.env)
        child.expect_exact("[y/N]")
        child.sendline("n")
        child.expect(pexpect.EOF)
        assert smtp.received == []
