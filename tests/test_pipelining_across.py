"""Pipelining across messages (issue 25): the final dot of one message in the same
write as MAIL, RCPT and DATA of the next, their replies read in order.  The whole
send loop against a real aiosmtpd that offers PIPELINING: every reply, and every
silence, at the seam between two messages ends in the journal state the rules
give; nobody is mailed twice, nobody is lost.

The rules do not change with the timing, so every test here passes with the
exchange of today too (the next MAIL waits for the dot's reply), except those
named `test_feature_*`: they check that the next message's commands really go
out with the dot, and what only holds once they do (a message counts as gone
out only from its 354 on, so a crash before that leaves it `queued`).

Message n is `q1` and n+1 `q2` where a test says nothing else: `q0` opens the
connection, so q1's dot is the first that has a message pipelined behind it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from mailer.errors import AuthError
from mailer.journal import Journal, Row
from mailer.models import State
from mailer.smtp.pace import Rate, RateLimiter
from mailer.smtp.sender import RetryPolicy, SendSummary, send_campaign
from tests.smtpd import Fault, SmtpServer, make_draft
from tests.test_kill_resume import DRIVER

FAST = RetryPolicy(attempts=3, base=0.02, cap=0.1)
SENDER = "me@example.org"
OTHER = "other@example.org"  # n+1's sender, where a MAIL fault must hit n+1 alone
PROJECT = Path(__file__).resolve().parents[1]


def people(n: int) -> list[str]:
    return [f"q{i}@example.com" for i in range(n)]


def enqueue(journal: Journal, addresses: list[str], senders: dict[str, str] | None = None
            ) -> None:
    senders = senders or {}
    journal.enqueue("c1", [make_draft(a, sender=senders.get(a, SENDER)) for a in addresses])


def send(journal: Journal, server: SmtpServer, *, concurrency: int = 1,
         limiter: RateLimiter | None = None, **kwargs: Any) -> SendSummary:
    """Time-outs of 0.5 s for every reply, the final dot's too: silence is found out
    fast (the servers' stalls last longer), a reply under load still comes in time."""
    return asyncio.run(send_campaign(
        journal, "c1", server.settings(timeout=0.5, data_timeout=0.5),
        limiter=limiter or RateLimiter(), concurrency=concurrency,
        tls_context=server.client_tls(), retry=FAST, **kwargs,
    ))


def rows(journal: Journal) -> dict[str, Row]:
    return {r.recipient: r for r in journal.rows("c1")}


def untouched(row: Row) -> bool:
    """Back in the queue as if never tried: nothing of it went out."""
    return (row.state, row.attempts, row.last_code, row.last_reply) == (
        State.QUEUED, 0, None, "")


def connection_of(server: SmtpServer) -> dict[str, int]:
    return {m.rcpt_tos[0]: m.connection for m in server.received}


# -- the seam is used, and only where PIPELINING is offered ------------------------------

def test_a_server_without_pipelining_never_gets_a_mail_before_the_dot_is_answered(
    journal: Journal
) -> None:
    enqueue(journal, people(6))
    with SmtpServer(starttls=True, auth=("u", "p"), data_delay=0.02) as server:
        summary = send(journal, server, concurrency=2)
        assert (server.after_dot, server.pipelined) == (0, 0)
        assert sorted(server.recipients()) == people(6)
    assert summary.sent == 6 and summary.complete


@pytest.mark.parametrize("concurrency", [1, 3])
def test_feature_the_next_mail_goes_out_with_the_final_dot(
    journal: Journal, concurrency: int
) -> None:
    """Every message but the first of each connection came in the same write as
    the final dot before it (`data_delay`: the whole write is in before the dot
    is answered): one round trip a message."""
    enqueue(journal, people(9))
    with SmtpServer(starttls=True, auth=("u", "p"), pipelining=True, data_delay=0.02) as server:
        summary = send(journal, server, concurrency=concurrency)
        assert sorted(server.recipients()) == people(9)
        # (under load a connection may log in after the others have sent everything)
        assert 1 <= server.connections <= concurrency
        assert server.after_dot == 9 - server.connections
    assert summary.sent == 9 and summary.complete


# -- the test server itself: its faults hold when the commands come behind a dot ---------

class Raw:
    """A bare SMTP client that writes exactly the bytes it is given, so that the
    server's faults can be checked with MAIL, RCPT and DATA behind a final dot."""

    def __init__(self, server: SmtpServer) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=0.5)
        self.file = self.sock.makefile("rb")
        assert self.replies(1) == ["220"]
        assert self.write(b"EHLO raw.example.org\r\n", 1) == ["250"]

    def write(self, data: bytes, replies: int) -> list[str]:
        self.sock.sendall(data)
        return self.replies(replies)

    def replies(self, count: int) -> list[str]:
        """The codes of the next `count` replies; "closed" or "silent" ends the list."""
        codes: list[str] = []
        while len(codes) < count:
            try:
                line = self.file.readline()
            except TimeoutError:
                return [*codes, "silent"]
            if not line:
                return [*codes, "closed"]
            if line[3:4] != b"-":
                codes.append(line[:3].decode())
        return codes

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def content(name: str) -> bytes:
    return f"Subject: {name}\r\n\r\nHello {name}.\r\n".encode()


