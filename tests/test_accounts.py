"""Where the secret comes from, and logging in with it: password command, keyring,
.env, and OAuth2 (device code and loopback PKCE flows, refresh before expiry and
after a refusal mid-run, revoked sign-ins), against a real aiosmtpd with STARTTLS
and a real HTTP stand-in for the providers' endpoints, all on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import keyring
import pytest
import requests

from mailer.accounts import oauth
from mailer.accounts.credentials import Credentials, PasswordSource
from mailer.accounts.keystore import PASSWORD_SERVICE, keyring_account
from mailer.accounts.oauth import Grant, OAuthSettings, TokenSource, save_grant
from mailer.config import SmtpSettings, environment, smtp_settings
from mailer.errors import AuthError, ConfigError
from mailer.journal import Journal
from mailer.models import State
from mailer.smtp.pace import RateLimiter
from mailer.smtp.sender import RetryPolicy, send_campaign
from mailer.smtp.transport import Connection
from tests.bounds import deadline
from tests.oauth_server import OAuthServer
from tests.smtpd import SmtpServer, make_draft

USER = "me@example.org"
PASSWORD = "correct horse battery staple"


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o700)
    return str(path)


# -- password sources -------------------------------------------------------------------


def test_password_command_first_line_once(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    cmd = script(tmp_path, "pw", f'echo x >> {counter}\nprintf "%s\\nsecond line\\n" "$1"')
    source = PasswordSource("smtp.example.com", USER, f"{cmd} 'spaced secret'", "env-pw")
    assert source.secret() == "spaced secret"  # argument quoting kept, no shell involved
    assert source.secret() == "spaced secret"
    assert counter.read_text().count("x") == 1  # cached for the run


def test_password_command_that_fails_names_its_error_not_its_output(tmp_path: Path) -> None:
    cmd = script(tmp_path, "pw", 'echo leaked-stdout\necho "gpg: decryption failed" >&2\nexit 3')
    with pytest.raises(AuthError) as err:
        PasswordSource("smtp.example.com", USER, cmd).secret()
    assert "exit status 3" in str(err.value) and "gpg: decryption failed" in str(err.value)
    assert "leaked-stdout" not in str(err.value)


def test_password_command_that_hangs_is_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    cmd = script(tmp_path, "pw", f"sleep 60 &\necho $! > {pidfile}\nwait")
    started = time.monotonic()
    with pytest.raises(AuthError, match="within 1 s"):
        PasswordSource("smtp.example.com", USER, cmd, timeout=1.0).secret()
    assert time.monotonic() - started < 10
    child = int(pidfile.read_text())
    for _ in range(50):  # the whole process group is killed, the grandchild too
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the command's child process survived")


def test_a_child_holding_the_output_open_keeps_nobody_waiting(tmp_path: Path) -> None:
    """The command prints the password and exits; a `setsid` child it left behind still
    holds stdout (no process group kill reaches it): the password is read at once."""
    pidfile = tmp_path / "child.pid"
    cmd = script(tmp_path, "pw", f"setsid sleep 30 &\necho $! > {pidfile}\necho hunter2")
    try:
        with deadline(10, "the password command"):
            started = time.monotonic()
            assert PasswordSource("h", USER, cmd, timeout=3.0).secret() == "hunter2"
            assert time.monotonic() - started < 3
            hung = script(tmp_path, "hung", f"setsid sleep 30 &\necho $! >> {pidfile}\nsleep 30")
            started = time.monotonic()
            with pytest.raises(AuthError, match="within 1 s"):
                PasswordSource("h", USER, hung, timeout=1.0).secret()
            assert time.monotonic() - started < 1 + 5  # the timeout, then a bounded wait
    finally:
        for pid in pidfile.read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


def test_endless_output_is_read_only_up_to_a_bound(tmp_path: Path) -> None:
    """`yes hunter2` never ends its output: mailer reads its first line and a bounded
    amount, stops it at the timeout, and stays small (a 512 MiB address space)."""
    child = textwrap.dedent("""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))
        from mailer.accounts.credentials import run_password_command
        from mailer.errors import AuthError
        try:
            run_password_command("yes hunter2", 2.0)
        except AuthError as err:
            print(err)
    """)
    with deadline(30, "the bounded read"):
        done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                              timeout=25)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "did not finish within 2 s" in done.stdout


def test_missing_command_and_no_password_say_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="cannot run"):
        PasswordSource("h", USER, str(tmp_path / "nope")).secret()
    with pytest.raises(AuthError, match="mailer login"):
        PasswordSource("h", USER).secret()


def test_order_command_then_keyring_then_env(tmp_path: Path) -> None:
    cmd = script(tmp_path, "pw", "echo from-command")
    keyring.set_password(PASSWORD_SERVICE, keyring_account("h", USER), "from-keyring")
    assert PasswordSource("h", USER, cmd, "from-env").secret() == "from-command"
    assert PasswordSource("h", USER, "", "from-env").secret() == "from-keyring"
    keyring.delete_password(PASSWORD_SERVICE, keyring_account("h", USER))
    assert PasswordSource("h", USER, "", "from-env").secret() == "from-env"


def test_prepare_finds_the_keyring_and_reads_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keyring loads while the first connection opens; the secret is still read
    by the login alone, and a password command is never run ahead of it."""
    from keyrings.alt.file import PlaintextKeyring

    ran = tmp_path / "ran"
    PasswordSource("h", USER, script(tmp_path, "pw", f"touch {ran}\necho pw")).prepare()
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)  # as in a new process
    reads: list[str] = []
    monkeypatch.setattr(PlaintextKeyring, "get_password",
                        lambda self, service, account: reads.append(account))
    source = PasswordSource("h", USER, "", "from-env")
    source.prepare()
    for thread in threading.enumerate():
        if thread.name == "keyring":
            thread.join(10)
    assert isinstance(keyring.core._keyring_backend, PlaintextKeyring)  # found ahead
    assert reads == [] and not ran.exists()
    assert source.secret() == "from-env"  # nothing stored for it: the next source
    assert reads == [keyring_account("h", USER)]


