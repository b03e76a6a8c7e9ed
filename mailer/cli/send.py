"""Commands: `send`, `status` and `suppress add|remove|list`.

`send` plans (`plan.plan_files`, the same plan as `preview`), prints the plan's
summary line and what will happen, asks, then queues and sends.  Queuing and
asking share one journal transaction: answering no leaves the journal as it
was.  With --yes there is nothing to ask, so messages are rendered and queued
while the first ones are being sent.

The campaign name defaults to the first contacts file's name without its
extension (`contacts.csv` -> "contacts"), so running the same command again
resumes the same campaign instead of starting a new one.

`send --at WHEN` plans, asks and queues exactly the same way, records the time
on the campaign and returns: `mailer run-due` sends it when due (`campaign/holds.py`
has the rules for campaigns scheduled or cancelled).

While sending (`send_now`, shared with resend, resume and run-due): on a
terminal a progress bar on stderr; without one (cron, a pipe) the server, the
login, the pace and the plan first, then a line at most every 30 s, a line
for every wait longer than 10 s, and the summary.  Ctrl-C is answered at
once; the campaign is then paused and the closing message names the
commands that resume or cancel it.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import ConfigError
from ..models import Draft, State
from ..sanitize import clean, shown
from .app import (
    composer_for,
    console,
    handle_errors,
    main,
    map_option,
    message_options,
    note_columns,
    open_journal,
    parse_mappings,
    paths_argument,
    profile_option,
    sending_options,
    writable_journal,
    yes_option,
)
from .inbox import file_sent_copies, sent_copy_option

if TYPE_CHECKING:
    from ..campaign.plan import Tally
    from ..config import SmtpSettings
    from ..journal import Journal, Row
    from ..schedule.when import Timing
    from ..smtp.pace import Rate
    from ..smtp.sender import Progress, RetryPolicy, SendSummary, Wait

EXIT_INTERRUPTED = 130
FEED_BATCH = 16  # drafts rendered and queued between turns of the send loop
PROGRESS_EVERY = 30.0  # seconds between progress lines without a terminal


@dataclass(frozen=True, slots=True)
class Sending:
    """The sending options as given: what to send with, and what to repeat in
    the command that resumes a paused campaign."""

    rates: tuple[str, ...] = ()
    provider: str | None = None
    concurrency: int = 1
    again: tuple[str, ...] = ()  # the command that resumes; default `mailer resume NAME ...`
    sent_copy: bool = True  # file what was sent in the IMAP Sent folder (--no-sent-copy)

    def resume_command(self, campaign: str) -> str:
        return shlex.join(self.again or ("mailer", "resume", campaign, *self.args()))

    @property
    def limits(self) -> tuple[Rate, ...]:
        return choose_rates(self.rates, self.provider)

    def args(self) -> list[str]:
        return [*(["--provider", self.provider] if self.provider else []),
                *(arg for rate in self.rates for arg in ("--rate", rate)),
                *(["--concurrency", str(self.concurrency)] if self.concurrency != 1 else [])]


def choose_rates(rates: tuple[str, ...], provider: str | None) -> tuple[Rate, ...]:
    """--rate wins over --provider; with neither, the cautious generic preset."""
    from ..smtp.pace import PRESETS, parse_rates

    return parse_rates(rates) if rates else PRESETS[provider or "generic"]


@main.command()
@paths_argument
@profile_option()
@click.option("--campaign", "campaign_name",
              help="Campaign name [default: the first contacts file's name].")
@sending_options
@click.option("--again", is_flag=True,
              help="Also mail people who got this mail in an earlier campaign.")
@yes_option
@message_options
@map_option
@click.option("--at", "at", metavar="WHEN",
              help="Queue now, send later from `mailer run-due`: 'mon 9am', 'Montag 9 Uhr', "
                   "'tomorrow 9:00', 'in 2h', '2026-11-30T09:00' (local time), 'now'.")
@click.option("--now", "now_text", hidden=True, help="Pretend it is this ISO time (tests).")
@sent_copy_option
@handle_errors
def send(paths: tuple[Path, ...], profile_path: Path | None, campaign_name: str | None,
         rates: tuple[str, ...], provider: str | None, concurrency: int, again: bool,
         assume_yes: bool, templates: Path | None, lang: str | None,
         mappings: tuple[str, ...], at: str | None, now_text: str | None,
         no_sent_copy: bool) -> None:
    """Queue one mail per new contact and send them (or, with --at, schedule them)."""
    from .. import config
    from ..campaign import holds
    from ..campaign.plan import Tally, plan_files
    from ..schedule.when import Timing, format_when

    settings, limits = config.smtp_settings(config.environment()), choose_rates(rates, provider)
    campaign = campaign_name or clean(paths[0].stem)  # a file name is outside text
    timing = Timing.of(at, now_text)
    region, composer = composer_for(profile_path, templates, lang)
    # after every option and the profile are checked: a script learns of a bad --at first
    if not assume_yes and not sys.stdin.isatty():
        raise ConfigError("No terminal to confirm on: check with `mailer preview`, then pass "
                          "--yes to send without asking.")
    if (later := timing.later) is not None:  # before anything is read or recorded
        click.echo(f"Scheduled for {format_when(later, timing.now)}.")
    with writable_journal() as journal:
        holds.check_can_queue(journal, campaign, timing.now, at_given=timing.at is not None)
        tally = Tally()
        drafts = tally.new_drafts(plan_files(
            paths, composer, journal, campaign=campaign, mapping=parse_mappings(mappings),
            region=region, again=again, on_columns=note_columns))
        if later is not None:
            schedule_later(journal, campaign, later, timing.now, drafts, tally, assume_yes)
            return
        how = f"{server_line(settings)}, pace {rate_text(limits)}, {concurrency} connection(s)."
        # resumed by the same command: it also queues the contacts not read yet
        options = Sending(rates, provider, concurrency, again=("mailer", *sys.argv[1:]),
                          sent_copy=not no_sent_copy)
        feed = feed_while_sending(journal, campaign, drafts, timing) if assume_yes else None
        if feed is None and not queue_and_ask(journal, campaign, drafts, tally, timing, how):
            return
        summary = send_now(journal, campaign, settings, options, feed, header=assume_yes)
        if feed is not None:
            show_plan(tally, f"Campaign {campaign!r}: {summary.fed} new message(s) queued "
                             f"by this run (--yes: while sending).")
        report_and_exit(journal, summary, options)


def feed_while_sending(journal: Journal, campaign: str, drafts: Iterator[Draft],
                       timing: Timing) -> Iterator[list[Draft]]:
    """--yes: nothing to ask, so the drafts are queued while the first ones are
    sent (rendering overlaps with waiting for the server's replies)."""
    if timing.at is not None:  # --at now: whatever the campaign's schedule was
        journal.set_schedule(campaign, timing.at.timestamp())
    return batched(drafts, FEED_BATCH)


def rate_text(limits: tuple[Rate, ...]) -> str:
    from ..smtp.pace import RateLimiter

    return str(RateLimiter(limits))  # "one message every 3 s (20/min), at most 500/day"


def server_line(settings: SmtpSettings) -> str:
    who = f", as {settings.username}" if settings.username else ""
    return f"SMTP server {settings.host}:{settings.port} ({settings.security}{who})"


def queue_and_ask(journal: Journal, campaign: str, drafts: Iterator[Draft], tally: Tally,
                  timing: Timing, how: str) -> bool:
    """Stage the new drafts, show the plan and ask; False (journal unchanged)
    when the answer is no."""
    with journal.staged() as staging:
        if timing.at is not None:  # --at now
            journal.set_schedule(campaign, timing.at.timestamp())
        journal.enqueue(campaign, drafts)
        to_send = journal.counts(campaign)[State.QUEUED]
        show_plan(tally, will_send(campaign, to_send, tally.new))
        if not to_send:
            return True  # the sender reports that there is nothing to send
        console().print(how)
        if not click.confirm(f"Send {to_send} message(s) now?", default=False):
            staging.discard()
            click.echo("Nothing queued, nothing sent.")
            return False
    return True


def will_send(campaign: str, to_send: int, new: int, at: str = "now") -> str:
    """What happens next, in people: the new ones and those an earlier run left queued."""
    earlier = to_send - new
    more = f" ({new} new + {earlier} queued by an earlier run)" if earlier > 0 else ""
    return f"Campaign {campaign!r}: {to_send} message(s) to send {at}{more}."


def schedule_later(journal: Journal, campaign: str, later: datetime, now: datetime,
                   drafts: Iterator[Draft], tally: Tally, assume_yes: bool) -> None:
    """`send --at` in the future: plan, ask, queue with the campaign's time, and stop."""
    from rich.text import Text

    at = f"{later.astimezone(now.tzinfo):%a %Y-%m-%d %H:%M %Z}"
    with journal.staged() as staging:
        journal.unpause(campaign)  # scheduling it again is the user taking it up again
        added = journal.enqueue(campaign, drafts, scheduled_at=later.timestamp())
        queued = journal.counts(campaign)[State.QUEUED]
        show_plan(tally, will_send(campaign, queued, tally.new, f"on {at}"))
        if not queued:
            staging.discard()
            click.echo("Nothing to schedule.")
            return
        question = (f"Queue {queued} message(s) for {at}?" if added == queued else
                    f"Send these {queued} message(s) on {at}?")
        if not assume_yes and not click.confirm(question, default=False):
            staging.discard()
            click.echo("Nothing queued, nothing scheduled.")
            return
    done = (f"Queued {queued} message(s) of campaign {campaign!r} for {at}" if added == queued
            else f"{queued} message(s) of campaign {campaign!r} wait for {at} ({added} queued "
                 f"now)")
    console().print(Text(
        f"{done}; nothing sent now.\n"
        f"`mailer run-due` sends them once due: let cron or a systemd timer start it every "
        f"5 minutes with `mailer schedule install` (from this folder, so it reads the same "
        f".env), or run `mailer run-due` yourself after that time.\n"
        f"`mailer campaigns` shows the schedule; `mailer cancel {shlex.quote(campaign)}` drops "
        f"it."))


def show_plan(tally: Tally, next_step: str) -> None:
    """The entries to act on with their reasons, the summary line, what happens next."""
    from rich.text import Text

    out = console()
    for item in tally.notes:
        who = item.email or item.name or "-"  # a rejected entry: the name it carried
        out.print(Text(f"  {item.source}: {who}: {item.status.value}: "
                       f"{item.reason}"))
    if tally.more_notes:
        out.print(f"  ... and {tally.more_notes} more (`mailer preview` lists every entry)")
    out.print(Text(tally.line()))
    out.print(Text(next_step))


def batched(items: Iterator[Draft], size: int) -> Iterator[list[Draft]]:
    while batch := list(islice(items, size)):
        yield batch


def send_now(journal: Journal, campaign: str, settings: SmtpSettings, options: Sending,
             feed: Iterator[list[Draft]] | None = None, *, header: bool = True,
             retry: RetryPolicy | None = None) -> SendSummary:
    """Send what the campaign has queued: a progress bar on a terminal, timed
    lines without one; then the Sent copies, unless interrupted.  `header`: first
    print the server, login, pace and plan (False when the question before sending
    has just shown them)."""
    from ..smtp.sender import make_limiter, send_campaign_sync

    limiter = make_limiter(journal, options.limits)
    terminal = sys.stderr.isatty()
    if header or not terminal:
        queued = journal.counts(campaign)[State.QUEUED]
        plan = f"{queued} queued message(s)"
        if feed is not None:
            plan = "the new contacts as they are read" + (f" and {plan}" if queued else "")
        console().print(f"{server_line(settings)}; pace {limiter}; "
                        f"{options.concurrency} connection(s).")
        console().print(f"Campaign {campaign!r}: sending {plan}.")
    with progress_display(terminal) as update:
        summary = send_campaign_sync(journal, campaign, settings, limiter=limiter,
                                     concurrency=options.concurrency, progress=update,
                                     handle_sigint=True, feed=feed, retry=retry,
                                     on_wait=show_wait, on_interrupt=show_interrupt)
    if options.sent_copy and summary.stopped != "interrupted":  # Ctrl-C means stop
        file_sent_copies(journal, campaign, options.provider)
    return summary


def clock(epoch: float | None = None) -> str:
    """Local time for log lines; with the date when it is not today."""
    moment = datetime.fromtimestamp(time.time() if epoch is None else epoch)
    return f"{moment:%H:%M:%S}" if moment.date() == datetime.now().date() else \
        f"{moment:%Y-%m-%d %H:%M:%S}"


def show_wait(wait: Wait) -> None:
    click.echo(f"{clock()} waiting for {wait.what} until {clock(wait.until)}")


def show_interrupt(in_flight: int | None) -> None:
    if in_flight is None:
        click.echo("Stopping now: a message whose whole content was already sent is "
                   "recorded as 'unknown', the others stay queued.", err=True)
    else:
        click.echo(f"Ctrl-C: stopping. Finishing the {in_flight} message(s) in flight and "
                   f"recording them; press Ctrl-C again to stop at once.", err=True)


@contextmanager
def progress_display(terminal: bool) -> Iterator[Callable[[Progress], None]]:
    """A rich progress bar on stderr on a terminal; else a line at most every
    PROGRESS_EVERY seconds, with the counts, the rate reached and the pace."""
    if not terminal:
        last = time.monotonic()
        first: float | None = None  # when the first message was sent: the rate counts from it

        def line(p: Progress) -> None:
            nonlocal last, first
            now = time.monotonic()
            if first is None and p.sent:
                first = now
            if now - last < PROGRESS_EVERY:
                return
            last = now
            per_minute = (p.sent - 1) * 60.0 / (now - first) if first and now > first else 0.0
            click.echo(f"{clock()} sent {p.sent}, deferred {p.deferred}, failed {p.failed}, "
                       f"unknown {p.unknown}, {p.remaining} left; {per_minute:.1f}/min "
                       f"(pace {p.rate})")

        yield line
        return
    import rich.progress as bars
    from rich.console import Console

    columns = (bars.TextColumn("[bold]sending"), bars.BarColumn(),
               bars.TextColumn("{task.description}"), bars.TimeRemainingColumn())
    with bars.Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=None)

        def update(p: Progress) -> None:
            done = p.sent + p.deferred + p.failed + p.unknown
            bar.update(task, completed=done, total=done + p.remaining, description=(
                f"sent {p.sent}  deferred {p.deferred}  failed {p.failed}  "
                f"unknown {p.unknown}  left {p.remaining}  pace {p.rate}"))

        yield update


