"""Commands for campaigns over time: run-due, campaigns, cancel, resend, and
schedule install|remove|show (the cron line or systemd user timer for run-due).

`run-due` is what cron or the timer starts every few minutes (`campaign/due.py`); a
run with nothing to do prints nothing, so cron logs stay empty.

`resend` is the manual counterpart: it queues chosen recipients again (never
a `sent` one) and sends them now, unless the campaign is scheduled for later.
Given the contacts files again (PATH... --profile), it first swaps corrected
addresses into their journal rows (matched by the contact's "file:line", else
by name; the row is updated in place, its reply noting the address it
replaced) and queues contacts that are new in the files.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..errors import ConfigError
from ..models import State
from ..sanitize import shown
from .app import (
    composer_for,
    console,
    handle_errors,
    main,
    map_option,
    message_options,
    open_journal,
    parse_mappings,
    profile_option,
    sending_options,
    yes_option,
)
from .inbox import imap_settings, inbox_pass, sent_copy_option
from .send import Sending, choose_rates, report_and_exit, send_now, show_paused

if TYPE_CHECKING:
    from ..campaign.plan import Tally
    from ..campaign.resend import FileContacts, ResendPlan
    from ..config import SmtpSettings
    from ..journal import Journal
    from ..schedule.timer import Kind, TimerChange, Tools
    from ..smtp.sender import SendSummary

F = TypeVar("F", bound=Callable[..., Any])


def kind_option(func: F) -> F:
    """--cron | --systemd, stored as `kind`; None when neither is given."""
    func = click.option("--systemd", "kind", flag_value="systemd", help="A systemd user timer.")(
        func
    )
    return click.option("--cron", "kind", flag_value="cron", help="A line in your crontab.")(func)


@main.group("schedule")
def schedule_group() -> None:
    """Run `mailer run-due` every few minutes from cron or a systemd user timer."""


@schedule_group.command("install")
@kind_option
@click.option(
    "--every",
    type=int,
    default=5,
    show_default=True,
    metavar="MINUTES",
    help="How often run-due starts.",
)
@click.option(
    "--print", "print_only", is_flag=True, help="Only print what would be written; change nothing."
)
@sending_options
@click.option("--inbox", "with_inbox", is_flag=True,
              help="run-due also sorts your inbox (`mailer inbox --yes`).")
@sent_copy_option
@handle_errors
def install_command(kind: Kind | None, every: int, print_only: bool,
                    rates: tuple[str, ...], provider: str | None, concurrency: int,
                    with_inbox: bool, no_sent_copy: bool) -> None:
    """Install the cron line (default when crontab exists) or the systemd timer.

    Installing again replaces the earlier entry. The job runs in the current
    directory, so that run-due reads the same .env (SMTP settings) as send.
    --rate, --provider and --concurrency are passed on to run-due."""
    from .. import config
    from ..schedule import timer

    choose_rates(rates, provider)  # a bad --rate fails now, not in every cron run
    env = config.environment()
    # likewise --inbox without an IMAP account (checked without running a password command)
    if with_inbox and config.imap_settings(env, provider) is None:
        imap_settings(provider)  # raises "No IMAP server configured: set ..."
    passed = [*(("--provider", provider) if provider else ()),
              *(arg for rate in rates for arg in ("--rate", rate)),
              *(("--concurrency", str(concurrency)) if concurrency != 1 else ()),
              *(("--inbox",) if with_inbox else ()),
              *(("--no-sent-copy",) if no_sent_copy else ())]
    tools = timer.Tools.from_env(os.environ)  # test seams: never from a .env
    kind = kind or tools.default_kind()
    state = config.state_dir(env)
    job = timer.Job(
        command=(*timer.mailer_command(), "run-due", *passed),
        workdir=Path.cwd(),
        log=state / "run-due.log",
        every_minutes=every,
        mailer_home=str(state) if env.get("MAILER_HOME", "").strip() else "",
    )
    if print_only:
        click.echo(timer.render(kind, job, tools))
        return
    report(timer.install(kind, job, tools))


@schedule_group.command("remove")
@kind_option
@handle_errors
def remove_command(kind: Kind | None) -> None:
    """Remove the cron line and/or the systemd timer (both unless one is named).
    Other lines of your crontab are kept."""
    from ..schedule import timer

    tools = timer.Tools.from_env(os.environ)  # test seams: never from a .env
    for each in [kind] if kind else timer.KINDS:
        if kind is None and each == "cron" and not _has_crontab(tools):
            continue
        report(timer.remove(each, tools))


@schedule_group.command("show")
@kind_option
@handle_errors
def show_command(kind: Kind | None) -> None:
    """Show the installed cron line and/or systemd timer."""
    from ..schedule import timer

    tools = timer.Tools.from_env(os.environ)  # test seams: never from a .env
    for each in [kind] if kind else timer.KINDS:
        if kind is None and each == "cron" and not _has_crontab(tools):
            click.echo("cron: no crontab program on this machine")
            continue
        installed = timer.show(each, tools)
        click.echo(f"{each}: " + (f"installed\n{installed}" if installed else "not installed"))
    click.echo(
        "Check with: crontab -l; systemctl --user list-timers mailer-run-due.timer; "
        "journalctl --user -u mailer-run-due"
    )


def report(outcome: TimerChange) -> None:
    click.echo(outcome.message)
    if outcome.manual:
        click.echo("Run by hand:")
        for command in outcome.manual:
            click.echo(f"  {command}")


def _has_crontab(tools: Tools) -> bool:
    return shutil.which(tools.crontab) is not None


# --- run-due ---------------------------------------------------------------


@main.command("run-due")
@sending_options
@click.option("--inbox", "with_inbox", is_flag=True,
              help="Then sort the inbox as `mailer inbox --yes` does (prints only news).")
@sent_copy_option
@click.option("--now", "now_text", hidden=True, help="Pretend it is this ISO time (tests).")
@handle_errors
def run_due(rates: tuple[str, ...], provider: str | None, concurrency: int, with_inbox: bool,
            no_sent_copy: bool, now_text: str | None) -> None:
    """Send what is due: scheduled campaigns whose time has come and deferred
    recipients whose back-off has elapsed. Prints nothing when nothing is due;
    exits at once when another run-due is still busy. For cron / systemd."""
    from .. import config
    from ..accounts.credentials import Credentials
    from ..campaign.due import send_due
    from ..schedule.when import now_from
    from ..smtp.sender import RetryPolicy

    env = config.environment()
    now = now_from(now_text)
    options = Sending(rates, provider, concurrency, sent_copy=not no_sent_copy)
    choose_rates(rates, provider)  # a bad --rate fails before anything is read
    summaries: list[SendSummary] = []

    credentials = Credentials(env)  # the run's one login, for every campaign and the inbox

    def send(journal: Journal, campaign: str, settings: SmtpSettings) -> SendSummary:
        # `settings` is credentials.smtp(); a 4xx defers at once: the journal's back-off
        # takes over, not an in-process wait
        return send_now(journal, campaign, credentials, options, retry=RetryPolicy(attempts=1))

    def inbox(journal: Journal) -> None:
        if with_inbox:
            inbox_pass(journal, imap_settings(provider, credentials), "INBOX", assume_yes=True,
                       quiet=True)

    for summary in send_due(config.state_dir(env), now, credentials.smtp, send,
                            after_all=inbox):
        click.echo(f"{now:%Y-%m-%d %H:%M %Z} {run_line(summary)}")
        summaries.append(summary)
        if summary.stopped == "interrupted":
            show_paused(summary.campaign, summary.counts[State.QUEUED], options)
    if not summaries:
        return
    if any(s.stopped == "interrupted" for s in summaries):
        sys.exit(130)
    sys.exit(0 if all(s.complete for s in summaries) else 1)


def run_line(summary: SendSummary) -> str:
    totals = ", ".join(f"{n} {s}" for s, n in summary.counts.items() if n)
    line = (f"campaign {summary.campaign!r}: {summary.sent} sent, {summary.deferred} deferred, "
            f"{summary.failed} failed, {summary.unknown} unknown (in all: {totals})")
    return line + (f"; stopped: {summary.stopped}" if summary.stopped else "")


# --- campaigns and cancel ----------------------------------------------------


@main.command("campaigns")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@handle_errors
def campaigns_command(as_json: bool) -> None:
    """List the campaigns with their schedule, whether cancelled, and counts per state."""
    listed = list_campaigns()
    if as_json:
        click.echo(json.dumps(listed, ensure_ascii=False))
    elif not listed:
        click.echo("No campaigns yet.")
    else:
        show_campaigns(listed)


def list_campaigns() -> list[dict[str, Any]]:
    """Every campaign with its times and counts per state, as `campaigns --json` prints it."""
    journal = open_journal()
    if journal is None:
        return []
    with journal:
        return [{"name": c.name, "created_at": c.created_at, "scheduled_at": c.scheduled_at,
                 "cancelled_at": c.cancelled_at, "paused_at": c.paused_at,
                 "counts": {str(s): n for s, n in journal.counts(c.name).items()}}
                for c in journal.campaigns()]


def show_campaigns(listed: list[dict[str, Any]]) -> None:
    from rich.table import Table
    from rich.text import Text

    from ..schedule.when import format_when, local_now

    now = local_now()
    table = Table()
    for column in ("campaign", "scheduled", "cancelled", "paused", "recipients"):
        table.add_column(column, overflow="fold")
    for row in listed:
        at = row["scheduled_at"]
        when = format_when(datetime.fromtimestamp(at, now.tzinfo), now) if at else "-"
        if at and not any(row["counts"].get(s) for s in ("queued", "deferred")):
            when = when.split(" (")[0]  # nothing waits for it: "(in 6 h)" would mislead
        stop = row["cancelled_at"]
        cancelled = f"{datetime.fromtimestamp(stop, now.tzinfo):%Y-%m-%d %H:%M}" if stop else ""
        per_state = ", ".join(f"{n} {s}" for s, n in row["counts"].items() if n) or "none"
        held = row["paused_at"]
        paused = f"{datetime.fromtimestamp(held, now.tzinfo):%Y-%m-%d %H:%M}" if held else ""
        table.add_row(Text(row["name"]), when, cancelled, paused, per_state)
    console().print(table)


def known_campaign(journal: Journal | None, name: str | None) -> tuple[Journal, str]:
    """The open journal and the named (default: latest) campaign, or an error
    listing the known campaigns."""
    known = [c.name for c in journal.campaigns()] if journal is not None else []
    chosen = name if name is not None else (known[-1] if known else None)
    if journal is None or chosen not in known:
        if journal is not None:
            journal.close()
        what = f"No campaign {name!r}" if name is not None else "No campaigns yet"
        raise ConfigError(f"{what}; known: {', '.join(known) or 'none'}.")
    return journal, chosen


def confirm_or_stop(question: str, assume_yes: bool) -> bool:
    """True to go ahead; refuses (exit 2) when asking is needed but impossible."""
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        raise ConfigError("No terminal to confirm on: pass --yes to go ahead without asking.")
    return click.confirm(question, default=False)


@main.command("cancel")
@click.argument("name")
@yes_option
@handle_errors
def cancel(name: str, assume_yes: bool) -> None:
    """Cancel what campaign NAME has not sent yet (queued and deferred
    recipients); sent, failed and unknown ones stay in the journal."""
    journal, campaign = known_campaign(open_journal(), name)
    with journal:
        counts = journal.counts(campaign)
        dropping = counts[State.QUEUED] + counts[State.DEFERRED]
        held = journal.campaign(campaign)
        if held is not None and held.cancelled_at is not None and not dropping:
            click.echo(f"Campaign {campaign!r} is already cancelled; nothing left to drop.")
            return
        kept = ", ".join(f"{counts[s]} {s}" for s in (State.SENT, State.FAILED, State.UNKNOWN))
        click.echo(f"Campaign {campaign!r}: {counts[State.QUEUED]} queued and "
                   f"{counts[State.DEFERRED]} deferred message(s) will not be sent; "
                   f"kept as they are: {kept}.")
        if counts[State.CLAIMED]:
            click.echo(f"{counts[State.CLAIMED]} message(s) being sent right now are finished "
                       f"by the run sending them.")
        if not confirm_or_stop(f"Cancel campaign {campaign!r}?", assume_yes):
            click.echo("Nothing changed.")
            return
        removed = journal.cancel(campaign)
    click.echo(f"Campaign {campaign!r} cancelled: {removed} message(s) will not be sent.")


# --- resume ------------------------------------------------------------------


@main.command("resume")
@click.argument("name")
@sending_options
@handle_errors
def resume(name: str, rates: tuple[str, ...], provider: str | None, concurrency: int) -> None:
    """Send what campaign NAME still has queued, e.g. after Ctrl-C paused it
    (`mailer run-due` never resumes a paused campaign on its own)."""
    from .. import config
    from ..accounts.credentials import Credentials
    from ..campaign import holds

    env = config.environment()
    options = Sending(rates, provider, concurrency)
    choose_rates(rates, provider)  # a bad --rate fails before anything is sent
    journal, campaign = known_campaign(open_journal(), name)
    with journal:
        held = holds.check_can_resend(journal, campaign)
        if holds.due_later(held, time.time()) is not None:
            raise ConfigError(f"Campaign {campaign!r} is scheduled for later: `mailer run-due` "
                              f"sends it then (or `mailer send ... --at now`).")
        summary = send_now(journal, campaign, Credentials(env), options)
        report_and_exit(journal, summary, options)


# --- resend ------------------------------------------------------------------


@main.command("resend")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--campaign", "campaign_name", help="Campaign [default: the latest].")
@click.option("--failed", is_flag=True, help="Failed recipients (5xx replies).")
@click.option("--unknown", is_flag=True,
              help="Recipients whose delivery is unknown (may get the mail twice).")
@click.option("--deferred", is_flag=True,
              help="Deferred recipients (the default; with PATH, failed and bounced ones too).")
@click.option("--bounced", is_flag=True,
              help="Recipients whose mail bounced (see `mailer inbox`); give the corrected "
                   "contacts file to send to the fixed address.")
@click.option("--only", multiple=True, metavar="ADDRESS", help="Only this recipient; repeatable.")
@profile_option(required=False, help="Your profile.toml; needed with PATH.")
@message_options
@map_option
@sending_options
@yes_option
@sent_copy_option
@handle_errors
def resend(paths: tuple[Path, ...], campaign_name: str | None, failed: bool, unknown: bool,
           deferred: bool, bounced: bool, only: tuple[str, ...], profile_path: Path | None,
           templates: Path | None, lang: str | None, mappings: tuple[str, ...],
           rates: tuple[str, ...], provider: str | None, concurrency: int,
           assume_yes: bool, no_sent_copy: bool) -> None:
    """Queue chosen recipients again and send them (never one already sent).

    Without flags: the deferred ones. With PATH... --profile (the corrected
    contacts files): corrected addresses replace their failed or deferred
    rows, and contacts new in the files are queued; nobody mailed is mailed again."""
    from .. import config
    from ..accounts.credentials import Credentials
    from ..campaign import holds
    from ..campaign import resend as core
    from ..campaign.plan import Tally

    if paths and profile_path is None:
        raise ConfigError("Resending from contacts files needs --profile to render the mails.")
    env = config.environment()
    journal, campaign = known_campaign(open_journal(), campaign_name)
    with journal:
        held = holds.check_can_resend(journal, campaign)
        states = core.chosen_states(failed, unknown, deferred, bool(only), bool(paths),
                                    bounced=bounced)
        tally = Tally()
        files = (read_files(journal, campaign, paths, profile_path, templates, lang, mappings,
                            tally) if paths and profile_path is not None else None)
        plan = core.plan_resend(journal, campaign, states, only, files)
        show_resend(campaign, states, plan, tally if files is not None else None)
        if not plan.people:
            click.echo("Nothing to resend.")
            return
        if not confirm_or_stop(f"Queue and send these {plan.people} again?", assume_yes):
            click.echo("Nothing changed.")
            return
        queued = core.apply_resend(journal, campaign, states, plan)
        if holds.due_later(held, time.time()) is not None:
            click.echo(f"Queued {queued}; the campaign is scheduled for later, so "
                       f"`mailer run-due` sends them then.")
            return
        options = Sending(rates, provider, concurrency, sent_copy=not no_sent_copy)
        summary = send_now(journal, campaign, Credentials(env), options)
        report_and_exit(journal, summary, options)


def read_files(journal: Journal, campaign: str, paths: tuple[Path, ...], profile_path: Path,
               templates: Path | None, lang: str | None, mappings: tuple[str, ...],
               tally: Tally) -> FileContacts:
    from ..campaign import resend

    region, composer = composer_for(profile_path, templates, lang)
    return resend.read_files(journal, campaign, paths, composer,
                             mapping=parse_mappings(mappings), region=region, tally=tally)


def show_resend(campaign: str, states: tuple[State, ...], plan: ResendPlan,
                tally: Tally | None) -> None:
    """The contacts files' summary line (when given), then every person resent."""
    from rich.text import Text

    out = console()
    if tally is not None:
        out.print(Text(tally.line()))
    out.print(Text(f"Campaign {campaign!r}, resending {'/'.join(map(str, states))} recipients:"))
    for row in plan.again:
        out.print(Text(f"  again     {row.recipient} (was {row.state}: {shown(row.last_reply)})"))
    for row, draft in plan.corrected:
        out.print(Text(f"  corrected {row.recipient} -> {draft.recipient} ({draft.source})"))
    for draft in plan.added:
        out.print(Text(f"  new       {draft.recipient} ({draft.source})"))
    for why in plan.refused:
        out.print(Text(f"  skipped   {why}"))
    out.print(Text(f"{plan.people} to resend = again {len(plan.again)} + corrected "
                   f"{len(plan.corrected)} + new {len(plan.added)}"))
