"""The send loop: K workers, each with one SMTP connection, draining a campaign's queue.

Each worker repeats: take a rate-limit slot, claim the next due row in the
journal (committed before the SMTP transaction starts), begin the transaction
(MAIL, RCPT, DATA), mark the claim's content as going out once DATA is
answered 354, send the content and the final dot, record the outcome
(committed right after the reply, together with the next journal write when
the worker goes straight on).  Where the server offers PIPELINING, the next
row is claimed in the same commit as that mark and begins in the same write
as the final dot of the one before (RFC 2920): one round trip and one commit a
message.  The queue is the journal itself, streamed one row at a time, so
memory does not grow with the campaign.  After a crash at most 2K rows are
left `claimed`, two per worker; the next run reports the ones whose content
went out (at most K) as `unknown` and queues the others again (journal.py).

Outcomes by reply class:
- 2xx: sent.
- 4xx, or a connection dropped or timed out before the final dot of DATA was
  written: retried in this run after an exponential back-off with jitter, up
  to `RetryPolicy.attempts` tries, then left `deferred` for `mailer resend`.
  421 also closes the connection and makes that worker wait before
  reconnecting.
- No reply to the final dot (closed, reset, or nothing within the data
  timeout): `unknown`.  The server may have delivered it (RFC 1047), so
  nothing resends it: not this run, not a rerun, `run-due` or `resend`
  without `--unknown`.
- 5xx: failed, with the server's reply kept.  `error_budget` failures in a
  row pause the run: something is wrong with the account or the message.
- Authentication or TLS failures are `SmtpError`s: the run stops at once,
  and the claimed rows are given back, so nobody is marked.

Ctrl-C (first): no new transactions; the ones in flight finish and are
recorded; one begun behind a final dot goes back to the queue at its 354 (and
its connection is closed: nothing else may follow a 354).  A second Ctrl-C cancels them: a row whose
final dot was already written becomes `unknown`, the others go back to the
queue untouched.

The journal's write lock: while another process (a second `mailer`, a backup)
holds it, a journal write here fails after a few milliseconds and is retried
from the event loop (`patiently`), so the other connections keep talking to
the server instead of all stalling inside SQLite's own 30 s busy wait.
"""

from __future__ import annotations

import asyncio
import random
import signal
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from functools import partial
from typing import ParamSpec, TypeVar

from ..config import SmtpSettings
from ..errors import AuthError, JournalBusy, JournalError, SmtpError
from ..journal import Claimed, Journal, Outcome
from ..models import Draft, State
from .pace import Rate, RateLimiter
from .transport import GO_AHEAD, Connection, Envelope, Lost, NoFinalReply, Reply

T = TypeVar("T")
P = ParamSpec("P")

LOCK_POLL = 0.01  # seconds a journal write may block the event loop on another's lock
LOCK_PATIENCE = 30.0  # seconds to keep retrying before the run gives up