def report_and_exit(journal: Journal, summary: SendSummary, options: Sending) -> None:
    """The summary, the problems report, and the exit code."""
    from ..campaign.problems import write_problems

    if summary.logins == 0:
        click.echo("Nothing to send.")
    show_summary(summary)
    report = write_problems(journal, summary.campaign)
    if report is not None:
        click.echo(f"Failed, deferred or unknown recipients with the server's replies: {report}")
    finish(summary, options)


def show_summary(summary: SendSummary) -> None:
    from rich.table import Table

    out = console()
    table = Table(title=f"Campaign {summary.campaign!r}")
    table.add_column("state")
    table.add_column("recipients", justify="right")
    for state, count in summary.counts.items():
        if count:
            table.add_row(str(state), str(count))
    out.print(table)
    out.print(f"This run: {summary.sent} sent, {summary.deferred} deferred, {summary.failed} "
              f"failed, {summary.unknown} unknown in {summary.elapsed:.1f} s over "
              f"{summary.logins} login(s).")
    again = shlex.join(["mailer", "resend", "--unknown", "--campaign", summary.campaign])
    if summary.unknown:
        out.print(f"{summary.unknown} message(s) are 'unknown': the server took the whole "
                  f"message and then gave no reply, so it may have delivered them. They are "
                  f"not sent again; `{again}` sends them anyway.")
    if summary.recovered_unknown:
        out.print(f"{summary.recovered_unknown} message(s) from an interrupted run are "
                  f"'unknown': they may or may not have been delivered, so they were not sent "
                  f"again. `{again}` sends them anyway.")