def logins(env: dict[str, str]) -> SmtpSettings:
    return Credentials(env).smtp()


def test_settings_choose_the_source_lazily(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    cmd = script(tmp_path, "pw", f"touch {marker}\necho pw")
    settings = Credentials({"MAILER_SMTP_HOST": "smtp.example.com",
                            "MAILER_SMTP_USERNAME": USER,
                            "MAILER_SMTP_PASSWORD_COMMAND": cmd}).smtp()
    assert isinstance(settings.login, PasswordSource)
    assert not marker.exists()  # reading the settings runs nothing
    assert "pw" not in repr(settings) or "password=" not in repr(settings)
    with pytest.raises(ConfigError, match="MAILER_SMTP_AUTH"):
        smtp_settings({"MAILER_SMTP_HOST": "h.example.com", "MAILER_SMTP_AUTH": "kerberos"})
    with pytest.raises(ConfigError, match="MAILER_OAUTH2_CLIENT_ID"):
        logins({"MAILER_SMTP_HOST": "smtp.gmail.com", "MAILER_SMTP_AUTH": "oauth2",
                       "MAILER_SMTP_USERNAME": USER})
    with pytest.raises(ConfigError, match="MAILER_OAUTH2_PROVIDER"):
        logins({"MAILER_SMTP_HOST": "mail.example.com", "MAILER_SMTP_AUTH": "oauth2",
                       "MAILER_SMTP_USERNAME": USER, "MAILER_OAUTH2_CLIENT_ID": "c"})
    with pytest.raises(ConfigError, match="https"):
        logins({"MAILER_SMTP_HOST": "smtp.gmail.com", "MAILER_SMTP_AUTH": "oauth2",
                       "MAILER_SMTP_USERNAME": USER, "MAILER_OAUTH2_CLIENT_ID": "c",
                       "MAILER_OAUTH2_ENDPOINT": "http://idp.example.com"})


def test_world_readable_env_file_with_a_password_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"MAILER_SMTP_PASSWORD={PASSWORD}\n")
    env_file.chmod(0o644)
    environment(env_file)
    err = capsys.readouterr().err
    assert f"chmod 600 {env_file}" in err and PASSWORD not in err
    quiet = tmp_path / "quiet.env"
    quiet.write_text(f"MAILER_SMTP_PASSWORD={PASSWORD}\n")
    quiet.chmod(0o600)
    environment(quiet)
    no_secret = tmp_path / "public.env"
    no_secret.write_text("MAILER_SMTP_HOST=smtp.example.com\n")
    no_secret.chmod(0o644)
    environment(no_secret)
    assert capsys.readouterr().err == ""
    assert stat.S_IMODE(quiet.stat().st_mode) == 0o600


