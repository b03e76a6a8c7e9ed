"""What the user sees and what happens after a run, through the CLI against a
real aiosmtpd: `unknown` recipients are never resent by a rerun, `run-due` or
`resend` without --unknown; the unattended output of a run against a slow server."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import mailer.cli  # noqa: F401  (registers every command)
import mailer.cli.send as send_cli
from mailer import config
from mailer.cli.app import main
from mailer.journal import Journal, journal_path
from mailer.smtp import sender
from tests.conftest import write_contacts
from tests.smtpd import Fault, SmtpServer, make_draft

PROJECT = Path(__file__).resolve().parents[1]
PEOPLE = ["anna@example.com", "ben@example.org", "chloe@example.net", "dan@example.com"]


@pytest.fixture(autouse=True)
def four_people(work: Path) -> None:
    """The `work` folder's contacts.csv with Dan as a fourth person."""
    write_contacts(work, [(e.split("@")[0].title(), e) for e in PEOPLE])


def use(server: SmtpServer, monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    for name, value in {**server.env(), **extra}.items():
        monkeypatch.setenv(name, value)


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def states() -> dict[str, str]:
    result = cli("status", "--json")
    return {r["recipient"]: r["state"] for r in json.loads(result.output)["recipients"]}


@pytest.fixture(autouse=True)
def stalling(server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server takes 3 s to answer a stalled message; mailer waits 1 s."""
    server.handler.stall_seconds = 3.0
    monkeypatch.setenv("MAILER_SMTP_DATA_TIMEOUT", "1")


def test_unknown_is_left_alone_by_rerun_run_due_and_resend(work: Path,
                                                           server: SmtpServer) -> None:
    """Ben's server took the message and closed without a reply; Chloe's took it
    and said nothing within the data timeout: both `unknown`, one copy each,
    and only `resend --unknown` (the user's say-so) sends them again."""
    server.fault("ben@example.org", Fault(action="drop", stage="data", delivered=True))
    server.fault("chloe@example.net", Fault(action="stall", stage="data", delivered=True,
                                             times=1))
    send = ("send", "contacts.csv", "--profile", "profile.toml", "--rate", "none", "--yes")
    first = cli(*send)
    assert first.exit_code == 1, first.output
    assert "2 message(s) are 'unknown'" in first.output
    assert states() == {"anna@example.com": "sent", "ben@example.org": "unknown",
                        "chloe@example.net": "unknown", "dan@example.com": "sent"}
    row = json.loads(cli("status", "--json").output)["recipients"][2]
    assert "no reply within 1 s after the whole message" in row["last_reply"]

    assert cli(*send).exit_code == 1  # a rerun
    assert cli("run-due", "--rate", "none").output == ""
    assert cli("resend", "--rate", "none", "--yes").output.endswith("Nothing to resend.\n")
    again = cli("resend", "--failed", "--deferred", "--rate", "none", "--yes")
    assert again.output.endswith("Nothing to resend.\n")
    assert Counter(server.recipients()) == Counter(PEOPLE)  # one copy each, nobody twice
    assert states()["ben@example.org"] == states()["chloe@example.net"] == "unknown"

    forced = cli("resend", "--unknown", "--only", "chloe@example.net", "--rate", "none",
                    "--yes")
    assert forced.exit_code == 1, forced.output  # Ben is still unknown
    assert Counter(server.recipients())["chloe@example.net"] == 2
    assert states()["chloe@example.net"] == "sent"


def test_unattended_output_against_a_slow_server(work: Path, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    """No terminal: server, login (never the password), pace and plan first; then
    progress lines no closer than the interval, a line per long wait saying for
    what and until when; then the summary.  (The 30 s and 10 s thresholds are
    shortened here so that the run takes seconds.)"""
    monkeypatch.setattr(send_cli, "PROGRESS_EVERY", 1.0)
    monkeypatch.setattr(sender, "LONG_WAIT", 0.5)
    with SmtpServer(starttls=True, auth=("alex@example.com", "app-password"),
                    data_delay=0.3) as server:
        use(server, monkeypatch)
        result = cli("send", "contacts.csv", "--profile", "profile.toml", "--rate", "60/min",
                        "--yes")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "app-password" not in result.output
    assert lines[0] == (f"SMTP server 127.0.0.1:{server.port} (starttls, as alex@example.com); "
                        f"pace one message every 1 s (60/min); 1 connection(s).")
    assert lines[1] == "Campaign 'contacts': sending the new contacts as they are read."
    clock = r"\d\d:\d\d:\d\d"
    waits = [x for x in lines if re.fullmatch(
        rf"{clock} waiting for the rate limit 60/min until {clock}", x)]
    assert len(waits) >= 2  # every start after the first waits about 0.7 s for its slot
    progress = [x for x in lines if re.fullmatch(
        rf"{clock} sent \d, deferred 0, failed 0, unknown 0, \d left; [\d.]+/min "
        rf"\(pace one message every 1 s \(60/min\)\)", x)]
    assert 1 <= len(progress) <= 4  # about 4 s of sending, a line at most every second
    assert any(x.startswith("This run: 4 sent, 0 deferred, 0 failed, 0 unknown") for x in lines)
    assert lines.index(waits[0]) > 1 and lines.index(progress[-1]) < len(lines) - 1


def test_resume_sends_a_paused_campaign_that_run_due_left(work: Path,
                                                          server: SmtpServer) -> None:
    with Journal(journal_path(config.state_dir(config.environment()))) as journal:
        journal.enqueue("event", [make_draft(address) for address in PEOPLE])
        journal.pause("event")
    assert cli("run-due", "--rate", "none").output == ""
    assert server.received == []
    result = cli("resume", "event", "--rate", "none")
    assert result.exit_code == 0, result.output
    assert sorted(server.recipients()) == sorted(PEOPLE)
    assert cli("campaigns", "--json").output.count('"paused_at": null') == 1
    missing = cli("resume", "nope")
    assert missing.exit_code == 2 and "No campaign 'nope'" in missing.output
