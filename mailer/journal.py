"""The journal: one SQLite file (WAL) recording every message of every campaign.

A recipient row moves through these states::

    queued ──claim──> claimed ──reply──> sent | deferred | failed
      ^                  │     no reply to the final dot ──> unknown
      ├── retry (4xx) ───┤     claimed by a process that died, content out ──> unknown
      └──────────────────┘     claimed by a process that died, content never out
                               sent ──inbox──> bounced | replied

`claimed` is committed *before* the SMTP transaction starts, and the outcome
right after the reply.  Once the server has answered DATA with 354, the claim
is marked as having its content go out (`content_at`), before the content is
written; with PIPELINING that mark, the previous message's outcome and the
claim of the message to begin behind its final dot are one commit.  A crash
leaves at most two `claimed` rows per connection.  The next run queues again
the ones whose content never left (MAIL, RCPT and DATA alone deliver nothing)
and turns the others into `unknown`, never resent on its own: the message may
or may not have left, and a duplicate is worse than a question.  `requeue()`
(used by `mailer resend`) puts chosen states back.

A campaign stopped by Ctrl-C is `paused_at`: `run-due` skips it (a crash sets
nothing, so run-due carries on after one); an explicit send or resume clears it.
A send stopped by an account error (refused login, TLS) leaves its campaign
`held`: paused with the reason, so that run-due does not retry a wrong
password every few minutes.

Scheduling (`mailer send --at`, `mailer run-due`): a campaign's `scheduled_at`
is UTC epoch seconds and is compared with the current epoch seconds, so a DST
change can neither repeat nor skip a send.  `run-due` also puts `deferred` rows
back in the queue once their back-off (`DeferredRetry`) has elapsed.

Which process owns a claim is decided by an advisory lock: every run holds an
exclusive `flock` on `<journal>.runs/<run id>.lock`; the kernel drops it when
the process dies, even on `kill -9`, so a claim whose lock can be taken is
stale.  Two overlapping runs never claim the same row: the claim is a single
`UPDATE ... WHERE state = 'queued'` inside `BEGIN IMMEDIATE`, and an outcome
is recorded only on a row its own run has claimed.

Durability: WAL with synchronous=NORMAL survives a killed process (the commit
is in the WAL before the claim returns); only a power loss can lose the last
transactions, which is why the claim rule is stated per process crash.

The way back (`mailer inbox`, mailbox/sentcopy.py): a bounce turns a `sent` (or
`unknown`) row into `bounced`, an answer into `replied`; both still count as
mailed.  `inbox` remembers every inbox message it has sorted (by folder,
UIDVALIDITY and UID) so that a rerun looks only at new mail, and
`sent_copies` records each Message-ID appended to the Sent folder: `appending`
is committed before the APPEND and `done` after it, so a crash in between is
resolved by searching the folder, never by appending twice.  The `appending`
mark is a claim like the SMTP one (with the run id): two runs filing the same
campaign's copies at once never file one twice.

The journal stores envelopes, Message-IDs, payloads, replies and timestamps;
never credentials.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .addresses import address_key
from .errors import JournalBusy, JournalError
from .files import open_state, private_dir
from .models import Draft, State, dated

SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (
    name          TEXT PRIMARY KEY,
    created_at    REAL NOT NULL,
    scheduled_at  REAL,                  -- epoch seconds; NULL = send now
    cancelled_at  REAL,
    paused_at     REAL,                  -- stopped by Ctrl-C or held; run-due leaves it alone
    held_reason   TEXT NOT NULL DEFAULT '', -- why it is held (an account error); '' for Ctrl-C
    files         TEXT NOT NULL DEFAULT '', -- JSON: the contacts files and profile sent from
    changed_at    REAL                   -- a bounce, reply or suppression last changed a row
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
    content_at      REAL,                -- the claim's content began to go out (after 354)
    finished_at     REAL,
    source          TEXT NOT NULL DEFAULT '',  -- the contact's "file:line", for resend
    UNIQUE (campaign, address)
);
-- Only queued rows are indexed for the claim: a claim takes a row out of this
-- index and its outcome never touches it (index churn is what a commit costs).
CREATE INDEX IF NOT EXISTS messages_due ON messages (campaign, next_attempt_at)
    WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS messages_address ON messages (address);
-- The inbox finds the message a bounce or reply refers to; a claim or an
-- outcome never changes message_id, so this index costs nothing per send.
CREATE INDEX IF NOT EXISTS messages_message_id ON messages (message_id);
-- The rendered message (without Date), apart from the row: SQLite rewrites a
-- whole row on every UPDATE, and a state change must not rewrite 5 kB.
CREATE TABLE IF NOT EXISTS payloads (
    id    INTEGER PRIMARY KEY REFERENCES messages(id),
    data  BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS sent_copies (
    message_id  TEXT PRIMARY KEY,
    state       TEXT NOT NULL,           -- 'appending' (may be in the folder) or 'done'
    folder      TEXT NOT NULL,
    at          REAL NOT NULL,
    claimed_by  TEXT                     -- run id appending it (NULL: an older mailer's)
);
CREATE TABLE IF NOT EXISTS inbox (
    folder       TEXT NOT NULL,
    uidvalidity  INTEGER NOT NULL,
    uid          INTEGER NOT NULL,
    kind         TEXT NOT NULL,          -- what mailbox/inbox.py made of it
    address      TEXT NOT NULL DEFAULT '',
    subject      TEXT NOT NULL DEFAULT '',
    detail       TEXT NOT NULL DEFAULT '',
    handled_at   REAL NOT NULL,
    PRIMARY KEY (folder, uidvalidity, uid)
);
CREATE TABLE IF NOT EXISTS suppressed (
    address   TEXT PRIMARY KEY,
    reason    TEXT NOT NULL DEFAULT '',
    added_at  REAL NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class DeferredRetry:
    """When `run-due` tries a `deferred` recipient again: `first` after its
    first attempt, doubling with every attempt, at most `cap` apart (15 min,
    30 min, 1 h, 2 h, 4 h, then every 6 h).  A row deferred after
    `max_attempts` attempts in total stays deferred until `mailer resend`."""

    first: float = 15 * 60
    cap: float = 6 * 3600
    max_attempts: int = 10

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the row's `attempts`-th attempt."""
        return min(self.cap, self.first * 2.0 ** min(max(0, attempts - 1), 30))


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
        return dated(self.payload, date)


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
    source: str = ""

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
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class CopyDue:
    """A sent message whose copy may still be missing from the Sent folder."""

    message_id: str
    finished_at: float  # when the server took it: the copy's date
    payload: bytes  # without Date
    maybe_there: bool  # an earlier APPEND may have landed before a crash

    def wire(self) -> bytes:
        return dated(self.payload, datetime.fromtimestamp(self.finished_at).astimezone())


