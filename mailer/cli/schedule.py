"""Commands: schedule install|remove|show (cron line or systemd user timer for run-due)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .. import config, schedule
from .app import handle_errors, main

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
@handle_errors
def install_command(kind: schedule.Kind | None, every: int, print_only: bool) -> None:
    """Install the cron line (default when crontab exists) or the systemd timer.

    Installing again replaces the earlier entry. The job runs in the current
    directory, so that run-due reads the same .env (SMTP settings) as send."""
    env = config.environment()
    tools = schedule.Tools.from_env(env)
    kind = kind or tools.default_kind()
    state = config.state_dir(env)
    job = schedule.Job(
        command=(*schedule.mailer_command(), "run-due"),
        workdir=Path.cwd(),
        log=state / "run-due.log",
        every_minutes=every,
        mailer_home=str(state) if env.get("MAILER_HOME", "").strip() else "",
    )
    if print_only:
        click.echo(schedule.render(kind, job, tools))
        return
    report(schedule.install(kind, job, tools))


@schedule_group.command("remove")
@kind_option
@handle_errors
def remove_command(kind: schedule.Kind | None) -> None:
    """Remove the cron line and/or the systemd timer (both unless one is named).
    Other lines of your crontab are kept."""
    tools = schedule.Tools.from_env(config.environment())
    for each in [kind] if kind else schedule.KINDS:
        if kind is None and each == "cron" and not _has_crontab(tools):
            continue
        report(schedule.remove(each, tools))


@schedule_group.command("show")
@kind_option
@handle_errors
def show_command(kind: schedule.Kind | None) -> None:
    """Show the installed cron line and/or systemd timer."""
    tools = schedule.Tools.from_env(config.environment())
    for each in [kind] if kind else schedule.KINDS:
        if kind is None and each == "cron" and not _has_crontab(tools):
            click.echo("cron: no crontab program on this machine")
            continue
        installed = schedule.show(each, tools)
        click.echo(f"{each}: " + (f"installed\n{installed}" if installed else "not installed"))
    click.echo(
        "Check with: crontab -l; systemctl --user list-timers mailer-run-due.timer; "
        "journalctl --user -u mailer-run-due"
    )


def report(outcome: schedule.Outcome) -> None:
    click.echo(outcome.message)
    if outcome.manual:
        click.echo("Run by hand:")
        for command in outcome.manual:
            click.echo(f"  {command}")


def _has_crontab(tools: schedule.Tools) -> bool:
    return shutil.which(tools.crontab) is not None
