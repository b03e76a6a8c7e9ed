"""Copies in the Sent folder: exactly once per message across reruns, crash
windows and a `kill -9`; none for Gmail.  Real Dovecot, real journal."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime
from email.parser import BytesHeaderParser
from pathlib import Path

import pytest

from mailer.errors import ImapError
from mailer.journal import Journal
from mailer.mailbox.imap import Mailbox
from mailer.mailbox.sentcopy import copy_sent
from mailer.models import State
from tests.conftest import write_contacts
from tests.imapd import Dovecot
from tests.smtpd import SmtpServer, make_draft

PROJECT = Path(__file__).resolve().parents[1]


def sent_journal(path: Path, count: int, campaign: str = "event") -> Journal:
    """A journal whose campaign sent `count` messages (and failed one more)."""
    journal = Journal(path)
    journal.enqueue(campaign, [make_draft(f"p{i}@example.com") for i in range(count + 1)])
    for i in range(count + 1):
        row = journal.claim(campaign)
        assert row is not None
        journal.mark(row.id, State.FAILED if i == count else State.SENT, 250, "ok")
    return journal


def message_ids(server: Dovecot, folder: str = "Sent") -> list[str]:
    return [str(BytesHeaderParser().parsebytes(raw)["Message-ID"])
            for raw, _ in server.messages(folder)]


def test_each_sent_message_is_filed_once_seen_and_dated(dovecot: Dovecot, tmp_path: Path) -> None:
    with sent_journal(tmp_path / "j.sqlite3", 3) as journal:
        report = copy_sent(journal, "event", dovecot.settings(),
                           tls_context=dovecot.client_tls())
        assert (report.appended, report.folder) == (3, "Sent")
        again = copy_sent(journal, "event", dovecot.settings(), tls_context=dovecot.client_tls())
        assert (again.appended, again.found, again.line()) == (0, 0, "")
        expected = [r.message_id for r in journal.rows("event", [State.SENT])]
    filed = dovecot.messages("Sent")
    assert message_ids(dovecot) == expected  # the failed one is not filed
    for raw, flags in filed:
        assert b"\\Seen" in flags
        assert raw.startswith(b"Date: ")  # as it went on the wire
    assert dovecot.messages("INBOX") == []


def test_a_crash_between_record_and_append_files_it_once(dovecot: Dovecot,
                                                         tmp_path: Path) -> None:
    """The two crash windows: APPEND done but not recorded, and claimed
    `appending` but the APPEND never happened."""
    path = tmp_path / "j.sqlite3"
    with sent_journal(path, 3) as journal:
        due = journal.copies_due("event")
        with Journal(path) as dead:  # another run, whose end releases its claims as a crash does
            first, second = dead.claim_copy("event", "Sent"), dead.claim_copy("event", "Sent")
            assert first is not None and second is not None
            with Mailbox(dovecot.settings(), tls_context=dovecot.client_tls()) as box:
                box.append("Sent", first.wire(), time_of(first.finished_at))  # then "died"
        report = copy_sent(journal, "event", dovecot.settings(),
                           tls_context=dovecot.client_tls())
        assert (report.appended, report.found) == (2, 1)
        assert copy_sent(journal, "event", dovecot.settings(),
                         tls_context=dovecot.client_tls()).appended == 0
    assert sorted(message_ids(dovecot)) == sorted(d.message_id for d in due)


def test_a_copy_another_live_run_is_appending_is_left_to_it(dovecot: Dovecot,
                                                            tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with sent_journal(path, 3) as journal, Journal(path) as other:
        taken = other.claim_copy("event", "Sent")  # the other run is busy with it
        assert taken is not None
        report = copy_sent(journal, "event", dovecot.settings(),
                           tls_context=dovecot.client_tls())
        assert (report.appended, report.found) == (2, 0)
        assert taken.message_id not in message_ids(dovecot)


SEND = "from mailer.cli import main; main()"


def test_two_sends_of_the_same_file_at_once_file_each_copy_once(
        work: Path, server: SmtpServer, imap_env: Dovecot) -> None:
    """#23: two `send` runs of one file at once filed every Sent copy twice
    (the SMTP side stayed exactly-once)."""
    people = [(f"P{i}", f"p{i}@example.com") for i in range(40)]
    write_contacts(work, people)
    server.handler.data_delay = 0.05  # both runs send, and end within one reply of each other
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    command = [sys.executable, "-c", SEND, "send", "contacts.csv", "--profile", "profile.toml",
               "--rate", "none", "--yes"]
    runs = [subprocess.Popen(command, env=env, cwd=work, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT) for _ in range(2)]
    outputs = [run.communicate(timeout=60)[0].decode() for run in runs]
    # a run that ends while the other still sends sees the campaign incomplete: exit 1
    assert all(run.returncode in (0, 1) and "error" not in out
               for run, out in zip(runs, outputs, strict=True)), outputs
    assert sorted(server.recipients()) == sorted(e for _, e in people)  # SMTP: once each
    filed = message_ids(imap_env)
    assert len(filed) == len(people) and len(set(filed)) == len(people), outputs


def time_of(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch).astimezone()


KILLED_PASS = """
import ssl, sys
from pathlib import Path
from mailer import config
from mailer.journal import Journal
from mailer.mailbox.sentcopy import copy_sent
settings = config.imap_settings(config.environment())
with Journal(Path(sys.argv[1])) as journal:
    copy_sent(journal, "event", settings)