@dataclass(frozen=True, slots=True)
class Campaign:
    name: str
    created_at: float
    scheduled_at: float | None
    cancelled_at: float | None
    paused_at: float | None = None
    held_reason: str = ""  # paused by an account error: the error, until resumed


BUSY_TIMEOUT = 30.0  # seconds a write waits for another process's write lock
# the states of a row whose mail may have arrived: the address counts as mailed
MAILED_STATES = "'sent', 'unknown', 'bounced', 'replied'"


def journal_path(state_dir: Path) -> Path:
    """Where the journal of a state directory (`config.state_dir`) lives."""
    return state_dir / "journal.sqlite3"


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            private_dir(path.parent)
            # 0600 whatever the umask (it holds every contact and every message), never a
            # link; SQLite gives its -wal and -shm files the same mode
            os.close(open_state(path))
            # autocommit mode: every transaction below is explicit
            self._db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT)
            self._set_up(time.monotonic() + BUSY_TIMEOUT)
        except (sqlite3.Error, OSError) as err:
            raise JournalError(f"Cannot open the journal {path}: {err}") from None
        self._staged = False
        self._run_id: str | None = None
        self._run_lock: int | None = None

    # -- housekeeping -------------------------------------------------------

    def _set_up(self, deadline: float) -> None:
        """WAL mode, the schema and any missing columns.  Two runs opening a new journal
        at once can find it locked where SQLite calls no busy handler (switching to WAL,
        creating the schema): the whole set-up is idempotent, so it is tried again."""
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                # checkpoint (the one step that fsyncs) every ~40 MB of WAL, not every 4 MB
                self._db.execute("PRAGMA wal_autocheckpoint=10000")
                self._db.execute("PRAGMA foreign_keys=ON")
                self._db.executescript(SCHEMA)
                self._add_missing_columns()
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                if self._db.in_transaction:
                    self._db.rollback()
                time.sleep(0.02)

    def _add_missing_columns(self) -> None:
        """A journal written by an older mailer lacks some of the later columns
        (`messages.source`, `campaigns.paused_at`, ...): they are added, empty."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(messages)")}
        if "source" not in columns:
            self._db.execute("ALTER TABLE messages ADD COLUMN source TEXT NOT NULL DEFAULT ''")
        if "content_at" not in columns:
            # an older mailer claimed before MAIL: its claims may have gone out whole
            self._db.execute("ALTER TABLE messages ADD COLUMN content_at REAL")
            self._db.execute("UPDATE messages SET content_at = COALESCE(claimed_at, 0) "
                             "WHERE state = 'claimed'")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(campaigns)")}
        if "paused_at" not in columns:
            self._db.execute("ALTER TABLE campaigns ADD COLUMN paused_at REAL")
        copies = {row[1] for row in self._db.execute("PRAGMA table_info(sent_copies)")}
        if "claimed_by" not in copies:
            self._db.execute("ALTER TABLE sent_copies ADD COLUMN claimed_by TEXT")
        for name in ("held_reason", "files"):
            if name not in columns:
                self._db.execute(f"ALTER TABLE campaigns ADD COLUMN {name} TEXT NOT NULL "
                                 f"DEFAULT ''")
        if "changed_at" not in columns:
            self._db.execute("ALTER TABLE campaigns ADD COLUMN changed_at REAL")

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
    def busy_wait(self, seconds: float) -> Iterator[None]:
        """Inside, a write waits at most `seconds` for another process's write lock
        (then JournalBusy) instead of the default 30 s: the sender waits for the
        lock in its event loop, where a wait stalls no other connection."""
        self._db.execute(f"PRAGMA busy_timeout = {max(0, round(seconds * 1000))}")
        try:
            yield
        finally:
            self._db.execute(f"PRAGMA busy_timeout = {round(BUSY_TIMEOUT * 1000)}")

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
            if getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY:
                raise JournalBusy(f"The journal {self.path} is locked by another "
                                  f"process.") from None
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
            "SELECT campaign FROM messages WHERE address = ? "
            f"AND state IN ({MAILED_STATES}) "
            "ORDER BY state = 'sent' DESC, finished_at LIMIT 1",
            (address_key(email),),
        ).fetchone()
        return row[0] if row else None

    def state_in(self, campaign: str, email: str) -> State | None:
        """This address's state in this campaign; None when it has no row there."""
        row = self._db.execute(
            "SELECT state FROM messages WHERE campaign = ? AND address = ?",
            (campaign, address_key(email)),
        ).fetchone()
        return State(row[0]) if row else None

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
            if cur.rowcount:
                db.execute("UPDATE campaigns SET changed_at = ? WHERE name IN "
                           "(SELECT campaign FROM messages WHERE address = ?)", (time.time(), key))
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
                    "message_id, smtputf8, queued_at, source) SELECT ?, ?, ?, ?, ?, ?, ?, ? "
                    "WHERE NOT EXISTS (SELECT 1 FROM suppressed WHERE address = ?)",
                    (campaign, key, d.recipient, d.sender, d.message_id, int(d.smtputf8), now,
                     d.source, key),
                )
                if cur.rowcount:
                    db.execute("INSERT INTO payloads (id, data) VALUES (?, ?)",
                               (cur.lastrowid, d.payload))
                    added += 1
        return added

    def campaigns(self) -> list[Campaign]:
        sql = ("SELECT name, created_at, scheduled_at, cancelled_at, paused_at, held_reason "
               "FROM campaigns "
               "ORDER BY created_at")
        return [Campaign(*row) for row in self._db.execute(sql)]

    def campaign(self, name: str) -> Campaign | None:
        row = self._db.execute(
            "SELECT name, created_at, scheduled_at, cancelled_at, paused_at, held_reason "
               "FROM campaigns "
            "WHERE name = ?",
            (name,),
        ).fetchone()
        return Campaign(*row) if row else None

    def set_schedule(self, campaign: str, scheduled_at: float | None) -> None:
        """Create the campaign if needed and set when it is due (None: now)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO campaigns (name, created_at, scheduled_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET scheduled_at = excluded.scheduled_at",
                (campaign, time.time(), scheduled_at),
            )

    def cancel(self, campaign: str, now: float | None = None) -> int:
        """Cancel what the campaign has not sent yet (queued and deferred rows)
        and mark it cancelled; sent, failed and unknown rows stay as they are.
        Returns how many rows were cancelled."""
        when = time.time() if now is None else now
        with self._write() as db:
            db.execute(
                "UPDATE campaigns SET cancelled_at = COALESCE(cancelled_at, ?) WHERE name = ?",
                (when, campaign),
            )
            cur = db.execute(
                "UPDATE messages SET state = 'cancelled', last_reply = 'cancelled', "
                "finished_at = ? WHERE campaign = ? AND state IN ('queued', 'deferred')",
                (when, campaign),
            )
        return cur.rowcount

    def pause(self, campaign: str, now: float | None = None) -> None:
        """Mark the campaign paused (Ctrl-C): `run-due` skips it until an
        explicit send, resend or resume takes it up again."""
        with self._write() as db:
            db.execute("UPDATE campaigns SET paused_at = ? WHERE name = ?",
                       (time.time() if now is None else now, campaign))

    def add_files(self, campaign: str, contacts: Iterable[str], profile: str) -> None:
        """Remember the contacts files (added to those of earlier sends) and the
        profile a send of the campaign used: the inbox's advice names them."""
        known, _ = self.files(campaign)
        merged = list(dict.fromkeys([*known, *contacts]))
        with self._write() as db:
            db.execute("UPDATE campaigns SET files = ? WHERE name = ?",
                       (json.dumps({"contacts": merged, "profile": profile}), campaign))

    def files(self, campaign: str) -> tuple[list[str], str]:
        """The contacts files and the profile recorded for the campaign (none
        for a campaign sent by an older mailer)."""
        row = self._db.execute("SELECT files FROM campaigns WHERE name = ?",
                               (campaign,)).fetchone()
        try:
            recorded = json.loads(row[0]) if row and row[0] else {}
            return [str(f) for f in recorded.get("contacts", [])], str(recorded.get("profile", ""))
        except (ValueError, AttributeError):  # damaged by hand: the advice falls back
            return [], ""

    def campaigns_in_state(self, state: State) -> list[str]:
        """Campaigns, oldest first, with a row in this state."""
        sql = ("SELECT c.name FROM campaigns c WHERE EXISTS (SELECT 1 FROM messages m "
               "WHERE m.campaign = c.name AND m.state = ?) ORDER BY c.created_at, c.rowid")
        return [row[0] for row in self._db.execute(sql, (str(state),))]

    def hold(self, campaign: str, reason: str, now: float | None = None) -> None:
        """Pause the campaign because the account cannot send (a refused login,
        TLS): `run-due` must not try the same password every few minutes."""
        with self._write() as db:
            db.execute("UPDATE campaigns SET paused_at = ?, held_reason = ? WHERE name = ?",
                       (time.time() if now is None else now, reason, campaign))

    def unpause(self, campaign: str) -> None:
        paused = self._db.execute("SELECT 1 FROM campaigns WHERE name = ? AND paused_at IS NOT "
                                  "NULL", (campaign,)).fetchone()
        if paused is None:  # the usual case: no write, so no wait for another's lock
            return
        with self._write() as db:
            db.execute("UPDATE campaigns SET paused_at = NULL, held_reason = '' WHERE name = ? "
                       "AND paused_at IS NOT NULL", (campaign,))

    def due_campaigns(self, now: float) -> list[str]:
        """Campaigns, oldest first, that are not cancelled nor paused, whose time has come
        (`scheduled_at` unset or <= `now`, both UTC epoch seconds) and that have
        queued rows due by `now`."""
        sql = ("SELECT c.name FROM campaigns c WHERE c.cancelled_at IS NULL "
               "AND c.paused_at IS NULL "
               "AND (c.scheduled_at IS NULL OR c.scheduled_at <= ?) "
               "AND EXISTS (SELECT 1 FROM messages m WHERE m.campaign = c.name "
               "  AND m.state = 'queued' AND m.next_attempt_at <= ?) "
               "ORDER BY c.created_at, c.rowid")
        return [row[0] for row in self._db.execute(sql, (now, now))]

    def retry_deferred(self, now: float, policy: DeferredRetry = DeferredRetry()) -> int:
        """Queue again the `deferred` rows of campaigns not cancelled whose
        back-off has elapsed by `now`; returns how many."""
        rows = self._db.execute(
            "SELECT m.id, m.attempts, m.finished_at FROM messages m "
            "JOIN campaigns c ON c.name = m.campaign "
            "WHERE m.state = 'deferred' AND c.cancelled_at IS NULL AND c.paused_at IS NULL "
            "AND m.attempts < ?",
            (policy.max_attempts,),
        ).fetchall()
        due = [(row_id,) for row_id, attempts, finished in rows
               if (finished or 0.0) + policy.delay(attempts) <= now]
        if not due:
            return 0
        with self._write() as db:
            db.executemany(
                "UPDATE messages SET state = 'queued', next_attempt_at = 0, finished_at = NULL "
                "WHERE id = ? AND state = 'deferred'",
                due,
            )
        return len(due)

    def latest_campaign(self) -> str | None:
        """The campaign most recently created, sent from, or changed by the inbox or a
        suppression: the one a user asking for "the status" means."""
        row = self._db.execute(
            "SELECT name FROM campaigns c ORDER BY MAX(created_at, COALESCE(changed_at, 0), "
            "COALESCE((SELECT MAX(finished_at) FROM messages m WHERE m.campaign = c.name), 0)) "
            "DESC, rowid DESC LIMIT 1"
        ).fetchone()
        return row[0] if row else None

    # -- the send loop ------------------------------------------------------

    @property
    def run_id(self) -> str:
        """This process's run id; holds its lock file from the first use on."""
        if self._run_id is None:
            run_id = uuid.uuid4().hex
            fd = open_state(self._lock_path(run_id))
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
        return private_dir(folder) / f"{run_id}.lock"

    def _owner_alive(self, run_id: str) -> bool:
        if run_id == self._run_id:
            return True
        path = self._lock_path(run_id)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)  # flock needs no write access
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
        """Settle the claims left by dead processes: one whose content began to
        go out becomes `unknown`, one whose content never left is queued again
        (the attempt not counted).  Returns how many became unknown."""
        owners = [r[0] for r in self._db.execute(
            "SELECT DISTINCT claimed_by FROM messages WHERE state = 'claimed'"
        )]
        unknown = 0
        for owner in owners:
            if self._owner_alive(owner):
                continue
            with self._write() as db:
                db.execute(
                    "UPDATE messages SET state = 'queued', claimed_by = NULL, "
                    "attempts = attempts - 1 "
                    "WHERE state = 'claimed' AND claimed_by = ? AND content_at IS NULL",
                    (owner,),
                )
                cur = db.execute(
                    "UPDATE messages SET state = 'unknown', finished_at = ?, last_reply = "
                    "'the sending process stopped before the server replied' "
                    "WHERE state = 'claimed' AND claimed_by = ?",
                    (time.time(), owner),
                )
                unknown += cur.rowcount
        return unknown

    def claim(self, campaign: str, now: float | None = None, *,
              record: Iterable[Outcome] = (), going: int | None = None) -> Claimed | None:
        """Atomically claim the next due `queued` row of the campaign: rows never
        tried first (in queue order), then retries by due time.  The order matches
        the `messages_due` index, so a claim is one index probe, not a sort.

        `record` and `going` (see `settle`) are written in the same transaction:
        one commit a message for the send loop, just as durable as on their own,
        since nothing awaits in between."""
        when = time.time() if now is None else now
        with self._write() as db:
            self._settle(db, record, going)
            row = db.execute(
                "UPDATE messages SET state = 'claimed', claimed_by = ?, claimed_at = ?, "
                "content_at = NULL, attempts = attempts + 1 "
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

    def settle(self, outcomes: Iterable[Outcome] = (), *, going: int | None = None) -> None:
        """Record `outcomes` and mark claim `going` as having its content go out
        (its DATA was answered 354), in one transaction.  A claim so marked
        becomes `unknown` if its process dies; one never marked is queued
        again.  Each change lands only on a row this run has claimed."""
        with self._write() as db:
            self._settle(db, outcomes, going)

    def _settle(self, db: sqlite3.Connection, outcomes: Iterable[Outcome],
                going: int | None) -> None:
        for outcome in outcomes:
            self._record(db, outcome)
        if going is not None:
            db.execute("UPDATE messages SET content_at = ? "
                       "WHERE id = ? AND state = 'claimed' AND claimed_by = ?",
                       (time.time(), going, self.run_id))

    def next_due(self, campaign: str) -> float | None:
        """When the earliest queued row becomes due (None: nothing queued)."""
        row = self._db.execute(
            "SELECT MIN(next_attempt_at) FROM messages "
            "WHERE campaign = ? AND state = 'queued'",
            (campaign,),
        ).fetchone()
        return float(row[0]) if row[0] is not None else None

    def mark(self, row_id: int, state: State, code: int | None, reply: str,
             *, retry_at: float | None = None) -> None:
        """Record an outcome.  With `retry_at` the row goes back to `queued`
        (not before that time) and keeps the reply that deferred it."""
        self.settle([Outcome(row_id, state, code, reply, retry_at)])

    def _record(self, db: sqlite3.Connection, o: Outcome) -> None:
        if o.retry_at is not None:
            db.execute(
                "UPDATE messages SET state = 'queued', claimed_by = NULL, last_code = ?, "
                "last_reply = ?, next_attempt_at = ? "
                "WHERE id = ? AND state = 'claimed' AND claimed_by = ?",
                (o.code, o.reply, o.retry_at, o.row_id, self.run_id),
            )
        else:
            db.execute(
                "UPDATE messages SET state = ?, claimed_by = NULL, last_code = ?, "
                "last_reply = ?, finished_at = ? "
                "WHERE id = ? AND state = 'claimed' AND claimed_by = ?",
                (str(o.state), o.code, o.reply, time.time(), o.row_id, self.run_id),
            )

    def release(self, row_id: int) -> None:
        """Give a claim back untouched (nothing was sent): queued again, the
        attempt not counted."""
        with self._write() as db:
            db.execute(
                "UPDATE messages SET state = 'queued', claimed_by = NULL, content_at = NULL, "
                "attempts = attempts - 1 WHERE id = ? AND state = 'claimed'",
                (row_id,),
            )

    def requeue(self, campaign: str, states: Iterable[State],
                addresses: Iterable[str] | None = None) -> int:
        """Put rows in the given states (e.g. deferred, unknown) back in the
        queue; with `addresses`, only those recipients."""
        wanted = [str(s) for s in states]
        if {str(State.SENT), str(State.CLAIMED), str(State.REPLIED)} & set(wanted):
            raise JournalError("Sent or in-flight messages cannot be queued again.")
        marks = ",".join("?" * len(wanted))
        sql = (f"UPDATE messages SET state = 'queued', next_attempt_at = 0, "
               f"finished_at = NULL WHERE campaign = ? AND state IN ({marks}) "
               f"AND NOT EXISTS (SELECT 1 FROM suppressed s WHERE s.address = messages.address)")
        args: list[object] = [campaign, *wanted]
        if addresses is not None:
            keys = [address_key(a) for a in addresses]
            sql += f" AND address IN ({','.join('?' * len(keys))})"
            args += keys
        with self._write() as db:
            cur = db.execute(sql, args)
        return cur.rowcount

    def replace_recipient(self, campaign: str, old: str, draft: Draft) -> bool:
        """Give a row that was never delivered (`failed`, `deferred`, `queued`
        or `bounced`) a corrected recipient: the row is updated in place and queued afresh, its
        reply saying which address it replaced.  False when the new address is
        already in the campaign or suppressed, or no such row exists."""
        key = address_key(draft.recipient)
        if self.is_suppressed(key):
            return False
        with self._write() as db:
            taken = db.execute("SELECT 1 FROM messages WHERE campaign = ? AND address = ?",
                               (campaign, key)).fetchone()
            if taken:
                return False
            row = db.execute(
                "UPDATE messages SET address = ?, recipient = ?, sender = ?, message_id = ?, "
                "smtputf8 = ?, source = ?, state = 'queued', attempts = 0, last_code = NULL, "
                "last_reply = ?, next_attempt_at = 0, finished_at = NULL, queued_at = ? "
                "WHERE campaign = ? AND address = ? "
                "AND state IN ('failed', 'deferred', 'queued', 'bounced') RETURNING id",
                (key, draft.recipient, draft.sender, draft.message_id, int(draft.smtputf8),
                 draft.source, f"replaces {old}", time.time(), campaign, address_key(old)),
            ).fetchone()
            if row is not None:
                db.execute("UPDATE payloads SET data = ? WHERE id = ?", (draft.payload, row[0]))
        return row is not None

    def payload(self, campaign: str, address: str) -> bytes | None:
        """The queued message for a recipient (headers and body, no Date)."""
        row = self._db.execute(
            "SELECT p.data FROM messages m JOIN payloads p ON p.id = m.id "
            "WHERE m.campaign = ? AND m.address = ?",
            (campaign, address_key(address)),
        ).fetchone()
        return row[0] if row else None

    def sent_since(self, since: float) -> list[float]:
        """Times of messages sent since `since`, oldest first (seeds the rate limiter,
        so a daily limit also counts earlier runs)."""
        sql = ("SELECT finished_at FROM messages "
               "WHERE state IN ('sent', 'bounced', 'replied') AND finished_at >= ? "
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
               "queued_at, finished_at, source FROM messages WHERE campaign = ?")
        args: list[object] = [campaign]
        if states is not None:
            wanted = [str(s) for s in states]
            sql += f" AND state IN ({','.join('?' * len(wanted))})"
            args += wanted
        for r in self._db.execute(sql + " ORDER BY id", args):
            yield Row(r[0], r[1], State(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], r[9])

    # -- the way back: Sent copies and the inbox ----------------------------

    _COPIES_DUE = ("FROM messages m LEFT JOIN sent_copies c ON c.message_id = m.message_id "
                   "WHERE m.campaign = ? AND m.state IN ('sent', 'bounced', 'replied') "
                   "AND (c.state IS NULL OR c.state = 'appending') ORDER BY m.finished_at, m.id")

    def copies_due(self, campaign: str) -> list[CopyDue]:
        """Messages of the campaign that left (sent, or bounced or replied
        since) but are not yet known to be in the Sent folder, oldest first."""
        sql = ("SELECT m.message_id, m.finished_at, p.data, c.state "
               + self._COPIES_DUE.replace("FROM messages m ",
                                          "FROM messages m JOIN payloads p ON p.id = m.id "))
        return [CopyDue(r[0], r[1] or 0.0, r[2], r[3] == "appending")
                for r in self._db.execute(sql, (campaign,))]

    def claim_copy(self, campaign: str, folder: str) -> CopyDue | None:
        """Claim the next message of the campaign that left and has no copy in
        the Sent folder yet, as the SMTP claim does: committed `appending`
        before the APPEND, so that two runs never file the same copy, and one
        whose claimer died is taken over (it may be in the folder already)."""
        with self._write() as db:
            rows = db.execute("SELECT m.id, m.message_id, m.finished_at, c.state, c.claimed_by "
                              + self._COPIES_DUE, (campaign,))
            for row_id, message_id, finished, state, owner in rows.fetchall():
                if state == "appending" and owner and self._owner_alive(owner):
                    continue  # another run is appending it right now
                db.execute("INSERT INTO sent_copies (message_id, state, folder, at, claimed_by) "
                           "VALUES (?, 'appending', ?, ?, ?) ON CONFLICT (message_id) DO UPDATE "
                           "SET folder = excluded.folder, at = excluded.at, "
                           "claimed_by = excluded.claimed_by",
                           (message_id, folder, time.time(), self.run_id))
                data = db.execute("SELECT data FROM payloads WHERE id = ?", (row_id,)).fetchone()
                return CopyDue(message_id, finished or 0.0, data[0], state == "appending")
        return None

    def copy_done(self, message_id: str) -> None:
        with self._write() as db:
            db.execute("UPDATE sent_copies SET state = 'done', at = ? WHERE message_id = ?",
                       (time.time(), message_id))

    def first_campaign_start(self) -> float | None:
        sql = "SELECT MIN(created_at) FROM campaigns"
        first: float | None = self._db.execute(sql).fetchone()[0]
        return first

    def by_message_id(self, message_ids: Iterable[str]) -> Row | None:
        """The row that sent one of these Message-IDs ("<...>"), if any."""
        ids = [i.strip() for i in message_ids if i.strip()]
        if not ids:
            return None
        sql = (f"SELECT campaign, address FROM messages "
               f"WHERE message_id IN ({','.join('?' * len(ids))}) LIMIT 1")
        row = self._db.execute(sql, ids).fetchone()
        return self._row(row[0], row[1]) if row else None

    def by_address(self, email: str) -> Row | None:
        """The latest row that mailed this address (sent, unknown, bounced or replied)."""
        row = self._db.execute(
            "SELECT campaign, address FROM messages WHERE address = ? "
            f"AND state IN ({MAILED_STATES}) "
            "ORDER BY finished_at DESC, id DESC LIMIT 1",
            (address_key(email),),
        ).fetchone()
        return self._row(row[0], row[1]) if row else None

    def _row(self, campaign: str, address: str) -> Row | None:
        r = self._db.execute(
            "SELECT campaign, recipient, state, message_id, attempts, last_code, last_reply, "
            "queued_at, finished_at, source FROM messages WHERE campaign = ? AND address = ?",
            (campaign, address),
        ).fetchone()
        return Row(r[0], r[1], State(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], r[9]) if r else None

    def mark_returned(self, campaign: str, recipient: str, state: State, note: str) -> bool:
        """A sent (or unknown) row becomes `bounced` or `replied` with a note
        (the diagnostic, or the reply's date and subject) in place of the SMTP
        server's 250; a bounce also overrides `replied`.  False when the row is
        in no such state."""
        if state not in (State.BOUNCED, State.REPLIED):
            raise JournalError(f"{state} is not a state the inbox sets.")
        before = ("'sent', 'unknown', 'replied'" if state is State.BOUNCED
                  else "'sent', 'unknown'")
        with self._write() as db:
            cur = db.execute(
                f"UPDATE messages SET state = ?, last_code = NULL, last_reply = ? "
                f"WHERE campaign = ? AND address = ? AND state IN ({before})",
                (str(state), note, campaign, address_key(recipient)),
            )
            if cur.rowcount:
                db.execute("UPDATE campaigns SET changed_at = ? WHERE name = ?",
                           (time.time(), campaign))
        return cur.rowcount == 1

    def inbox_known(self, folder: str, uidvalidity: int, *, pending: bool = True) -> set[int]:
        """UIDs of the folder's messages sorted before (under this UIDVALIDITY);
        with pending=False not those still `unclear`."""
        sql = ("SELECT uid FROM inbox WHERE folder = ? AND uidvalidity = ? "
               "AND (? OR kind != 'unclear')")
        return {r[0] for r in self._db.execute(sql, (folder, uidvalidity, pending))}

    def inbox_record(self, folder: str, uidvalidity: int, uid: int, kind: str,
                     address: str, subject: str, detail: str) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO inbox (folder, uidvalidity, uid, kind, address, "
                "subject, detail, handled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (folder, uidvalidity, uid, kind, address, subject, detail, time.time()),
            )


class Staging:
    """Handle of a `Journal.staged()` block."""

    discarded = False

    def discard(self) -> None:
        self.discarded = True