SEAM = (content("a") + b".\r\nMAIL FROM:<" + OTHER.encode() + b">\r\n"
        b"RCPT TO:<b@example.com>\r\nDATA\r\n")


@pytest.mark.parametrize(
    ("where", "fault", "seam", "rest"),
    [
        ("", {}, ["250", "250", "250", "354"], ["250"]),
        (OTHER, {"reply": "451 4.3.0 busy", "stage": "mail"}, ["250", "451", "503", "503"], []),
        ("b", {"reply": "550 5.1.1 no such user"}, ["250", "250", "550", "503"], []),
        ("b", {"reply": "554 5.7.1 no", "stage": "354"}, ["250", "250", "250", "554"], []),
        ("b", {"reply": "552 5.3.4 too big", "stage": "data"}, ["250", "250", "250", "354"],
         ["552"]),
        ("a", {"reply": "421 4.7.0 bye", "stage": "data", "action": "close"},
         ["421", "closed"], None),
        (OTHER, {"reply": "421 4.7.0 bye", "stage": "mail", "action": "close"},
         ["250", "421", "closed"], None),
        ("b", {"reply": "421 4.7.0 bye", "action": "close"}, ["250", "250", "421", "closed"],
         None),
        ("b", {"reply": "421 4.7.0 bye", "stage": "354", "action": "close"},
         ["250", "250", "250", "421", "closed"], None),
        ("a", {"action": "drop", "stage": "data"}, ["closed"], None),
        (OTHER, {"action": "drop", "stage": "mail"}, ["250", "closed"], None),
        ("b", {"action": "drop"}, ["250", "250", "closed"], None),
        ("b", {"action": "drop", "stage": "354"}, ["250", "250", "250", "354", "closed"], None),
        ("b", {"action": "drop", "stage": "body", "body_bytes": 10},
         ["250", "250", "250", "354"], ["closed"]),
        ("a", {"action": "stall", "stage": "data"}, ["silent"], None),
    ],
)
def test_the_servers_faults_hold_behind_a_final_dot(
    where: str, fault: dict[str, Any], seam: list[str], rest: list[str] | None
) -> None:
    """a's dot and b's MAIL, RCPT, DATA in one write: the replies the faults give.
    `rest`: b's content and dot, when the seam left the connection up."""
    address = where if where in ("", OTHER) else f"{where}@example.com"
    with SmtpServer(pipelining=True, stall_seconds=1.0) as server:
        if address:
            server.fault(address, Fault(**fault))
        raw = Raw(server)
        try:
            first = b"MAIL FROM:<" + SENDER.encode() + b">\r\nRCPT TO:<a@example.com>\r\nDATA\r\n"
            assert raw.write(first, 3) == ["250", "250", "354"]
            assert raw.write(SEAM, len(seam)) == seam
            if rest is not None and seam[-1] == "354":
                assert raw.write(content("b") + b".\r\n", 1) == rest
        finally:
            raw.close()
        kept = server.recipients()
        assert server.after_dot == 1  # b's MAIL was in before a's dot was answered
    delivered_a = not (where == "a" and fault.get("action") in ("close", "drop", "stall"))
    assert kept == ["a@example.com"] * delivered_a + ["b@example.com"] * (rest == ["250"])


def test_a_flush_dot_server_throws_away_what_came_with_the_dot() -> None:
    with SmtpServer(pipelining="flush-dot") as server:
        raw = Raw(server)
        try:
            first = b"MAIL FROM:<" + SENDER.encode() + b">\r\nRCPT TO:<a@example.com>\r\nDATA\r\n"
            assert raw.write(first, 3) == ["250", "250", "354"]
            assert raw.write(SEAM, 4) == ["250", "silent"]
        finally:
            raw.close()
        assert (server.flushed, server.after_dot) == (1, 1)
        assert server.recipients() == ["a@example.com"]


# -- the dot of n answered while n+1's commands wait behind it ---------------------------

