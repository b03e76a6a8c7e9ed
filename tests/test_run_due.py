"""`mailer send --at` and `mailer run-due`: scheduled campaigns, deferred back-off,
overlapping runs and DST, against a real aiosmtpd and a real journal.  Time is
injected (`--now`, journal `now`), never slept."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

import mailer.cli  # registers every command
from mailer.cli.app import main
from mailer.journal import DeferredRetry, Journal
from mailer.models import State
from tests.conftest import PEOPLE
from tests.smtpd import Fault, SmtpServer, make_draft

PROJECT = Path(__file__).resolve().parents[1]


def mailer(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def send(*extra: str) -> Result:
    return mailer("send", "contacts.csv", "--profile", "profile.toml", "--rate", "none", *extra)


def run_due(now: datetime | str) -> Result:
    stamp = now if isinstance(now, str) else now.isoformat()
    return mailer("run-due", "--rate", "none", "--now", stamp)


def campaigns() -> list[dict]:
    result = mailer("campaigns", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def open_journal(state: Path) -> Journal:
    return Journal(state / "journal.sqlite3")


def test_a_campaign_scheduled_for_t_is_sent_at_t_not_a_second_before(
    work: Path, server: SmtpServer, berlin: ZoneInfo
) -> None:
    result = send("--at", "mon 09:00", "--now", "2027-02-27T12:00", "--yes")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Scheduled for Mon 2027-03-01 09:00 CET (in 1 day 21 h).\n")
    assert "nothing sent now" in result.output and "mailer schedule install" in result.output
    assert server.received == []
    [campaign] = campaigns()
    due = datetime(2027, 3, 1, 8, 0, tzinfo=UTC).timestamp()
    assert campaign["scheduled_at"] == due and campaign["counts"]["queued"] == 3

    early = run_due(datetime(2027, 3, 1, 8, 59, 59, tzinfo=berlin))
    assert (early.exit_code, early.output) == (0, "")
    assert server.received == []
    on_time = run_due("2027-03-01T09:00")  # local time without offset
    assert on_time.exit_code == 0, on_time.output
    assert "campaign 'contacts': 3 sent, 0 deferred, 0 failed" in on_time.output
    assert sorted(server.recipients()) == sorted(PEOPLE)
    later = run_due("2027-03-01T09:05")
    assert (later.exit_code, later.output) == (0, "")
    assert len(server.received) == 3


def test_a_plain_send_never_sends_a_campaign_scheduled_for_later(
    work: Path, server: SmtpServer, berlin: ZoneInfo
) -> None:
    assert send("--at", "in 2h", "--yes").exit_code == 0
    refused = send("--yes")
    assert refused.exit_code == 2
    assert "is scheduled for" in refused.output and "--at now" in refused.output
    assert server.received == []
    now = send("--yes", "--at", "now")
    assert now.exit_code == 0, now.output
    assert sorted(server.recipients()) == sorted(PEOPLE)
    assert run_due(datetime.now(UTC) + timedelta(hours=3)).output == ""  # nothing left to do
    assert len(server.received) == 3


def test_at_without_a_terminal_refuses_unless_yes_and_records_nothing(
    work: Path, server: SmtpServer
) -> None:
    result = send("--at", "in 1 day")
    assert result.exit_code == 2 and "--yes" in result.output
    assert campaigns() == []
    bad = send("--at", "someday", "--yes")
    assert bad.exit_code == 2 and "Cannot understand the time 'someday'" in bad.output
    assert campaigns() == []


def test_nothing_due_prints_nothing_and_exits_0(work: Path, isolated_env: Path) -> None:
    empty = run_due(datetime.now(UTC))  # no journal yet, no SMTP settings needed
    assert (empty.exit_code, empty.output) == (0, "")
    with open_journal(isolated_env) as journal:
        journal.enqueue("later", [make_draft("anna@example.com")],
                        scheduled_at=(datetime.now(UTC) + timedelta(days=1)).timestamp())
    result = run_due(datetime.now(UTC))
    assert (result.exit_code, result.output) == (0, "")


def test_deferred_recipients_come_due_after_their_back_off_and_arrive_once(
    work: Path, server: SmtpServer, isolated_env: Path
) -> None:
    people = ["anna@example.com", "slow@example.org"]
    with open_journal(isolated_env) as journal:
        journal.enqueue("event", [make_draft(p) for p in people])
    server.fault("slow@example.org", Fault(reply="451 4.7.1 Try again later", times=1))
    start = datetime.now(UTC)
    first = run_due(start)
    assert first.exit_code == 1, first.output  # something is left deferred
    assert "campaign 'event': 1 sent, 1 deferred, 0 failed" in first.output
    assert server.recipients() == ["anna@example.com"]

    backoff = timedelta(seconds=DeferredRetry().delay(1))
    assert backoff == timedelta(minutes=15)
    early = run_due(start + backoff - timedelta(seconds=5))
    assert (early.exit_code, early.output) == (0, "")
    due = run_due(start + backoff + timedelta(seconds=5))
    assert due.exit_code == 0, due.output
    assert "campaign 'event': 1 sent, 0 deferred, 0 failed" in due.output
    assert sorted(server.recipients()) == sorted(people)
    assert run_due(start + timedelta(hours=7)).output == ""
    assert len(server.received) == 2


def test_back_off_doubles_up_to_six_hours_and_stops_after_ten_attempts(
    isolated_env: Path,
) -> None:
    policy = DeferredRetry()
    assert [policy.delay(n) / 60 for n in range(1, 8)] == [15, 30, 60, 120, 240, 360, 360]
    with open_journal(isolated_env) as journal:
        journal.enqueue("c", [make_draft("slow@example.org")])
        far = 1e12
        for attempt in range(1, policy.max_attempts + 1):
            row = journal.claim("c")
            assert row is not None and row.attempts == attempt
            journal.mark(row.id, State.DEFERRED, 451, "later")
            requeued = journal.retry_deferred(far)
            assert requeued == (1 if attempt < policy.max_attempts else 0)
        assert journal.counts("c")[State.DEFERRED] == 1  # waits for a manual resend
        row = next(journal.rows("c"))
        assert journal.retry_deferred(row.finished_at + policy.cap) == 0


def test_two_overlapping_run_due_processes_deliver_each_message_once(
    tmp_path: Path, isolated_env: Path
) -> None:
    people = [f"p{i:02d}@example.com" for i in range(24)]
    with open_journal(isolated_env) as journal:
        journal.enqueue("event", [make_draft(p) for p in people])
    with SmtpServer(data_delay=0.02) as srv:  # the first run is still busy when the second starts
        env = {**os.environ, **srv.env(), "PYTHONPATH": str(PROJECT), "MAILER_ENV_FILE": "",
               "MAILER_HOME": str(isolated_env)}
        command = [sys.executable, "-m", "mailer", "run-due", "--rate", "none",
                   "--concurrency", "2", "--now", datetime.now(UTC).isoformat()]
        runs = [subprocess.Popen(command, cwd=tmp_path, env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(2)]
        outputs = [run.communicate(timeout=60) for run in runs]
        assert [run.returncode for run in runs] == [0, 0], outputs
        assert sorted(srv.recipients()) == people
    printed = [out for out, _ in outputs if out]
    assert len(printed) == 1 and "24 sent" in printed[0]  # the other run stayed silent


@pytest.mark.parametrize(
    ("day_before", "expected_utc", "shown"),
    [
        # fall-back: 03:00 CEST -> 02:00 CET on Sun 2027-10-31; 09:00 CET is 08:00 UTC
        ("2027-10-30T12:00", datetime(2027, 10, 31, 8, 0, tzinfo=UTC), "09:00 CET (in 22 h)"),
        # spring-forward: 02:00 CET -> 03:00 CEST on Sun 2027-03-28; 09:00 CEST is 07:00 UTC
        ("2027-03-27T12:00", datetime(2027, 3, 28, 7, 0, tzinfo=UTC), "09:00 CEST (in 20 h)"),
    ],
)
def test_tomorrow_9_across_a_dst_change_is_sent_once_at_the_right_instant(
    work: Path, server: SmtpServer, berlin: ZoneInfo, day_before: str, expected_utc: datetime,
    shown: str,
) -> None:
    scheduled = send("--at", "tomorrow 09:00", "--now", day_before, "--yes")
    assert scheduled.exit_code == 0, scheduled.output
    assert shown in scheduled.output  # the night is an hour longer or shorter
    assert campaigns()[0]["scheduled_at"] == expected_utc.timestamp()
    # cron every 5 minutes from 23:00 the day before, through the DST change, to 10:00
    now = datetime.fromisoformat(day_before).replace(tzinfo=berlin).replace(hour=23)
    sent_at = []
    while now <= expected_utc + timedelta(hours=1):
        result = run_due(now.astimezone(UTC))
        assert result.exit_code == 0, result.output
        if result.output:
            sent_at.append(now)
        now += timedelta(minutes=5)  # real elapsed time, as cron's ticks
    assert sent_at == [expected_utc]
    assert sorted(server.recipients()) == sorted(PEOPLE)


def test_at_on_a_terminal_asks_before_queueing(work: Path, server: SmtpServer) -> None:
    """The same confirmation as a send: "n" leaves the journal as it was."""
    command = [sys.executable, "-m", "mailer", "send", "contacts.csv", "--profile",
               "profile.toml", "--at", "2099-03-02T09:00"]
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "TZ": "Europe/Berlin"}
    for answer in (b"n\n", b"y\n"):
        leader, follower = pty.openpty()
        proc = subprocess.Popen(command, cwd=work, env=env, stdin=follower,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        os.close(follower)
        os.write(leader, answer)
        out = proc.communicate(timeout=60)[0].decode()
        os.close(leader)
        assert proc.returncode == 0, out
        assert "Queue 3 message(s) for Mon 2099-03-02 09:00 CET?" in out
        if answer == b"n\n":
            assert "Nothing queued, nothing scheduled." in out and campaigns() == []
    assert "Queued 3 message(s) of campaign 'contacts' for Mon 2099-03-02 09:00 CET" in out
    assert campaigns()[0]["counts"]["queued"] == 3 and server.received == []


def test_a_send_stopped_by_a_refused_login_holds_its_campaign_until_resumed(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#23: a wrong password left the mail queued without a word, and the next
    run-due sent it; now the campaign is held, says how to go on, and run-due
    leaves it alone until `mailer resume`."""
    with SmtpServer(starttls=True, auth=("alex@example.com", "right")) as srv:
        for name, value in srv.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("MAILER_SMTP_PASSWORD", "wrong")
        failed = send("--yes")
        assert failed.exit_code == 2
        assert "is held with 3 message(s) queued" in failed.output
        assert "mailer resume contacts" in failed.output
        assert "mailer cancel contacts" in failed.output
        [held] = campaigns()
        assert held["paused_at"] is not None and held["held_reason"]
        monkeypatch.setenv("MAILER_SMTP_PASSWORD", "right")
        idle = run_due(datetime.now(UTC) + timedelta(hours=1))
        assert (idle.exit_code, idle.output, srv.received) == (0, "", [])
        listed = mailer("campaigns")
        assert "held:" in listed.output
        resumed = mailer("resume", "contacts", "--rate", "none")
        assert resumed.exit_code == 0, resumed.output
        assert sorted(srv.recipients()) == sorted(PEOPLE)
        [after] = campaigns()
        assert after["paused_at"] is None and after["held_reason"] == ""