# -- logging in ----------------------------------------------------------------------


def send_one(settings: SmtpSettings, server: SmtpServer, recipient: str) -> int:
    async def go() -> int:
        conn = Connection(settings, tls_context=server.client_tls())
        draft = make_draft(recipient, sender=USER)
        reply = await conn.send(draft.sender, draft.recipient, draft.payload, smtputf8=False)
        await conn.quit()
        return reply.code
    return asyncio.run(go())


@pytest.mark.parametrize("mechanisms", [("PLAIN",), ("LOGIN",)])
def test_password_from_the_keyring_logs_in(mechanisms: tuple[str, ...]) -> None:
    with SmtpServer(starttls=True, auth=(USER, PASSWORD), mechanisms=mechanisms) as server:
        keyring.set_password(PASSWORD_SERVICE, keyring_account(server.host, USER), PASSWORD)
        settings = replace(server.settings(password=""),
                           login=PasswordSource(server.host, USER, "", "wrong-env"))
        assert send_one(settings, server, "a@example.com") == 250
        assert server.logins == 1


def test_wrong_password_says_where_it_came_from() -> None:
    with SmtpServer(starttls=True, auth=(USER, PASSWORD)) as server:
        settings = replace(server.settings(password=""),
                           login=PasswordSource(server.host, USER, "", "wrong"))
        with pytest.raises(AuthError, match=r"535.*MAILER_SMTP_PASSWORD.*app password"):
            send_one(settings, server, "a@example.com")


@pytest.fixture
def idp() -> OAuthServer:
    with OAuthServer(clients={"ms-client": None, "g-client": "g-secret"}) as server:
        yield server


def ms_settings(idp: OAuthServer) -> OAuthSettings:
    return OAuthSettings(oauth.OAUTH_PROVIDERS["microsoft"], "ms-client", endpoint=idp.url,
                         tenant="organizations")


def g_settings(idp: OAuthServer) -> OAuthSettings:
    return OAuthSettings(oauth.OAUTH_PROVIDERS["google"], "g-client", client_secret="g-secret",
                         endpoint=idp.url)


def device_login(idp: OAuthServer) -> oauth.Tokens:
    shown: list[str] = []

    def show(text: str) -> None:  # the user opens the address and types the code
        shown.append(text)
        url, code = text.split("open ")[1].split(" in a browser and enter the code ")
        requests.post(url, data={"user_code": code}, timeout=5)

    tokens = oauth.device_flow(ms_settings(idp), show)
    assert shown and "devicelogin" in shown[0]
    return tokens


def test_device_code_flow(idp: OAuthServer) -> None:
    tokens = device_login(idp)
    assert tokens.access_token.startswith("at-") and tokens.refresh_token.startswith("rt-")
    assert idp.grants[-1] == oauth.DEVICE_GRANT
    assert "authorization_pending" not in repr(tokens) and tokens.access_token not in repr(tokens)