@pytest.mark.parametrize(
    ("fault", "state", "attempts"),
    [({"reply": "451 4.3.0 later", "times": 1}, State.SENT, 2),
     ({"reply": "554 5.7.1 content refused"}, State.FAILED, 1),
     ({"reply": "421 4.7.0 closing", "action": "close", "times": 1}, State.SENT, 2)],
    ids=["4xx", "5xx", "421-close"],
)
def test_the_reply_to_the_dot_is_ns_and_the_message_behind_it_goes_once(
    journal: Journal, fault: dict[str, Any], state: State, attempts: int
) -> None:
    everyone = people(4)
    enqueue(journal, everyone)
    with SmtpServer(starttls=True, auth=("u", "p"), pipelining=True) as server:
        server.fault(everyone[1], Fault(stage="data", **fault))
        summary = send(journal, server)
        copies = Counter(server.recipients())
        where = connection_of(server)
        connections = server.connections
    final = rows(journal)
    n = final.pop(everyone[1])
    assert (n.state, n.attempts) == (state, attempts)
    if state is State.FAILED:
        assert (n.last_code, n.last_reply) == (554, "5.7.1 content refused")
    # n+1 and the rest: sent once each, nothing of them counted against them
    assert all((r.state, r.attempts) == (State.SENT, 1) for r in final.values())
    assert copies == Counter(everyone[:1] + everyone[2:] + [everyone[1]] * (state is State.SENT))
    if "close" in fault.values():  # n+1 went on the next connection, with n's retry
        assert connections == 2
        assert where[everyone[2]] == where[everyone[1]] == where[everyone[0]] + 1
    assert summary.sent == len(final) + (state is State.SENT)


@pytest.mark.parametrize("delivered", [True, False])
@pytest.mark.parametrize("action", ["drop", "stall"])
def test_no_reply_to_the_dot_n_is_unknown_and_the_message_behind_it_goes_once(
    journal: Journal, action: str, delivered: bool
) -> None:
    """Closed, or silent past the data timeout, after n's final dot: n may have
    been delivered (`unknown`, never again); n+1, whose commands were written
    behind that dot, had nothing of its content sent: it goes once, on the next
    connection, untouched by n's fate."""
    everyone = people(4)
    enqueue(journal, everyone)
    with SmtpServer(starttls=True, auth=("u", "p"), pipelining=True,
                    stall_seconds=1.0) as server:
        server.fault(everyone[1], Fault(action=action, stage="data", times=1,
                                        delivered=delivered))
        summary = send(journal, server)
        again = send(journal, server)
        copies = Counter(server.recipients())
        where = connection_of(server)
    final = rows(journal)
    n = final.pop(everyone[1])
    assert (n.state, n.attempts) == (State.UNKNOWN, 1)
    assert all((r.state, r.attempts) == (State.SENT, 1) for r in final.values())
    assert copies == Counter(everyone[:1] + everyone[2:] + [everyone[1]] * delivered)
    assert where[everyone[2]] == where[everyone[0]] + 1
    assert (summary.sent, summary.unknown) == (3, 1)
    assert (again.sent, again.logins) == (0, 0)


# -- n+1's own commands refused or cut off, right after n's dot was answered ------------

@pytest.mark.parametrize(
    ("stage", "fault", "state", "attempts"),
    [
        ("mail", {"reply": "451 4.3.0 sender busy", "times": 1}, State.SENT, 2),
        ("mail", {"reply": "451 4.3.0 sender busy"}, State.DEFERRED, FAST.attempts),
        ("mail", {"reply": "550 5.7.1 sender refused"}, State.FAILED, 1),
        # a 421 to MAIL or a close on it is taken for the connection's end: again at once
        ("mail", {"reply": "421 4.7.0 closing", "action": "close", "times": 1}, State.SENT, 1),
        ("mail", {"action": "drop", "times": 1}, State.SENT, 1),
        ("rcpt", {"reply": "452 4.2.2 over quota", "times": 1}, State.SENT, 2),
        ("rcpt", {"reply": "452 4.2.2 over quota"}, State.DEFERRED, FAST.attempts),
        ("rcpt", {"reply": "550 5.1.1 no such user"}, State.FAILED, 1),
        ("rcpt", {"reply": "421 4.7.0 closing", "action": "close", "times": 1}, State.SENT, 2),
        ("rcpt", {"action": "drop", "times": 1}, State.SENT, 2),
        ("354", {"reply": "451 4.3.0 not now", "times": 1}, State.SENT, 2),
        ("354", {"reply": "451 4.3.0 not now"}, State.DEFERRED, FAST.attempts),
        ("354", {"reply": "554 5.7.1 no data for you"}, State.FAILED, 1),
        ("354", {"reply": "421 4.7.0 closing", "action": "close", "times": 1}, State.SENT, 2),
    ],
)
def test_the_message_behind_the_dot_refused_or_cut_off_ends_as_the_rules_say(
    journal: Journal, stage: str, fault: dict[str, Any], state: State, attempts: int
) -> None:
    """n is sent (its dot was answered 250); n+1's MAIL, RCPT or DATA refused, or
    the connection closed on it, gives n+1 today's outcome: retried, deferred
    after the last try, or failed with the reply kept.  Nobody twice."""
    everyone = people(4)
    enqueue(journal, everyone, {everyone[2]: OTHER})  # a MAIL fault is keyed by the sender
    with SmtpServer(starttls=True, auth=("u", "p"), pipelining=True) as server:
        server.fault(OTHER if stage == "mail" else everyone[2], Fault(stage=stage, **fault))
        summary = send(journal, server)
        copies = Counter(server.recipients())
    final = rows(journal)
    after = final.pop(everyone[2])
    assert (after.state, after.attempts) == (state, attempts)
    if state is not State.SENT:
        assert f"{after.last_code} {after.last_reply}" == fault["reply"]
    assert all((r.state, r.attempts) == (State.SENT, 1) for r in final.values())
    assert copies == Counter([*final] + [everyone[2]] * (state is State.SENT))
    assert summary.sent == len(final) + (state is State.SENT)


