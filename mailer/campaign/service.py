"""The campaign service: the one core every campaign command calls.

    Campaigns(events).send(request, confirm)   plan, queue, ask, send, Sent copies, report
    Campaigns(events).resend / resume / cancel / run_due / status / campaigns / suppress_*

It owns the journal and the sender: the command line parses options, calls
one method, and prints what it returns.  What happens during a run (the plan,
the start, the progress, waits, Ctrl-C, the Sent copies) reaches the caller
through `Events`; questions go through a `confirm` callback, so a test, a cron
job or another program drives a campaign exactly as the CLI does.  The
requests, answers and events are in `events.py`.

This module is imported by `mailer status` and `mailer campaigns`: the SMTP
stack, the readers and the templates load only inside the methods that use them.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from .. import config
from ..errors import AuthError, ConfigError, MailerError, TlsError
from ..journal import Journal, journal_path
from ..models import Draft, State
from .events import (
    CampaignInfo,
    Cancelled,
    CancelShown,
    Declined,
    Events,
    Finished,
    PlanSummary,
    Quiet,
    ResendRequest,
    ResendShown,
    Scheduled,
    Sending,
    SendRequest,
    Starting,
    rate_text,
    server_line,
)

if TYPE_CHECKING:
    from ..accounts.credentials import Credentials
    from ..compose.message import Composer
    from ..journal import Row
    from ..mailbox.inbox import Sorted
    from ..smtp.sender import RetryPolicy, SendSummary
    from .plan import PlanItem, Tally

FEED_BATCH = 16  # drafts rendered and queued between turns of the send loop


# --- the service ------------------------------------------------------------------


class Campaigns:
    """Every campaign operation, on the journal of one state directory."""

    def __init__(self, events: Events | None = None, *, env: Mapping[str, str] | None = None,
                 handle_sigint: bool = False) -> None:
        self.events: Events = events if events is not None else Quiet()
        self.env = config.environment() if env is None else env
        self.handle_sigint = handle_sigint  # the CLI: Ctrl-C pauses the campaign
        self._credentials: Credentials | None = None

    # -- settings and the journal --

    @property
    def state_dir(self) -> Path:
        return config.state_dir(self.env)

    @property
    def credentials(self) -> Credentials:
        """The logins of this service's runs, built once: SMTP and IMAP ask the same
        object, so a password command runs once for the sending and the Sent copies."""
        if self._credentials is None:
            from ..accounts.credentials import Credentials  # the keyring: only when needed

            self._credentials = Credentials(self.env)
        return self._credentials

    def smtp_settings(self) -> config.SmtpSettings:
        """The SMTP account with its login, read once per service."""
        return self.credentials.smtp()

    def imap_settings(self, provider: str | None) -> config.ImapSettings | None:
        """The IMAP account with its login (accounts.credentials decides which), or
        None without one."""
        return self.credentials.imap(provider)

    def required_imap(self, provider: str | None) -> config.ImapSettings:
        settings = self.imap_settings(provider)
        if settings is None:
            raise ConfigError(
                "No IMAP server configured: set MAILER_IMAP_HOST (and _PORT, _SECURITY, "
                "_USERNAME, _PASSWORD; the login defaults to the SMTP one), or pass --provider.")
        return settings

    def open_journal(self) -> Journal | None:
        """The journal, None where none exists yet (a preview or a status query
        never creates one)."""
        path = journal_path(self.state_dir)
        return Journal(path) if path.exists() else None

    def writable_journal(self) -> Journal:
        return Journal(journal_path(self.state_dir))

    def known(self, name: str | None) -> tuple[Journal, str]:
        """The open journal and the named (default: latest) campaign, or an error
        listing the known campaigns."""
        journal = self.open_journal()
        known = [c.name for c in journal.campaigns()] if journal is not None else []
        chosen = name if name is not None else (known[-1] if known else None)
        if journal is None or chosen is None or chosen not in known:
            if journal is not None:
                journal.close()
            what = f"No campaign {name!r}" if name is not None else "No campaigns yet"
            raise ConfigError(f"{what}; known: {', '.join(known) or 'none'}.")
        return journal, chosen

    # -- send --

    def send(self, request: SendRequest,
             confirm: Callable[[PlanSummary], bool]) -> Finished | Declined | Scheduled:
        """Plan the files, queue the new contacts, ask, send (or schedule with --at)."""
        from . import holds
        from .plan import Tally, plan_files

        timing, campaign = request.timing, request.campaign
        with self.writable_journal() as journal:
            holds.check_can_queue(journal, campaign, timing.now, at_given=timing.at is not None)
            tally = Tally()
            drafts = tally.new_drafts(plan_files(
                request.paths, request.composer, journal, campaign=campaign,
                mapping=request.mapping, region=request.region, again=request.again,
                on_columns=self.events.columns))
            if (later := timing.later) is not None:
                ask = None if request.assume_yes else confirm
                return self._schedule(request, journal, later.astimezone(timing.now.tzinfo),
                                      drafts, tally, ask)
            options = request.options
            if request.assume_yes:  # nothing to ask: queue while the first ones are sent
                if timing.at is not None:  # --at now: whatever the campaign's schedule was
                    journal.set_schedule(campaign, timing.at.timestamp())
                try:
                    summary = self._send_now(journal, campaign, options,
                                             batched(drafts, FEED_BATCH))
                finally:  # the campaign exists once the feed queued something
                    record_files(request, journal)
                return Finished(summary, self._problems(journal, summary), tally)
            if not self._queue_and_ask(request, journal, drafts, tally, confirm):
                return Declined()
            summary = self._send_now(journal, campaign, options, header=False)
            return Finished(summary, self._problems(journal, summary))

    def _queue_and_ask(self, request: SendRequest, journal: Journal, drafts: Iterator[Draft],
                       tally: Tally, confirm: Callable[[PlanSummary], bool]) -> bool:
        """Stage the new drafts, show the plan and ask; False (journal unchanged)
        when the answer is no."""
        campaign, options, at = request.campaign, request.options, request.timing.at
        with journal.staged() as staging:
            if at is not None:  # --at now: whatever the campaign's schedule was
                journal.set_schedule(campaign, at.timestamp())
            added = journal.enqueue(campaign, drafts)
            record_files(request, journal)
            to_send = journal.counts(campaign)[State.QUEUED]
            how = (f"{server_line(self.smtp_settings())}, pace {rate_text(options.limits)}, "
                   f"{options.concurrency} connection(s).")
            summary = PlanSummary(campaign, tally, to_send, added, how=how)
            self.events.plan(summary)
            if to_send and not confirm(summary):
                staging.discard()
                return False
        return True

    def _schedule(self, request: SendRequest, journal: Journal, later: datetime,
                  drafts: Iterator[Draft], tally: Tally,
                  confirm: Callable[[PlanSummary], bool] | None) -> Declined | Scheduled:
        """`send --at` in the future: plan, ask, queue with the campaign's time, and stop."""
        campaign = request.campaign
        with journal.staged() as staging:
            journal.unpause(campaign)  # scheduling it again is the user taking it up again
            added = journal.enqueue(campaign, drafts, scheduled_at=later.timestamp())
            record_files(request, journal)
            queued = journal.counts(campaign)[State.QUEUED]
            summary = PlanSummary(campaign, tally, queued, added, at=later)
            self.events.plan(summary)
            if not queued:
                staging.discard()
                return Declined(empty=True)
            if confirm is not None and not confirm(summary):
                staging.discard()
                return Declined()
        return Scheduled(campaign, queued, added, later)

    def _send_now(self, journal: Journal, campaign: str, options: Sending,
                  feed: Iterator[list[Draft]] | None = None, *, header: bool = True,
                  retry: RetryPolicy | None = None) -> SendSummary:
        """Send what the campaign has queued, then file the Sent copies unless
        interrupted."""
        from ..smtp.sender import make_limiter, send_campaign_sync

        settings = self.smtp_settings()
        if settings.login is not None:
            settings.login.prepare()  # the keyring loads while the contacts are read
        limiter = make_limiter(journal, options.limits)
        queued = journal.counts(campaign)[State.QUEUED]
        plan = f"{queued} queued message(s)"
        if feed is not None:
            plan = "the new contacts as they are read" + (f" and {plan}" if queued else "")
        self.events.starting(Starting(server_line(settings), str(limiter), options.concurrency,
                                      campaign, plan, header))
        try:
            with self.events.sending() as update:
                summary = send_campaign_sync(journal, campaign, settings, limiter=limiter,
                                             concurrency=options.concurrency, progress=update,
                                             handle_sigint=self.handle_sigint, feed=feed,
                                             retry=retry, on_wait=self.events.waiting,
                                             on_interrupt=self.events.interrupted)
        except (AuthError, TlsError) as err:
            raise held(journal, campaign, err) from None
        if options.sent_copy and summary.stopped != "interrupted":  # Ctrl-C means stop
            self._file_sent_copies(journal, campaign, options.provider)
        return summary

    def _file_sent_copies(self, journal: Journal, campaign: str, provider: str | None) -> None:
        """The Sent-copy pass after a send.  Without IMAP settings it does nothing;
        an IMAP failure is a warning (the mail did go out), and the next send,
        resend or run-due of the campaign files what is missing."""
        try:  # a bad IMAP setting too: the mail is out, the summary must still follow
            settings = self.imap_settings(provider)
            if settings is None:
                return
            from ..mailbox.sentcopy import copy_sent  # the IMAP client: only with an account

            line = copy_sent(journal, campaign, settings).line()
        except MailerError as err:
            self.events.warning(f"mailer: warning: no copies in your Sent folder this time: "
                                f"{err}")
            return
        if line:
            self.events.note(line)

    @staticmethod
    def _problems(journal: Journal, summary: SendSummary) -> Path | None:
        from .problems import write_problems

        return write_problems(journal, summary.campaign)

    # -- resume, resend, cancel --

    def resume(self, name: str, options: Sending) -> Finished:
        """Send what the campaign still has queued (after Ctrl-C paused it)."""
        from . import holds

        journal, campaign = self.known(name)
        with journal:
            held = holds.check_can_resend(journal, campaign)
            if holds.due_later(held, time.time()) is not None:
                raise ConfigError(f"Campaign {campaign!r} is scheduled for later: `mailer "
                                  f"run-due` sends it then (or `mailer send ... --at now`).")
            summary = self._send_now(journal, campaign, options)
            return Finished(summary, self._problems(journal, summary))

    def resend(self, request: ResendRequest, options: Sending,
               show: Callable[[ResendShown], None],
               confirm: Callable[[ResendShown], bool]) -> Finished | Declined | int:
        """Queue the chosen recipients again and send them; the number queued
        (and nothing sent) when the campaign is scheduled for later."""
        from . import holds
        from . import resend as core
        from .plan import Tally

        journal, campaign = self.known(self._resend_campaign(request))
        with journal:
            held = holds.check_can_resend(journal, campaign)
            tally = Tally()
            files = None
            if request.paths and request.composer is not None:
                files = core.read_files(journal, campaign, request.paths, request.composer,
                                        mapping=request.mapping, region=request.region,
                                        tally=tally)
            plan = core.plan_resend(journal, campaign, request.states, request.only, files)
            shown = ResendShown(campaign, request.states, plan,
                                tally if files is not None else None)
            show(shown)
            if not plan.people:
                return Declined(empty=True)
            if not confirm(shown):
                return Declined()
            queued = core.apply_resend(journal, campaign, request.states, plan)
            if holds.due_later(held, time.time()) is not None:
                return queued
            summary = self._send_now(journal, campaign, options)
            return Finished(summary, self._problems(journal, summary))

    def _resend_campaign(self, request: ResendRequest) -> str | None:
        """The campaign named, else for --bounced the one the bounces were
        recorded in (not merely the latest), else the latest (None)."""
        if request.campaign is not None or not request.bounced:
            return request.campaign
        journal = self.open_journal()
        if journal is None:
            return None
        with journal:
            bounced = journal.campaigns_in_state(State.BOUNCED)
        if len(bounced) > 1:
            listed = ", ".join(repr(name) for name in bounced)
            raise ConfigError(f"Bounces are recorded in the campaigns {listed}: pass "
                              f"--campaign NAME to resend one of them.")
        return bounced[0] if bounced else None

    def cancel(self, name: str, confirm: Callable[[CancelShown], bool]) -> Cancelled:
        """Cancel what the campaign has not sent yet (queued and deferred)."""
        journal, campaign = self.known(name)
        with journal:
            counts = journal.counts(campaign)
            dropping = counts[State.QUEUED] + counts[State.DEFERRED]
            held = journal.campaign(campaign)
            if held is not None and held.cancelled_at is not None and not dropping:
                return Cancelled(campaign, "already")
            if not confirm(CancelShown(campaign, counts)):
                return Cancelled(campaign, "declined")
            return Cancelled(campaign, "done", journal.cancel(campaign))

    # -- run-due --

    def run_due(self, now: datetime, options: Sending, *,
                inbox: Callable[[InboxPass], None] | None = None) -> Iterator[SendSummary]:
        """One summary per due campaign sent (see `due.send_due`); `inbox` then
        sorts the inbox under the same lock."""
        from ..smtp.sender import RetryPolicy
        from .due import send_due

        def send(journal: Journal, campaign: str, _: config.SmtpSettings) -> SendSummary:
            # a 4xx defers at once: the journal's back-off takes over, not an in-process wait
            return self._send_now(journal, campaign, options, retry=RetryPolicy(attempts=1))

        def after_all(journal: Journal) -> None:
            if inbox is not None:
                inbox(InboxPass(self, journal))

        yield from send_due(self.state_dir, now, self.smtp_settings, send, after_all=after_all)

    @contextmanager
    def inbox(self) -> Iterator[InboxPass | None]:
        """A pass over the inbox on the journal; None when there is no journal yet."""
        journal = self.open_journal()
        if journal is None:
            yield None
            return
        with journal:
            yield InboxPass(self, journal)

    # -- reading --

    def status(self, name: str | None
               ) -> tuple[str, dict[State, int], list[Row], set[str]] | None:
        """The named campaign's counts, rows and the suppressed addresses (default: the
        campaign most recently sent from or changed by the inbox); None without any
        campaign; an error naming the known ones for an unknown name."""
        journal = self.open_journal()
        known: list[str] = []
        if journal is not None:
            with journal:
                known = [c.name for c in journal.campaigns()]
                campaign = name or journal.latest_campaign()
                if campaign in known:
                    assert campaign is not None
                    suppressed = {address for address, _why, _when in journal.suppress_list()}
                    return (campaign, journal.counts(campaign), list(journal.rows(campaign)),
                            suppressed)
        if name:
            raise ConfigError(f"No campaign {name!r}; known: "
                              f"{', '.join(sorted(known)) or 'none'}.")
        return None

    def campaigns(self) -> list[CampaignInfo]:
        """Every campaign with its times and counts per state."""
        journal = self.open_journal()
        if journal is None:
            return []
        with journal:
            return [CampaignInfo(c.name, c.created_at, c.scheduled_at, c.cancelled_at,
                                 c.paused_at, journal.counts(c.name), c.held_reason)
                    for c in journal.campaigns()]

    def plan(self, paths: Sequence[Path], composer: Composer, *, campaign: str,
             mapping: Mapping[str, str] | None = None, region: str = "DE",
             again: bool = False) -> AbstractContextManager[Iterator[PlanItem]]:
        """The plan a send would carry out (the preview), read against the journal
        if there is one; never creates it."""
        from .plan import plan_files

        @contextmanager
        def planned() -> Iterator[Iterator[PlanItem]]:
            journal = self.open_journal()
            try:
                yield plan_files(paths, composer, journal, campaign=campaign, mapping=mapping,
                                 region=region, again=again, on_columns=self.events.columns)
            finally:
                if journal is not None:
                    journal.close()

        return planned()

    # -- the do-not-mail list --

    def suppress_add(self, addresses: Sequence[str], reason: str) -> list[tuple[str, bool]]:
        with self.writable_journal() as journal:
            return [(a, journal.suppress_add(a, reason)) for a in addresses]

    def suppress_remove(self, addresses: Sequence[str]) -> list[tuple[str, bool]]:
        journal = self.open_journal()
        if journal is None:
            return [(a, False) for a in addresses]
        with journal:
            return [(a, journal.suppress_remove(a)) for a in addresses]

    def suppressed(self) -> list[tuple[str, str, float]]:
        journal = self.open_journal()
        if journal is None:
            return []
        with journal:
            return journal.suppress_list()


