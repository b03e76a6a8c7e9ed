"""Interrupt a real sending process (SIGKILL, SIGINT), run it again, and check the
server's log: nobody twice, nobody lost, at most K outcomes unknown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from mailer.journal import Journal
from mailer.models import State
from tests.smtpd import SmtpServer

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]
K = 3

# The sender as a separate process, through the core API (the CLI has its own tests).
DRIVER = """
import asyncio, os, sys
from pathlib import Path
from mailer.config import smtp_settings
from mailer.journal import Journal
from mailer.smtp.pace import RateLimiter
from mailer.smtp.sender import send_campaign
from tests.smtpd import make_draft

journal = Journal(Path(sys.argv[1]))
journal.enqueue("c1", (make_draft(f"k{i:03d}@example.com") for i in range(int(sys.argv[2]))))
summary = asyncio.run(send_campaign(journal, "c1", smtp_settings(os.environ),
                                    limiter=RateLimiter(), concurrency=int(sys.argv[3]),
                                    handle_sigint=True))
print(summary.stopped or "done", summary.sent, flush=True)
sys.exit(130 if summary.stopped == "interrupted" else 0)
"""


def start(server: SmtpServer, journal: Path, n: int) -> subprocess.Popen[str]:
    env = {**os.environ, **server.env(), "PYTHONPATH": str(PROJECT)}
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(journal), str(n), str(K)],
                            cwd=PROJECT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(server: SmtpServer, count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while len(server.received) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the sender made no progress"
        time.sleep(0.01)


def everyone(n: int) -> set[str]:
    return {f"k{i:03d}@example.com" for i in range(n)}


@pytest.mark.parametrize("kill_after", [1, 40, 110])
def test_kill_9_then_rerun_delivers_everyone_once(tmp_path: Path, kill_after: int) -> None:
    n, path = 120, tmp_path / "journal.sqlite3"
    with SmtpServer(starttls=True, auth=("me@example.org", "pw"), data_delay=0.01) as server:
        proc = start(server, path, n)
        wait_for(server, kill_after, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        with Journal(path) as journal:  # a crash is not a pause: run-due carries on
            assert journal.due_campaigns(time.time()) == ["c1"]
        rerun = start(server, path, n)
        _, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        delivered = Counter(server.recipients())
    assert max(delivered.values()) == 1
    with Journal(path) as journal:
        rows = {r.recipient: r.state for r in journal.rows("c1")}
    assert set(rows) == everyone(n)
    unknown = {a for a, s in rows.items() if s is State.UNKNOWN}
    sent = {a for a, s in rows.items() if s is State.SENT}
    assert len(unknown) <= K
    assert sent | unknown == everyone(n)
    assert sent <= set(delivered) <= sent | unknown


def test_ctrl_c_finishes_what_is_in_flight_then_rerun_completes(tmp_path: Path) -> None:
    n, path = 60, tmp_path / "journal.sqlite3"
    with SmtpServer(data_delay=0.2) as server:
        proc = start(server, path, n)
        wait_for(server, K + 1, proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert out.startswith("interrupted")
        delivered_first = Counter(server.recipients())
        with Journal(path) as journal:
            counts = journal.counts("c1")
            sent = {r.recipient for r in journal.rows("c1", [State.SENT])}
            held = journal.campaign("c1")
            assert held is not None and held.paused_at is not None  # Ctrl-C is a pause
            assert journal.due_campaigns(time.time()) == []
        assert counts[State.CLAIMED] == counts[State.UNKNOWN] == 0  # in-flight ones recorded
        assert sent == set(delivered_first)
        assert counts[State.QUEUED] == n - len(sent) > 0
        rerun = start(server, path, n)
        rerun.communicate(timeout=120)
        assert rerun.returncode == 0
        delivered = Counter(server.recipients())
    assert set(delivered) == everyone(n) and max(delivered.values()) == 1


def test_a_second_ctrl_c_stops_at_once_and_only_a_written_message_is_unknown(
    tmp_path: Path
) -> None:
    """The server answers the final dot after 2 s: the second Ctrl-C cancels
    the transactions waiting for it without waiting; they are `unknown` (the
    server may have the message), everything else is queued, nothing claimed."""
    n, path = 30, tmp_path / "journal.sqlite3"
    with SmtpServer(data_delay=2.0) as server:
        proc = start(server, path, n)
        wait_for(server, K, proc)  # the first K came through; the next K are in flight
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert time.monotonic() - started < 1.5  # did not wait for the replies
        assert proc.returncode == 130, err
        with Journal(path) as journal:
            counts = journal.counts("c1")
            unknown = {r.recipient for r in journal.rows("c1", [State.UNKNOWN])}
        assert counts[State.CLAIMED] == 0
        assert 1 <= len(unknown) <= K
        assert counts[State.SENT] + len(unknown) + counts[State.QUEUED] == n
        rerun = start(server, path, n)
        rerun.communicate(timeout=120)
        assert rerun.returncode == 0
        delivered = Counter(server.recipients())
    # aiosmtpd drops a message whose client left before the reply; a real server
    # may deliver it, so the rerun leaves the unknown ones alone
    assert set(delivered) == everyone(n) - unknown and max(delivered.values()) == 1
