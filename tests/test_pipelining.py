"""PIPELINING (RFC 2920) against a real aiosmtpd that offers it: MAIL, RCPT and
DATA in one write, every reply such a group can get, and servers that offer it
without being able to take it."""

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
from mailer.smtp.transport import Connection, Lost, NoFinalReply
from tests.smtpd import Fault, SmtpServer, make_draft

FAST = RetryPolicy(attempts=3, base=0.02, cap=0.1)
SENDER = "me@example.org"


def exchange(conn: Connection, addresses: list[str], extra: bytes = b"") -> list[str]:
    """Each address's reply (or the exception that came instead), on one Connection;
    `extra` is appended to every message's content."""

    async def main() -> list[str]:
        outcomes = []
        for address in addresses:
            draft = make_draft(address)
            try:
                reply = await conn.send(draft.sender, draft.recipient, draft.payload + extra,
                                        smtputf8=draft.smtputf8)
                outcomes.append(str(reply))
            except (Lost, NoFinalReply) as err:
                outcomes.append(type(err).__name__)
        await conn.quit()
        return outcomes

    return asyncio.run(main())


def addresses(n: int) -> list[str]:
    return [f"p{i}@example.com" for i in range(n)]


@pytest.mark.parametrize("offered", [True, False])
def test_commands_go_together_only_where_the_server_offers_pipelining(offered: bool) -> None:
    with SmtpServer(starttls=True, auth=("u", "p"), pipelining=offered) as server:
        conn = Connection(server.settings(), tls_context=server.client_tls())
        outcomes = exchange(conn, addresses(5))
        assert outcomes == ["250 2.0.0 OK queued"] * 5
        assert server.recipients() == addresses(5)
        assert server.pipelined == (5 if offered else 0)
        assert (server.logins, server.connections) == (1, 1)


@pytest.mark.parametrize(
    ("stage", "reply"),
    [("mail", "451 4.3.0 sender busy"), ("mail", "550 5.7.1 sender refused"),
     ("rcpt", "452 4.2.2 over quota"), ("rcpt", "550 5.1.1 no such user"),
     ("354", "451 4.3.0 not now"), ("354", "554 5.7.1 no data for you"),
     ("data", "452 4.3.1 full"), ("data", "554 5.7.1 content refused")],
)
def test_a_refusal_in_the_group_is_the_reply_and_the_connection_goes_on(
    stage: str, reply: str
) -> None:
    """The first refusal among MAIL, RCPT, DATA (or the final reply) is the
    message's reply; after RSET the same connection carries the next message."""
    refused = 0 if stage == "mail" else 1  # MAIL's fault is the sender's: the first message
    with SmtpServer(pipelining=True) as server:
        server.fault(SENDER if stage == "mail" else "p1@example.com",
                     Fault(reply=reply, stage=stage, times=1))
        outcomes = exchange(Connection(server.settings()), addresses(3))
        expected = ["250 2.0.0 OK queued"] * 3
        expected[refused] = reply
        assert outcomes == expected
        assert server.recipients() == [a for i, a in enumerate(addresses(3)) if i != refused]
        assert (server.connections, server.pipelined) == (1, 3)


@pytest.mark.parametrize("stage", ["354", "rcpt"])
def test_421_in_the_group_closes_the_connection(stage: str) -> None:
    with SmtpServer(pipelining=True) as server:
        server.fault("p1@example.com", Fault(reply="421 4.7.0 closing", stage=stage, times=1))
        outcomes = exchange(Connection(server.settings()), addresses(3))
        assert outcomes == ["250 2.0.0 OK queued", "421 4.7.0 closing", "250 2.0.0 OK queued"]
        assert server.recipients() == ["p0@example.com", "p2@example.com"]
        assert server.connections == 2


def test_421_to_mail_at_the_connection_limit_reconnects_transparently() -> None:
    with SmtpServer(pipelining=True, close_after=2) as server:
        outcomes = exchange(Connection(server.settings()), addresses(5))
        assert outcomes == ["250 2.0.0 OK queued"] * 5
        assert server.recipients() == addresses(5)
        assert server.connections == 3


