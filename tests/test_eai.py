"""Internationalised addresses (RFC 6531/6532) through preview, send and resend, against
a real aiosmtpd that offers SMTPUTF8 and one that does not: a UTF-8 local part is sent
with SMTPUTF8 where offered and is a clear per-recipient failure where not; an IDN
domain needs no SMTPUTF8 (it goes out in its xn-- form); nothing crashes the run."""

from __future__ import annotations

import csv
import email
import json
from collections.abc import Iterator
from contextlib import contextmanager
from email.policy import default as default_policy
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mailer.cli import main
from tests.conftest import write_contacts
from tests.smtpd import SmtpServer

PROJECT = Path(__file__).resolve().parents[1]
ROWS = {"Joerg": "jörg@example.com", "Müller": "info@müller.example", "Anna": "anna@example.com"}
UTF8 = "jörg@example.com"


@pytest.fixture(autouse=True)
def eai_rows(work: Path) -> None:
    """The `work` folder's contacts.csv holds the internationalised addresses."""
    write_contacts(work, list(ROWS.items()))


@contextmanager
def eai_server(monkeypatch: pytest.MonkeyPatch, *, smtputf8: bool) -> Iterator[SmtpServer]:
    with SmtpServer(starttls=True, auth=("alex@example.com", "pw"), smtputf8=smtputf8) as srv:
        for name, value in srv.env().items():
            monkeypatch.setenv(name, value)
        yield srv


def mailer(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def states() -> dict[str, tuple[str, str]]:
    result = mailer("status", "--json")
    assert result.exit_code == 0, result.output
    return {r["recipient"]: (r["state"], r["last_reply"] or "")
            for r in json.loads(result.output)["recipients"]}  # fmt: skip


def test_preview_renders_every_international_address(work: Path) -> None:
    result = mailer("preview", "contacts.csv", "--profile", "profile.toml", "--out", "out")
    assert result.exit_code == 0, result.output
    emls = sorted((work / "out").glob("*.eml"))
    assert len(emls) == 3
    to = {}
    for eml in emls:  # RFC 6532: raw UTF-8 in the header, read as text
        msg = email.message_from_string(eml.read_bytes().decode("utf-8"), policy=default_policy)
        (address,) = msg["To"].addresses
        to[address.addr_spec] = address.display_name
    assert to == {UTF8: "Joerg", "info@xn--mller-kva.example": "Müller",
                  "anna@example.com": "Anna"}  # fmt: skip


def test_send_uses_smtputf8_where_offered(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with eai_server(monkeypatch, smtputf8=True) as srv:
        result = mailer("send", "contacts.csv", "--profile", "profile.toml", "--rate", "none",
                        "--yes")  # fmt: skip
        assert result.exit_code == 0, result.output
        assert sorted(srv.recipients()) == sorted(
            ["anna@example.com", "info@xn--mller-kva.example", UTF8]
        )
        (utf8,) = [m for m in srv.received if m.rcpt_tos == (UTF8,)]
        assert "jörg@example.com".encode() in utf8.data
    assert {state for state, _reply in states().values()} == {"sent"}


def test_without_smtputf8_only_that_recipient_fails_and_resend_delivers_it_later(
    work: Path, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    with eai_server(monkeypatch, smtputf8=False) as plain:
        result = mailer("send", "contacts.csv", "--profile", "profile.toml", "--rate", "none",
                        "--yes")  # fmt: skip
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert sorted(plain.recipients()) == ["anna@example.com", "info@xn--mller-kva.example"]
        state, reply = states()[UTF8]
        assert state == "failed" and "SMTPUTF8" in reply
        with (isolated_env / "problems-contacts.csv").open(encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
        assert [(r["recipient"], r["state"]) for r in rows] == [(UTF8, "failed")]
        again = mailer("resend", "--failed", "--rate", "none", "--yes")  # still not offered
        assert again.exit_code == 1, again.output
        assert states()[UTF8][0] == "failed" and UTF8 not in plain.recipients()
    with eai_server(monkeypatch, smtputf8=True) as utf8:  # e.g. after moving to another provider
        result = mailer("resend", "--failed", "--rate", "none", "--yes")
        assert result.exit_code == 0, result.output
        assert utf8.recipients() == [UTF8]
    assert {state for state, _reply in states().values()} == {"sent"}
