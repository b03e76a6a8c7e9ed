"""Command: `mailer inbox [--yes] [--json]`: sort the replies to your campaigns; and the
Sent-copy pass that send, resend and run-due run after sending.

`inbox` reads the inbox over IMAP without changing anything on the server
(EXAMINE, BODY.PEEK: no flag moves), prints what it found, and then asks
before it changes the journal.  With --yes (cron) the clear cases are applied
and the unclear ones only listed, until someone decides on them at a terminal.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import config
from ..accounts.providers import PROVIDERS
from ..sanitize import shown
from .app import console, handle_errors, main, yes_option

if TYPE_CHECKING:
    from rich.console import Console

    from ..campaign.service import InboxPass
    from ..mailbox.inbox import Sorted, Verdict

HEADINGS = {
    "bounce": "Bounced (marked bounced)",
    "soft-bounce": "Mailbox full (soft bounce: noted, not marked, not resent on its own)",
    "unsubscribe": "Unsubscribe requests (put on the do-not-mail list)",
    "reply": "Replies (marked replied)",
    "auto-reply": "Auto-replies (noted, nothing changes)",
    "delay": "Delay notices (the server still tries; nothing changes)",
    "unclear": "Unclear (asked about, or listed: never applied on their own)",
    "unreadable": "Unreadable (left untouched; the error in one line)",
}


@main.command("inbox")
@click.option("--provider", type=click.Choice(sorted(PROVIDERS)),
              help="Your provider: fills in its IMAP server.")
@click.option("--folder", default="INBOX", show_default=True, help="The folder to read.")
@click.option("--mark-read", is_flag=True,
              help="Flag the bounces, delay notices, unsubscribe requests and auto-replies it "
                   "recorded as read (replies stay unread). Otherwise no flag changes.")
@click.option("--json", "as_json", is_flag=True,
              help="Print what was found and done as JSON (with --yes: the clear cases "
                   "applied; without: nothing changed).")
@yes_option
@handle_errors
def inbox_command(provider: str | None, folder: str, mark_read: bool, as_json: bool,
                  assume_yes: bool) -> None:
    """Sort the inbox since your first campaign: bounces, unsubscribe
    requests, auto-replies and replies. Changes nothing on the server; asks
    before it changes the journal (--yes: apply the clear cases, list the rest)."""
    from .send import campaigns_service

    service = campaigns_service()
    with service.inbox() as box:
        if box is None:
            click.echo(json.dumps({"messages": [], "recorded": False}) if as_json else
                       "No campaigns yet: nothing to look for.")
            return
        inbox_pass(box, service.required_imap(provider), folder, assume_yes=assume_yes,
                   mark_read=mark_read, as_json=as_json)


def inbox_pass(box: InboxPass, settings: config.ImapSettings, folder: str, *,
               assume_yes: bool, quiet: bool = False, mark_read: bool = False,
               as_json: bool = False) -> None:
    """Read, show, decide, record.  `quiet` (run-due): print nothing when
    there was no new mail, list an unclear message only once, and keep the
    pass short (it holds the run lock a due campaign waits for)."""
    from ..mailbox import inbox

    seconds = inbox.QUIET_PASS_SECONDS if quiet else inbox.PASS_SECONDS
    found = box.read(settings, folder, pending=not quiet, seconds=seconds)
    if quiet and not found.verdicts and not found.stopped:
        return
    out = console()
    confirmed: set[int] | None
    declined: set[int]
    if as_json:  # JSON is for scripts: nothing to ask, like --yes or no terminal
        confirmed, declined = (set() if assume_yes else None), set()
    else:
        show(out, found, settings)
        confirmed, declined = decide(found, assume_yes)
    if confirmed is None:
        if as_json:
            click.echo(json.dumps(as_data(found, recorded=False), indent=2))
        return
    box.settle(found, confirmed=confirmed, declined=declined)
    problems = {campaign: box.problems(campaign) for campaign in
                sorted({r.campaign for _, v in found.of(inbox.Kind.BOUNCE) for r in v.rows})}
    flagged = inbox.mark_read(settings, found) if mark_read else None
    if as_json:
        click.echo(json.dumps(as_data(found, recorded=True), indent=2))
        return
    report(out, found, confirmed, box)
    if flagged is not None:
        out.print(f"Flagged {flagged} message(s) as read.")
    for campaign, path in problems.items():
        out.print(f"Campaign {campaign!r}: the problem recipients, bounced ones with the "
                  f"diagnostic, are in {path}", markup=False)


def as_data(found: Sorted, *, recorded: bool) -> dict[str, object]:
    """`mailer inbox --json`: each message's class, what it concerns and why."""
    counts: dict[str, int] = {}
    messages = []
    for uid, verdict in found.verdicts:
        f = verdict.finding
        counts[str(verdict.kind)] = counts.get(str(verdict.kind), 0) + 1
        messages.append({
            "uid": uid, "class": str(verdict.kind), "found": str(f.kind), "sender": f.sender,
            "subject": f.subject, "date": f.date.isoformat() if f.date else None,
            "recipients": [r.recipient for r in verdict.rows],
            "campaigns": sorted({r.campaign for r in verdict.rows}),
            "failed": list(f.failed), "note": verdict.note,
        })
    return {"folder": found.folder, "recorded": recorded, "counts": counts,
            "stopped": found.stopped or None, "messages": messages}


