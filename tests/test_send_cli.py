"""`mailer send`, `status` and `suppress` end to end: real CSV, profile, journal and
aiosmtpd with STARTTLS and AUTH."""

from __future__ import annotations

import csv
import json
import os
import pty
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import mailer.cli  # registers every command
from mailer.cli.app import main
from tests.conftest import PEOPLE, write_contacts
from tests.smtpd import Fault, SmtpServer

PROJECT = Path(__file__).resolve().parents[1]
CLI = "from mailer.cli.app import main; import mailer.cli; main()"


@pytest.fixture(autouse=True)
def bad_row(work: Path) -> None:
    """The `work` folder's contacts.csv also has a row without an address."""
    with (work / "contacts.csv").open("a", encoding="utf-8") as fh:
        fh.write("No Address,not-an-address\n")


def mailer(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def send(*extra: str) -> Result:
    return mailer("send", "contacts.csv", "--profile", "profile.toml", "--rate", "none", *extra)


def status() -> dict:
    result = mailer("status", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_send_with_yes_mails_everyone_and_reports_the_bad_row(work: Path,
                                                              server: SmtpServer) -> None:
    result = send("--yes", "--concurrency", "2")
    assert result.exit_code == 0, result.output
    assert sorted(server.recipients()) == sorted(PEOPLE)
    assert "contacts.csv:5" in result.output  # the rejected row, with file and line
    assert "read 4 = new 3 + rejected 1" in result.output
    assert "Campaign 'contacts': 3 new message(s) queued by this run (--yes: while sending)." \
        in result.output
    assert status()["counts"]["sent"] == 3
    assert server.logins == 2


def test_send_reads_the_profile_here_without_profile_option(work: Path,
                                                            server: SmtpServer) -> None:
    result = mailer("send", "contacts.csv", "--rate", "none", "--yes")
    assert result.exit_code == 0, result.output
    assert sorted(server.recipients()) == sorted(PEOPLE)


def test_rerun_sends_nothing_twice(work: Path, server: SmtpServer) -> None:
    assert send("--yes").exit_code == 0
    again = send("--yes")
    assert again.exit_code == 0, again.output
    assert "read 4 = new 0 + already mailed 3 + rejected 1" in again.output
    assert "Nothing to send." in again.output
    other = send("--yes", "--campaign", "next-event")  # across campaigns too
    assert other.exit_code == 0 and "Nothing to send." in other.output
    assert sorted(server.recipients()) == sorted(PEOPLE)
    forced = send("--yes", "--campaign", "next-event", "--again")
    assert forced.exit_code == 0, forced.output
    assert len(server.recipients()) == 6


def test_without_a_terminal_it_refuses_unless_yes(work: Path, server: SmtpServer) -> None:
    result = send()
    assert result.exit_code == 2
    assert "--yes" in result.output
    assert server.received == []
    assert status()["counts"] == {}


def test_failed_recipient_exits_1_with_a_problems_csv(
    work: Path, server: SmtpServer, isolated_env: Path
) -> None:
    server.fault("ben@example.org", Fault(reply="550 5.1.1 No such user here"))
    result = send("--yes")
    assert result.exit_code == 1, result.output
    report = isolated_env / "problems-contacts.csv"  # the state directory, not the cwd
    assert f"Failed, deferred or unknown recipients with the server's replies: {report}\n" in (
        result.output
    )
    assert not list(work.glob("*problems*"))
    rows = list(csv.DictReader(report.open(encoding="utf-8-sig")))
    assert [(r["recipient"], r["state"], r["code"], r["reply"]) for r in rows] == [
        ("ben@example.org", "failed", "550", "5.1.1 No such user here")]
    recipients = {r["recipient"]: r["state"] for r in status()["recipients"]}
    assert recipients == {"anna@example.com": "sent", "ben@example.org": "failed",
                          "chloe@example.net": "sent"}


def test_suppressed_addresses_are_never_mailed(work: Path, server: SmtpServer) -> None:
    assert mailer("suppress", "add", "Ben@EXAMPLE.org", "--reason", "asked").exit_code == 0
    listed = mailer("suppress", "list", "--json")
    assert [e["address"] for e in json.loads(listed.output)] == ["ben@example.org"]
    result = send("--yes")
    assert result.exit_code == 0, result.output
    assert "read 4 = new 2 + rejected 1 + suppressed 1" in result.output
    assert sorted(server.recipients()) == ["anna@example.com", "chloe@example.net"]
    assert mailer("suppress", "remove", "Ben@example.org").output.endswith("removed\n")
    assert mailer("suppress", "add", "not an address").exit_code == 2


def test_auth_failure_exits_2_and_marks_nobody(work: Path, server: SmtpServer,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILER_SMTP_PASSWORD", "wrong")
    result = send("--yes")
    assert result.exit_code == 2
    assert "refused the login" in result.output and "wrong" not in result.output
    assert server.received == []
    assert status()["counts"]["queued"] == 3 and status()["counts"]["failed"] == 0


def test_a_wrong_password_over_eight_connections_is_tried_once_and_holds(
        work: Path, server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    write_contacts(work, [(f"P{i}", f"p{i}@example.com") for i in range(10)])
    monkeypatch.setenv("MAILER_SMTP_PASSWORD", "wrong")
    result = send("--yes", "--concurrency", "8")
    assert result.exit_code == 2
    assert "is held with 10 message(s) queued" in result.output
    assert server.auth_attempts == 1 and server.received == []
    [held] = json.loads(mailer("campaigns", "--json").output)
    assert held["held_reason"] and held["counts"]["queued"] == 10


def test_bad_rate_is_a_usage_error(work: Path, server: SmtpServer) -> None:
    result = mailer("send", "contacts.csv", "--profile", "profile.toml", "--yes",
                    "--rate", "lots/min")
    assert result.exit_code == 2 and "--rate" in result.output


def test_status_without_any_send(work: Path) -> None:
    result = mailer("status")
    assert result.exit_code == 0 and "No campaigns yet in " in result.output
    assert "MAILER_HOME" in result.output
    assert mailer("status", "--campaign", "nope").exit_code == 2


def run_on_a_terminal(work: Path, server: SmtpServer, answer: bytes,
                      *options: str) -> tuple[int, str]:
    """The CLI with stdin on a pseudo-terminal, answering the confirmation."""
    leader, follower = pty.openpty()
    env = {**os.environ, **server.env(), "PYTHONPATH": str(PROJECT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "send", "contacts.csv", "--profile", "profile.toml",
         *(options or ("--rate", "none"))], cwd=work, env=env, stdin=follower,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    os.close(follower)
    os.write(leader, answer)
    out, _ = proc.communicate(timeout=60)
    os.close(leader)
    return proc.returncode, out.decode()


@pytest.mark.slow
def test_confirmation_on_a_terminal(work: Path, server: SmtpServer) -> None:
    code, out = run_on_a_terminal(work, server, b"n\n")
    assert code == 0 and "Nothing queued, nothing sent." in out
    assert (f"SMTP server 127.0.0.1:{server.port} (starttls, as alex@example.com), "
            f"pace no limit, 1 connection(s).") in out
    assert server.received == [] and status()["counts"] == {}
    code, out = run_on_a_terminal(work, server, b"n\n", "--provider", "m365")
    assert "pace one message every 2 s (30/min), at most 10000/day, 1 connection(s)." in out
    code, out = run_on_a_terminal(work, server, b"\x04")  # Ctrl-D (like Ctrl-C) at the question
    assert code == 130 and "mailer: interrupted" in out and "Aborted!" not in out, out
    assert server.received == [] and status()["counts"] == {}  # the journal as it was
    code, out = run_on_a_terminal(work, server, b"y\n")
    assert code == 0, out
    assert sorted(server.recipients()) == sorted(PEOPLE)


@pytest.mark.slow
def test_ctrl_c_pauses_run_due_leaves_it_and_the_printed_command_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGINT to a real `mailer send`: it says at once that the transactions in
    flight are being finished, stops, pauses the campaign and prints the exact
    commands to resume or cancel; a cron-style `run-due` then sends nothing;
    the printed resume command sends the rest, nobody twice."""
    monkeypatch.chdir(tmp_path)
    people = [f"p{i:02d}@example.com" for i in range(40)]
    (tmp_path / "contacts.csv").write_text(
        "Name,Email\n" + "\n".join(f"P {i},{e}" for i, e in enumerate(people)) + "\n")
    shutil.copy(PROJECT / "profile.example.toml", tmp_path / "profile.toml")
    mailer = [sys.executable, "-m", "mailer"]
    with SmtpServer(data_delay=0.2) as srv:
        env = {**os.environ, **srv.env(), "PYTHONPATH": str(PROJECT),
               "MAILER_HOME": str(tmp_path / "home")}
        cmd = [*mailer, "send", "contacts.csv", "--profile", "profile.toml",
               "--rate", "1000/min", "--concurrency", "2", "--yes"]
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(srv.received) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        # 2 connections: each has one message whose content is going out, unless the
        # signal came between its last reply and its next 354 (that one goes back)
        assert re.match(r"Ctrl-C: stopping\. Finishing the [12] message\(s\) in flight", err), err
        assert "press Ctrl-C again to stop at once" in err
        assert "Paused campaign 'contacts' after Ctrl-C" in err
        resume = next(line for line in err.splitlines() if "to resume it:" in line)
        resume_cmd = shlex.split(resume.split(":", 1)[1])
        assert resume_cmd == ["mailer", *cmd[3:]]  # the same send: it reads what is left too
        assert "to cancel the rest: mailer cancel contacts" in err
        first = len(srv.received)
        assert 3 <= first < 40
        assert Counter(srv.recipients()).most_common(1)[0][1] == 1

        due = subprocess.run([*mailer, "run-due", "--rate", "none"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
        assert (due.returncode, due.stdout, due.stderr) == (0, "", "")
        assert len(srv.received) == first  # a paused campaign is not cron's to resume

        resumed = subprocess.run([*mailer, *resume_cmd[1:]], cwd=tmp_path, env=env,
                                 capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert sorted(srv.recipients()) == people


@pytest.mark.slow
def test_a_second_ctrl_c_says_which_messages_are_unknown(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second Ctrl-C cuts the transaction in flight off: the hint must not claim it
    was finished and recorded, and must name the command for the `unknown` one."""
    with SmtpServer(data_delay=5.0) as srv:
        env = {**os.environ, **srv.env(), "PYTHONPATH": str(PROJECT)}
        cmd = [sys.executable, "-c", CLI, "send", "contacts.csv", "--profile", "profile.toml",
               "--rate", "none", "--yes"]
        proc = subprocess.Popen(cmd, cwd=work, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while srv.handler.connections < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(1.0)  # the first message is in its DATA phase (5 s until the reply)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    said = out + err
    assert "finished and recorded" not in said
    assert "1 message(s) are 'unknown'" in said, said
    assert "`mailer resend --unknown --campaign contacts`" in said
    assert "Traceback" not in said


def test_an_address_listed_twice_is_mailed_once(work: Path, server: SmtpServer) -> None:
    with (work / "contacts.csv").open("a", encoding="utf-8") as f:
        f.write("Anna Again,ANNA@example.com\n")
    result = send("--yes")
    assert result.exit_code == 0, result.output
    assert "read 5 = new 3 + duplicate 1 + rejected 1" in result.output
    assert sorted(server.recipients()) == sorted(PEOPLE)


def test_status_and_campaigns_to_a_pipe_keep_each_address_and_name_whole(
    work: Path, server: SmtpServer
) -> None:
    """Output to a pipe or file is never wrapped: a grep finds whole addresses."""
    long = "maximiliane.mustermann-schmidt@research-department.example.com"
    (work / "contacts.csv").write_text(f"Name,Email\nMaxi,{long}\n", encoding="utf-8")
    campaign = "a-campaign-name-long-enough-to-be-folded-in-eighty-columns-of-output"
    assert send("--yes", "--campaign", campaign).exit_code == 0
    shown = mailer("status")
    assert shown.exit_code == 0 and long in shown.output, shown.output
    listed = mailer("campaigns")
    assert listed.exit_code == 0 and campaign in listed.output, listed.output


def test_a_bad_imap_setting_after_the_send_is_a_warning_not_a_lost_summary(
    work: Path, server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mails are out: a Sent-copy setting that cannot work only warns (README: the
    send still succeeds), and the summary and exit code still say what happened."""
    monkeypatch.setenv("MAILER_IMAP_HOST", "127.0.0.1")
    monkeypatch.setenv("MAILER_IMAP_PORT", "x")
    result = send("--yes")
    assert result.exit_code == 0, result.output
    assert sorted(server.recipients()) == sorted(PEOPLE)
    assert "This run: 3 sent" in result.output
    assert "mailer: warning: no copies in your Sent folder this time: MAILER_IMAP_PORT" \
        in result.stderr


def test_a_wrong_provider_in_env_is_named_as_the_variable(
    work: Path, server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILER_PROVIDER", "yahoo")
    result = send("--yes")
    assert result.exit_code == 2
    assert result.stderr.startswith("mailer: error: MAILER_PROVIDER='yahoo' is not one of")
    assert "'--provider'" not in result.stderr and server.received == []
    assert send("--yes", "--provider", "gmail").exit_code == 0  # the option still wins