# -- what arrives is what was queued, and a queue fed while sending ----------------------

def test_every_message_arrives_byte_for_byte_when_the_next_one_rides_with_its_dot(
    journal: Journal
) -> None:
    """Lines that are a dot, start with one, or end the content right before the
    final dot (stuffed, then the dot and the next MAIL in one write): the server
    keeps exactly the queued payload, behind its Date."""
    tails = [b"", b".\r\n", b"..\r\n.hidden\r\n", b"x\r\n.\r\n.\r\n", b".\r\n"]
    drafts = [make_draft(a) for a in people(len(tails))]
    drafts = [replace(d, payload=d.payload + tail) for d, tail in zip(drafts, tails, strict=True)]
    journal.enqueue("c1", drafts)
    with SmtpServer(starttls=True, auth=("u", "p"), pipelining=True, data_delay=0.02) as server:
        send(journal, server)
        received = {m.rcpt_tos[0]: m.data for m in server.received}
    for draft in drafts:
        date, _, rest = received[draft.recipient].partition(b"\r\n")
        assert date.startswith(b"Date: ") and rest == draft.payload


@pytest.mark.parametrize("batch", [1, 3])
def test_a_queue_fed_while_sending_is_sent_once_each(journal: Journal, batch: int) -> None:
    """The next row may not be queued yet when a dot goes out (the feed renders
    while the server answers): nobody is missed, nobody twice."""
    everyone = people(10)
    drafts = [make_draft(a) for a in everyone]
    batches = [drafts[i:i + batch] for i in range(0, len(drafts), batch)]
    with SmtpServer(starttls=True, auth=("u", "p"), pipelining=True) as server:
        summary = send(journal, server, concurrency=2, feed=iter(batches))
        copies = Counter(server.recipients())
    assert copies == Counter(everyone)
    assert summary.sent == len(everyone) and summary.fed == len(everyone) and summary.complete
    assert all((r.state, r.attempts) == (State.SENT, 1) for r in rows(journal).values())


# -- the run stops at n, or n+1 cannot go at all ---------------------------------------

def budget_spent(journal: Journal) -> tuple[list[str], SendSummary, dict[str, Row], Counter[str]]:
    """q1 and q2 refused at the dot with an error budget of 2: the run pauses at
    q2's refusal, when q3's commands may be behind q2's dot already."""
    everyone = people(6)
    enqueue(journal, everyone)
    with SmtpServer(starttls=True, auth=("u", "p"), pipelining=True) as server:
        for address in everyone[1:3]:
            server.fault(address, Fault(reply="554 5.7.1 blocked", stage="data"))
        summary = send(journal, server, error_budget=2)
        copies = Counter(server.recipients())
    return everyone, summary, rows(journal), copies


def test_the_error_budget_spent_at_ns_dot_pauses_the_run_and_sends_nobody_twice(
    journal: Journal
) -> None:
    everyone, summary, final, copies = budget_spent(journal)
    assert summary.stopped and summary.failed == 2
    assert [final[a].state for a in everyone[:3]] == [State.SENT, State.FAILED, State.FAILED]
    sent = {a for a, r in final.items() if (r.state, r.attempts) == (State.SENT, 1)}
    assert all(untouched(final[a]) for a in everyone[3:] if a not in sent)
    assert copies == Counter(sent)
    assert len(sent) <= 2  # q0, and at most the one begun behind q2's dot


