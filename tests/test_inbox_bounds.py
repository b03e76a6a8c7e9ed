"""Bounds of the inbox pass: per message (nesting, undecodable headers,
quadratic bodies, damaged and adversarial mail) and per pass (a hostile IMAP
server on 127.0.0.1 that sends more than was asked for, trickles, or answers
a search with more UIDs than a line may hold)."""

from __future__ import annotations

import contextlib
import random
import re
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailer.cli.app import main
from mailer.config import ImapSettings
from mailer.journal import Journal
from mailer.mailbox import imap, inbox
from mailer.mailbox.inbox import Kind, Unreadable, classify, read_inbox, sort_one
from tests.smtpd import SmtpServer
from tests.test_inbox_bounces import FIXTURES, expected, load, mailed
from tests.test_run_due import send

PROJECT = Path(__file__).resolve().parents[1]


# --- one message -------------------------------------------------------------------


def test_deeply_nested_messages_are_reported_not_raised(journal: Journal) -> None:
    enclosed = b"".join(b"Content-Type: message/rfc822\r\n\r\n" for _ in range(985))
    deep = b"From: x@example.com\r\nSubject: deep\r\n" + enclosed + b"hi\r\n"
    junk = b"From: x@example.com\r\nContent-Type: \x1cmultipart/mixed; boundary=b0\r\n\r\n"
    junk += b"".join(f"--b{i}\r\nContent-Type: \x1cmultipart/mixed; boundary=b{i + 1}\r\n\r\n"
                     .encode() for i in range(3000))
    for raw in (deep, junk):
        with pytest.raises(Unreadable):
            classify(raw)
        verdict = sort_one(raw, journal, frozenset())
        assert verdict.kind is Kind.UNREADABLE and "nested" in verdict.note
        assert verdict.finding.sender == "x@example.com"


@pytest.mark.parametrize("subject", [b"=?\x80?q?x?=", b"=?utf-8?b?gA==?=", b"=?x-unknown?q?a?="])
def test_undecodable_headers_are_kept_as_written(subject: bytes) -> None:
    found = classify(b"From: Pat <pat@example.com>\r\nSubject: " + subject + b"\r\n\r\nhi\r\n")
    assert found.kind is Kind.REPLY and found.sender == "pat@example.com"


def test_bodies_that_cost_the_reply_parser_quadratic_time_are_cut() -> None:
    """Run under a CPU limit: 128 KiB of empty lines took ~75 s before."""
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_CPU, (20, 20))\n"
        "from mailer.mailbox.inbox import classify\n"
        "head = b'From: p@example.com\\r\\nSubject: hi\\r\\n\\r\\n'\n"
        "for body in (b'\\r\\n' * 65536, b' \\n' * 65536, b'>\\n' * 65536, b'-\\n' * 65536,"
        "             b'Message-ID:' + b' ' * 131072, b'a@' * 65536):\n"
        "    print(classify(head + body).kind)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()[-500:]
    assert done.stdout.decode().split() == ["reply"] * 6


def test_a_message_over_its_time_budget_is_reported(journal: Journal,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inbox, "MESSAGE_SECONDS", 0.001)
    slow = load(FIXTURES / "formats" / "sendmail.eml", "<m@example.com>") + b"word " * 50000
    verdict = sort_one(slow, journal, frozenset())
    assert verdict.kind is Kind.UNREADABLE and "longer than 0.001 s" in verdict.note
    monkeypatch.setattr(inbox, "MESSAGE_SECONDS", 10.0)
    assert sort_one(slow, journal, frozenset()).kind is not Kind.UNREADABLE


def mutations(raw: bytes, rng: random.Random) -> Iterator[bytes]:
    """Damaged copies: cut, bytes flipped, a line repeated, junk spliced in."""
    yield raw[:rng.randrange(len(raw))]
    flipped = bytearray(raw)
    for _ in range(20):
        flipped[rng.randrange(len(raw))] = rng.randrange(256)
    yield bytes(flipped)
    lines = raw.split(b"\r\n")
    at = rng.randrange(len(lines))
    yield b"\r\n".join(lines[:at] + [lines[at]] * 200 + lines[at:])
    junk = rng.choice([b"=?\x80?q?\xff?=", b"\x1cmultipart/", b"\x00" * 50, b"--\r\n--",
                       b"Content-Type: message/rfc822\r\n\r\n", b"<" * 500, b"\xc3\x28"])
    at = rng.randrange(len(raw))
    yield raw[:at] + junk + raw[at:]


def test_damaged_and_adversarial_fixtures_never_raise() -> None:
    rng = random.Random(21)  # a fixed seed: the same messages in every run
    names = [(folder, n) for folder in ("formats", "heldout") for n in sorted(expected(folder))]
    tried = 0
    for folder, name in names:
        for raw in mutations(load(FIXTURES / folder / name, "<m-1@example.com>"), rng):
            with contextlib.suppress(Unreadable):
                classify(raw)
            tried += 1
    assert tried == 4 * len(names)


# --- one pass against a hostile server ----------------------------------------------

SENT_DAY = "30-Nov-2026 09:00:00 +0000"


