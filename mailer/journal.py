"""The journal: one SQLite file (WAL) recording every message of every campaign.

A recipient row moves through these states::

    queued ──claim──> claimed ──reply──> sent | deferred | failed
      ^                  │
      └── retry (4xx) ───┘     claimed by a process that died ──> unknown

`claimed` is committed *before* the SMTP transaction starts, and the outcome
right after the reply, so a crash leaves at most one `claimed` row per
connection.  The next run turns those into `unknown` and never resends them on
its own: the message may or may not have left, and a duplicate is worse than
a question.  `requeue()` (used by `mailer resend`) puts chosen states back.

Which process owns a claim is decided by an advisory lock: every run holds an
exclusive `flock` on `<journal>.runs/<run id>.lock`; the kernel drops it when
the process dies, even on `kill -9`, so a claim whose lock can be taken is
stale.  Two overlapping runs never claim the same row: the claim is a single
`UPDATE ... WHERE state = 'queued'` inside `BEGIN IMMEDIATE`.

Durability: WAL with synchronous=NORMAL survives a killed process (the commit
is in the WAL before the claim returns); only a power loss can lose the last
transactions, which is why the claim rule is stated per process crash.

The journal stores envelopes, Message-IDs, payloads, replies and timestamps;
never credentials.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path

from .errors import JournalError
from .models import Draft, State

SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (
    name          TEXT PRIMARY KEY,
    created_at    REAL NOT NULL,
    scheduled_at  REAL,                  -- epoch seconds; NULL = send now
    cancelled_at  REAL
);
CREATE TABLE IF NOT EXISTS messages (
    id              INTEGER PRIMARY KEY,
    campaign        TEXT NOT NULL REFERENCES campaigns(name),
    address         TEXT NOT NULL,       -- address_key(recipient): the dedupe key
    recipient       TEXT NOT NULL,
    sender          TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    smtputf8        INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL DEFAULT 'queued',
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_code       INTEGER,
    last_reply      TEXT NOT NULL DEFAULT '',
    queued_at       REAL NOT NULL,
    next_attempt_at REAL NOT NULL DEFAULT 0,  -- not before this (retry back-off)
    claimed_at      REAL,
    claimed_by      TEXT,                -- run id holding the claim
    finished_at     REAL,
    UNIQUE (campaign, address)
);
-- Only queued rows are indexed for the claim: a claim takes a row out of this
-- index and its outcome never touches it (index churn is what a commit costs).
CREATE INDEX IF NOT EXISTS messages_due ON messages (campaign, next_attempt_at)
    WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS messages_address ON messages (address);
-- The rendered message (without Date), apart from the row: SQLite rewrites a
-- whole row on every UPDATE, and a state change must not rewrite 5 kB.
CREATE TABLE IF NOT EXISTS payloads (
    id    INTEGER PRIMARY KEY REFERENCES messages(id),
    data  BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS suppressed (
    address   TEXT PRIMARY KEY,
    reason    TEXT NOT NULL DEFAULT '',
    added_at  REAL NOT NULL
);
"""


def address_key(email: str) -> str:
    """The key for dedupe, "mailed before" and suppression: the whole address,
    case-folded.  RFC 5321 lets a server treat local parts case-sensitively, but
    mail providers do not, and erring this way never mails anyone twice and
    never mails a suppressed "Ben@" as "ben@"."""
    return email.strip().lower()


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row claimed for one SMTP transaction."""

    id: int
    campaign: str
    recipient: str
    sender: str
    message_id: str
    smtputf8: bool
    payload: bytes
    attempts: int  # including this one

    def wire(self, date: datetime | None = None) -> bytes:
        when = date if date is not None else datetime.now().astimezone()
        return b"Date: " + format_datetime(when).encode("ascii") + b"\r\n" + self.payload


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one claimed row."""

    row_id: int
    state: State
    code: int | None
    reply: str
    retry_at: float | None = None  # queued again, not before this time (a 4xx retry)


@dataclass(frozen=True, slots=True)
class Row:
    """One recipient's record, for `status` and reports."""

    campaign: str
    recipient: str
    state: State
    message_id: str
    attempts: int
    last_code: int | None
    last_reply: str
    queued_at: float
    finished_at: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "campaign": self.campaign,
            "recipient": self.recipient,
            "state": str(self.state),
            "message_id": self.message_id,
            "attempts": self.attempts,
            "last_code": self.last_code,
            "last_reply": self.last_reply,
            "queued_at": self.queued_at,
            "finished_at": self.finished_at,
        }


