"""The way back against a real Dovecot on 127.0.0.1 (tests/imapd.py), each
against a baseline measured in the same run (from a checkout; needs
dovecot-imapd):

    PYTHONPATH=. /work/venv/bin/python bench/bench_inbox.py [-n 1000] [--runs 3]

- **inbox**: `read_inbox` (fetch + classify + match against the journal) on an
  inbox of n messages cycling through the test fixtures (the 7 bounce formats,
  delay notice, unsubscribes, auto-replies and replies of tests/test_inbox.py
  and the 22 server formats of tests/fixtures/inbox/formats), against the baseline of
  fetching the same messages with IMAPClient and parsing each with
  `email.message_from_bytes`, the least any reader does.  `settle` (the
  journal writes) is timed on its own.
- **sent copy**: `copy_sent` of n sent messages (the journal records each copy
  before and after its APPEND) against a plain APPEND loop of the same bytes.

Ratio = baseline time / mailer time (1.0 = no overhead; lower = slower).
"""

from __future__ import annotations

import argparse
import email
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailer.journal import Journal  # noqa: E402
from mailer.mailbox.inbox import read_inbox, settle  # noqa: E402
from mailer.mailbox.sentcopy import copy_sent  # noqa: E402
from mailer.models import State  # noqa: E402
from tests.imapd import Dovecot  # noqa: E402
from tests.smtpd import make_draft  # noqa: E402
from tests.test_inbox import CASES, fixture  # noqa: E402
from tests.test_inbox_bounces import FIXTURES, expected, load  # noqa: E402


def sent_journal(path: Path, n: int) -> Journal:
    journal = Journal(path)
    journal.enqueue("bench", [make_draft(f"p{i}@example.com") for i in range(n)])
    for _ in range(n):
        row = journal.claim("bench")
        assert row is not None
        journal.mark(row.id, State.SENT, 250, "ok")
    return journal


def inbox_messages(journal: Journal, n: int) -> list[bytes]:
    rows = list(journal.rows("bench"))
    formats = FIXTURES / "formats"
    makers = [*(lambda mid, name=name: fixture(name, mid) for name in sorted(CASES)),
              *(lambda mid, name=name: load(formats / name, mid)
                for name in sorted(expected("formats")))]
    return [makers[i % len(makers)](rows[i].message_id) for i in range(n)]


def baseline_read(server: Dovecot) -> float:
    start = time.perf_counter()
    with server.client() as client:
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        for i in range(0, len(uids), 50):
            for data in client.fetch(uids[i:i + 50], ["BODY.PEEK[]"]).values():
                email.message_from_bytes(data[b"BODY[]"])
    return time.perf_counter() - start


def run_inbox(n: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp, Dovecot() as server, \
            sent_journal(Path(tmp) / "j.sqlite3", n) as journal:
        server.deliver(*inbox_messages(journal, n))
        base = baseline_read(server)
        start = time.perf_counter()
        found = read_inbox(journal, server.settings(), tls_context=server.client_tls())
        read = time.perf_counter() - start
        assert len(found.verdicts) == n
        start = time.perf_counter()
        settle(journal, found, confirmed=set(), declined=set())
        return base, read, time.perf_counter() - start


def run_copies(n: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp, Dovecot() as server, \
            sent_journal(Path(tmp) / "j.sqlite3", n) as journal:
        raws = [item.wire() for item in journal.copies_due("bench")]
        start = time.perf_counter()
        with server.client() as client:
            for raw in raws:
                client.append("Drafts", raw, flags=(b"\\Seen",))
        base = time.perf_counter() - start
        start = time.perf_counter()
        report = copy_sent(journal, "bench", server.settings(), tls_context=server.client_tls())
        assert report.appended == n
        return base, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    inbox = [run_inbox(args.n) for _ in range(args.runs)]
    copies = [run_copies(args.n) for _ in range(args.runs)]
    base, read, write = (statistics.median(x) for x in zip(*inbox, strict=True))
    cbase, copy = (statistics.median(x) for x in zip(*copies, strict=True))
    n = args.n
    print(f"inbox, {n} messages (median of {args.runs}):")
    print(f"  baseline fetch + parse  {n / base:8.0f} msg/s")
    print(f"  read_inbox              {n / read:8.0f} msg/s   ratio {base / read:.2f}")
    print(f"  settle (journal)        {n / write:8.0f} msg/s")
    print(f"sent copy, {n} messages:")
    print(f"  baseline APPEND loop    {n / cbase:8.0f} msg/s")
    print(f"  copy_sent               {n / copy:8.0f} msg/s   ratio {cbase / copy:.2f}")


if __name__ == "__main__":
    main()
