"""send_campaign end to end: real journal file, real aiosmtpd with STARTTLS and AUTH."""

from __future__ import annotations

import asyncio
from email import message_from_bytes
from itertools import pairwise
from pathlib import Path

import pytest

from mailer.errors import AuthError
from mailer.journal import Journal
from mailer.models import State
from mailer.smtp.pace import Rate, RateLimiter
from mailer.smtp.sender import Progress, RetryPolicy, SendSummary, make_limiter, send_campaign
from tests.smtpd import Fault, SmtpServer, make_draft
from tests.test_ratelimit import FakeClock, max_in_window

FAST = RetryPolicy(attempts=3, base=0.02, cap=0.1)


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    with Journal(tmp_path / "journal.sqlite3") as j:
        yield j


def people(n: int, domain: str = "example.com") -> list[str]:
    return [f"p{i:03d}@{domain}" for i in range(n)]


def run(journal: Journal, server: SmtpServer, *, limiter: RateLimiter | None = None,
        **kwargs: object) -> SendSummary:
    return asyncio.run(send_campaign(
        journal, "c1", server.settings(), limiter=limiter or RateLimiter(),
        tls_context=server.client_tls(), retry=FAST, **kwargs,  # type: ignore[arg-type]
    ))


def test_everyone_once_over_k_reused_connections(journal: Journal) -> None:
    journal.enqueue("c1", [make_draft(a) for a in people(40)])
    with SmtpServer(starttls=True, auth=("me@example.org", "pw")) as server:
        summary = run(journal, server, concurrency=4)
        received = server.received
    assert sorted(server.recipients()) == people(40)
    assert summary.sent == 40 and summary.complete and summary.stopped == ""
    assert summary.counts[State.SENT] == 40
    assert server.logins == 4 and server.connections == 4
    ids = {r.recipient: r.message_id for r in journal.rows("c1")}
    for msg in received:
        parsed = message_from_bytes(msg.data)
        assert msg.message_id == ids[msg.rcpt_tos[0]]
        assert parsed["Date"]  # added at send time
        assert msg.mail_from == "me@example.org"


def test_rerun_sends_nothing_again(journal: Journal) -> None:
    journal.enqueue("c1", [make_draft(a) for a in people(5)])
    with SmtpServer() as server:
        run(journal, server)
        journal.enqueue("c1", [make_draft(a) for a in people(5)])  # the same list again
        summary = run(journal, server)
        assert summary.sent == 0
        assert sorted(server.recipients()) == people(5)
        assert server.connections == 1  # the rerun did not even connect


def test_auth_failure_marks_nobody(journal: Journal) -> None:
    journal.enqueue("c1", [make_draft(a) for a in people(6)])
    with SmtpServer(starttls=True, auth=("me@example.org", "pw")) as server:
        settings = server.settings(password="wrong")
        with pytest.raises(AuthError):
            asyncio.run(send_campaign(journal, "c1", settings, limiter=RateLimiter(),
                                      concurrency=3, tls_context=server.client_tls()))
        assert server.received == []
    counts = journal.counts("c1")
    assert counts[State.QUEUED] == 6
    assert sum(counts.values()) == 6
    assert all(r.attempts == 0 for r in journal.rows("c1"))


def test_a_wrong_password_is_tried_once_over_eight_connections(journal: Journal) -> None:
    """The other seven sessions open beside the first login, but never send AUTH."""
    journal.enqueue("c1", [make_draft(a) for a in people(20)])
    with SmtpServer(starttls=True, auth=("me@example.org", "pw")) as server:
        settings = server.settings(password="wrong")
        with pytest.raises(AuthError):
            asyncio.run(send_campaign(journal, "c1", settings, limiter=RateLimiter(),
                                      concurrency=8, tls_context=server.client_tls()))
        assert server.auth_attempts == 1 and server.logins == 0
        assert server.received == []
    assert journal.counts("c1")[State.QUEUED] == 20