def test_the_error_budget_spent_at_ns_dot_gives_the_next_message_back_untouched(
    journal: Journal
) -> None:
    """q3, whose commands went behind q2's refused dot, is queued as never tried:
    the run paused with q2, and nothing is sent after the pause."""
    everyone, _, final, copies = budget_spent(journal)
    assert copies == Counter(everyone[:1])
    assert all(untouched(final[a]) for a in everyone[3:])


def test_a_login_demanded_behind_a_dot_stops_the_run_and_marks_nobody(journal: Journal) -> None:
    """530 to n+1's RCPT is about the account, not the recipient: the run stops
    with the account error, n stays sent, n+1 and the rest are untouched."""
    everyone = people(5)
    enqueue(journal, everyone)
    with SmtpServer(starttls=True, auth=("u", "p"), pipelining=True) as server:
        server.fault(everyone[2], Fault(reply="530 5.7.0 Authentication required"))
        with pytest.raises(AuthError):
            send(journal, server)
        assert server.recipients() == everyone[:2]
    final = rows(journal)
    assert all((final[a].state, final[a].attempts) == (State.SENT, 1) for a in everyone[:2])
    assert all(untouched(final[a]) for a in everyone[2:])


def test_a_message_that_needs_smtputf8_is_not_pipelined_to_a_server_without_it(
    journal: Journal
) -> None:
    """It fails with mailer's own 553 (RFC 6531: never sent to a server without
    SMTPUTF8, behind a dot or not); the ones around it go on."""
    everyone = ["q0@example.com", "q1@example.com", "jürgen@example.com", "q3@example.com"]
    enqueue(journal, everyone)
    with SmtpServer(starttls=True, auth=("u", "p"), pipelining=True, smtputf8=False) as server:
        summary = send(journal, server)
        assert server.recipients() == [a for a in everyone if a.isascii()]
    final = rows(journal)
    assert (final[everyone[2]].state, final[everyone[2]].last_code) == (State.FAILED, 553)
    assert "SMTPUTF8" in final[everyone[2]].last_reply
    assert summary.sent == 3 and summary.failed == 1


# -- all of it at once, over several connections -----------------------------------------

@pytest.mark.parametrize("concurrency", [2, 3])
def test_mixed_seam_faults_over_k_connections(journal: Journal, concurrency: int) -> None:
    everyone = [f"m{i:02d}@example.org" for i in range(24)]
    senders = {everyone[i]: f"sender{i}@example.org" for i in (4, 5, 11)}
    enqueue(journal, everyone, senders)
    with SmtpServer(starttls=True, auth=("u", "p"), pipelining=True, close_after=5,
                    stall_seconds=1.0) as server:
        close: dict[str, Any] = {"reply": "421 4.7.0 closing", "action": "close", "times": 1}
        server.fault(everyone[1], Fault(stage="data", **close))
        server.fault(everyone[2], Fault(reply="451 4.3.0 later", stage="data", times=1))
        server.fault(everyone[3], Fault(reply="554 5.7.1 content refused", stage="data"))
        server.fault(senders[everyone[4]], Fault(reply="451 4.3.0 busy", stage="mail", times=1))
        server.fault(senders[everyone[5]], Fault(reply="550 5.7.1 refused", stage="mail"))
        server.fault(everyone[6], Fault(stage="rcpt", **close))
        server.fault(everyone[7], Fault(reply="554 5.7.1 no", stage="354"))
        server.fault(everyone[8], Fault(reply="451 4.3.0 not now", stage="354"))  # never clears
        server.fault(everyone[9], Fault(action="drop", stage="data", times=1, delivered=True))
        server.fault(everyone[10], Fault(action="stall", stage="data", times=1))
        server.fault(senders[everyone[11]], Fault(action="drop", stage="mail", times=1))
        server.fault(everyone[12], Fault(action="drop", stage="rcpt", times=1))
        summary = send(journal, server, concurrency=concurrency)
        copies = Counter(server.recipients())
    final = {a: r.state for a, r in rows(journal).items()}
    assert max(copies.values()) == 1
    failed = {everyone[3], everyone[5], everyone[7]}
    unknown = {everyone[9], everyone[10]}
    assert {a for a, s in final.items() if s is State.FAILED} == failed
    assert {a for a, s in final.items() if s is State.DEFERRED} == {everyone[8]}
    assert {a for a, s in final.items() if s is State.UNKNOWN} == unknown
    sent = {a for a, s in final.items() if s is State.SENT}
    assert sent == set(everyone) - failed - unknown - {everyone[8]}
    assert set(copies) == sent | {everyone[9]}  # the one kept before the silence
    assert summary.sent == len(sent)


# -- a server that offers PIPELINING and flushes its input after the dot -----------------

