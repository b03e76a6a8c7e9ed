"""Commands on campaigns already queued: campaigns, cancel, resume and resend.

`resend` is the manual counterpart of `run-due`: it queues chosen recipients
again (never a `sent` one) and sends them now, unless the campaign is
scheduled for later.  Given the contacts files again (PATH... --profile), it
first swaps corrected addresses into their journal rows (matched by the
contact's "file:line", else by name; the row is updated in place, its reply
noting the address it replaced) and queues contacts that are new in the files.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

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
    parse_mappings,
    profile_option,
    sending_options,
    sent_copy_option,
    yes_option,
)
from .send import campaigns_service, report_and_exit

if TYPE_CHECKING:
    from ..campaign.events import CampaignInfo, CancelShown, ResendShown


@main.command("campaigns")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@handle_errors
def campaigns_command(as_json: bool) -> None:
    """List the campaigns with their schedule, whether cancelled, and counts per state."""
    listed = campaigns_service().campaigns()
    if as_json:
        click.echo(json.dumps([c.to_json() for c in listed], ensure_ascii=False))
    elif not listed:
        click.echo("No campaigns yet.")
    else:
        show_campaigns(listed)


def show_campaigns(listed: list[CampaignInfo]) -> None:
    from rich.table import Table
    from rich.text import Text

    from ..schedule.when import format_when, local_now

    now = local_now()
    table = Table()
    for column in ("campaign", "scheduled", "cancelled", "paused", "recipients"):
        table.add_column(column, overflow="fold")
    for row in listed:
        at = row.scheduled_at
        when = format_when(datetime.fromtimestamp(at, now.tzinfo), now) if at else "-"
        if at and not any(row.counts.get(s) for s in (State.QUEUED, State.DEFERRED)):
            when = when.split(" (")[0]  # nothing waits for it: "(in 6 h)" would mislead
        stop = row.cancelled_at
        cancelled = f"{datetime.fromtimestamp(stop, now.tzinfo):%Y-%m-%d %H:%M}" if stop else ""
        per_state = ", ".join(f"{n} {s}" for s, n in row.counts.items() if n) or "none"
        held = row.paused_at
        paused = f"{datetime.fromtimestamp(held, now.tzinfo):%Y-%m-%d %H:%M}" if held else ""
        if row.held_reason:
            paused += f" held: {row.held_reason}"
        table.add_row(Text(row.name), when, cancelled, Text(paused), per_state)
    console().print(table)


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

    def ask(view: CancelShown) -> bool:
        campaign, counts = view.campaign, view.counts
        kept = ", ".join(f"{counts[s]} {s}" for s in (State.SENT, State.FAILED, State.UNKNOWN))
        click.echo(f"Campaign {campaign!r}: {counts[State.QUEUED]} queued and "
                   f"{counts[State.DEFERRED]} deferred message(s) will not be sent; "
                   f"kept as they are: {kept}.")
        if counts[State.CLAIMED]:
            click.echo(f"{counts[State.CLAIMED]} message(s) being sent right now are finished "
                       f"by the run sending them.")
        return confirm_or_stop(f"Cancel campaign {campaign!r}?", assume_yes)

    done = campaigns_service().cancel(name, ask)
    if done.outcome == "already":
        click.echo(f"Campaign {done.campaign!r} is already cancelled; nothing left to drop.")
    elif done.outcome == "declined":
        click.echo("Nothing changed.")
    else:
        click.echo(f"Campaign {done.campaign!r} cancelled: {done.removed} message(s) will not "
                   f"be sent.")


@main.command("resume")
@click.argument("name")
@sending_options
@handle_errors
def resume(name: str, rates: tuple[str, ...], provider: str | None, concurrency: int) -> None:
    """Send what campaign NAME still has queued, e.g. after Ctrl-C paused it or
    an account error held it (`mailer run-due` never resumes either on its own)."""
    from ..campaign.events import Sending, choose_rates

    service = campaigns_service()
    options = Sending(rates, provider, concurrency)
    choose_rates(rates, provider)  # a bad --rate fails before anything is sent
    report_and_exit(service.resume(name, options), options)


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
    from ..campaign.events import Declined, Finished, ResendRequest, Sending
    from ..campaign.resend import chosen_states

    if paths and profile_path is None:
        raise ConfigError("Resending from contacts files needs --profile to render the mails.")
    service = campaigns_service()
    states = chosen_states(failed, unknown, deferred, bool(only), bool(paths), bounced=bounced)
    request = ResendRequest(campaign_name, states, only, bounced=bounced)
    if paths and profile_path is not None:
        region, composer = composer_for(profile_path, templates, lang)
        request = ResendRequest(campaign_name, states, only, paths, composer, region,
                                parse_mappings(mappings), bounced=bounced)
    options = Sending(rates, provider, concurrency, sent_copy=not no_sent_copy)

    def ask(view: ResendShown) -> bool:
        return confirm_or_stop(f"Queue and send these {view.plan.people} again?", assume_yes)

    result = service.resend(request, options, show_resend, ask)
    if isinstance(result, Declined):
        click.echo("Nothing to resend." if result.empty else "Nothing changed.")
    elif isinstance(result, Finished):
        report_and_exit(result, options)
    else:
        click.echo(f"Queued {result}; the campaign is scheduled for later, so "
                   f"`mailer run-due` sends them then.")


def show_resend(view: ResendShown) -> None:
    """The contacts files' summary line (when given), then every person resent."""
    from rich.text import Text

    out, plan = console(), view.plan
    if view.tally is not None:
        out.print(Text(view.tally.line()))
    out.print(Text(f"Campaign {view.campaign!r}, resending "
                   f"{'/'.join(map(str, view.states))} recipients:"))
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