"""


def test_kill_9_in_the_middle_then_rerun_files_every_message_once(
        dovecot: Dovecot, tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    sent_journal(path, 150).close()
    env = {**os.environ, **dovecot.env(), "PYTHONPATH": str(PROJECT)}
    child = subprocess.Popen([sys.executable, "-c", KILLED_PASS, str(path)], env=env)
    deadline = time.monotonic() + 30
    with sqlite3.connect(path) as db:
        while time.monotonic() < deadline and child.poll() is None:
            done = db.execute("SELECT COUNT(*) FROM sent_copies").fetchone()[0]
            if done >= 20:
                break
            time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    child.wait()
    with Journal(path) as journal:
        before = len(message_ids(dovecot))
        assert 0 < before < 150, "the pass was not interrupted in the middle"
        report = copy_sent(journal, "event", dovecot.settings(), tls_context=dovecot.client_tls())
        assert report.appended + before == 150
        expected = sorted(r.message_id for r in journal.rows("event", [State.SENT]))
    assert sorted(message_ids(dovecot)) == expected  # each exactly once


def test_gmail_files_its_own_copies(dovecot: Dovecot, tmp_path: Path) -> None:
    with sent_journal(tmp_path / "j.sqlite3", 2) as journal:
        settings = replace(dovecot.settings(), provider="gmail")
        report = copy_sent(journal, "event", settings, tls_context=dovecot.client_tls())
        assert report.appended == 0 and "gmail" in report.line()
    assert dovecot.messages("Sent") == []


def test_no_sent_folder_and_none_configured_is_a_clear_error(tmp_path: Path) -> None:
    with Dovecot(special_use=False) as dovecot, dovecot.client() as client:
        client.create_folder("Gesendet")
        no_sent_mark(dovecot, tmp_path)
        assert len(dovecot.messages("Gesendet")) == 1


def no_sent_mark(dovecot: Dovecot, tmp_path: Path) -> None:
    with sent_journal(tmp_path / "j.sqlite3", 1) as journal:
        settings = dovecot.settings()
        with pytest.raises(ImapError, match="MAILER_IMAP_SENT"):
            copy_sent(journal, "event", replace(settings, sent_folder=""),
                      tls_context=dovecot.client_tls())
        report = copy_sent(journal, "event", replace(settings, sent_folder="Gesendet"),
                           tls_context=dovecot.client_tls())
        assert report.appended == 1


def test_wrong_password_and_untrusted_certificate_are_one_line_errors(
        dovecot: Dovecot, tmp_path: Path) -> None:
    with sent_journal(tmp_path / "j.sqlite3", 1) as journal:
        bad = replace(dovecot.settings(), password="wrong")
        with pytest.raises(ImapError, match="refused the login") as err:
            copy_sent(journal, "event", bad, tls_context=dovecot.client_tls())
        assert "wrong" not in str(err.value)
        with pytest.raises(ImapError, match="TLS"):  # the system CAs do not know the test CA
            copy_sent(journal, "event", replace(dovecot.settings(), security="tls"))
