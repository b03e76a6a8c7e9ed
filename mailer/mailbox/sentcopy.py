"""Copies of sent mail in the user's Sent folder, each exactly once.

Runs as its own pass after a send: every message of the campaign that left
(`sent`, or `bounced`/`replied` since) and has no `done` copy in the journal
is appended to the folder marked `\\Sent` (RFC 6154), flagged `\\Seen` and
dated when the server took it.  Each copy is claimed in the journal
(`appending`, with the run's id) before the APPEND and `done` after it, as
the SMTP sending claims its rows: two runs at once never file one message
twice, and a message left `appending` by a run that died is first looked up
in the folder by its Message-ID, so a rerun never files it twice.

Providers that file mail sent through their SMTP server themselves (Gmail,
Google Workspace) get no copy: it would show up twice.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import datetime

from ..config import ImapSettings
from ..journal import Journal
from .imap import Mailbox


@dataclass(frozen=True, slots=True)
class CopyReport:
    appended: int = 0
    found: int = 0  # already in the folder after an interrupted earlier pass
    folder: str = ""
    skipped: str = ""  # why no copies were made at all

    def line(self) -> str:
        if self.skipped:
            return f"No copies in your Sent folder: {self.skipped}."
        if not self.appended and not self.found:
            return ""
        line = f"Copied {self.appended} sent message(s) to the folder {self.folder!r}"
        return line + (f" ({self.found} were already there)." if self.found else ".")


def copy_sent(journal: Journal, campaign: str, settings: ImapSettings, *,
              tls_context: ssl.SSLContext | None = None) -> CopyReport:
    """Append the campaign's sent messages that lack a copy; raises ImapError."""
    if settings.provider_copies_sent:
        return CopyReport(skipped=f"{settings.provider} files them itself")
    if not journal.copies_due(campaign):
        return CopyReport()  # no login when there is nothing to file
    appended = found = 0
    with Mailbox(settings, tls_context=tls_context) as box:
        folder = box.sent_folder()
        while (item := journal.claim_copy(campaign, folder)) is not None:
            if item.maybe_there and box.has_message(folder, item.message_id):
                found += 1
            else:
                box.append(folder, item.wire(),
                           datetime.fromtimestamp(item.finished_at).astimezone())
                appended += 1
            journal.copy_done(item.message_id)
    return CopyReport(appended, found, folder)
