"""While another process holds the journal's write lock, the send loop keeps
running: a journal write waits in the event loop, not inside SQLite's 30 s busy
timeout.  Real journal file, a second real process holding the lock, real aiosmtpd."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailer.errors import JournalError
from mailer.journal import Journal
from mailer.models import State
from mailer.smtp.pace import RateLimiter
from mailer.smtp.sender import LOCK_POLL, patiently, send_campaign
from tests.smtpd import SmtpServer, make_draft

HOLD = 1.5  # seconds the other process keeps the write lock
HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")  # the write lock, as a second mailer or a backup takes it
print("locked", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
"""


def hold_lock(path: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.wait(timeout=10) == 0


def test_the_event_loop_keeps_turning_while_another_process_holds_the_lock(
    journal: Journal,
) -> None:
    people = [f"p{i:02d}@example.com" for i in range(30)]
    journal.enqueue("c1", [make_draft(a) for a in people])

    async def scenario(server: SmtpServer) -> tuple[float, float, int]:
        holder = hold_lock(journal.path)
        gaps: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:  # how long the loop was away between two turns
            last = time.monotonic()
            while not stop.is_set():
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        async def release_later() -> float:
            await asyncio.sleep(HOLD)
            await asyncio.to_thread(release, holder)
            return time.monotonic()

        tick = asyncio.create_task(ticker())
        released = asyncio.create_task(release_later())
        started = time.monotonic()
        summary = await send_campaign(journal, "c1", server.settings(),
                                      limiter=RateLimiter(), concurrency=3)
        stop.set()
        await tick
        assert summary.complete, summary
        return max(gaps), await released - started, summary.sent

    with SmtpServer() as server:
        longest_gap, held_for, sent = asyncio.run(scenario(server))
        assert sorted(server.recipients()) == people
    assert sent == 30 and journal.counts("c1")[State.SENT] == 30
    assert held_for >= HOLD
    # with SQLite waiting inside the coroutine the loop would be gone for the whole HOLD
    assert longest_gap < HOLD / 3, longest_gap


def test_a_lock_held_longer_than_the_patience_is_a_clear_error(journal: Journal) -> None:
    journal.enqueue("c1", [make_draft("ada@example.com")])
    holder = hold_lock(journal.path)
    try:
        with journal.busy_wait(LOCK_POLL), pytest.raises(JournalError) as caught:
            asyncio.run(patiently(lambda: journal.claim("c1"), patience=0.3))
    finally:
        release(holder)
    assert "locked by another process" in str(caught.value)
    assert "stayed locked for 0.3 s" in str(caught.value)
    assert journal.claim("c1") is not None  # free again: the default wait works as before
