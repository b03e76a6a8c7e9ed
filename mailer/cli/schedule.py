"""Commands for campaigns over time: run-due, and schedule install|remove|show
(the cron line or systemd user timer for run-due).

`run-due` is what cron or the timer starts every few minutes (`campaign/due.py`); a
run with nothing to do prints nothing, so cron logs stay empty.  Resend, resume,
cancel and campaigns are in `campaigns.py`.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..models import State
from .app import handle_errors, main, sending_options, sent_copy_option
from .inbox import inbox_pass
from .send import campaigns_service, show_paused

if TYPE_CHECKING:
    from ..campaign.events import SendSummary
    from ..campaign.service import InboxPass
    from ..schedule.timer import Kind, TimerChange, Tools

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
    from ..campaign.events import choose_rates
    from ..schedule import timer

    choose_rates(rates, provider)  # a bad --rate fails now, not in every cron run
    env = config.environment()
    # likewise --inbox without an IMAP account (checked without running a password command)
    if with_inbox and config.imap_settings(env, provider) is None:
        campaigns_service().required_imap(provider)  # raises "No IMAP server configured: ..."
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
    from ..campaign.events import Sending, choose_rates
    from ..schedule.when import now_from

    service = campaigns_service()
    now = now_from(now_text)
    options = Sending(rates, provider, concurrency, sent_copy=not no_sent_copy)
    choose_rates(rates, provider)  # a bad --rate fails before anything is read
    summaries: list[SendSummary] = []

    def inbox(box: InboxPass) -> None:
        if with_inbox:
            inbox_pass(box, service.required_imap(provider), "INBOX", assume_yes=True,
                       quiet=True)

    for summary in service.run_due(now, options, inbox=inbox):
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