def flush_dot_run(journal: Journal, concurrency: int) -> tuple[SendSummary, Counter[str], int,
                                                                 int, int]:
    enqueue(journal, people(6))
    with SmtpServer(pipelining="flush-dot", data_delay=0.02) as server:
        summary = send(journal, server, concurrency=concurrency)
        return (summary, Counter(server.recipients()), server.flushed, server.after_dot,
                server.connections)


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_server_that_flushes_its_input_after_the_dot_loses_nobody(
    journal: Journal, concurrency: int
) -> None:
    """The next message's commands, thrown away with the dot, get no reply: nothing
    of it went out, so it goes again (untouched: no attempt counted), and the
    connection stops sending commands behind a dot it cannot take."""
    summary, copies, flushed, _, _ = flush_dot_run(journal, concurrency)
    assert copies == Counter(people(6))
    assert all((r.state, r.attempts) == (State.SENT, 1) for r in rows(journal).values())
    assert summary.sent == 6 and summary.complete
    assert flushed <= concurrency  # found out once a connection at most


def test_feature_a_server_that_flushes_after_the_dot_is_found_out_once(
    journal: Journal
) -> None:
    summary, copies, flushed, after_dot, connections = flush_dot_run(journal, 1)
    assert copies == Counter(people(6)) and summary.sent == 6
    assert (flushed, after_dot) == (1, 1)  # tried once; then the next MAIL waits for the reply
    assert connections == 2  # the flushed one went again on a new connection


# -- the pace ------------------------------------------------------------------------------

class Recording(RateLimiter):
    """The limiter's own start times of the slots it handed out (and kept)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.admitted: list[float] = []

    async def acquire(self) -> int:
        slot = await super().acquire()
        self.admitted.append(self._log[-1])
        return slot

    def refund(self, slot: int) -> None:
        taken = self._taken
        super().refund(slot)
        if self._taken != taken:  # given back for real
            self.admitted.pop()


@pytest.mark.parametrize("concurrency", [1, 3])
def test_the_pace_holds_when_messages_are_pipelined(journal: Journal, concurrency: int) -> None:
    """20/s: slots at least 50 ms apart, and no MAIL reaches the server before its
    slot (the k-th MAIL no earlier than the k-th slot): a next message's commands
    may ride with a dot only once the pace lets that message start."""
    enqueue(journal, people(8))
    limiter = Recording([Rate(20, 1.0)], clock=time.monotonic)  # the server's clock
    with SmtpServer(starttls=True, auth=("u", "p"), pipelining=True) as server:
        summary = send(journal, server, concurrency=concurrency, limiter=limiter)
        starts = sorted(m.started for m in server.received)
    assert summary.sent == 8 and len(starts) == 8 and len(limiter.admitted) >= 8
    assert min(b - a for a, b in pairwise(limiter.admitted)) >= 0.05 - 1e-9
    # a slot taken and not used (kept, not refunded) only makes this weaker, never wrong
    assert all(mail >= slot for mail, slot in zip(starts, limiter.admitted, strict=False))


# -- Ctrl-C while the next message's commands are on the wire ---------------------------

def interrupted(journal: Journal, server: SmtpServer, at: str, *, twice: bool,
                concurrency: int) -> tuple[SendSummary, list[int | None]]:
    """Send; when `at`'s final dot has been read, Ctrl-C (twice: again as soon as
    the first is taken), and the server answers that dot only after mailer took
    them: the signal does not race the reply."""
    told: list[int | None] = []
    taken = threading.Event()

    def on_interrupt(in_flight: int | None) -> None:
        told.append(in_flight)
        if twice and in_flight is not None:
            os.kill(os.getpid(), signal.SIGINT)
        else:
            taken.set()

    def ctrl_c() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        assert taken.wait(5)

    server.on(at, "data", ctrl_c)
    summary = send(journal, server, concurrency=concurrency, handle_sigint=True,
                   on_interrupt=on_interrupt)
    return summary, told


def first_ctrl_c(journal: Journal, concurrency: int
                 ) -> tuple[list[str], SendSummary, list[int | None], dict[str, Row],
                            Counter[str]]:
    """Ctrl-C once while q2's dot waits for its reply (q3's commands behind it),
    then a rerun; the states and copies between the two."""
    everyone = people(8)
    enqueue(journal, everyone)
    with SmtpServer(starttls=True, auth=("u", "p"), pipelining=True) as server:
        summary, told = interrupted(journal, server, everyone[2], twice=False,
                                    concurrency=concurrency)
        copies = Counter(server.recipients())
        final = rows(journal)
        campaign = journal.campaign("c1")
        assert campaign is not None and campaign.paused_at is not None
        sent = {a for a, r in final.items() if (r.state, r.attempts) == (State.SENT, 1)}
        rerun = send(journal, server, concurrency=concurrency)
        assert rerun.sent == len(everyone) - len(sent)
        assert Counter(server.recipients()) == Counter(everyone)  # the rest once
    return everyone, summary, told, final, copies


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_first_ctrl_c_finishes_n_and_sends_nobody_twice(
    journal: Journal, concurrency: int
) -> None:
    everyone, summary, told, final, copies = first_ctrl_c(journal, concurrency)
    assert summary.stopped == "interrupted" and len(told) == 1
    sent = {a for a, r in final.items() if (r.state, r.attempts) == (State.SENT, 1)}
    assert everyone[2] in sent
    assert all(untouched(r) for a, r in final.items() if a not in sent)
    assert copies == Counter(sent)


def test_a_first_ctrl_c_gives_the_message_begun_behind_ns_dot_back_untouched(
    journal: Journal
) -> None:
    """One connection: q2 finishes (in flight), q3, whose commands went out behind
    q2's dot, goes back to the queue as never tried: nothing starts its content
    after the user's Ctrl-C."""
    everyone, _, _, final, copies = first_ctrl_c(journal, 1)
    assert copies == Counter(everyone[:3])
    assert all(untouched(final[a]) for a in everyone[3:])