def finish(summary: SendSummary, options: Sending) -> None:
    left = summary.counts[State.QUEUED]
    if summary.stopped == "interrupted":
        show_paused(summary.campaign, left, options)
        sys.exit(EXIT_INTERRUPTED)
    if summary.stopped:
        click.echo(f"Stopped: {summary.stopped}. {left} still queued.", err=True)
        sys.exit(1)
    if summary.counts[State.DEFERRED]:
        click.echo(f"{summary.counts[State.DEFERRED]} deferred after several tries: "
                   f"`mailer resend --campaign {shlex.quote(summary.campaign)}` tries them "
                   f"again.", err=True)
    sys.exit(0 if summary.complete else 1)


def show_paused(campaign: str, left: int, options: Sending) -> None:
    resume = options.resume_command(campaign)
    click.echo(f"Paused campaign {campaign!r} after Ctrl-C: {left} message(s) still queued. "
               f"`mailer run-due` leaves a paused campaign alone.\n"
               f"  to resume it:       {resume}\n"
               f"  to cancel the rest: {shlex.join(['mailer', 'cancel', campaign])}", err=True)


@main.command()
@click.option("--campaign", "campaign_name",
              help="Campaign [default: the one most recently sent from or changed by the inbox].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@handle_errors
def status(campaign_name: str | None, as_json: bool) -> None:
    """Show a campaign's counts and every recipient's state from the journal."""
    found = read_status(campaign_name)
    if as_json:
        name, counts, rows, suppressed = found or (None, {}, [], set())
        click.echo(json.dumps({"campaign": name, "counts": {str(s): n for s, n in counts.items()},
                               "suppressed": sum(_suppressed(r, suppressed) for r in rows),
                               "recipients": [r.to_json() | {"suppressed": _suppressed(
                                   r, suppressed)} for r in rows]}, ensure_ascii=False))
    elif found is None:
        from .. import config

        # where it looked: a cron job or another shell may use another MAILER_HOME
        home = config.state_dir(config.environment())
        click.echo(f"No campaigns yet in {home} (the state directory; MAILER_HOME sets it).")
    else:
        show_status(*found)


def read_status(name: str | None
                ) -> tuple[str, dict[State, int], list[Row], set[str]] | None:
    """The named campaign's counts, rows and the suppressed addresses (default: the
    campaign most recently sent from or changed); None without any campaign; an
    error naming the known ones for an unknown name."""
    journal = open_journal()
    known: list[str] = []
    if journal is not None:
        with journal:
            known = [c.name for c in journal.campaigns()]
            campaign = name or journal.latest_campaign()
            if campaign in known:
                suppressed = {address for address, _why, _when in journal.suppress_list()}
                return (campaign, journal.counts(campaign), list(journal.rows(campaign)),
                        suppressed)
    if name:
        raise ConfigError(f"No campaign {name!r}; known: {', '.join(sorted(known)) or 'none'}.")
    return None


def _suppressed(row: Row, suppressed: set[str]) -> bool:
    from ..addresses import address_key

    return address_key(row.recipient) in suppressed


def show_status(campaign: str, counts: dict[State, int], rows: list[Row],
                suppressed: set[str]) -> None:
    """The table; a person on the do-not-mail list shows it beside their state
    ("sent, suppressed"): mailed once, and never again."""
    from rich.table import Table
    from rich.text import Text

    marked = [_suppressed(r, suppressed) for r in rows]
    totals = [f"{n} {s}" for s, n in counts.items() if n]
    if any(marked):
        totals.append(f"{sum(marked)} suppressed")
    table = Table(title=f"Campaign {campaign!r}: " + ", ".join(totals))
    for column in ("recipient", "state", "attempts", "last reply", "when"):
        table.add_column(column, overflow="fold")
    for r, is_suppressed in zip(rows, marked, strict=True):
        when = datetime.fromtimestamp(r.finished_at or r.queued_at).strftime("%Y-%m-%d %H:%M")
        reply = f"{r.last_code} {r.last_reply}" if r.last_code else r.last_reply
        state = f"{r.state}, suppressed" if is_suppressed else str(r.state)
        # the reply is the server's text: escaped like every outside string on a terminal
        table.add_row(Text(r.recipient), state, str(r.attempts), Text(shown(reply)), when)
    console().print(table)


@main.group()
def suppress() -> None:
    """The do-not-mail list: addresses here are never mailed."""


@suppress.command("add")
@click.argument("emails", nargs=-1, required=True)
@click.option("--reason", default="", help="Why, for your own records.")
@handle_errors
def suppress_add(emails: tuple[str, ...], reason: str) -> None:
    """Never mail these addresses (queued messages to them are cancelled)."""
    from ..addresses import InvalidAddress, normalize_address

    addresses = []
    for email in emails:
        try:
            addresses.append(normalize_address(email))
        except InvalidAddress as err:
            raise ConfigError(f"{email!r} is not an e-mail address: {err}") from None
    with writable_journal() as journal:
        for address in addresses:
            added = journal.suppress_add(address, reason)
            click.echo(f"{address}: {'suppressed' if added else 'already suppressed'}")


@suppress.command("remove")
@click.argument("emails", nargs=-1, required=True)
@handle_errors
def suppress_remove(emails: tuple[str, ...]) -> None:
    """Allow these addresses again."""
    journal = open_journal()
    for email in emails:
        removed = journal is not None and journal.suppress_remove(email)
        click.echo(f"{email}: {'removed' if removed else 'was not on the list'}")
    if journal is not None:
        journal.close()


@suppress.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def suppress_list(as_json: bool) -> None:
    """Print the do-not-mail list."""
    journal = open_journal()
    entries = [] if journal is None else journal.suppress_list()
    if journal is not None:
        journal.close()
    if as_json:
        click.echo(json.dumps([{"address": a, "reason": r, "added_at": t} for a, r, t in entries],
                              ensure_ascii=False))
        return
    for address, reason, added in entries:
        day = datetime.fromtimestamp(added).strftime("%Y-%m-%d")
        click.echo(f"{address}\t{day}\t{reason}")
    if not entries:
        click.echo("The do-not-mail list is empty.")