async def patiently(write: Callable[[], T], patience: float = LOCK_PATIENCE) -> T:
    """A journal write (inside `Journal.busy_wait(LOCK_POLL)`), retried with
    back-off while another process holds the write lock."""
    deadline = time.monotonic() + patience
    pause = LOCK_POLL
    while True:
        try:
            return write()
        except JournalBusy as err:
            if time.monotonic() >= deadline:
                raise JournalError(f"{err} It stayed locked for {patience:g} s; run the "
                                   f"same command again once it is free.") from None
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.2)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3  # tries of a 4xx recipient within one run
    base: float = 30.0  # first back-off in seconds; doubles with every try
    cap: float = 600.0

    def delay(self, tries: int) -> float:
        """Back-off after the `tries`-th failed try, with +-50 % jitter so that
        retries of many recipients do not arrive together."""
        return min(self.cap, self.base * 2.0 ** (tries - 1)) * random.uniform(0.5, 1.5)


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot for progress displays, sent after every outcome."""

    sent: int
    deferred: int
    failed: int
    remaining: int
    rate: str
    unknown: int = 0


@dataclass(frozen=True, slots=True)
class Wait:
    """The run is waiting longer than LONG_WAIT: for what, until when (epoch s)."""

    what: str
    until: float


LONG_WAIT = 10.0  # seconds; shorter waits are part of the pace, not news


@dataclass(frozen=True, slots=True)
class SendSummary:
    campaign: str
    counts: dict[State, int]  # the whole campaign in the journal, after the run
    sent: int  # in this run
    deferred: int
    failed: int
    recovered_unknown: int  # claims of a crashed earlier run, found at the start
    elapsed: float
    stopped: str = ""  # "" ran to the end; otherwise why it stopped early
    logins: int = 0
    fed: int = 0  # rows the feed queued during the run
    unknown: int = 0  # in this run: no reply to the final dot, or cut off after it

    @property
    def complete(self) -> bool:
        """Everyone reached a final good state: nothing failed, deferred,
        unknown or still queued."""
        bad = (State.QUEUED, State.CLAIMED, State.DEFERRED, State.FAILED, State.UNKNOWN)
        return not self.stopped and all(self.counts[s] == 0 for s in bad)


@dataclass
class _Run:
    journal: Journal
    campaign: str
    limiter: RateLimiter
    retry: RetryPolicy
    error_budget: int
    progress: Callable[[Progress], None] | None
    remaining: int
    on_wait: Callable[[Wait], None] | None = None
    announced: tuple[str, float] = ("", 0.0)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stopped: str = ""
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    consecutive_failures: int = 0
    tries: dict[int, int] = field(default_factory=dict)  # row id -> tries in this run
    feeding: bool = False  # a feed is still queueing drafts
    fed_rows: int = 0
    fed: asyncio.Event = field(default_factory=asyncio.Event)
    workers: list[_Worker] = field(default_factory=list)

    @property
    def in_flight(self) -> int:
        """Rows the workers hold: claimed, not yet settled."""
        return sum((w.taken is not None) + (w.ready is not None) for w in self.workers)

    @property
    def finishing(self) -> int:
        """Messages whose content is going out: what a first Ctrl-C lets finish."""
        return sum(w.ready is not None for w in self.workers)

    def halt(self, reason: str) -> None:
        if not self.stopped:
            self.stopped = reason
        self.stop.set()

    async def until_stopped(self, awaitable: Awaitable[object]) -> bool:
        """Await, unless the run is stopped first; True if it completed."""
        task = asyncio.ensure_future(awaitable)
        stopper = asyncio.ensure_future(self.stop.wait())
        await asyncio.wait((task, stopper), return_when=asyncio.FIRST_COMPLETED)
        for t in (task, stopper):
            t.cancel()
        return task.done() and not task.cancelled()

    def report(self) -> None:
        if self.progress is not None:
            self.progress(
                Progress(self.sent, self.deferred, self.failed, self.remaining,
                         str(self.limiter), self.unknown)
            )

    async def acquire_unless_stopped(self) -> int | None:
        """A rate-limit slot, or None when the run is stopped first."""
        task = asyncio.ensure_future(self.limiter.acquire())
        if not await self.until_stopped(task):
            return None
        slot = task.result()
        if self.stop.is_set():  # stopped while the slot was granted
            self.limiter.refund(slot)
            return None
        return slot

    def announce(self, what: str, seconds: float) -> None:
        """Tell the user about a wait longer than LONG_WAIT, once (every
        connection may run into the same one)."""
        if self.on_wait is None or seconds <= LONG_WAIT:
            return
        until = time.time() + seconds
        last_what, last_until = self.announced
        if what == last_what and abs(until - last_until) < LONG_WAIT:
            return
        self.announced = (what, until)
        self.on_wait(Wait(what, until))

    async def wait_for_work(self) -> bool:
        """Nothing due right now: wait for the feed or a retry; False when done."""
        if self.feeding:
            self.fed.clear()
            await self.until_stopped(self.fed.wait())
            return True
        due = self.journal.next_due(self.campaign)
        if due is None:
            return False
        self.announce("retries of temporarily refused messages", due - time.time())
        await self.until_stopped(asyncio.sleep(max(0.0, due - time.time())))
        return True

    async def claim(self, slot: int, record: Sequence[Outcome], going: int | None = None
                    ) -> Claimed | None:
        """Claim the next due row with `slot` (given back to the limiter when
        there is none), in one commit with `record` and `going` (Journal.claim)."""
        row = await patiently(partial(self.journal.claim, self.campaign, record=record,
                                      going=going))
        if row is None:
            self.limiter.refund(slot)
        return row

    async def release(self, row: Claimed) -> None:
        """Give a claim back untouched: nothing of its content went out."""
        await patiently(partial(self.journal.release, row.id))

    def replied(self, row: Claimed, reply: Reply) -> Outcome:
        """The outcome of the reply that ended a row's transaction."""
        if 400 <= reply.code < 500:
            return self.defer(row, reply.code, reply.text)
        self.tries.pop(row.id, None)
        self.remaining -= 1
        if 200 <= reply.code < 300:
            self.sent += 1
            self.consecutive_failures = 0
            self.report()
            return Outcome(row.id, State.SENT, reply.code, reply.text)
        self.failed += 1
        self.consecutive_failures += 1
        if self.consecutive_failures >= self.error_budget:
            self.halt(
                f"paused after {self.consecutive_failures} failures in a row "
                f"(last: {reply}); check the replies (`mailer status`), then run the "
                f"same command again"
            )
        self.report()
        return Outcome(row.id, State.FAILED, reply.code, reply.text)

    def no_reply(self, row: Claimed, err: NoFinalReply) -> Outcome:
        """No reply to the final dot: the message may have been delivered."""
        self.tries.pop(row.id, None)
        self.unknown += 1
        self.remaining -= 1
        self.report()
        return Outcome(row.id, State.UNKNOWN, None, str(err))

    def defer(self, row: Claimed, code: int | None, reply: str) -> Outcome:
        tries = self.tries.get(row.id, 0) + 1
        if tries < self.retry.attempts:
            self.tries[row.id] = tries
            outcome = Outcome(row.id, State.QUEUED, code, reply,
                              retry_at=time.time() + self.retry.delay(tries))
        else:
            self.tries.pop(row.id, None)
            self.deferred += 1
            self.remaining -= 1
            outcome = Outcome(row.id, State.DEFERRED, code, reply)
        self.report()
        return outcome

    async def enqueue(self, batch: Sequence[Draft]) -> None:
        added = await patiently(partial(self.journal.enqueue, self.campaign, batch))
        self.fed_rows += added
        self.remaining += added

    async def feed_from(self, batches: Iterator[Sequence[Draft]]) -> None:
        """Queue drafts while the workers send: rendering the next messages
        overlaps with waiting for the server's replies."""
        try:
            for batch in batches:
                await self.enqueue(batch)
                self.fed.set()
                await asyncio.sleep(0)  # let the workers take the replies that came in
                if self.stop.is_set():
                    return
        except Exception:
            self.halt("stopped while reading the contacts")  # finish what is in flight
            raise
        finally:
            self.feeding = False
            self.fed.set()