@pytest.mark.parametrize("stage", ["rcpt", "354"])
def test_a_drop_inside_the_group_is_lost_and_nothing_delivered(stage: str) -> None:
    """Closed before all three replies came (or right after the 354): nothing
    of the content went out, the message may be sent again.  (8 MB bodies into a
    fixed 64 kB receive buffer: a small one could be written whole, final dot
    included, before the drop is seen, and then it is rightly `NoFinalReply`.)"""
    big = (b"x" * 70 + b"\r\n") * (8_000_000 // 72)
    with SmtpServer(pipelining=True, recv_buffer=65536) as server:
        server.fault("p1@example.com", Fault(action="drop", stage=stage, times=1))
        outcomes = exchange(Connection(server.settings()), addresses(3), big)
        assert outcomes == ["250 2.0.0 OK queued", "Lost", "250 2.0.0 OK queued"]
        assert server.recipients() == ["p0@example.com", "p2@example.com"]


def test_a_drop_at_mail_is_lost_on_a_fresh_connection_and_an_idle_close_on_a_used_one() -> None:
    with SmtpServer(pipelining=True) as server:
        server.fault(SENDER, Fault(action="drop", stage="mail", times=1))
        conn = Connection(server.settings())
        assert exchange(conn, addresses(2)) == ["Lost", "250 2.0.0 OK queued"]

        async def used() -> list[str]:
            first = make_draft("p2@example.com")
            outcomes = [str(await conn.send(SENDER, first.recipient, first.payload,
                                            smtputf8=False))]
            server.fault(SENDER, Fault(action="drop", stage="mail", times=1))
            second = make_draft("p3@example.com")
            outcomes.append(str(await conn.send(SENDER, second.recipient, second.payload,
                                                smtputf8=False)))
            await conn.quit()
            return outcomes

        assert asyncio.run(used()) == ["250 2.0.0 OK queued"] * 2
        assert server.recipients() == addresses(4)[1:]


@pytest.mark.parametrize("action", ["drop", "stall"])
def test_no_reply_to_the_final_dot_after_a_group_may_have_been_delivered(action: str) -> None:
    with SmtpServer(pipelining=True, stall_seconds=1.5) as server:
        server.fault("p0@example.com", Fault(action=action, stage="data", delivered=True))
        conn = Connection(server.settings(timeout=0.3, data_timeout=0.6))
        assert exchange(conn, addresses(2)) == ["NoFinalReply", "250 2.0.0 OK queued"]
        assert server.recipients() == addresses(2)
        assert server.pipelined == 2


@pytest.mark.parametrize("lie", ["flush", "refuse"])
def test_a_server_that_offers_pipelining_and_cannot_take_it_gets_one_command_at_a_time(
    lie: str
) -> None:
    """It throws the rest of the group away (no reply within the timeout), or
    answers "bad sequence": nothing was sent, so the message goes again at
    once, one command at a time, and so does every later one."""
    with SmtpServer(pipelining=lie) as server:
        conn = Connection(server.settings(timeout=0.5))
        outcomes = exchange(conn, addresses(3))
        assert outcomes == ["250 2.0.0 OK queued"] * 3
        assert server.recipients() == addresses(3)
        assert (server.pipelined, server.connections) == (1, 2)
        assert not conn.pipelining


def send(journal: Journal, server: SmtpServer, *, concurrency: int = 3) -> SendSummary:
    return asyncio.run(send_campaign(
        journal, "c1", server.settings(timeout=0.5), limiter=RateLimiter(),
        concurrency=concurrency, tls_context=server.client_tls(), retry=FAST,
    ))


def test_every_group_outcome_ends_in_its_journal_state_and_nobody_twice(tmp_path: Path) -> None:
    everyone = [f"j{i:02d}@example.org" for i in range(24)]
    drafts = [make_draft(a) for a in everyone]
    # the one dropped right after its 354 is large, so that the drop comes while it is
    # still being written (a small one may be out, final dot and all: `unknown`)
    drafts[6] = replace(drafts[6], payload=drafts[6].payload + (b"x" * 70 + b"\r\n") * 110_000)
    with Journal(tmp_path / "journal.sqlite3") as journal:
        journal.enqueue("c1", drafts)
        with SmtpServer(starttls=True, auth=("u", "p"), pipelining=True, close_after=5,
                        stall_seconds=1.0, recv_buffer=65536) as server:
            server.fault(everyone[1], Fault(reply="450 4.2.1 busy", times=1))
            server.fault(everyone[2], Fault(reply="451 4.3.0 later", stage="354", times=1))
            server.fault(everyone[3], Fault(reply="550 5.1.1 unknown user"))
            server.fault(everyone[4], Fault(reply="554 5.7.1 no", stage="354"))
            server.fault(everyone[5], Fault(action="drop", stage="rcpt", times=1))
            server.fault(everyone[6], Fault(action="drop", stage="354", times=1))
            server.fault(everyone[7], Fault(action="stall", stage="data", times=1,
                                            delivered=True))
            server.fault(everyone[8], Fault(reply="452 4.2.2 over quota"))  # never clears
            summary = send(journal, server)
            copies = Counter(server.recipients())
            assert server.pipelined > 0
        final = {r.recipient: r.state for r in journal.rows("c1")}
    assert max(copies.values()) == 1
    assert {a for a, s in final.items() if s is State.FAILED} == {everyone[3], everyone[4]}
    assert {a for a, s in final.items() if s is State.DEFERRED} == {everyone[8]}
    assert {a for a, s in final.items() if s is State.UNKNOWN} == {everyone[7]}
    sent = {a for a, s in final.items() if s is State.SENT}
    assert sent == set(everyone) - {everyone[3], everyone[4], everyone[7], everyone[8]}
    assert sent | {everyone[7]} == set(copies)
    assert summary.sent == len(sent)


def test_a_flood_of_reply_lines_to_a_group_is_cut_off() -> None:
    """A hostile server that answers with more than any three replies can hold is
    cut off (the reader's memory bound): nothing was sent, the message may go again."""
    flood = "\r\n".join(["250-" + "x" * 990] * 40 + ["250 OK"])
    with SmtpServer(pipelining=True) as server:
        server.fault(SENDER, Fault(reply=flood, stage="mail", times=1))
        assert exchange(Connection(server.settings()), addresses(2)) == [
            "Lost", "250 2.0.0 OK queued"]
        assert server.recipients() == ["p1@example.com"]