def show(out: Console, found: Sorted, settings: config.ImapSettings) -> None:
    from rich.text import Text

    from ..mailbox.inbox import Kind

    out.print(Text(f"{settings.username} at {settings.host}, {found.folder}: "
                   f"{len(found.verdicts)} message(s) to sort."))
    for kind, heading in HEADINGS.items():
        listed = found.of(Kind(kind))
        if not listed:
            continue
        out.print(Text(f"{heading}: {len(listed)}"))
        with_uid = kind in ("unclear", "unreadable")
        for uid, verdict in listed:
            out.print(Text(f"  {f'UID {uid}: ' if with_uid else ''}{line(verdict)}"))
    others = len(found.of(Kind.OTHER))
    if others:
        out.print(Text(f"Other mail, not about a campaign: {others} (left alone)"))
    if found.stopped:
        out.print(Text(f"Stopped early: {shown(found.stopped)}. What was read is sorted; the "
                       f"rest follows at the next `mailer inbox`."))


def line(verdict: Verdict) -> str:
    f = verdict.finding
    who = ", ".join(r.recipient for r in verdict.rows) or f.sender or "-"
    day = f"{f.date:%Y-%m-%d}" if f.date else "undated"
    campaigns = ", ".join(sorted({repr(r.campaign) for r in verdict.rows}))
    text = f"{who} {day} {f.subject!r}" + (f" (campaign {campaigns})" if campaigns else "")
    return text + (f": {verdict.note}" if verdict.note else "")


def decide(found: Sorted, assume_yes: bool) -> tuple[set[int] | None, set[int]]:
    """Which unclear messages to apply as unsubscribes, which the user
    declined (None: change nothing at all)."""
    from ..mailbox.inbox import Kind

    clear = [v for _, v in found.verdicts if v.changes and v.kind is not Kind.UNCLEAR]
    unclear = [(uid, v) for uid, v in found.of(Kind.UNCLEAR) if v.addresses]  # else listed
    if assume_yes:
        return set(), set()
    if not sys.stdin.isatty():
        if clear or unclear:
            click.echo("Nothing changed: no terminal to ask on. Pass --yes to apply the clear "
                       "cases (unclear ones are then only listed).")
        return None, set()
    if clear and not click.confirm(f"Record these {len(clear)} outcome(s) in the journal?",
                                   default=False):
        click.echo("Nothing changed.")
        return None, set()
    confirmed: set[int] = set()
    declined: set[int] = set()
    for uid, verdict in unclear:
        addresses = ", ".join(verdict.addresses)
        if click.confirm(f"{line(verdict)}\n  Treat as an unsubscribe and never mail "
                         f"{addresses} again?", default=False):
            confirmed.add(uid)
        else:
            declined.add(uid)
    return confirmed, declined


def report(out: Console, found: Sorted, confirmed: set[int], box: InboxPass) -> None:
    from rich.text import Text

    from ..mailbox.inbox import Kind

    bounced = sum(len(v.rows) for _, v in found.of(Kind.BOUNCE))
    replied = sum(len(v.rows) for _, v in found.of(Kind.REPLY))
    suppressed = {a for uid, v in found.verdicts
                  if v.kind is Kind.UNSUBSCRIBE or uid in confirmed for a in v.addresses}
    left = [uid for uid, v in found.of(Kind.UNCLEAR) if uid not in confirmed and v.addresses]
    summary = (f"Recorded: {bounced} bounced, {len(suppressed)} on the do-not-mail list, "
               f"{replied} replied.")
    soft = len(found.of(Kind.SOFT))
    if soft:
        summary += f" {soft} mailbox(es) full: noted, the recipients stay as they are."
    unreadable = len(found.of(Kind.UNREADABLE))
    if unreadable:
        summary += (f" {unreadable} message(s) could not be read: left untouched, listed "
                    f"above with their UID.")
    if left:
        summary += (f" {len(left)} unclear message(s) are listed again next time; decide on "
                    f"them with `mailer inbox` at a terminal, or `mailer suppress add`.")
    out.print(Text(summary))
    for campaign in sorted({r.campaign for _, v in found.of(Kind.BOUNCE) for r in v.rows}):
        out.print(Text(resend_advice(campaign, *box.files(campaign))))


def resend_advice(campaign: str, contacts: list[str], profile: str) -> str:
    """After bounces: the files the campaign was sent from, and the resend
    that sends the corrected addresses in that same campaign."""
    shown_files = [_near(name) for name in contacts] or ["CONTACTS-FILE"]
    command = shlex.join(["mailer", "resend", *shown_files, "--profile",
                          _near(profile) if profile else "profile.toml", "--bounced",
                          "--campaign", campaign])
    return (f"Campaign {campaign!r}: fix the bounced addresses in "
            f"{', '.join(shown_files)}, then `{command}`.")


def _near(name: str) -> str:
    """A recorded path relative to the current folder when it lies inside it."""
    path = Path(name)
    try:
        return str(path.relative_to(Path.cwd())) if path.is_absolute() else name
    except ValueError:
        return name