@dataclass
class _Worker:
    """One connection's share of a run: claim a row (with a rate-limit slot),
    begin it (MAIL, RCPT, DATA), mark its content as going out once DATA is
    answered 354, finish it (the content and the final dot), repeat.  Where
    the server pipelines, the next row is claimed in that same commit and
    begins in the same write as the final dot of the one before: one round
    trip and one commit a message.  An outcome waits for the next commit when
    nothing is awaited in between, and is committed on its own before the
    worker waits or talks to the server without one."""

    run: _Run
    conn: Connection
    taken: Claimed | None = None  # claimed; not begun yet, or to begin again
    ready: Claimed | None = None  # DATA was answered 354: its content goes next
    pending: list[Outcome] = field(default_factory=list)  # outcomes not yet committed

    def __post_init__(self) -> None:
        self.run.workers.append(self)

    async def loop(self) -> None:
        try:
            while True:
                if self.ready is not None:
                    await self.finish(self.ready)
                    continue
                if self.taken is None and not await self.take():
                    return
                if self.run.stop.is_set():
                    return  # nothing new begins: the claim is given back below
                assert self.taken is not None
                await self.begin(self.taken)
        except SmtpError as err:
            self.run.halt(str(err))  # the other workers stop after their transaction
            raise
        except asyncio.CancelledError:
            self.conn.close()  # stopping now: no polite QUIT to a server busy with our message
            await self.cancelled()
            raise
        finally:
            if self.taken is not None:
                await self.run.release(self.taken)
            await self.flush()
            await self.conn.quit()

    def outcomes(self) -> list[Outcome]:
        """The outcomes not yet committed, to commit now."""
        outcomes, self.pending = self.pending, []
        return outcomes

    async def flush(self) -> None:
        if self.pending:
            await patiently(partial(self.run.journal.settle, self.outcomes()))

    async def take(self) -> bool:
        """Wait for a rate-limit slot and claim a due row, connecting meanwhile;
        False when this worker is done (the run stopped, or nothing is left)."""
        run, conn = self.run, self.conn
        while not run.stop.is_set():
            wait, rule = run.limiter.blocked()
            if wait > 0 and not run.feeding and run.remaining <= run.in_flight:
                return False  # nothing left but what is in flight: do not wait for a slot
            if not conn.connected or wait > 0:
                await self.flush()
                if not conn.connected:
                    await conn.connect()
                if rule is not None:
                    run.announce(f"the rate limit {rule}", wait)
                slot = await run.acquire_unless_stopped()
                if slot is None:
                    return False
            else:
                slot = await run.limiter.acquire()  # free: returns without suspending
            self.taken = await run.claim(slot, self.outcomes())
            if self.taken is not None:
                return True
            if not await run.wait_for_work():
                return False
        return False

    async def begin(self, row: Claimed) -> None:
        await self.flush()  # nothing to commit it with before the round trip
        try:
            reply = await self.conn.begin(_envelope(row))
        except Lost as err:
            self.taken = None
            self.pending.append(self.run.defer(row, None, str(err)))
            return
        self.taken = None
        await self.began(row, reply)

    async def began(self, row: Claimed, reply: Reply) -> None:
        """A row's DATA answered 354: mark its content as going out (with the
        outcomes not yet committed, and the claim of the next row where it can
        begin behind this one's final dot), then it is ready.  Otherwise its
        refusal is its outcome."""
        run = self.run
        if reply.code == AUTH_REQUIRED:
            await run.release(row)
            raise _login_wanted(reply)
        if reply.code != GO_AHEAD:
            self.pending.append(run.replied(row, reply))
            return
        if run.stop.is_set():  # stopped meanwhile: nothing new goes out
            await run.release(row)
            self.conn.close()  # no content may follow the 354, and only closing says so
            return
        slot = await self.slot_now()
        if slot is None:
            await patiently(partial(run.journal.settle, self.outcomes(), going=row.id))
        else:
            self.taken = await run.claim(slot, self.outcomes(), going=row.id)
        self.ready = row

    async def slot_now(self) -> int | None:
        """A slot for the next row, when it can begin behind the final dot of the
        one ready: the server pipelines and a slot is free now (the server is
        waiting for content: nothing may wait here)."""
        run = self.run
        if not self.conn.pipelines or run.limiter.blocked()[0] > 0:
            return None
        return await run.limiter.acquire()  # free: returns without suspending

    async def finish(self, row: Claimed) -> None:
        """The ready row's content and final dot, with the next row behind it
        where one was claimed for that."""
        run = self.run
        then = None if self.taken is None else _envelope(self.taken)
        try:
            done = await self.conn.finish(row.wire(), then)
        except Lost as err:
            self.ready = None
            self.pending.append(run.defer(row, None, str(err)))
            return
        except NoFinalReply as err:
            self.ready = None
            self.pending.append(run.no_reply(row, err))
            return
        self.ready = None
        if done.reply.code == AUTH_REQUIRED:
            await run.release(row)
            raise _login_wanted(done.reply)
        self.pending.append(run.replied(row, done.reply))
        if done.then is not None:
            assert self.taken is not None
            behind, self.taken = self.taken, None
            if isinstance(done.then, Lost):
                self.pending.append(run.defer(behind, None, str(done.then)))
            else:
                await self.began(behind, done.then)
        if done.reply.code == 421:  # the server is shedding load: give it a rest
            await self.flush()
            rest = run.retry.delay(1)
            run.announce("the server, which answered 421 (busy)", rest)
            await run.until_stopped(asyncio.sleep(rest))

    async def cancelled(self) -> None:
        """Stopped at once (a second Ctrl-C): the ready row is `unknown` once its
        final dot went out, and given back untouched before."""
        row, self.ready = self.ready, None
        if row is None:
            return
        if self.conn.dot_written:
            self.run.unknown += 1
            await patiently(partial(
                self.run.journal.mark, row.id, State.UNKNOWN, None,
                "stopped after the whole message, before the server's reply"))
        else:
            await self.run.release(row)


