"""`mailer campaigns`, `mailer cancel` and `mailer capture`, with a real journal,
aiosmtpd and, for capture, a real subprocess stopped with Ctrl-C."""

from __future__ import annotations

import mailbox
import os
import signal
import smtplib
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from mailer.journal import Journal
from mailer.models import State
from tests.smtpd import SmtpServer, free_port, make_draft
from tests.test_resend import STATES, journal_with_every_state, states
from tests.test_run_due import PROJECT, campaigns, mailer, run_due, send


def test_campaigns_lists_schedule_cancellation_and_counts(
    work: Path, server: SmtpServer, berlin: ZoneInfo, isolated_env: Path
) -> None:
    assert mailer("campaigns").output == "No campaigns yet.\n"
    journal_with_every_state(isolated_env)
    assert send("--yes", "--at", "2099-03-02T09:00").exit_code == 0
    listed = {c["name"]: c for c in campaigns()}
    assert listed["event"]["scheduled_at"] is None and listed["event"]["cancelled_at"] is None
    assert {s: n for s, n in listed["event"]["counts"].items() if n} == {
        "sent": 1, "failed": 1, "deferred": 1, "unknown": 1}
    assert listed["contacts"]["scheduled_at"] == datetime(2099, 3, 2, 8, 0, tzinfo=UTC).timestamp()
    assert listed["contacts"]["counts"]["queued"] == 3
    text = mailer("campaigns").output
    assert "Mon 2099-03-02 09:00 CET" in text and "3 queued" in text
    assert "1 sent, 1 deferred, 1 failed, 1 unknown" in text


def test_cancel_drops_only_what_is_not_sent(
    work: Path, server: SmtpServer, isolated_env: Path
) -> None:
    journal_with_every_state(isolated_env)
    with Journal(isolated_env / "journal.sqlite3") as journal:  # and one still queued
        journal.enqueue("event", [make_draft("queued@example.com")])
    result = mailer("cancel", "event", "--yes")
    assert result.exit_code == 0, result.output
    assert "1 queued and 1 deferred message(s) will not be sent" in result.output
    assert "kept as they are: 1 sent, 1 failed, 1 unknown" in result.output
    assert states() == {**{a: str(s) for a, s in STATES.items()},
                        "deferred@example.com": "cancelled", "queued@example.com": "cancelled"}
    [event] = campaigns()
    assert event["cancelled_at"] is not None
    # nothing of a cancelled campaign goes out, even once deferred back-offs are long past
    assert run_due(datetime.now(UTC) + timedelta(days=2)).output == ""
    assert server.received == []
    refused = mailer("resend", "--campaign", "event", "--failed", "--yes")
    assert refused.exit_code == 2 and "cancelled" in refused.output
    again = mailer("cancel", "event", "--yes")
    assert again.exit_code == 0 and "already cancelled" in again.output


def test_cancel_asks_and_refuses_without_a_terminal(
    work: Path, server: SmtpServer, isolated_env: Path
) -> None:
    unknown = mailer("cancel", "nope")
    assert unknown.exit_code == 2 and "No campaign 'nope'; known: none." in unknown.output
    journal_with_every_state(isolated_env)
    unknown = mailer("cancel", "nope")
    assert unknown.exit_code == 2 and "known: event." in unknown.output
    result = mailer("cancel", "event")
    assert result.exit_code == 2 and "--yes" in result.output
    assert "0 queued and 1 deferred message(s) will not be sent" in result.output
    assert states()["deferred@example.com"] == str(State.DEFERRED)
    assert campaigns()[0]["cancelled_at"] is None


def test_a_cancelled_scheduled_campaign_is_never_sent(
    work: Path, server: SmtpServer, berlin: ZoneInfo
) -> None:
    assert send("--yes", "--at", "in 1h").exit_code == 0
    assert mailer("cancel", "contacts", "--yes").exit_code == 0
    assert run_due(datetime.now(UTC) + timedelta(hours=2)).output == ""
    refused = send("--yes")
    assert refused.exit_code == 2 and "was cancelled" in refused.output
    assert server.received == []


def test_a_rehearsed_campaign_shows_its_time_without_a_countdown(
    work: Path, server: SmtpServer, berlin: ZoneInfo
) -> None:
    """After `run-due --now` sent everything, "(in 6 h)" beside the time would suggest
    that something is still waiting."""
    assert send("--yes", "--at", "in 6h").exit_code == 0
    assert "(in 6 h" in mailer("campaigns").output
    assert run_due(datetime.now(UTC) + timedelta(hours=7)).exit_code == 0
    text = mailer("campaigns").output
    assert "3 sent" in text and "(in " not in text, text


def test_capture_listens_stores_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    code = "import mailer.cli.capture; from mailer.cli.app import main; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "capture", "--port", str(port), "--maildir", "captured",
         "--max-seconds", "60"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(PROJECT)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first == f"Capturing mail on 127.0.0.1:{port}; messages go to {tmp_path}/captured/new/\n"
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.sendmail("alex@example.com", ["anna@example.com"],
                        b"Subject: hi\r\nMessage-ID: <1@example.com>\r\n\r\nhello\r\n")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.endswith("Stopped; 1 message(s) captured.\n")
    [message] = mailbox.Maildir(tmp_path / "captured")
    assert message["Delivered-To"] == "anna@example.com"
