"""`mailer resend`: which journal rows are queued again, and how corrected
contacts files are matched to the rows they correct.

Never a `sent` row.  Given the contacts files again, a contact whose address
is new to the campaign is matched to the failed or deferred row it corrects
(same "file:line", else the only row with the same display name) and swaps its
address into that row in place; other contacts new in the files are queued.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import TYPE_CHECKING

from ..addresses import address_key
from ..journal import Journal, Row
from ..models import Draft, State
from .plan import Status, Tally, plan_files

if TYPE_CHECKING:
    from ..compose.message import Composer

RESENDABLE = (State.FAILED, State.DEFERRED, State.UNKNOWN, State.BOUNCED)


@dataclass(frozen=True, slots=True)
class ResendPlan:
    again: list[Row]  # rows queued again as they are
    corrected: list[tuple[Row, Draft]]  # rows that get the corrected contact's draft
    added: list[Draft]  # contacts new in the files
    refused: list[str]  # why some --only addresses are not resent

    @property
    def people(self) -> int:
        return len(self.again) + len(self.corrected) + len(self.added)


@dataclass(frozen=True, slots=True)
class FileContacts:
    """What the corrected contacts files hold."""

    new: list[Draft]  # contacts a send would mail (never mailed), with their source
    addresses: set[str]  # address_key of every contact read, mailed or not


def chosen_states(failed: bool, unknown: bool, deferred: bool, only: bool,
                  with_files: bool, *, bounced: bool = False) -> tuple[State, ...]:
    """The flags given; without any: deferred (plus failed and bounced when
    contacts files come with corrections), or every resendable state for --only."""
    flags = (failed, deferred, unknown, bounced)
    flagged = tuple(s for s, on in zip(RESENDABLE, flags, strict=True) if on)
    if flagged:
        return flagged
    if only:
        return RESENDABLE
    return (State.FAILED, State.DEFERRED, State.BOUNCED) if with_files else (State.DEFERRED,)


def read_files(journal: Journal, campaign: str, paths: Sequence[Path], composer: Composer, *,
               mapping: Mapping[str, str] | None, region: str, tally: Tally) -> FileContacts:
    """The contacts files, planned as a send of `campaign` would plan them."""
    files = FileContacts([], set())
    items = plan_files(paths, composer, journal, campaign=campaign, mapping=mapping,
                       region=region)
    for item in tally.count(items):
        if item.email:
            files.addresses.add(address_key(item.email))
        if item.status is Status.NEW and item.draft is not None:
            files.new.append(item.draft)
    return files


def plan_resend(journal: Journal, campaign: str, states: Iterable[State], only: tuple[str, ...],
                files: FileContacts | None) -> ResendPlan:
    """What resend will do (`files`: None when no contacts files were given)."""
    rows = list(journal.rows(campaign, states))
    refused: list[str] = []
    if only:
        wanted = {address_key(a) for a in only}
        rows = [r for r in rows if address_key(r.recipient) in wanted]
        found = {address_key(r.recipient) for r in rows}
        states_of = {address_key(r.recipient): r.state for r in journal.rows(campaign)}
        for address in only:
            key = address_key(address)
            if key not in found:
                refused.append(f"{address}: " + (f"is {states_of[key]}, not resent"
                                                 if key in states_of else "not in this campaign"))
    if files is None:
        return ResendPlan(rows, [], [], refused)
    in_campaign = {address_key(r.recipient) for r in journal.rows(campaign)}
    # rows whose address the files no longer hold: corrected (or removed) since
    stale = [r for r in rows if address_key(r.recipient) not in files.addresses]
    corrected: list[tuple[Row, Draft]] = []
    added: list[Draft] = []
    for draft in files.new:
        if address_key(draft.recipient) in in_campaign:
            continue
        match = same_contact(journal, campaign, stale, draft)
        if match is not None:
            stale.remove(match)
            corrected.append((match, draft))
        elif not only:
            added.append(draft)
    fixed = {id(r) for r, _ in corrected}
    return ResendPlan([r for r in rows if id(r) not in fixed], corrected, added, refused)


def same_contact(journal: Journal, campaign: str, rows: list[Row],
                 draft: Draft) -> Row | None:
    """The journal row of this contact before its address was corrected: the
    same "file:line", else the only row with the same display name."""
    for row in rows:
        if row.source and row.source == draft.source:
            return row
    name = display_name(draft.payload)
    if not name:
        return None
    named = [r for r in rows
             if display_name(journal.payload(campaign, r.recipient) or b"") == name]
    return named[0] if len(named) == 1 else None


def display_name(payload: bytes) -> str:
    """The recipient's name in the message's To header, case-folded."""
    to = BytesHeaderParser(policy=default_policy).parsebytes(payload).get("To")
    addresses = getattr(to, "addresses", ())
    return addresses[0].display_name.casefold().strip() if addresses else ""


def apply_resend(journal: Journal, campaign: str, states: tuple[State, ...],
                 plan: ResendPlan) -> int:
    """Queue what the plan says; returns how many rows were queued."""
    queued = 0
    if plan.again:
        queued += journal.requeue(campaign, states, [r.recipient for r in plan.again])
    for row, draft in plan.corrected:
        queued += journal.replace_recipient(campaign, row.recipient, draft)
    if plan.added:
        queued += journal.enqueue(campaign, plan.added)
    return queued