AUTH_REQUIRED = 530  # "authentication required": the account, not the recipient


def _login_wanted(reply: Reply) -> AuthError:
    return AuthError(f"The server wants a login before sending: {reply}. "
                     f"Set MAILER_SMTP_USERNAME, then store the password with "
                     f"`mailer login` (or check MAILER_SMTP_AUTH).")


def _envelope(row: Claimed) -> Envelope:
    return Envelope(row.sender, row.recipient, row.smtputf8)


def make_limiter(journal: Journal, rates: tuple[Rate, ...]) -> RateLimiter:
    """A limiter that also counts what earlier runs sent within its longest window,
    so a daily limit holds across reruns."""
    longest = max((r.per for r in rates), default=0.0)
    history = journal.sent_since(time.time() - longest) if rates else []
    return RateLimiter(rates, history=history)


async def send_campaign(
    journal: Journal,
    campaign: str,
    settings: SmtpSettings,
    *,
    limiter: RateLimiter,
    concurrency: int = 1,
    progress: Callable[[Progress], None] | None = None,
    retry: RetryPolicy | None = None,
    error_budget: int = 10,
    tls_context: ssl.SSLContext | None = None,
    handle_sigint: bool = False,
    feed: Iterable[Sequence[Draft]] | None = None,
    on_wait: Callable[[Wait], None] | None = None,
    on_interrupt: Callable[[int | None], None] | None = None,
) -> SendSummary:
    """Send every due queued message of `campaign`; returns the summary.
    `feed`: batches of drafts to queue while sending (see `_Run.feed_from`).
    `on_wait`: told about every wait longer than LONG_WAIT (rate limit, retries).
    `on_interrupt`: told at once of a Ctrl-C (with `handle_sigint`): the number
    of transactions in flight being finished, or None for the second, which
    stops them.  An interrupted campaign is left paused (`Journal.pause`);
    calling this for a paused campaign is the explicit resume.
    Raises `SmtpError` when the server cannot be used (nobody is marked)."""
    settings.check_safe()
    started = time.monotonic()
    recovered = await _take_up(journal, campaign)
    run = _Run(journal, campaign, limiter, retry or RetryPolicy(), max(1, error_budget),
               progress, remaining=journal.counts(campaign)[State.QUEUED], on_wait=on_wait)
    batches = iter(feed) if feed is not None else None
    await _prime(run, batches)
    k = max(1, concurrency if feed is not None else min(concurrency, run.remaining))
    conns = await _connections(settings, tls_context, k)
    tasks: list[asyncio.Task[None]] = []
    try:
        with _sigint(run, tasks, on_interrupt) if handle_sigint else nullcontext():
            results = await _drive(run, conns, batches, tasks)
    finally:
        for c in conns:
            c.close()
        journal.end_run()
    _settle(run, results)
    return SendSummary(
        campaign=campaign, counts=journal.counts(campaign), sent=run.sent,
        deferred=run.deferred, failed=run.failed, recovered_unknown=recovered,
        elapsed=time.monotonic() - started, stopped=run.stopped,
        logins=sum(c.logins for c in conns), fed=run.fed_rows, unknown=run.unknown,
    )