def test_a_first_ctrl_c_counts_only_the_messages_that_will_finish(journal: Journal) -> None:
    """`mailer send` says "Finishing the N message(s) in flight": with one
    connection, waiting for q2's reply, that is q2 alone; q3, claimed and begun
    behind q2's dot, goes back to the queue (counting every claimed row said 2)."""
    _, summary, told, _, _ = first_ctrl_c(journal, 1)
    assert told == [1] and summary.sent == 3


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_second_ctrl_c_leaves_n_unknown_and_the_next_message_untouched(
    journal: Journal, concurrency: int
) -> None:
    """Cancelled while waiting for n's reply: n's dot is out (`unknown`); the
    next message's commands may be out too, but its content is not: queued,
    as if never tried.  Only a message that got its 354 can be unknown."""
    everyone = people(8)
    enqueue(journal, everyone)
    with SmtpServer(starttls=True, auth=("u", "p"), pipelining=True) as server:
        summary, told = interrupted(journal, server, everyone[2], twice=True,
                                    concurrency=concurrency)
        copies = Counter(server.recipients())
        go_aheads = set(server.go_aheads)
        final = rows(journal)
        rerun = send(journal, server, concurrency=concurrency)
        after = Counter(server.recipients())
    assert summary.stopped == "interrupted" and told[-1] is None
    unknown = {a for a, r in final.items() if r.state is State.UNKNOWN}
    sent = {a for a, r in final.items() if (r.state, r.attempts) == (State.SENT, 1)}
    assert everyone[2] in unknown and unknown <= go_aheads
    assert all(untouched(r) for a, r in final.items() if a not in sent | unknown)
    assert sent <= set(copies) <= sent | unknown and max(copies.values()) == 1
    if concurrency == 1:
        assert (sent, unknown) == (set(everyone[:2]), {everyone[2]})
    assert rerun.sent == len(everyone) - len(sent | unknown)
    assert set(after) >= set(everyone) - unknown and max(after.values()) == 1


# -- kill -9 in the middle of a pipelined run ----------------------------------------------

def start(server: SmtpServer, path: Path, n: int, k: int) -> subprocess.Popen[str]:
    """tests/test_kill_resume's sender, in a process of its own (k003@... and so on)."""
    env = {**os.environ, **server.env(), "PYTHONPATH": str(PROJECT)}
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(path), str(n), str(k)],
                            cwd=PROJECT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def kill_and_rerun(tmp_path: Path, n: int, k: int, at: tuple[str, str]
                   ) -> tuple[dict[str, Row], set[str], Counter[str], dict[str, State]]:
    """Run, kill -9 the sender when the server reaches `at` (address, stage), take
    stock (the claims of the dead run turned `unknown`), rerun to the end.
    Returns the rows after the kill, who got a 354, the copies, the final states."""
    path = tmp_path / "journal.sqlite3"
    with SmtpServer(starttls=True, auth=("me@example.org", "pw"), pipelining=True) as server:
        proc = start(server, path, n, k)
        server.on(*at, lambda: os.kill(proc.pid, signal.SIGKILL))
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, err
        with Journal(path) as journal:
            journal.recover()
            killed = rows(journal)
        go_aheads = set(server.go_aheads)
        rerun = start(server, path, n, k)
        _, err = rerun.communicate(timeout=60)
        assert rerun.returncode == 0, err
        copies = Counter(server.recipients())
    with Journal(path) as journal:
        final = {r.recipient: r.state for r in journal.rows("c1")}
    return killed, go_aheads, copies, final