def test_eight_sessions_open_together_and_log_in_after_the_first(journal: Journal) -> None:
    """The server greets nobody until all eight have said EHLO: the others' sessions
    open while the first logs in (before, they waited for its login), and no AUTH
    comes before the first login has succeeded."""
    journal.enqueue("c1", [make_draft(a) for a in people(40)])
    with SmtpServer(starttls=True, auth=("me@example.org", "pw"), greeted_together=8) as server:
        summary = run(journal, server, concurrency=8)
        events = server.events
        assert server.auth_attempts == 8 and server.logins == 8
    assert events.index("auth") >= 8  # every session greeted before the first AUTH
    assert summary.sent == 40 and summary.logins == 8
    assert sorted(server.recipients()) == people(40)  # everyone, once


def test_rate_limit_holds_over_every_window(journal: Journal) -> None:
    """The run's admissions, on an injected clock, are evenly paced: 3 per 10 s
    is one every 3.33 s, never more than 3 in any 10 s."""
    journal.enqueue("c1", [make_draft(a) for a in people(10)])
    clock = FakeClock()
    admitted: list[float] = []

    class Recording(RateLimiter):
        async def acquire(self) -> int:
            slot = await super().acquire()
            admitted.append(clock())
            return slot

        def refund(self, slot: int) -> None:  # a slot taken when nothing was left to send
            super().refund(slot)
            admitted.pop()

    limiter = Recording([Rate(3, 10.0)], clock=clock, sleep=clock.sleep)
    with SmtpServer() as server:
        summary = run(journal, server, limiter=limiter, concurrency=3)
        assert sorted(server.recipients()) == people(10)
    assert summary.sent == 10
    assert len(admitted) == 10
    assert max_in_window(admitted, 10.0) <= 3
    assert min(b - a for a, b in pairwise(admitted)) >= 10.0 / 3 - 1e-9
    assert clock.now - 1_000_000.0 >= 30.0  # 10 messages, one every 3.33 s


def test_limiter_counts_what_was_sent_earlier_today(journal: Journal) -> None:
    journal.enqueue("c1", [make_draft(a) for a in people(3)])
    with SmtpServer() as server:
        run(journal, server)
    limiter = make_limiter(journal, (Rate(3, 86400.0),))
    assert limiter.wait_time() > 86000


def test_error_budget_pauses_the_run(journal: Journal) -> None:
    addresses = people(8)
    journal.enqueue("c1", [make_draft(a) for a in addresses])
    with SmtpServer() as server:
        for address in addresses[:5]:
            server.fault(address, Fault(reply="550 5.7.1 Sending blocked"))
        summary = run(journal, server, error_budget=3)
        assert server.received == []
    assert summary.stopped.startswith("paused after 3 failures in a row")
    assert summary.counts[State.FAILED] == 3
    assert summary.counts[State.QUEUED] == 5
    assert not summary.complete


def test_progress_reports_every_outcome(journal: Journal) -> None:
    journal.enqueue("c1", [make_draft(a) for a in people(5)])
    seen: list[Progress] = []
    with SmtpServer() as server:
        server.fault("p001@example.com", Fault(reply="550 5.1.1 No such user"))
        run(journal, server, progress=seen.append)
    assert [(p.sent, p.failed, p.remaining) for p in seen][-1] == (4, 1, 0)
    assert [p.remaining for p in seen] == [4, 3, 2, 1, 0]
    assert seen[0].rate == "no limit"


def test_smtputf8_recipient_fails_clearly_when_the_server_lacks_it(journal: Journal) -> None:
    journal.enqueue("c1", [make_draft("jürgen@example.com"), make_draft("anna@example.com")])
    with SmtpServer(smtputf8=False) as server:
        summary = run(journal, server)
        assert server.recipients() == ["anna@example.com"]
    assert summary.counts[State.FAILED] == 1
    failed = next(journal.rows("c1", [State.FAILED]))
    assert "needs SMTPUTF8" in failed.last_reply


def test_nothing_queued_does_not_connect(journal: Journal) -> None:
    with SmtpServer() as server:
        summary = run(journal, server)
        assert server.connections == 0
    assert summary.sent == 0 and summary.complete


def test_the_journal_never_holds_the_password(journal: Journal, tmp_path: Path) -> None:
    secret = "pw-Secret-7f3a"
    journal.enqueue("c1", [make_draft(a) for a in people(3)])
    with SmtpServer(starttls=True, auth=("me@example.org", secret)) as server:
        summary = run(journal, server)
    assert summary.sent == 3
    for path in tmp_path.glob("journal.sqlite3*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes()