async def _take_up(journal: Journal, campaign: str) -> int:
    """Clear a pause (this run is the resume) and turn the claims of dead runs
    into `unknown`; returns how many."""
    with journal.busy_wait(LOCK_POLL):  # another process's write lock: wait in the loop
        await patiently(partial(journal.unpause, campaign))
        return await patiently(journal.recover)


async def _prime(run: _Run, batches: Iterator[Sequence[Draft]] | None) -> None:
    """Queue from the feed until there is something to send: else never log in."""
    if batches is None:
        return
    with run.journal.busy_wait(LOCK_POLL):
        while not run.remaining:
            batch = next(batches, None)
            if batch is None:
                break
            await run.enqueue(batch)


async def _connections(settings: SmtpSettings, tls_context: ssl.SSLContext | None,
                       k: int) -> list[Connection]:
    """K connections, not yet connected, sharing one hostname and TLS context."""
    local_hostname = await asyncio.to_thread(socket.getfqdn)  # once, not per connection
    if tls_context is None and settings.security != "none":
        tls_context = ssl.create_default_context()  # one for all connections: loading CAs is slow
    return [Connection(settings, tls_context=tls_context, local_hostname=local_hostname)
            for _ in range(k)]


@contextmanager
def _sigint(run: _Run, tasks: list[asyncio.Task[None]],
            on_interrupt: Callable[[int | None], None] | None) -> Iterator[None]:
    """Ctrl-C stops the run: the first lets what is in flight finish, the
    second cancels it."""
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        second = run.stop.is_set()
        if second:
            for task in tasks:
                task.cancel()
        run.halt("interrupted")
        if on_interrupt is not None:
            on_interrupt(None if second else run.finishing)

    loop.add_signal_handler(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def _drive(run: _Run, conns: list[Connection],
                 batches: Iterator[Sequence[Draft]] | None,
                 tasks: list[asyncio.Task[None]]) -> list[object]:
    """Log in once, then run a worker per connection (and the feed) to the end;
    returns what each task ended with.  The other connections open their
    sessions (TCP, TLS, EHLO) meanwhile, but send AUTH only after that login."""
    if not run.remaining:
        return []
    opening = [asyncio.create_task(_open(c)) for c in conns[1:]]
    try:
        await conns[0].connect()  # one login first: a bad password stops here, once
    except BaseException:
        for task in opening:
            task.cancel()
        await asyncio.gather(*opening, return_exceptions=True)  # the caller closes them
        raise
    run.feeding = batches is not None
    tasks.append(asyncio.create_task(_Worker(run, conns[0]).loop()))
    tasks.extend(asyncio.create_task(_when_open(run, c, t))
                 for c, t in zip(conns[1:], opening, strict=True))
    if batches is not None:
        tasks.append(asyncio.create_task(run.feed_from(batches)))
    with run.journal.busy_wait(LOCK_POLL):
        return list(await asyncio.gather(*tasks, return_exceptions=True))


async def _open(conn: Connection) -> None:
    """Open a session ahead of its login; a failure is left for the worker's own
    connect to meet again and report."""
    with suppress(SmtpError):
        await conn.open()


async def _when_open(run: _Run, conn: Connection, opening: asyncio.Task[None]) -> None:
    await opening  # cancelling the worker here cancels the opening too
    await _Worker(run, conn).loop()


def _settle(run: _Run, results: list[object]) -> None:
    """Raise what a task failed with (an account error first); an interrupted
    campaign is left paused, so that cron's run-due does not carry on."""
    for result in results:
        if isinstance(result, SmtpError):
            raise result
        if isinstance(result, asyncio.CancelledError):
            run.halt("interrupted")
        elif isinstance(result, BaseException):
            raise result
    if run.stopped == "interrupted":
        run.journal.pause(run.campaign)


def _in_new_loop(func: Callable[P, Coroutine[object, object, T]]) -> Callable[P, T]:
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return asyncio.run(func(*args, **kwargs))

    return run


send_campaign_sync = _in_new_loop(send_campaign)  # for callers without an event loop