def kept_to_the_rules(n: int, k: int, killed: dict[str, Row], copies: Counter[str],
                      final: dict[str, State]) -> set[str]:
    """At most K unknown after the kill, the rest sent or queued as never tried,
    nobody twice, and the rerun sent the rest once: returns the unknown ones."""
    everyone = {f"k{i:03d}@example.com" for i in range(n)}
    unknown = {a for a, r in killed.items() if r.state is State.UNKNOWN}
    assert set(killed) == everyone and len(unknown) <= k
    sent = {a for a, r in killed.items() if (r.state, r.attempts) == (State.SENT, 1)}
    assert all(untouched(r) for a, r in killed.items() if a not in sent | unknown)
    assert {a for a, s in final.items() if s is State.UNKNOWN} == unknown
    assert {a for a, s in final.items() if s is State.SENT} == everyone - unknown
    assert max(copies.values()) == 1 and set(copies) >= everyone - unknown
    return unknown


@pytest.mark.slow
def test_kill_9_in_a_pipelined_run_then_rerun_sends_the_rest_once(tmp_path: Path) -> None:
    """Killed while the server holds k012's dot (its reply not yet given)."""
    n, k = 30, 3
    killed, _, copies, final = kill_and_rerun(tmp_path, n, k, ("k012@example.com", "data"))
    unknown = kept_to_the_rules(n, k, killed, copies, final)
    assert "k012@example.com" in unknown


@pytest.mark.slow
def test_feature_after_a_kill_9_every_unknown_message_had_its_354(tmp_path: Path) -> None:
    """Three connections, killed wherever the other two are: a row counts as
    gone out only once its 354 came, so every `unknown` one really may have
    been delivered (when any claim counted, one killed before its 354 was too)."""
    n, k = 30, 3
    killed, go_aheads, copies, final = kill_and_rerun(tmp_path, n, k, ("k012@example.com",
                                                                       "data"))
    unknown = kept_to_the_rules(n, k, killed, copies, final)
    assert "k012@example.com" in unknown and unknown <= go_aheads


@pytest.mark.slow
def test_feature_a_kill_before_the_354_leaves_the_message_queued(tmp_path: Path) -> None:
    """Killed when k005's RCPT arrives (behind k004's dot): k005 never got a 354,
    so nothing of it can have been delivered: it is `queued` after the crash,
    not `unknown`.  Every unknown one got its 354."""
    n, k = 10, 1
    killed, go_aheads, copies, final = kill_and_rerun(tmp_path, n, k, ("k005@example.com",
                                                                       "rcpt"))
    unknown = kept_to_the_rules(n, k, killed, copies, final)
    assert untouched(killed["k005@example.com"])
    assert unknown <= go_aheads
    assert copies["k005@example.com"] == 1


# -- two runs of one campaign at once ------------------------------------------------------

def two_runs(tmp_path: Path) -> tuple[list[SendSummary], Counter[str], dict[str, Row], int]:
    """Two runs (two journals on one file) drain one queue of 20 over two
    connections each; returns their summaries, the copies, the rows, the logins."""
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as first, Journal(path) as second:
        enqueue(first, people(20))
        with SmtpServer(starttls=True, auth=("u", "p"), pipelining=True,
                        data_delay=0.005) as server:

            async def both() -> list[SendSummary]:
                return list(await asyncio.gather(*(
                    send_campaign(j, "c1", server.settings(timeout=0.5), limiter=RateLimiter(),
                                  concurrency=2, retry=FAST, tls_context=server.client_tls())
                    for j in (first, second))))

            summaries = asyncio.run(both())
            copies = Counter(server.recipients())
            logins = server.logins
        return summaries, copies, rows(first), logins


def test_two_runs_at_once_mail_nobody_twice(tmp_path: Path) -> None:
    """Every message is claimed, begun and sent by one of the two runs only."""
    summaries, copies, final, _ = two_runs(tmp_path)
    assert copies == Counter(people(20))
    assert sum(s.sent for s in summaries) == 20
    assert all((r.state, r.attempts) == (State.SENT, 1) for r in final.values())


def test_two_runs_at_once_log_in_once_a_connection(tmp_path: Path) -> None:
    """Each run begins only rows it has claimed: were the claim made at the 354
    (the next row only read before), both runs would begin the same rows, and
    the one that lost a claim could only close the connection (no RSET after a
    354) and log in again: 21 logins for these 20 messages instead of 4, and
    logins per message are what providers block accounts for (transport.py)."""
    _, _, _, logins = two_runs(tmp_path)
    assert logins == 4