@dataclass(frozen=True, slots=True)
class Campaign:
    name: str
    created_at: float
    scheduled_at: float | None
    cancelled_at: float | None


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # autocommit mode: every transaction below is explicit
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # checkpoint (the one step that fsyncs) every ~40 MB of WAL, not every 4 MB
            self._db.execute("PRAGMA wal_autocheckpoint=10000")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as err:
            raise JournalError(f"Cannot open the journal {path}: {err}") from None
        self._staged = False
        self._run_id: str | None = None
        self._run_lock: int | None = None

    # -- housekeeping -------------------------------------------------------

    def close(self) -> None:
        self.end_run()
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so that the claim is atomic
        across processes; inside `staged()` it joins the staged transaction."""
        if self._staged:
            yield self._db
            return
        with self._transaction():
            yield self._db

    @contextmanager
    def staged(self) -> Iterator[Staging]:
        """Everything written inside becomes visible only if the block ends
        without calling `discard()` (used to queue, then ask, then commit)."""
        if self._staged:
            raise JournalError("Nested staged transactions are not supported.")
        staging = Staging()
        self._staged = True
        try:
            with self._transaction(keep=lambda: not staging.discarded):
                yield staging
        finally:
            self._staged = False

    @contextmanager
    def _transaction(self, keep: Callable[[], bool] = lambda: True) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT (or ROLLBACK on error or when `keep()` says
        no); SQLite errors (locked, disk full) become a JournalError."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise JournalError(f"The journal {self.path} is busy or unusable: {err}") from None
        try:
            yield
        except BaseException as err:
            self._db.execute("ROLLBACK")
            if isinstance(err, sqlite3.Error):
                raise JournalError(f"Writing the journal {self.path} failed: {err}") from None
            raise
        try:
            self._db.execute("COMMIT" if keep() else "ROLLBACK")
        except sqlite3.Error as err:
            raise JournalError(f"Writing the journal {self.path} failed: {err}") from None

    # -- queries used by the plan -------------------------------------------

    def mailed_before(self, email: str) -> str | None:
        """The campaign that mailed this address, if any.  An `unknown` outcome
        counts too: that message may have arrived, and a second campaign must
        not resend it behind the user's back."""
        row = self._db.execute(
            "SELECT campaign FROM messages WHERE address = ? AND state IN ('sent', 'unknown') "
            "ORDER BY state = 'sent' DESC, finished_at LIMIT 1",
            (address_key(email),),
        ).fetchone()
        return row[0] if row else None

    def is_suppressed(self, email: str) -> bool:
        sql = "SELECT 1 FROM suppressed WHERE address = ?"
        return self._db.execute(sql, (address_key(email),)).fetchone() is not None

    # -- suppression list ---------------------------------------------------

    def suppress_add(self, email: str, reason: str = "") -> bool:
        """Add an address; False if it was already there.  Queued rows for it
        are cancelled so that no pending run mails it."""
        key = address_key(email)
        with self._write() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO suppressed (address, reason, added_at) VALUES (?, ?, ?)",
                (key, reason, time.time()),
            )
            db.execute(
                "UPDATE messages SET state = 'cancelled', last_reply = 'suppressed' "
                "WHERE address = ? AND state IN ('queued', 'deferred')",
                (key,),
            )
        return cur.rowcount == 1

    def suppress_remove(self, email: str) -> bool:
        with self._write() as db:
            cur = db.execute("DELETE FROM suppressed WHERE address = ?", (address_key(email),))
        return cur.rowcount == 1

    def suppress_list(self) -> list[tuple[str, str, float]]:
        sql = "SELECT address, reason, added_at FROM suppressed ORDER BY address"
        return list(self._db.execute(sql))

    # -- campaigns and queueing ---------------------------------------------

    def enqueue(
        self, campaign: str, drafts: Iterable[Draft], *, scheduled_at: float | None = None
    ) -> int:
        """Queue drafts (streamed in batches); returns how many rows were added.
        An address already in this campaign, or suppressed, is not added again."""
        now = time.time()
        added = 0
        with self._write() as db:
            db.execute(
                "INSERT INTO campaigns (name, created_at, scheduled_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE "
                "SET scheduled_at = COALESCE(excluded.scheduled_at, scheduled_at)",
                (campaign, now, scheduled_at),
            )
            for d in drafts:
                key = address_key(d.recipient)
                cur = db.execute(
                    "INSERT OR IGNORE INTO messages (campaign, address, recipient, sender, "
                    "message_id, smtputf8, queued_at) SELECT ?, ?, ?, ?, ?, ?, ? "
                    "WHERE NOT EXISTS (SELECT 1 FROM suppressed WHERE address = ?)",
                    (campaign, key, d.recipient, d.sender, d.message_id, int(d.smtputf8), now,
                     key),
                )
                if cur.rowcount:
                    db.execute("INSERT INTO payloads (id, data) VALUES (?, ?)",
                               (cur.lastrowid, d.payload))
                    added += 1
        return added

    def campaigns(self) -> list[Campaign]:
        sql = ("SELECT name, created_at, scheduled_at, cancelled_at FROM campaigns "
               "ORDER BY created_at")
        return [Campaign(*row) for row in self._db.execute(sql)]

    def latest_campaign(self) -> str | None:
        row = self._db.execute(
            "SELECT name FROM campaigns ORDER BY created_at DESC, rowid DESC LIMIT 1"
        ).fetchone()
        return row[0] if row else None

    # -- the send loop ------------------------------------------------------

    @property
    def run_id(self) -> str:
        """This process's run id; holds its lock file from the first use on."""
        if self._run_id is None:
            run_id = uuid.uuid4().hex
            fd = os.open(self._lock_path(run_id), os.O_CREAT | os.O_RDWR, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._run_id, self._run_lock = run_id, fd
        return self._run_id

    def end_run(self) -> None:
        if self._run_lock is not None and self._run_id is not None:
            os.unlink(self._lock_path(self._run_id))
            os.close(self._run_lock)
        self._run_id = self._run_lock = None

    def _lock_path(self, run_id: str) -> Path:
        folder = self.path.with_name(self.path.name + ".runs")
        folder.mkdir(exist_ok=True)
        return folder / f"{run_id}.lock"

    def _owner_alive(self, run_id: str) -> bool:
        if run_id == self._run_id:
            return True
        path = self._lock_path(run_id)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False  # its owner ended cleanly or the file was removed
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        path.unlink(missing_ok=True)
        return False

    def recover(self) -> int:
        """Turn claims left by dead processes into `unknown`; returns how many."""
        owners = [r[0] for r in self._db.execute(
            "SELECT DISTINCT claimed_by FROM messages WHERE state = 'claimed'"
        )]
        unknown = 0
        for owner in owners:
            if self._owner_alive(owner):
                continue
            with self._write() as db:
                cur = db.execute(
                    "UPDATE messages SET state = 'unknown', finished_at = ?, last_reply = "
                    "'the sending process stopped before the server replied' "
                    "WHERE state = 'claimed' AND claimed_by = ?",
                    (time.time(), owner),
                )
                unknown += cur.rowcount
        return unknown

    def claim(self, campaign: str, now: float | None = None, *,
              record: Outcome | None = None) -> Claimed | None:
        """Atomically claim the next due `queued` row of the campaign: rows never
        tried first (in queue order), then retries by due time.  The order matches
        the `messages_due` index, so a claim is one index probe, not a sort.

        `record`: the outcome of the worker's previous message, written in the
        same transaction (one commit per message instead of two; the outcome is
        just as durable as with `mark`, since nothing awaits in between)."""
        when = time.time() if now is None else now
        with self._write() as db:
            if record is not None:
                self._record(db, record)
            row = db.execute(
                "UPDATE messages SET state = 'claimed', claimed_by = ?, claimed_at = ?, "
                "attempts = attempts + 1 "
                "WHERE id = (SELECT id FROM messages WHERE campaign = ? AND state = 'queued' "
                "  AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT 1) "
                "  AND state = 'queued' "
                "RETURNING id, campaign, recipient, sender, message_id, smtputf8, attempts",
                (self.run_id, when, campaign, when),
            ).fetchone()
        if row is None:
            return None
        payload = self._db.execute("SELECT data FROM payloads WHERE id = ?", (row[0],))
        return Claimed(row[0], row[1], row[2], row[3], row[4], bool(row[5]),
                       payload.fetchone()[0], row[6])

    def next_due(self, campaign: str) -> float | None:
        """When the earliest queued row becomes due (None: nothing queued)."""
        row = self._db.execute(
            "SELECT MIN(next_attempt_at) FROM messages "
            "WHERE campaign = ? AND state = 'queued'",
            (campaign,),
        ).fetchone()
        return row[0]

    def mark(self, row_id: int, state: State, code: int | None, reply: str,
             *, retry_at: float | None = None) -> None:
        """Record an outcome.  With `retry_at` the row goes back to `queued`
        (not before that time) and keeps the reply that deferred it."""
        self.record(Outcome(row_id, state, code, reply, retry_at))

    def record(self, outcome: Outcome) -> None:
        with self._write() as db:
            self._record(db, outcome)

    @staticmethod
    def _record(db: sqlite3.Connection, o: Outcome) -> None:
        if o.retry_at is not None:
            db.execute(
                "UPDATE messages SET state = 'queued', claimed_by = NULL, last_code = ?, "
                "last_reply = ?, next_attempt_at = ? WHERE id = ?",
                (o.code, o.reply, o.retry_at, o.row_id),
            )
        else:
            db.execute(
                "UPDATE messages SET state = ?, claimed_by = NULL, last_code = ?, "
                "last_reply = ?, finished_at = ? WHERE id = ?",
                (str(o.state), o.code, o.reply, time.time(), o.row_id),
            )

    def release(self, row_id: int) -> None:
        """Give a claim back untouched (nothing was sent): queued again, the
        attempt not counted."""
        with self._write() as db:
            db.execute(
                "UPDATE messages SET state = 'queued', claimed_by = NULL, "
                "attempts = attempts - 1 WHERE id = ? AND state = 'claimed'",
                (row_id,),
            )

    def requeue(self, campaign: str, states: Iterable[State]) -> int:
        """Put rows in the given states (e.g. deferred, unknown) back in the queue."""
        wanted = [str(s) for s in states]
        if str(State.SENT) in wanted or str(State.CLAIMED) in wanted:
            raise JournalError("Sent or in-flight messages cannot be queued again.")
        marks = ",".join("?" * len(wanted))
        with self._write() as db:
            cur = db.execute(
                f"UPDATE messages SET state = 'queued', next_attempt_at = 0, "
                f"finished_at = NULL WHERE campaign = ? AND state IN ({marks}) "
                f"AND NOT EXISTS (SELECT 1 FROM suppressed s WHERE s.address = messages.address)",
                (campaign, *wanted),
            )
        return cur.rowcount

    def sent_since(self, since: float) -> list[float]:
        """Times of messages sent since `since`, oldest first (seeds the rate limiter,
        so a daily limit also counts earlier runs)."""
        sql = ("SELECT finished_at FROM messages WHERE state = 'sent' AND finished_at >= ? "
               "ORDER BY finished_at")
        return [r[0] for r in self._db.execute(sql, (since,))]

    # -- reports ------------------------------------------------------------

    def counts(self, campaign: str) -> dict[State, int]:
        counts = dict.fromkeys(State, 0)
        sql = "SELECT state, COUNT(*) FROM messages WHERE campaign = ? GROUP BY state"
        for state, n in self._db.execute(sql, (campaign,)):
            counts[State(state)] = n
        return counts

    def rows(self, campaign: str, states: Iterable[State] | None = None) -> Iterator[Row]:
        sql = ("SELECT campaign, recipient, state, message_id, attempts, last_code, last_reply, "
               "queued_at, finished_at FROM messages WHERE campaign = ?")
        args: list[object] = [campaign]
        if states is not None:
            wanted = [str(s) for s in states]
            sql += f" AND state IN ({','.join('?' * len(wanted))})"
            args += wanted
        for r in self._db.execute(sql + " ORDER BY id", args):
            yield Row(r[0], r[1], State(r[2]), r[3], r[4], r[5], r[6], r[7], r[8])


class Staging:
    """Handle of a `Journal.staged()` block."""

    discarded = False

    def discard(self) -> None:
        self.discarded = True