class Hostile(socketserver.StreamRequestHandler):
    """Just enough IMAP4rev1 for a pass; the server's `mode` says how it misbehaves."""

    server: HostileServer

    def send(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def handle(self) -> None:
        with contextlib.suppress(OSError):  # the client cut the connection: its deadline
            self.serve()

    def serve(self) -> None:
        self.send(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hostile ready\r\n")
        while line := self.rfile.readline(65536):
            tag, _, rest = line.decode().rstrip("\r\n").partition(" ")
            command = rest.split(" ")[0].upper()
            if command == "UID":
                command = "UID " + rest.split(" ")[1].upper()
            if command == "LOGOUT":
                self.send(b"* BYE\r\n" + f"{tag} OK bye\r\n".encode())
                return
            self.send(self.answer(command, rest) + f"{tag} OK done\r\n".encode())

    def answer(self, command: str, rest: str) -> bytes:
        server = self.server
        if command == "CAPABILITY":
            return b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n"
        if command in ("EXAMINE", "SELECT"):
            return (f"* {server.exists} EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n"
                    f"* OK [UIDNEXT {server.exists + 1}] ok\r\n").encode()
        if command == "UID SEARCH":
            server.searches.append(rest)
            found = re.search(r"SEARCH (\d+):(\d+)", rest)
            low, high = (int(found[1]), int(found[2])) if found else (1, server.exists)
            uids = [u for u in range(low, high + 1) if found is None or u in server.new]
            return b"* SEARCH " + " ".join(map(str, uids)).encode() + b"\r\n"
        if command == "UID FETCH":
            uids = [int(u) for u in rest.split(" ")[2].split(",")]
            return b"".join(self.message(uid) for uid in uids)
        return b""

    def message(self, uid: int) -> bytes:
        body = self.server.body
        head = (f"* {uid} FETCH (UID {uid} INTERNALDATE \"{SENT_DAY}\" BODY[]<0> "
                f"{{{len(body)}}}\r\n").encode()
        if self.server.mode == "trickle":
            self.send(head)
            for byte in body:
                self.send(bytes([byte]))
                time.sleep(0.05)
            return b")\r\n"
        return head + body + b")\r\n"


class HostileServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str, body: bytes, exists: int = 1,
                 new: frozenset[int] = frozenset({1})) -> None:
        super().__init__(("127.0.0.1", 0), Hostile)
        self.mode, self.body, self.exists, self.new = mode, body, exists, new
        self.searches: list[str] = []

    def settings(self) -> ImapSettings:
        return ImapSettings(host="127.0.0.1", port=self.server_address[1], security="none",
                            username="alex@example.com", password="pw", timeout=5.0)


@pytest.fixture
def hostile() -> Iterator[type[HostileServer]]:
    started: list[HostileServer] = []

    class Started(HostileServer):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            started.append(self)
            threading.Thread(target=self.serve_forever, daemon=True).start()

    yield Started
    for server in started:
        server.shutdown()
        server.server_close()


REPLY = b"From: Pat <pat@example.com>\r\nSubject: Re: hi\r\n\r\nThanks!\r\n"


def test_the_fetch_limit_is_enforced_while_reading(journal: Journal,
                                                   hostile: type[HostileServer]) -> None:
    mailed(journal, ["pat@example.com"])
    server = hostile("huge", REPLY + b"x" * (imap.FETCH_LIMIT * 8))  # asked for 1 MiB, sends 8
    with imap.Mailbox(server.settings()) as box:
        box.examine(date(2026, 11, 29), "INBOX")
        fetched = list(box.fetch([1]))
    assert [len(raw) for _, raw in fetched] == [imap.FETCH_LIMIT]  # the rest read and dropped
    found = read_inbox(journal, server.settings())
    assert [v.kind for _, v in found.verdicts] == [Kind.REPLY]


def test_a_trickling_server_meets_the_pass_deadline(journal: Journal,
                                                    hostile: type[HostileServer]) -> None:
    mailed(journal, ["pat@example.com"])
    server = hostile("trickle", REPLY + b"y" * 4000)  # 0.05 s a byte: minutes in all
    start = time.monotonic()
    found = read_inbox(journal, server.settings(), seconds=2.0)
    assert time.monotonic() - start < 30
    assert found.verdicts == () and found.stopped  # said why, kept nothing half-read


def test_uids_are_searched_page_by_page(journal: Journal, hostile: type[HostileServer]) -> None:
    mailed(journal, ["pat@example.com"])
    server = hostile("many", REPLY, exists=150_000, new=frozenset({149_998, 150_000}))
    found = read_inbox(journal, server.settings())  # one answer would pass imaplib's 1 MB line
    assert [uid for uid, _ in found.verdicts] == [149_998, 150_000]
    assert len(server.searches) == 150_000 // imap.SEARCH_PAGE
    assert not found.stopped


def test_run_due_sends_first_and_a_stalled_inbox_pass_ends_on_time(
        work: Path, server: SmtpServer, hostile: type[HostileServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A server trickling one byte at a time keeps neither the due campaign
    nor the run lock: the campaign goes out, the pass stops at its deadline."""
    scheduled = send("--at", "mon 09:00", "--now", "2027-02-27T12:00", "--yes")
    assert scheduled.exit_code == 0, scheduled.output
    imap = hostile("trickle", b"From: p@example.com\r\n\r\n" + b"z" * 4000).settings()
    for name, value in (("HOST", imap.host), ("PORT", str(imap.port)), ("SECURITY", "none"),
                        ("USERNAME", imap.username), ("PASSWORD", imap.password)):
        monkeypatch.setenv(f"MAILER_IMAP_{name}", value)
    monkeypatch.setattr(inbox, "QUIET_PASS_SECONDS", 2.0)
    result = CliRunner().invoke(main, ["run-due", "--rate", "none", "--now", "2027-03-01T09:00",
                                       "--inbox"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "3 sent" in result.output and len(server.received) == 3
    assert "Stopped early" in result.output
