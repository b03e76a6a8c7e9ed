"""The fault suite: every failure the server and the network can produce, against
a real aiosmtpd; every recipient ends in exactly one state, nobody gets two copies."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from mailer.journal import Journal
from mailer.models import State
from mailer.smtp.pace import RateLimiter
from mailer.smtp.sender import RetryPolicy, SendSummary, send_campaign
from tests.smtpd import Fault, SmtpServer, make_draft

FAST = RetryPolicy(attempts=3, base=0.02, cap=0.1)


@pytest.fixture(params=[False, True], ids=["one-by-one", "pipelined"])
def pipelining(request: pytest.FixtureRequest) -> bool:
    """Every fault, against a server with PIPELINING and one without."""
    return bool(request.param)


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    with Journal(tmp_path / "journal.sqlite3") as j:
        yield j


def send(journal: Journal, server: SmtpServer, *, concurrency: int = 1,
         timeout: float = 5.0) -> SendSummary:
    return asyncio.run(send_campaign(
        journal, "c1", server.settings(timeout=timeout), limiter=RateLimiter(),
        concurrency=concurrency, tls_context=server.client_tls(), retry=FAST,
    ))


def states(journal: Journal) -> dict[str, State]:
    return {r.recipient: r.state for r in journal.rows("c1")}


@pytest.mark.parametrize("code", [421, 450, 451, 452])
@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_a_temporary_reply_is_retried_and_delivered_once(
    journal: Journal, pipelining: bool, code: int, stage: str
) -> None:
    journal.enqueue("c1", [make_draft(f"{n}@example.com") for n in ("a", "b", "c")])
    with SmtpServer(pipelining=pipelining) as server:
        server.fault("b@example.com", Fault(reply=f"{code} 4.3.0 busy", stage=stage, times=1))
        summary = send(journal, server)
        assert sorted(server.recipients()) == ["a@example.com", "b@example.com", "c@example.com"]
        if code == 421:  # 421 closes the connection: the retry came on a new one
            assert server.connections == 2
    assert summary.complete
    row = next(r for r in journal.rows("c1") if r.recipient == "b@example.com")
    assert (row.state, row.attempts) == (State.SENT, 2)


@pytest.mark.parametrize("code", [550, 554])
@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_a_permanent_reply_fails_with_the_reply_kept(
    journal: Journal, pipelining: bool, code: int, stage: str
) -> None:
    journal.enqueue("c1", [make_draft(f"{n}@example.com") for n in ("a", "b")])
    with SmtpServer(pipelining=pipelining) as server:
        server.fault("a@example.com", Fault(reply=f"{code} 5.1.1 mailbox unavailable",
                                            stage=stage))
        summary = send(journal, server)
        assert server.recipients() == ["b@example.com"]
    row = next(journal.rows("c1", [State.FAILED]))
    assert (row.recipient, row.last_code, row.last_reply, row.attempts) == (
        "a@example.com", code, "5.1.1 mailbox unavailable", 1)
    assert summary.failed == 1 and not summary.complete


def test_a_recipient_always_deferred_is_left_deferred_after_the_retries(
    journal: Journal, pipelining: bool
) -> None:
    journal.enqueue("c1", [make_draft("a@example.com")])
    with SmtpServer(pipelining=pipelining) as server:
        server.fault("a@example.com", Fault(reply="451 4.7.1 Greylisted"))
        summary = send(journal, server)
        assert server.received == []
    row = next(journal.rows("c1"))
    assert (row.state, row.attempts, row.last_code, row.last_reply) == (
        State.DEFERRED, FAST.attempts, 451, "4.7.1 Greylisted")
    assert summary.deferred == 1 and not summary.complete


@pytest.mark.parametrize("stage", ["mail", "rcpt", "354", "body"])
def test_a_drop_before_the_final_dot_is_retried_and_delivered_once(
    journal: Journal, pipelining: bool, stage: str
) -> None:
    """Nothing can have been delivered: deferred, retried on a new connection,
    one copy in the end.  (8 MB bodies: the drop inside DATA must come while
    mailer is still writing; see test_transport.)"""
    big = (b"x" * 70 + b"\r\n") * (8_000_000 // 72)
    drafts = [make_draft(f"{n}@example.com") for n in ("a", "b", "c")]
    journal.enqueue("c1", [replace(d, payload=d.payload + big) for d in drafts])
    with SmtpServer(starttls=True, auth=("u", "p"), pipelining=pipelining,
                    recv_buffer=65536) as server:
        faulty = "me@example.org" if stage == "mail" else "b@example.com"  # MAIL: the sender
        server.fault(faulty, Fault(action="drop", stage=stage, times=1))
        summary = send(journal, server)
        copies = Counter(server.recipients())
    assert copies == Counter({"a@example.com": 1, "b@example.com": 1, "c@example.com": 1})
    assert summary.complete and summary.unknown == 0
    attempts = sorted(r.attempts for r in journal.rows("c1"))
    # a MAIL refused on a connection already open is taken for an idle close and
    # retried at once on a new one; the other drops cost the recipient an attempt
    assert attempts == ([1, 1, 1] if stage == "mail" else [1, 1, 2])
    assert server.logins == 2


@pytest.mark.parametrize("delivered", [True, False])
@pytest.mark.parametrize("action", ["drop", "stall"])
def test_no_reply_after_the_final_dot_is_unknown_and_never_sent_again(
    journal: Journal, pipelining: bool, action: str, delivered: bool
) -> None:
    """After the final dot, silence (closed, or nothing within the data timeout)
    is `unknown`, whether or not the server in fact kept the message: the client
    cannot tell, and a second copy is worse than a question."""
    journal.enqueue("c1", [make_draft(f"{n}@example.com") for n in ("a", "b", "c")])
    with SmtpServer(starttls=True, auth=("u", "p"), pipelining=pipelining,
                    stall_seconds=1.5) as server:
        server.fault("b@example.com", Fault(action=action, stage="data", times=1,
                                            delivered=delivered))
        summary = send(journal, server, timeout=0.5)
        again = send(journal, server, timeout=0.5)  # a rerun: nothing left to send
        copies = Counter(server.recipients())
    assert copies["b@example.com"] == int(delivered)
    assert copies["a@example.com"] == copies["c@example.com"] == 1
    row = next(r for r in journal.rows("c1") if r.recipient == "b@example.com")
    assert (row.state, row.attempts) == (State.UNKNOWN, 1)
    assert "may have been delivered" in row.last_reply
    assert (summary.sent, summary.unknown, summary.deferred) == (2, 1, 0)
    assert not summary.complete
    assert (again.sent, again.logins) == (0, 0)


def test_mixed_faults_over_k_connections(journal: Journal, pipelining: bool) -> None:
    addresses = [f"m{i:02d}@example.org" for i in range(30)]
    journal.enqueue("c1", [make_draft(a) for a in addresses])
    temporary = {addresses[1]: "421 4.7.0 slow down", addresses[2]: "450 4.2.1 busy",
                 addresses[3]: "451 4.3.0 local error", addresses[4]: "452 4.3.1 full"}
    permanent = {addresses[5]: "550 5.1.1 unknown user", addresses[6]: "554 5.7.1 rejected"}
    with SmtpServer(starttls=True, auth=("u", "p"), pipelining=pipelining, close_after=4,
                    stall_seconds=1.5) as server:
        for address, reply in temporary.items():
            server.fault(address, Fault(reply=reply, times=1))
        for address, reply in permanent.items():
            server.fault(address, Fault(reply=reply, stage="data"))
        server.fault(addresses[7], Fault(action="drop", stage="rcpt", times=1))
        server.fault(addresses[8], Fault(action="stall", stage="data", times=1, delivered=True))
        server.fault(addresses[9], Fault(reply="452 4.2.2 over quota"))  # never clears
        summary = send(journal, server, concurrency=3, timeout=0.5)
        delivered = Counter(server.recipients())
    assert max(delivered.values()) == 1
    final = states(journal)
    assert set(final) == set(addresses)
    assert {a for a, s in final.items() if s is State.FAILED} == set(permanent)
    assert {a for a, s in final.items() if s is State.DEFERRED} == {addresses[9]}
    assert {a for a, s in final.items() if s is State.UNKNOWN} == {addresses[8]}
    sent = {a for a, s in final.items() if s is State.SENT}
    assert sent | {addresses[8]} == set(delivered)
    assert sent == set(addresses) - set(permanent) - {addresses[8], addresses[9]}
    assert summary.sent == len(sent)
    for row in journal.rows("c1", [State.FAILED]):
        assert f"{row.last_code} {row.last_reply}" == permanent[row.recipient]
