"""Commands: `send`, `status` and `suppress add|remove|list`.

`send` plans (the same plan as `preview`), queues the new messages in the
journal, asks, then sends.  Queuing and asking share one journal transaction:
answering no leaves the journal as it was.  With --yes there is nothing to ask,
so messages are rendered and queued while the first ones are being sent.

The campaign name defaults to the first contacts file's name without its
extension (`contacts.csv` -> "contacts"), so running the same command again
resumes the same campaign instead of starting a new one.

`send --at WHEN` plans, asks and queues exactly the same way, records the time
(UTC epoch seconds) on the campaign and returns: `mailer run-due` sends it when
due.  A plain `send` of a campaign scheduled for later refuses rather than
sending early (`--at now` sends it now); a cancelled campaign refuses too.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import click
from email_validator import EmailNotValidError, validate_email
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from .. import config, schedule
from ..errors import ConfigError
from ..journal import Journal
from ..models import Contact, Draft, ImportResult, State
from ..ratelimit import PRESETS, Rate, describe, parse_rates
from ..sender import Progress as SendProgress
from ..sender import SendSummary, make_limiter, send_campaign_sync
from .app import (
    handle_errors,
    main,
    map_option,
    message_options,
    open_journal,
    parse_mappings,
    paths_argument,
    profile_option,
    sending_options,
    yes_option,
)

if TYPE_CHECKING:
    from ..campaign import PlanItem
    from ..message import Composer

EXIT_INTERRUPTED = 130
PLAN_CHUNK = 500  # contacts read and planned at a time
FEED_BATCH = 16  # drafts rendered and queued between turns of the send loop
PROBLEM_STATES = (State.FAILED, State.DEFERRED, State.UNKNOWN)


def choose_rates(rates: tuple[str, ...], provider: str | None) -> tuple[Rate, ...]:
    """--rate wins over --provider; with neither, the cautious generic preset."""
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
              help="Queue now, send later from `mailer run-due`: 'mon 09:00', "
                   "'tomorrow 9:00', 'in 2h', '2026-11-30T09:00' (local time), 'now'.")
@click.option("--now", "now_text", hidden=True, help="Pretend it is this ISO time (tests).")
@handle_errors
def send(paths: tuple[Path, ...], profile_path: Path, campaign_name: str | None,
         rates: tuple[str, ...], provider: str | None, concurrency: int, again: bool,
         assume_yes: bool, templates: Path | None, lang: str | None,
         mappings: tuple[str, ...], at: str | None, now_text: str | None) -> None:
    """Queue one mail per new contact and send them (or, with --at, schedule them)."""
    from ..campaign import Status
    from ..message import Composer
    from ..profile import load_profile

    if not assume_yes and not sys.stdin.isatty():
        raise ConfigError("No terminal to confirm on: check with `mailer preview`, then pass "
                          "--yes to send without asking.")
    env = config.environment()
    settings = config.smtp_settings(env)
    limits = choose_rates(rates, provider)
    campaign = campaign_name or paths[0].stem
    now = schedule.now_from(now_text)
    when = schedule.parse_when(at, now) if at else None
    later = when if when is not None and when > now else None  # else: send now
    if later is not None:  # before anything is read or recorded
        click.echo(f"Scheduled for {schedule.format_when(later, now)}.")
    profile = load_profile(profile_path)
    composer = Composer(profile, templates=templates, lang=lang)
    mapping = parse_mappings(mappings)
    out = Console(highlight=False, soft_wrap=True)  # long reasons stay one greppable line
    with Journal(config.state_dir(env) / "journal.sqlite3") as journal:
        statuses: Counter[str] = Counter()
        notes: list[tuple[str, str, str]] = []

        def new_drafts() -> Iterator[Draft]:
            items = streamed_plan(paths, mapping, profile.region, composer, journal, again)
            for item in items:
                statuses[item.status.value] += 1
                if item.status is Status.NEW and item.draft is not None:
                    yield dataclasses.replace(item.draft, source=item.source)
                elif item.status in (Status.REJECTED, Status.ERROR, Status.REVIEW):
                    notes.append((item.source, item.email, item.reason))

        check_not_held(journal, campaign, now, at_given=when is not None)
        if later is not None:
            schedule_later(out, journal, campaign, later, now, new_drafts, assume_yes,
                           lambda added, queued: show_plan(out, statuses, notes, added, campaign,
                                                           queued))
            return
        limiter = make_limiter(journal, limits)
        feed = None
        if assume_yes:  # queue while sending: rendering overlaps with the server's replies
            if when is not None:  # --at now: whatever the campaign's schedule was
                journal.set_schedule(campaign, when.timestamp())
            feed = batched(new_drafts(), FEED_BATCH)
        else:
            with journal.staged() as staging:
                if when is not None:
                    journal.set_schedule(campaign, when.timestamp())
                added = journal.enqueue(campaign, new_drafts())
                queued = journal.counts(campaign)[State.QUEUED]
                show_plan(out, statuses, notes, added, campaign, queued)
                if queued:
                    out.print(f"SMTP server {settings.host}:{settings.port} "
                              f"({settings.security}"
                              f"{', as ' + settings.username if settings.username else ''}), "
                              f"rate {describe(limits)}, {concurrency} connection(s).")
                    if not click.confirm(f"Send {queued} message(s) now?", default=False):
                        staging.discard()
                        click.echo("Nothing queued, nothing sent.")
                        return
        with progress_display() as update:
            summary = send_campaign_sync(journal, campaign, settings, limiter=limiter,
                                         concurrency=concurrency, progress=update,
                                         handle_sigint=True, feed=feed)
        if assume_yes:
            show_plan(out, statuses, notes, summary.fed, campaign)
        if summary.logins == 0:
            click.echo("Nothing to send.")
        show_summary(out, summary)
        report = write_problems(journal, campaign)
    if report is not None:
        click.echo(f"Failed, deferred or unknown recipients with the server's replies: {report}")
    finish(summary)


def check_not_held(journal: Journal, campaign: str, now: datetime, *, at_given: bool) -> None:
    """Refuse to add to a cancelled campaign, and to send early one scheduled
    for later (unless --at says when)."""
    held = journal.campaign(campaign)
    if held is None:
        return
    if held.cancelled_at is not None:
        raise ConfigError(f"Campaign {campaign!r} was cancelled; pass --campaign with a new "
                          f"name to start another one.")
    if not at_given and held.scheduled_at is not None and held.scheduled_at > now.timestamp():
        due = datetime.fromtimestamp(held.scheduled_at, now.tzinfo)
        raise ConfigError(
            f"Campaign {campaign!r} is scheduled for {schedule.format_when(due, now)}: "
            f"`mailer run-due` sends it then. To send it right away, add --at now; to "
            f"change the time, --at WHEN.")


def schedule_later(out: Console, journal: Journal, campaign: str, when: datetime,
                   now: datetime, drafts: Callable[[], Iterator[Draft]], assume_yes: bool,
                   show: Callable[[int, int], None]) -> None:
    """`send --at` in the future: plan, ask, queue with the campaign's time, and stop."""
    at = f"{when.astimezone(now.tzinfo):%a %Y-%m-%d %H:%M %Z}"
    with journal.staged() as staging:
        added = journal.enqueue(campaign, drafts(), scheduled_at=when.timestamp())
        queued = journal.counts(campaign)[State.QUEUED]
        show(added, queued)
        if not queued:
            staging.discard()
            click.echo("Nothing to schedule.")
            return
        if not assume_yes and not click.confirm(f"Queue {queued} message(s) for {at}?",
                                                default=False):
            staging.discard()
            click.echo("Nothing queued, nothing scheduled.")
            return
    out.print(Text(
        f"Queued {queued} message(s) of campaign {campaign!r} for {at}; nothing sent now.\n"
        f"`mailer run-due` sends them once due: let cron or a systemd timer start it every "
        f"5 minutes with `mailer schedule install` (from this folder, so it reads the same "
        f".env), or run `mailer run-due` yourself after that time.\n"
        f"`mailer campaigns` shows the schedule; `mailer cancel {campaign}` drops it."))