def test_device_code_flow_with_an_unknown_client_names_the_setting(idp: OAuthServer) -> None:
    bad = replace(ms_settings(idp), client_id="nobody")
    with pytest.raises(AuthError, match="MAILER_OAUTH2_CLIENT_ID"):
        oauth.device_flow(bad, print)


def test_loopback_pkce_flow_driven_by_the_redirect(idp: OAuthServer) -> None:
    def show(text: str) -> None:  # the browser: sign-in page, then redirect to 127.0.0.1
        url = text.splitlines()[-1]
        assert "code_challenge=" in url and "code_verifier" not in url
        page = requests.get(url, timeout=5)
        assert page.status_code == 200 and "close this window" in page.text

    tokens = oauth.loopback_flow(g_settings(idp), show, open_browser=False)
    assert tokens.refresh_token.startswith("rt-") and idp.grants == ["authorization_code"]


def test_loopback_flow_refuses_a_foreign_state(idp: OAuthServer) -> None:
    def show(text: str) -> None:
        url = text.splitlines()[-1]
        redirect = requests.get(url, allow_redirects=False, timeout=5).headers["Location"]
        forged = redirect.replace("state=", "state=forged")
        requests.get(forged, timeout=5)

    with pytest.raises(AuthError, match=r"1 answer.* without this sign-in's state"):
        oauth.loopback_flow(g_settings(idp), show, open_browser=False, timeout=1)
    assert idp.grants == []  # the code was never exchanged


def signed_in(idp: OAuthServer, clock: Callable[[], float] = time.time) -> TokenSource:
    """`mailer login` done (its refresh token in the keyring); a run's token source."""
    save_grant(USER, Grant(device_login(idp).refresh_token, "ms-client"))
    return TokenSource(ms_settings(idp), USER, clock=clock)


def oauth_server(idp: OAuthServer, **kwargs: object) -> SmtpServer:
    return SmtpServer(starttls=True, oauth=idp.token_valid, **kwargs)  # type: ignore[arg-type]


def oauth_smtp(server: SmtpServer, source: TokenSource) -> SmtpSettings:
    return SmtpSettings(host=server.host, port=server.port, security="starttls", username=USER,
                        auth="oauth2", login=source)


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_oauth2_login_with_the_refresh_token_from_the_keyring(
    idp: OAuthServer, mechanism: str
) -> None:
    tokens = device_login(idp)
    save_grant(USER, Grant(tokens.refresh_token, "ms-client"))
    with oauth_server(idp, mechanisms=(mechanism,)) as server:
        source = TokenSource(ms_settings(idp), USER)
        assert send_one(oauth_smtp(server, source), server, "a@example.com") == 250
        assert [(m, ok) for m, _, ok in server.handler.tokens] == [(mechanism, True)]
    assert idp.grants[-1] == "refresh_token"
    assert oauth.load_grant(USER).refresh_token != tokens.refresh_token  # rotated and kept


def test_access_token_refreshed_before_it_expires(idp: OAuthServer) -> None:
    now = [1_000_000.0]
    source = signed_in(idp, clock=lambda: now[0])
    with oauth_server(idp) as server:
        settings = oauth_smtp(server, source)
        send_one(settings, server, "a@example.com")
        now[0] += 3600 - oauth.MARGIN - 10  # still valid long enough: reused
        send_one(settings, server, "b@example.com")
        now[0] += 20  # within the margin: refreshed before the login
        send_one(settings, server, "c@example.com")
        tried = server.handler.tokens
    assert source.refreshes == 2
    assert [ok for _, _, ok in tried] == [True, True, True]  # never refused
    assert tried[0][1] == tried[1][1] != tried[2][1]


@pytest.fixture
def people(journal: Journal) -> list[str]:
    """Six recipients queued in campaign c1."""
    addresses = [f"p{i}@example.com" for i in range(6)]
    journal.enqueue("c1", [make_draft(p, sender=USER) for p in addresses])
    return addresses