@dataclass(frozen=True, slots=True)
class InboxPass:
    """One pass over the inbox on the service's journal: read, then settle what
    the caller decided, and the problems report of every bounced campaign."""

    service: Campaigns
    journal: Journal

    def read(self, settings: config.ImapSettings, folder: str, *, pending: bool,
             seconds: float) -> Sorted:
        from ..mailbox import inbox

        return inbox.read_inbox(self.journal, settings, folder=folder, pending=pending,
                                seconds=seconds)

    def settle(self, found: Sorted, *, confirmed: set[int], declined: set[int]) -> None:
        from ..mailbox import inbox

        inbox.settle(self.journal, found, confirmed=confirmed, declined=declined)

    def problems(self, campaign: str) -> Path | None:
        from .problems import write_problems

        return write_problems(self.journal, campaign)

    def files(self, campaign: str) -> tuple[list[str], str]:
        """The contacts files and the profile the campaign was sent from; for a
        campaign an older mailer sent, the files its rows name ("file:line")."""
        contacts, profile = self.journal.files(campaign)
        if not contacts:
            named = (row.source.rpartition("#" if "#" in row.source else ":")[0]
                     for row in self.journal.rows(campaign) if row.source)
            contacts = list(dict.fromkeys(name for name in named if name))
        return contacts, profile


def held(journal: Journal, campaign: str, err: AuthError | TlsError) -> AuthError | TlsError:
    """Hold the campaign after an account error, and say so with the way on:
    the same error, its message followed by what is queued and what to run."""
    journal.hold(campaign, str(err))
    left = journal.counts(campaign)[State.QUEUED]
    name = shlex.quote(campaign)
    return type(err)(
        f"{err} Campaign {campaign!r} is held with {left} message(s) queued; `mailer run-due` "
        f"leaves it alone. Once the account works (`mailer check`), `mailer resume {name}` "
        f"sends them; `mailer cancel {name}` drops them.")


def record_files(request: SendRequest, journal: Journal) -> None:
    """The files a send read and its profile, for the advice after bounces."""
    journal.add_files(request.campaign, [str(p.resolve()) for p in request.paths],
                      str(request.profile.resolve()) if request.profile else "")


def batched(items: Iterator[Draft], size: int) -> Iterator[list[Draft]]:
    while batch := list(islice(items, size)):
        yield batch
