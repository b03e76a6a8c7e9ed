"""The plan shared by `preview` and `send`: every contact read, with what a send would do.

Nothing here talks SMTP or writes files; preview writes the plan as files,
send queues its NEW items in the journal.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from .errors import TemplateError
from .models import Contact, Draft, ImportResult

if TYPE_CHECKING:
    from .journal import Journal
    from .message import Composer


class Status(StrEnum):
    NEW = "new"
    MAILED = "already mailed"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    SUPPRESSED = "suppressed"
    REVIEW = "needs review"
    ERROR = "render error"


@dataclass(frozen=True, slots=True)
class PlanItem:
    status: Status
    source: str
    email: str
    contact: Contact | None = None
    draft: Draft | None = None  # set for NEW (and for MAILED/REVIEW, to preview it)
    reason: str = ""


def plan(
    result: ImportResult,
    composer: Composer,
    journal: Journal | None,
    *,
    again: bool = False,
) -> Iterator[PlanItem]:
    """Yield one item per entry read: accepted contacts first, in file order,
    then merged duplicates, then rejected entries."""
    for contact in result.contacts:
        status, reason = Status.NEW, ""
        if journal is not None and journal.is_suppressed(contact.email):
            status, reason = Status.SUPPRESSED, "on the do-not-mail list"
        elif contact.needs_review:
            status, reason = (
                Status.REVIEW,
                "read from a card image; confirm it with `mailer cards review`",
            )
        elif journal is not None and not again:
            earlier = journal.mailed_before(contact.email)
            if earlier is not None:
                status, reason = Status.MAILED, f"already mailed in campaign {earlier!r}"
        try:
            draft = composer.render(contact)
        except TemplateError as err:
            yield PlanItem(Status.ERROR, contact.source, contact.email, contact, None, str(err))
            continue
        yield PlanItem(status, contact.source, contact.email, contact, draft, reason)
    for dup in result.duplicates:
        yield PlanItem(
            Status.DUPLICATE, dup.source, dup.email, reason=f"same address as {dup.kept}"
        )
    for rej in result.rejected:
        yield PlanItem(Status.REJECTED, rej.source, "", reason=rej.reason)