def streamed_plan(paths: tuple[Path, ...], mapping: dict[str, str] | None, region: str,
                  composer: Composer, journal: Journal, again: bool) -> Iterator[PlanItem]:
    """The campaign plan over contacts streamed in chunks, so memory stays flat
    however long the list: an address listed twice is caught by the journal
    (one row per campaign and address) instead of an in-memory merge."""
    from ..campaign import plan
    from ..contacts import iter_contacts

    chunk = ImportResult()
    for entry in iter_contacts(list(paths), mapping=mapping, region=region):
        (chunk.contacts if isinstance(entry, Contact) else chunk.rejected).append(entry)
        if len(chunk.contacts) + len(chunk.rejected) >= PLAN_CHUNK:
            yield from plan(chunk, composer, journal, again=again)
            chunk = ImportResult()
    yield from plan(chunk, composer, journal, again=again)


def show_plan(out: Console, statuses: Counter[str], notes: list[tuple[str, str, str]],
              added: int, campaign: str, queued: int | None = None) -> None:
    for source, email, reason in notes:
        out.print(Text(f"  {source}: {email or '-'}: {reason}"))
    counts = ", ".join(f"{n} {status}" for status, n in statuses.items()) or "no entries"
    out.print(Text(f"Read: {counts}."))
    repeated = statuses["new"] - added
    line = f"Campaign {campaign!r}: {added} newly queued"
    if repeated:
        line += f" ({repeated} already queued or listed twice)"
    out.print(Text(line + (f", {queued} to send." if queued is not None else ".")))


def batched(items: Iterator[Draft], size: int) -> Iterator[list[Draft]]:
    while batch := list(islice(items, size)):
        yield batch


