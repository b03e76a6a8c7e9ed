"""Commands: `send`, `status` and `suppress add|remove|list`, over the
campaign service (`campaign/service.py`), which plans, queues, asks through
`ask_to_send`, sends and files the Sent copies.

`send` plans (the same plan as `preview`), prints the plan's summary line and
what will happen, asks, then queues and sends.  Queuing and asking share one
journal transaction: answering no leaves the journal as it was.  With --yes
there is nothing to ask, so messages are rendered and queued while the first
ones are being sent.

The campaign name defaults to the first contacts file's name without its
extension (`contacts.csv` -> "contacts"), so running the same command again
resumes the same campaign instead of starting a new one.

`send --at WHEN` plans, asks and queues exactly the same way, records the time
on the campaign and returns: `mailer run-due` sends it when due (`campaign/holds.py`
has the rules for campaigns scheduled or cancelled).

While sending (`Terminal`: what the service's events show, for send, resend,
resume and run-due alike): on a terminal a progress bar on stderr; without one
(cron, a pipe) the server, the login, the pace and the plan first, then a line
at most every 30 s, a line for every wait longer than 10 s, and the summary.
Ctrl-C is answered at once; the campaign is then paused and the closing
message names the commands that resume or cancel it.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

import click

from ..errors import ConfigError
from ..models import State
from ..sanitize import clean, shown
from .app import (
    composer_for,
    console,
    handle_errors,
    main,
    map_option,
    message_options,
    note_columns,
    parse_mappings,
    paths_argument,
    profile_option,
    sending_options,
    sent_copy_option,
    yes_option,
)

if TYPE_CHECKING:
    from pathlib import Path

    from ..campaign.events import (
        Finished,
        PlanSummary,
        Progress,
        Row,
        Scheduled,
        Sending,
        SendSummary,
        Starting,
        Wait,
    )
    from ..campaign.plan import Tally
    from ..campaign.service import Campaigns
    from ..contacts.csvfile import ColumnReport

EXIT_INTERRUPTED = 130
PROGRESS_EVERY = 30.0  # seconds between progress lines without a terminal


class Terminal:
    """What a campaign run shows (`campaign.service.Events`): on a terminal a
    progress bar on stderr; without one timed lines on stdout."""

    def __init__(self) -> None:
        self.terminal = sys.stderr.isatty()

    def columns(self, report: ColumnReport) -> None:
        note_columns(report)

    def plan(self, summary: PlanSummary) -> None:
        if summary.at is None:
            show_plan(summary.tally, will_send(summary.campaign, summary.to_send,
                                               summary.tally.new))
        else:
            show_plan(summary.tally, will_send(summary.campaign, summary.to_send,
                                               summary.tally.new, f"on {at_text(summary.at)}"))

    def starting(self, start: Starting) -> None:
        if start.header or not self.terminal:
            console().print(f"{start.server}; pace {start.pace}; "
                            f"{start.concurrency} connection(s).")
            console().print(f"Campaign {start.campaign!r}: sending {start.plan}.")

    def sending(self) -> AbstractContextManager[Callable[[Progress], None]]:
        return progress_display(self.terminal)

    def waiting(self, wait: Wait) -> None:
        click.echo(f"{clock()} waiting for {wait.what} until {clock(wait.until)}")

    def interrupted(self, in_flight: int | None) -> None:
        if in_flight is None:
            click.echo("Stopping now: a message whose whole content was already sent is "
                       "recorded as 'unknown', the others stay queued.", err=True)
        else:
            click.echo(f"Ctrl-C: stopping. Finishing the {in_flight} message(s) in flight and "
                       f"recording them; press Ctrl-C again to stop at once.", err=True)

    def note(self, line: str) -> None:
        click.echo(line)

    def warning(self, line: str) -> None:
        click.echo(line, err=True)


def campaigns_service() -> Campaigns:
    """The campaign service with this terminal listening; Ctrl-C pauses a run."""
    from ..campaign.service import Campaigns

    return Campaigns(Terminal(), handle_sigint=True)


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
                   "'tomorrow 9:00', 'in 2h', 'YYYY-MM-DDTHH:MM' (local time), 'now'.")
@click.option("--now", "now_text", hidden=True, help="Pretend it is this ISO time (tests).")
@sent_copy_option
@handle_errors
def send(paths: tuple[Path, ...], profile_path: Path | None, campaign_name: str | None,
         rates: tuple[str, ...], provider: str | None, concurrency: int, again: bool,
         assume_yes: bool, templates: Path | None, lang: str | None,
         mappings: tuple[str, ...], at: str | None, now_text: str | None,
         no_sent_copy: bool) -> None:
    """Queue one mail per new contact and send them (or, with --at, schedule them)."""
    from ..campaign.events import Declined, Finished, Sending, SendRequest, choose_rates
    from ..schedule.when import Timing, format_when

    service = campaigns_service()
    service.smtp_settings()  # a missing account is the first thing a send reports
    choose_rates(rates, provider)
    campaign = campaign_name or clean(paths[0].stem)  # a file name is outside text
    timing = Timing.of(at, now_text)
    region, composer = composer_for(profile_path, templates, lang)
    # after every option and the profile are checked: a script learns of a bad --at first
    if not assume_yes and not sys.stdin.isatty():
        raise ConfigError("No terminal to confirm on: check with `mailer preview`, then pass "
                          "--yes to send without asking.")
    if (later := timing.later) is not None:  # before anything is read or recorded
        click.echo(f"Scheduled for {format_when(later, timing.now)}.")
    # resumed by the same command: it also queues the contacts not read yet
    options = Sending(rates, provider, concurrency, again=("mailer", *sys.argv[1:]),
                      sent_copy=not no_sent_copy)
    request = SendRequest(paths, composer, campaign, timing, options, region=region,
                          mapping=parse_mappings(mappings), again=again, assume_yes=assume_yes,
                          profile=profile_path)
    result = service.send(request, ask_to_send)
    if isinstance(result, Declined):
        click.echo("Nothing to schedule." if result.empty else
                   "Nothing queued, nothing scheduled." if later is not None else
                   "Nothing queued, nothing sent.")
    elif isinstance(result, Finished):
        if result.tally is not None:  # --yes: the plan was read while sending
            show_plan(result.tally, f"Campaign {campaign!r}: {result.summary.fed} new "
                                    f"message(s) queued by this run (--yes: while sending).")
        report_and_exit(result, options)
    else:
        show_scheduled(result)


def ask_to_send(summary: PlanSummary) -> bool:
    """The question before a send now, or before scheduling one for later."""
    if summary.at is None:
        console().print(summary.how)
        return click.confirm(f"Send {summary.to_send} message(s) now?", default=False)
    at = at_text(summary.at)
    question = (f"Queue {summary.to_send} message(s) for {at}?"
                if summary.added == summary.to_send else
                f"Send these {summary.to_send} message(s) on {at}?")
    return click.confirm(question, default=False)


def at_text(when: datetime) -> str:
    return f"{when:%a %Y-%m-%d %H:%M %Z}"


def will_send(campaign: str, to_send: int, new: int, at: str = "now") -> str:
    """What happens next, in people: the new ones and those an earlier run left queued."""
    earlier = to_send - new
    more = f" ({new} new + {earlier} queued by an earlier run)" if earlier > 0 else ""
    return f"Campaign {campaign!r}: {to_send} message(s) to send {at}{more}."


def show_scheduled(done: Scheduled) -> None:
    from rich.text import Text

    at, campaign = at_text(done.at), done.campaign
    line = (f"Queued {done.queued} message(s) of campaign {campaign!r} for {at}"
            if done.added == done.queued else
            f"{done.queued} message(s) of campaign {campaign!r} wait for {at} ({done.added} "
            f"queued now)")
    console().print(Text(
        f"{line}; nothing sent now.\n"
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


def clock(epoch: float | None = None) -> str:
    """Local time for log lines; with the date when it is not today."""
    moment = datetime.fromtimestamp(time.time() if epoch is None else epoch)
    return f"{moment:%H:%M:%S}" if moment.date() == datetime.now().date() else \
        f"{moment:%Y-%m-%d %H:%M:%S}"


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


def report_and_exit(result: Finished, options: Sending) -> None:
    """The summary, the problems report, and the exit code."""
    summary = result.summary
    if summary.logins == 0:
        click.echo("Nothing to send.")
    show_summary(summary)
    if result.problems is not None:
        click.echo(f"Failed, deferred or unknown recipients with the server's replies: "
                   f"{result.problems}")
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
    found = campaigns_service().status(campaign_name)
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
    for address, added in campaigns_service().suppress_add(addresses, reason):
        click.echo(f"{address}: {'suppressed' if added else 'already suppressed'}")


@suppress.command("remove")
@click.argument("emails", nargs=-1, required=True)
@handle_errors
def suppress_remove(emails: tuple[str, ...]) -> None:
    """Allow these addresses again."""
    for email, removed in campaigns_service().suppress_remove(emails):
        click.echo(f"{email}: {'removed' if removed else 'was not on the list'}")


@suppress.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def suppress_list(as_json: bool) -> None:
    """Print the do-not-mail list."""
    entries = campaigns_service().suppressed()
    if as_json:
        click.echo(json.dumps([{"address": a, "reason": r, "added_at": t} for a, r, t in entries],
                              ensure_ascii=False))
        return
    for address, reason, added in entries:
        day = datetime.fromtimestamp(added).strftime("%Y-%m-%d")
        click.echo(f"{address}\t{day}\t{reason}")
    if not entries:
        click.echo("The do-not-mail list is empty.")
