"""The plan: what a send would do with every entry read.  The one path from
contacts files to messages, used by `preview`, `send`, `send --at`, `resend`
and the demo (`run-due` sends what `send --at` planned and queued).

    plan_files(paths, composer, journal, ...) -> one PlanItem per entry read

Entries come out in the order read, each with one `Status`; contacts sharing
an address are merged first (`contacts/dedupe.py`: richest record wins, across
files, in flat memory), so the preview, the confirmation and the summary talk
about the same people.  `Tally` counts what went past and says it in the one
summary line every command prints: `read 15 = new 13 + duplicate 1 + rejected 1`.

Nothing here talks SMTP or writes files; preview writes the plan as files,
send queues its NEW drafts in the journal.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import TemplateError
from ..models import Contact, Draft, Duplicate, Rejected, State

if TYPE_CHECKING:
    from ..compose.message import Composer
    from ..contacts.csvfile import Columns
    from ..journal import Journal


class Status(StrEnum):
    """What a send does with an entry; the words every command prints."""

    NEW = "new"
    MAILED = "already mailed"
    QUEUED = "already queued"  # in this campaign, waiting to be sent
    FAILED = "failed before"  # in this campaign: `resend` decides, not a rerun
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    SUPPRESSED = "suppressed"
    REVIEW = "needs review"
    ERROR = "render error"


# Entries the user has to act on: listed with their reason wherever a plan is shown.
NOTED = frozenset({Status.REJECTED, Status.ERROR, Status.REVIEW, Status.FAILED})


@dataclass(frozen=True, slots=True)
class PlanItem:
    status: Status
    source: str
    email: str
    contact: Contact | None = None
    draft: Draft | None = None  # every contact that renders has one, to preview it
    reason: str = ""
    name: str = ""  # who the entry is (display name), also for a rejected one


def plan_files(
    paths: Sequence[Path],
    composer: Composer,
    journal: Journal | None,
    *,
    campaign: str | None = None,
    mapping: Mapping[str, str] | None = None,
    region: str = "DE",
    again: bool = False,
    on_columns: Columns | None = None,
) -> Iterator[PlanItem]:
    """The plan over contacts files, streamed (see `plan`); `on_columns` hears how
    each CSV file's columns were read."""
    from ..contacts import iter_contacts  # the readers load only when contacts are read

    entries = iter_contacts(paths, mapping=mapping, region=region, on_columns=on_columns)
    return plan(entries, composer, journal, campaign=campaign, again=again)


def plan(
    entries: Iterable[Contact | Rejected],
    composer: Composer,
    journal: Journal | None,
    *,
    campaign: str | None = None,
    again: bool = False,
) -> Iterator[PlanItem]:
    """One item per entry, in the order read, duplicates merged.  `journal`
    (None: a preview with no journal yet) says who was mailed, suppressed or is
    already in `campaign`; `again` mails people mailed in other campaigns."""
    from ..contacts.dedupe import merged

    for entry in merged(entries):
        if isinstance(entry, Contact):
            yield _contact_item(entry, composer, journal, campaign, again)
        elif isinstance(entry, Duplicate):
            yield PlanItem(Status.DUPLICATE, entry.source, entry.email,
                           reason=f"same address as {entry.kept}")
        else:
            yield PlanItem(Status.REJECTED, entry.source, "", reason=entry.reason, name=entry.name)


def _contact_item(contact: Contact, composer: Composer, journal: Journal | None,
                  campaign: str | None, again: bool) -> PlanItem:
    status, reason = _status(contact, journal, campaign, again)
    who = contact.display or contact.name
    try:
        draft = composer.render(contact)
    except TemplateError as err:
        return PlanItem(Status.ERROR, contact.source, contact.email, contact, None, str(err), who)
    draft = dataclasses.replace(draft, source=contact.source)
    return PlanItem(status, contact.source, contact.email, contact, draft, reason, who)


def _status(contact: Contact, journal: Journal | None, campaign: str | None,
            again: bool) -> tuple[Status, str]:
    if journal is not None and journal.is_suppressed(contact.email):
        return Status.SUPPRESSED, "on the do-not-mail list"
    here = journal.state_in(campaign, contact.email) if journal and campaign else None
    if here in (State.SENT, State.UNKNOWN, State.REPLIED):
        return Status.MAILED, f"already mailed in campaign {campaign!r}" + (
            " (delivery unknown)" if here is State.UNKNOWN else
            " (and answered)" if here is State.REPLIED else "")
    if here is State.BOUNCED:
        return Status.FAILED, ("bounced in this campaign; fix the address, then "
                               "`mailer resend --bounced` with the contacts file")
    if here in (State.QUEUED, State.CLAIMED, State.DEFERRED):
        return Status.QUEUED, f"already queued in campaign {campaign!r}"
    if here is State.FAILED:
        return Status.FAILED, ("the server refused it in this campaign; "
                               "`mailer resend --failed` tries again")
    if here is State.CANCELLED:
        return Status.SUPPRESSED, "cancelled in this campaign"
    if contact.needs_review:
        return Status.REVIEW, "read from a card image; confirm it with `mailer cards review`"
    if journal is not None and not again:
        earlier = journal.mailed_before(contact.email)
        if earlier is not None:
            return Status.MAILED, f"already mailed in campaign {earlier!r}"
    return Status.NEW, ""


class Tally:
    """Counts the items that pass through it, and keeps the first `NOTE_LIMIT`
    of those the user must act on (`NOTED`) to list them with their reasons
    (the preview lists all; memory stays flat however many there are)."""

    NOTE_LIMIT = 200

    def __init__(self) -> None:
        self.counts: Counter[Status] = Counter()
        self.notes: list[PlanItem] = []
        self.more_notes = 0  # noted items beyond NOTE_LIMIT

    def count(self, items: Iterable[PlanItem]) -> Iterator[PlanItem]:
        for item in items:
            self.counts[item.status] += 1
            if item.status in NOTED:
                if len(self.notes) < self.NOTE_LIMIT:
                    self.notes.append(item)
                else:
                    self.more_notes += 1
            yield item

    def new_drafts(self, items: Iterable[PlanItem]) -> Iterator[Draft]:
        """The drafts to queue: those of NEW items; every item is counted."""
        for item in self.count(items):
            if item.status is Status.NEW and item.draft is not None:
                yield item.draft

    @property
    def read(self) -> int:
        return sum(self.counts.values())

    @property
    def new(self) -> int:
        return self.counts[Status.NEW]

    def line(self) -> str:
        return summary_line(self.counts)


def summary_line(counts: Mapping[Status, int]) -> str:
    """`read 15 = new 13 + duplicate 1 + rejected 1`, statuses in `Status` order."""
    parts = [f"{status.value} {counts.get(status, 0)}" for status in Status
             if counts.get(status, 0) or status is Status.NEW]
    return f"read {sum(counts.values())} = " + " + ".join(parts)