@contextmanager
def progress_display() -> Iterator[Callable[[SendProgress], None] | None]:
    """A rich progress bar on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn("[bold]sending"), BarColumn(), TextColumn("{task.description}"),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=None)

        def update(p: SendProgress) -> None:
            done = p.sent + p.deferred + p.failed
            bar.update(task, completed=done, total=done + p.remaining, description=(
                f"sent {p.sent}  deferred {p.deferred}  failed {p.failed}  "
                f"left {p.remaining}  held to {p.rate}"))

        yield update


def show_summary(out: Console, summary: SendSummary) -> None:
    table = Table(title=f"Campaign {summary.campaign!r}")
    table.add_column("state")
    table.add_column("recipients", justify="right")
    for state, count in summary.counts.items():
        if count:
            table.add_row(str(state), str(count))
    out.print(table)
    out.print(f"This run: {summary.sent} sent, {summary.deferred} deferred, {summary.failed} "
              f"failed in {summary.elapsed:.1f} s over {summary.logins} login(s).")
    if summary.recovered_unknown:
        out.print(f"{summary.recovered_unknown} message(s) from an interrupted run are "
                  f"'unknown': they may or may not have been delivered, so they were not sent "
                  f"again. `mailer resend --unknown` sends them anyway.")


def write_problems(journal: Journal, campaign: str) -> Path | None:
    rows = list(journal.rows(campaign, PROBLEM_STATES))
    if not rows:
        return None
    path = Path.cwd() / f"mailer-problems-{safe_name(campaign)}.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["recipient", "state", "code", "reply", "attempts", "message_id"])
        for r in rows:
            writer.writerow([r.recipient, r.state, r.last_code or "", r.last_reply, r.attempts,
                             r.message_id])
    return path


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def finish(summary: SendSummary) -> None:
    left = summary.counts[State.QUEUED]
    if summary.stopped == "interrupted":
        click.echo(f"Interrupted: the messages in flight were finished and recorded; {left} "
                   f"still queued. Run the same command again to resume campaign "
                   f"{summary.campaign!r}.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if summary.stopped:
        click.echo(f"Stopped: {summary.stopped}. {left} still queued.", err=True)
        sys.exit(1)
    if summary.counts[State.DEFERRED]:
        click.echo(f"{summary.counts[State.DEFERRED]} deferred after several tries: "
                   f"`mailer resend --campaign {summary.campaign}` tries them again.", err=True)
    sys.exit(0 if summary.complete else 1)


@main.command()
@click.option("--campaign", "campaign_name", help="Campaign [default: the latest].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@handle_errors
def status(campaign_name: str | None, as_json: bool) -> None:
    """Show a campaign's counts and every recipient's state from the journal."""
    journal = open_journal(create=False)
    known: set[str] = set()
    campaign = None
    if journal is not None:
        with journal:
            known = {c.name for c in journal.campaigns()}
            campaign = campaign_name or journal.latest_campaign()
            if campaign in known:
                counts = journal.counts(campaign)
                rows = list(journal.rows(campaign))
    if campaign_name and campaign_name not in known:
        raise ConfigError(f"No campaign {campaign_name!r}; known: "
                          f"{', '.join(sorted(known)) or 'none'}.")
    if campaign is None:
        if as_json:
            click.echo(json.dumps({"campaign": None, "counts": {}, "recipients": []}))
        else:
            click.echo("No campaigns yet: nothing was sent from here.")
        return
    if as_json:
        click.echo(json.dumps({
            "campaign": campaign,
            "counts": {str(s): n for s, n in counts.items()},
            "recipients": [r.to_json() for r in rows],
        }, ensure_ascii=False))
        return
    out = Console(highlight=False)
    table = Table(title=f"Campaign {campaign!r}: " + ", ".join(
        f"{n} {s}" for s, n in counts.items() if n))
    for column in ("recipient", "state", "attempts", "last reply", "when"):
        table.add_column(column, overflow="fold")
    for r in rows:
        when = datetime.fromtimestamp(r.finished_at or r.queued_at).strftime("%Y-%m-%d %H:%M")
        reply = f"{r.last_code} {r.last_reply}" if r.last_code else r.last_reply
        table.add_row(Text(r.recipient), str(r.state), str(r.attempts), Text(reply), when)
    out.print(table)


@main.group()
def suppress() -> None:
    """The do-not-mail list: addresses here are never mailed."""


def checked_address(email: str) -> str:
    try:
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as err:
        raise ConfigError(f"{email!r} is not an e-mail address: {err}") from None


@suppress.command("add")
@click.argument("emails", nargs=-1, required=True)
@click.option("--reason", default="", help="Why, for your own records.")
@handle_errors
def suppress_add(emails: tuple[str, ...], reason: str) -> None:
    """Never mail these addresses (queued messages to them are cancelled)."""
    addresses = [checked_address(e) for e in emails]
    with Journal(config.state_dir(config.environment()) / "journal.sqlite3") as journal:
        for address in addresses:
            added = journal.suppress_add(address, reason)
            click.echo(f"{address}: {'suppressed' if added else 'already suppressed'}")


@suppress.command("remove")
@click.argument("emails", nargs=-1, required=True)
@handle_errors
def suppress_remove(emails: tuple[str, ...]) -> None:
    """Allow these addresses again."""
    journal = open_journal(create=False)
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
    journal = open_journal(create=False)
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
