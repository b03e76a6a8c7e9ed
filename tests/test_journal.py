"""The journal on real SQLite files: dedupe, suppression, claims, crash recovery."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mailer.errors import JournalError
from mailer.journal import Journal, Outcome, address_key
from mailer.models import State
from tests.smtpd import make_draft

PROJECT = Path(__file__).resolve().parents[1]


def drafts(*names: str) -> list:
    return [make_draft(f"{n}@example.com") for n in names]


def test_wal_mode_and_schema_on_disk(tmp_path: Path) -> None:
    Journal(tmp_path / "j.sqlite3").close()
    db = sqlite3.connect(tmp_path / "j.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_address_key_folds_case() -> None:
    assert address_key(" Anna.B@Example.COM") == "anna.b@example.com"
    assert address_key("anna.b@example.com") == address_key("Anna.B@example.com")


def test_enqueue_dedupes_per_campaign_and_keeps_the_payload(journal: Journal) -> None:
    first = drafts("a", "b")
    assert journal.enqueue("c1", first) == 2
    again = [*drafts("a"), make_draft("b@EXAMPLE.com"), *drafts("c")]
    assert journal.enqueue("c1", again) == 1  # only c is new
    assert journal.enqueue("c2", drafts("a")) == 1  # another campaign is another queue
    row = journal.claim("c1")
    assert row is not None
    assert row.payload == first[0].payload and row.message_id == first[0].message_id
    assert row.wire().startswith(b"Date: ") and row.wire().endswith(first[0].payload)
    assert journal.counts("c1")[State.QUEUED] == 2


def test_enqueue_streams_more_than_one_batch(journal: Journal) -> None:
    gen = (make_draft(f"p{i}@example.org") for i in range(1203))
    assert journal.enqueue("big", gen) == 1203
    assert journal.counts("big")[State.QUEUED] == 1203


def test_mailed_before_counts_sent_and_unknown_only(journal: Journal) -> None:
    journal.enqueue("spring", drafts("a", "b", "c"))
    a, b, c = (journal.claim("spring") for _ in range(3))
    assert a is not None and b is not None and c is not None
    journal.mark(a.id, State.SENT, 250, "ok")
    journal.mark(b.id, State.FAILED, 550, "no such user")
    journal.mark(c.id, State.UNKNOWN, None, "crashed")  # it may have arrived
    assert journal.mailed_before("A@EXAMPLE.COM") == "spring"
    assert journal.mailed_before("b@example.com") is None
    assert journal.mailed_before("c@example.com") == "spring"
    assert journal.mailed_before("nobody@example.com") is None


def test_suppression_blocks_queueing_and_cancels_queued_rows(journal: Journal) -> None:
    journal.enqueue("c1", drafts("a", "b"))
    assert journal.suppress_add("a@Example.COM", "asked to stop")
    assert not journal.suppress_add("a@example.com")  # already there
    assert journal.is_suppressed("a@EXAMPLE.com")
    assert journal.counts("c1")[State.CANCELLED] == 1
    assert journal.enqueue("c2", drafts("a", "c")) == 1
    assert [r.recipient for r in journal.rows("c2")] == ["c@example.com"]
    assert [(a, r) for a, r, _ in journal.suppress_list()] == [("a@example.com", "asked to stop")]
    assert journal.suppress_remove("a@example.com")
    assert not journal.suppress_remove("a@example.com")
    assert not journal.is_suppressed("a@example.com")


def test_claim_takes_each_row_once_and_respects_retry_time(journal: Journal) -> None:
    journal.enqueue("c1", drafts("a", "b"))
    a = journal.claim("c1")
    assert a is not None and a.recipient == "a@example.com" and a.attempts == 1
    journal.mark(a.id, State.QUEUED, 451, "later", retry_at=time.time() + 60)
    b = journal.claim("c1")
    assert b is not None and b.recipient == "b@example.com"
    assert journal.claim("c1") is None  # a is not due yet
    assert journal.next_due("c1") == pytest.approx(time.time() + 60, abs=5)
    again = journal.claim("c1", now=time.time() + 61)
    assert again is not None and again.id == a.id and again.attempts == 2
    assert [r.last_reply for r in journal.rows("c1", [State.CLAIMED])] == ["later", ""]


def test_release_gives_the_claim_back_uncounted(journal: Journal) -> None:
    journal.enqueue("c1", drafts("a"))
    row = journal.claim("c1")
    assert row is not None
    journal.release(row.id)
    again = journal.claim("c1")
    assert again is not None and again.attempts == 1


def test_a_claim_records_the_outcome_before_it_and_marks_the_content_going(
        journal: Journal) -> None:
    """The send loop's one commit a message: the outcome of the message before,
    the mark that this one's content goes out (its DATA was answered 354), and
    the claim of the next one, to begin behind its final dot."""
    journal.enqueue("c1", drafts("a", "b", "c"))
    a = journal.claim("c1")
    b = journal.claim("c1", going=a.id if a else None)
    assert a is not None and b is not None
    c = journal.claim("c1", record=[Outcome(a.id, State.SENT, 250, "ok")], going=b.id)
    assert c is not None and c.recipient == "c@example.com"
    rows = {r.recipient: (r.state, r.attempts) for r in journal.rows("c1")}
    assert rows == {"a@example.com": (State.SENT, 1), "b@example.com": (State.CLAIMED, 1),
                    "c@example.com": (State.CLAIMED, 1)}


def test_an_outcome_changes_only_a_row_this_run_claimed(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as mine, Journal(path) as other:
        mine.enqueue("c1", drafts("a", "b"))
        theirs = other.claim("c1")
        assert theirs is not None
        mine.settle([Outcome(theirs.id, State.SENT, 250, "ok")])
        mine.settle(going=theirs.id)
        assert [r.state for r in mine.rows("c1")] == [State.CLAIMED, State.QUEUED]
        other.end_run()  # its process gone: nothing of its content went out
        assert mine.recover() == 0
        assert [r.state for r in mine.rows("c1")] == [State.QUEUED, State.QUEUED]


def _claim_all(path: str) -> list[int]:
    journal = Journal(Path(path))
    ids = []
    while (row := journal.claim("race")) is not None:
        ids.append(row.id)
    journal.close()
    return ids


def test_two_processes_never_claim_the_same_row(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as j:
        j.enqueue("race", (make_draft(f"r{i}@example.net") for i in range(300)))
    with multiprocessing.get_context("fork").Pool(2) as pool:
        a, b = pool.map(_claim_all, [str(path), str(path)])
    assert not set(a) & set(b)
    assert len(a) + len(b) == 300


def _open_at_once(path: str, ready: Any) -> str:
    ready.wait()
    try:
        Journal(Path(path)).close()
    except JournalError as err:
        return str(err)
    return "ok"


def test_runs_opening_a_new_journal_at_once_all_get_it(tmp_path: Path) -> None:
    """Switching a new file to WAL and creating the schema can meet a lock where SQLite
    calls no busy handler: two sends started together once failed 'database is locked'."""
    ctx = multiprocessing.get_context("fork")
    for attempt in range(30):  # the old code lost about one round in eight
        path = str(tmp_path / f"journal-{attempt}.sqlite3")
        with ctx.Manager() as manager:
            ready = manager.Barrier(8)
            with ctx.Pool(8) as pool:
                outcomes = pool.starmap(_open_at_once, [(path, ready)] * 8)
        assert outcomes == ["ok"] * 8


def test_claims_of_a_dead_process_become_unknown_not_resent(tmp_path: Path) -> None:
    """Claims whose content began to go out (after DATA's 354) may have been
    delivered: unknown.  A claim whose content never left is queued again."""
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as j:
        j.enqueue("c1", drafts("a", "b", "c", "d"))
    script = (
        "import os, sys; from pathlib import Path; from mailer.journal import Journal\n"
        "j = Journal(Path(sys.argv[1])); a = j.claim('c1'); b = j.claim('c1', going=a.id)\n"
        "c = j.claim('c1', going=b.id); os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, cwd=PROJECT,
                   env={**os.environ, "PYTHONPATH": str(PROJECT)})
    with Journal(path) as j:
        live = Journal(path)  # a live run in this process: its claim must survive
        held = live.claim("c1")
        assert held is not None and held.recipient == "d@example.com"
        assert j.recover() == 2
        states = {r.recipient: (r.state, r.attempts) for r in j.rows("c1")}
        assert states == {"a@example.com": (State.UNKNOWN, 1), "b@example.com": (State.UNKNOWN, 1),
                          "c@example.com": (State.QUEUED, 0), "d@example.com": (State.CLAIMED, 1)}
        again = j.claim("c1")  # c only: unknown rows are not resent on their own
        assert again is not None and again.recipient == "c@example.com"
        assert j.claim("c1") is None
        live.close()
        assert j.requeue("c1", [State.UNKNOWN]) == 2
        assert j.claim("c1") is not None


def test_requeue_refuses_sent_rows(journal: Journal) -> None:
    with pytest.raises(JournalError):
        journal.requeue("c1", [State.SENT])


def test_staged_block_commits_or_discards(journal: Journal, tmp_path: Path) -> None:
    with journal.staged() as staging:
        journal.enqueue("c1", drafts("a"))
        staging.discard()
    assert journal.counts("c1")[State.QUEUED] == 0
    with journal.staged():
        journal.enqueue("c1", drafts("a"))
    other = Journal(tmp_path / "journal.sqlite3")
    assert other.counts("c1")[State.QUEUED] == 1
    other.close()


def test_sent_since_lists_send_times(journal: Journal) -> None:
    journal.enqueue("c1", drafts("a", "b"))
    row = journal.claim("c1")
    assert row is not None
    journal.mark(row.id, State.SENT, 250, "ok")
    assert len(journal.sent_since(time.time() - 10)) == 1
    assert journal.sent_since(time.time() + 10) == []


def test_unusable_file_is_a_journal_error(tmp_path: Path) -> None:
    bad = tmp_path / "journal.sqlite3"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="Cannot open the journal"):
        Journal(bad)


def test_a_journal_from_before_the_source_column_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with Journal(path) as j:
        j.enqueue("c1", drafts("a"))
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE messages DROP COLUMN source")  # the file as an older mailer left it
    db.commit()
    db.close()
    with Journal(path) as j:
        j.enqueue("c1", [dataclasses.replace(make_draft("b@example.com"), source="x.csv:3")])
        assert [(r.recipient, r.source) for r in j.rows("c1")] == [
            ("a@example.com", ""), ("b@example.com", "x.csv:3")]


def test_a_claim_left_by_a_mailer_from_before_the_content_mark_stays_in_doubt(
        tmp_path: Path) -> None:
    """An older mailer claimed before MAIL and marked nothing at the 354: its
    dead claim may have gone out whole, so it becomes unknown, not queued."""
    path = tmp_path / "old.sqlite3"
    with Journal(path) as j:
        j.enqueue("c1", drafts("a", "b"))
    script = ("import os, sys; from pathlib import Path; from mailer.journal import Journal\n"
              "Journal(Path(sys.argv[1])).claim('c1'); os._exit(0)\n")
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, cwd=PROJECT,
                   env={**os.environ, "PYTHONPATH": str(PROJECT)})
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE messages DROP COLUMN content_at")  # as an older mailer left it
    db.commit()
    db.close()
    with Journal(path) as j:
        assert j.recover() == 1
        assert [r.state for r in j.rows("c1")] == [State.UNKNOWN, State.QUEUED]


def test_a_paused_campaign_is_not_due_and_its_deferred_rows_wait(tmp_path: Path) -> None:
    """Ctrl-C pauses: run-due's queries skip the campaign until it is unpaused;
    a journal from before the column gets it."""
    path = tmp_path / "old.sqlite3"
    with Journal(path) as j:
        j.enqueue("c1", drafts("a", "b"))
        j.enqueue("c2", drafts("c"))
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE campaigns DROP COLUMN paused_at")  # as an older mailer left it
    db.commit()
    db.close()
    with Journal(path) as j:
        row = j.claim("c1")
        assert row is not None
        j.mark(row.id, State.DEFERRED, 451, "later")
        j.pause("c1", now=5.0)
        assert j.campaign("c1").paused_at == 5.0 and j.campaign("c2").paused_at is None
        assert j.due_campaigns(time.time()) == ["c2"]
        assert j.retry_deferred(time.time() + 86400) == 0
        j.unpause("c1")
        assert j.due_campaigns(time.time()) == ["c1", "c2"]
        assert j.retry_deferred(time.time() + 86400) == 1


def test_a_new_journal_and_its_folders_are_the_users_alone(tmp_path: Path) -> None:
    """It holds every contact's address: not for other users of the machine."""
    path = tmp_path / "state" / "journal.sqlite3"
    with Journal(path) as journal:
        assert journal.run_id  # creates the run's lock folder
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.with_name(path.name + ".runs").stat().st_mode & 0o777 == 0o700
