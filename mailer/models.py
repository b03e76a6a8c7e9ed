"""Small immutable records passed between the stages.

contacts/ produces `Contact`, `Rejected` and `Duplicate`; compose/message.py turns a
`Contact` into a `Draft`; the journal and sender record an `Outcome` per draft.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from email.utils import format_datetime
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class Contact:
    """One person to mail.  Every text field is already sanitised (no control
    characters, no encoded-word markers) and trimmed; "" means unknown."""

    email: str  # primary address, validated, domain lower-cased
    name: str = ""  # the full name the source gives (FN, a Name column), else given + family
    given: str = ""
    family: str = ""
    emails: tuple[str, ...] = ()  # all valid addresses, primary first
    org: str = ""
    title: str = ""
    phones: tuple[str, ...] = ()
    website: str = ""
    lang: str = ""  # "de", "en", ... when the source says so
    source: str = ""  # "file:line" or "file#card"
    needs_review: bool = False  # OCR guess below the confidence threshold
    # Who the entry is: `display` (To: and previews) is the name, else "File As", else the
    # organisation; `person` is a person's name only ("" for a company), for the salutation.
    # Neither is ever derived from the address.
    display: str = ""
    person: str = ""
    text_lang: str = ""  # the language of a business card's printed text (OCR), if clear
    phone_country: str = ""  # "DE": of the first phone written with its country code (+, 00)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["emails"] = list(self.emails)
        data["phones"] = list(self.phones)
        return data


@dataclass(frozen=True, slots=True)
class Rejected:
    """An entry that cannot be mailed, with where it came from and why.
    `fields` keeps what was read, so a rejects CSV can be fixed and re-imported."""

    source: str
    reason: str
    fields: Mapping[str, str] = field(default_factory=dict)
    name: str = ""  # the name the entry carried, so a report says who it was

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "name": self.name,
            "reason": self.reason,
            "fields": dict(self.fields),
        }


@dataclass(frozen=True, slots=True)
class Duplicate:
    """An entry merged into an earlier one with the same address."""

    source: str
    kept: str  # source of the record it was merged into
    email: str

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "kept": self.kept, "email": self.email}


@dataclass(slots=True)
class ImportResult:
    contacts: list[Contact] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)

    @property
    def read(self) -> int:
        """Entries read: always accepted + merged duplicates + rejected."""
        return len(self.contacts) + len(self.duplicates) + len(self.rejected)

    def to_json(self) -> dict[str, Any]:
        return {
            "contacts": [c.to_json() for c in self.contacts],
            "rejected": [r.to_json() for r in self.rejected],
            "duplicates": [d.to_json() for d in self.duplicates],
            "counts": {
                "read": self.read,
                "accepted": len(self.contacts),
                "duplicates": len(self.duplicates),
                "rejected": len(self.rejected),
            },
        }


@dataclass(frozen=True, slots=True)
class Draft:
    """A rendered message for one recipient, ready to queue.  `payload` is the
    whole message (CRLF line ends) without a Date header: `wire()` adds the
    Date when the message actually leaves, so a queued mail is never stale."""

    recipient: str  # envelope RCPT TO: exactly one address
    sender: str  # envelope MAIL FROM: the profile's address
    message_id: str  # "<...@sender-domain>"
    lang: str
    subject: str
    text: str
    html: str
    payload: bytes
    smtputf8: bool = False  # the recipient address needs SMTPUTF8
    source: str = ""  # the contact's "file:line", kept by the journal for `resend`
    lang_why: str = ""  # what decided `lang`: "+49 phone", ".fr address", "profile default"

    def wire(self, date: datetime | None = None) -> bytes:
        return dated(self.payload, date)


def dated(payload: bytes, date: datetime | None = None) -> bytes:
    """A queued payload with its Date header (default: now), as it goes on the wire."""
    when = date if date is not None else datetime.now().astimezone()
    return b"Date: " + format_datetime(when).encode("ascii") + b"\r\n" + payload


class State(StrEnum):
    """A recipient's state in the journal (see journal.py for the transitions)."""

    QUEUED = "queued"
    CLAIMED = "claimed"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"
    BOUNCED = "bounced"  # sent, then a bounce came back (mailbox/inbox.py)
    REPLIED = "replied"  # sent, and the recipient answered (mailbox/inbox.py)