def single_use(idp: OAuthServer, after: object = None) -> object:
    """A provider that ends each access token once it was used (as if it expired
    while the connection was idle)."""
    def check(user: str, token: str) -> bool:
        ok = idp.token_valid(user, token)
        if ok:
            idp.expire_access_tokens()
            if callable(after):
                after()
        return ok
    return check


def run_campaign(journal: Journal, server: SmtpServer, source: TokenSource) -> object:
    return asyncio.run(send_campaign(
        journal, "c1", oauth_smtp(server, source), limiter=RateLimiter(),
        tls_context=server.client_tls(), retry=RetryPolicy(attempts=3, base=0.02, cap=0.1),
    ))


def test_token_refused_mid_run_is_renewed_once_and_nobody_is_lost_or_doubled(
    idp: OAuthServer, journal: Journal, people: list[str]
) -> None:
    source = signed_in(idp)
    with SmtpServer(starttls=True, oauth=single_use(idp), close_after=2) as server:
        summary = run_campaign(journal, server, source)
        tried = [ok for _, _, ok in server.handler.tokens]
    assert sorted(server.recipients()) == people  # each exactly once
    assert summary.counts[State.SENT] == 6 and summary.complete  # type: ignore[attr-defined]
    assert tried == [True, False, True, False, True]  # 3 connections, 2 refusals
    assert source.refreshes == 3


@pytest.mark.usefixtures("people")
def test_revoked_sign_in_stops_the_run_marking_nobody(
    idp: OAuthServer, journal: Journal
) -> None:
    source = signed_in(idp)
    check = single_use(idp, after=idp.revoke_refresh_tokens)  # revoked after the 1st login
    with SmtpServer(starttls=True, oauth=check, close_after=2) as server:  # type: ignore[arg-type]
        with pytest.raises(AuthError, match=r"run `mailer login` again"):
            run_campaign(journal, server, source)
        assert len(server.recipients()) == 2
    counts = journal.counts("c1")
    assert counts[State.SENT] == 2 and counts[State.QUEUED] == 4
    assert counts[State.FAILED] == counts[State.UNKNOWN] == counts[State.CLAIMED] == 0


def test_no_oauth_mechanism_offered_says_what_to_change(idp: OAuthServer) -> None:
    source = signed_in(idp)
    with SmtpServer(starttls=True, auth=(USER, PASSWORD)) as server:
        settings = oauth_smtp(server, source)
        with pytest.raises(AuthError, match="MAILER_SMTP_AUTH=password"):
            send_one(settings, server, "a@example.com")


def test_secrets_stay_out_of_reprs(idp: OAuthServer) -> None:
    source = PasswordSource("h", USER, "", PASSWORD)
    source.secret()
    token_source = TokenSource(g_settings(idp), USER)
    for obj in (source, token_source, g_settings(idp), Grant("rt-x", "c", "g-secret")):
        text = repr(obj)
        assert PASSWORD not in text and "g-secret" not in text and "rt-x" not in text
    assert sys.modules["mailer.accounts.credentials"].__doc__  # the module documents the order


def test_check_account_reports_what_the_server_offers() -> None:
    from mailer.accounts.check import check_account

    lines: list[str] = []
    with SmtpServer(starttls=True, auth=(USER, PASSWORD), size_limit=10_000) as server:
        result = asyncio.run(check_account(server.settings(password=PASSWORD), lines.append,
                                           tls_context=server.client_tls(), largest=20_000))
        assert server.received == []
    assert result.mechanism == "PLAIN" and result.size_limit == 10_000 and not result.fits
    assert {"smtputf8", "8bitmime", "auth", "size"} <= set(result.extensions)
    assert any(line.startswith("TLS: TLSv1.") for line in lines)
    assert "19.5 kB, does NOT fit" in lines[-1]
