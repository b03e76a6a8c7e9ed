"""No secret anywhere: the whole path (init, login, check --send-test, preview, send,
status, campaigns, logout) with a keyring password, a password command and an OAuth2
sign-in (with a token refused and renewed mid-run), and then every output, log file,
journal row, preview file, file in the working folder and message received is searched
for the password and for every token and code the stand-in provider handed out."""

from __future__ import annotations

import base64
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.oauth_server import OAuthServer
from tests.smtpd import SmtpServer
from tests.test_account_cli import PROJECT, subprocess_env

USER = "alex@example.com"
PASSWORD = "Pa55-very-secret-phrase"


@pytest.mark.slow
def test_no_password_or_token_reaches_any_output(tmp_path: Path, isolated_env: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "contacts.csv").write_text((PROJECT / "contacts.csv.example").read_text())
    (work / "more.csv").write_text("Name,Email\nBea,bea@example.com\nCem,cem@example.org\n"
                                   "Dan,dan@example.net\n")
    (work / "oauth.csv").write_text("Name,Email\nEva,eva@example.com\nFin,fin@example.org\n"
                                    "Gus,gus@example.net\n")
    outputs: list[str] = []

    with OAuthServer(clients={"ms-client": None}) as idp, \
         SmtpServer(starttls=True, auth=(USER, PASSWORD), oauth=idp.token_valid,
                    close_after=2) as smtp:

        def mailer(*args: str, stdin: str = "", env: dict[str, str] | None = None,
                   respond: bool = False) -> str:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mailer", *args], cwd=work,
                env=subprocess_env(SSL_CERT_FILE=str(smtp.ca_file), **(env or {})),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True,
            )
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(stdin)
            proc.stdin.close()
            out = []
            for line in proc.stdout:  # the user, reading the code and approving it
                out.append(line)
                found = re.search(r"open (\S+) in a browser and enter the code (\w+)", line)
                if respond and found:
                    requests.post(found[1], data={"user_code": found[2]}, timeout=5)
            err = proc.stderr.read() if proc.stderr else ""
            proc.wait(timeout=120)
            text = "".join(out) + err
            outputs.append(text)
            assert proc.returncode in (0, 1), f"mailer {' '.join(args)}: {text}"
            return text

        # 1. password in the keyring
        mailer("init", "--name", "Alex Example", "--email", USER, "--provider", "generic",
               "--host", smtp.host, "--port", str(smtp.port), "--security", "starttls",
               "--channel", "github=alex")
        mailer("login", stdin=PASSWORD + "\n")
        assert "Logged in" in mailer("check", "--send-test")
        mailer("preview", "contacts.csv", "--profile", "profile.toml", "--out", "preview")
        mailer("send", "contacts.csv", "--profile", "profile.toml", "--yes", "--rate", "none")
        mailer("logout")

        # 2. a password command
        command = tmp_path / "pass-show"
        command.write_text(f"#!/bin/sh\necho '{PASSWORD}'\n")
        command.chmod(0o700)
        env = {"MAILER_SMTP_PASSWORD_COMMAND": str(command)}
        mailer("send", "more.csv", "--profile", "profile.toml", "--yes", "--rate", "none",
               env=env)

        # 3. OAuth2, the provider ending each access token after one use
        def single_use(user: str, token: str) -> bool:
            ok = idp.token_valid(user, token)
            if ok:
                idp.expire_access_tokens()
            return ok

        smtp.handler.oauth = single_use
        env = {"MAILER_SMTP_AUTH": "oauth2", "MAILER_OAUTH2_PROVIDER": "microsoft",
               "MAILER_OAUTH2_CLIENT_ID": "ms-client", "MAILER_OAUTH2_ENDPOINT": idp.url}
        mailer("login", env=env, respond=True)
        mailer("check", env=env)
        mailer("send", "oauth.csv", "--profile", "profile.toml", "--yes", "--rate", "none",
               env=env)
        outputs.append(mailer("status", "--json"))
        mailer("campaigns")
        mailer("logout", env=env)
        refused = [t for _, t, ok in smtp.handler.tokens if not ok]
        received = [m.data for m in smtp.received]

    assert len(received) == 1 + 5 + 3 + 3  # test message, three campaigns
    assert refused, "the OAuth2 run never had a token refused and renewed"
    assert len(idp.issued) >= 6

    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    secrets = [PASSWORD, base64.b64encode(PASSWORD.encode()).decode(), plain, *idp.issued]
    haystacks: dict[str, bytes] = {f"output {i}": o.encode() for i, o in enumerate(outputs)}
    for folder in (isolated_env, work):  # state dir (journal, logs, caches), work folder
        for path in folder.rglob("*"):
            if path.is_file():
                haystacks[str(path)] = path.read_bytes()
    journal = isolated_env / "journal.sqlite3"
    assert journal.is_file() and (work / "preview" / "index.html").is_file()
    with sqlite3.connect(journal) as db:
        haystacks["journal dump"] = "\n".join(db.iterdump()).encode()
    for i, data in enumerate(received):
        haystacks[f"received message {i}"] = data
    for name, data in haystacks.items():
        for secret in secrets:
            assert secret.encode() not in data, f"a secret ({secret[:6]}...) is in {name}"
