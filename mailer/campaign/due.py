"""`mailer run-due`: what is due now, sent once per cron tick.

Every campaign that is due (not cancelled, its time reached or none) is sent,
after deferred recipients whose back-off has elapsed were put back in the
queue (`journal.DeferredRetry`).  Within one run a 4xx reply defers the
recipient at once (no in-process waiting): the journal's back-off takes over.
Overlapping runs never work at the same time (`runlock.RunLock`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from ..config import SmtpSettings
from ..journal import Journal, journal_path
from ..schedule.runlock import RunLock
from ..smtp.sender import SendSummary

# sends one campaign: the command line's, with its pace, output and Ctrl-C handling
Send = Callable[[Journal, str, SmtpSettings], SendSummary]


def send_due(state_dir: Path, now: datetime, settings: Callable[[], SmtpSettings],
             send: Send, *,
             after_all: Callable[[Journal], None] | None = None) -> Iterator[SendSummary]:
    """One summary per due campaign sent; nothing when there is no journal yet, or
    when another run-due holds the lock.  `settings` is asked only when something
    is due, so an idle tick needs no SMTP account.  Stops after a campaign whose
    run stopped early.  Under the same lock, `after_all` follows the whole tick
    unless it was interrupted (the inbox pass)."""
    path = journal_path(state_dir)
    with RunLock(state_dir) as lock:
        if not lock.acquired or not path.exists():
            return
        with Journal(path) as journal:
            journal.retry_deferred(now.timestamp())
            due = journal.due_campaigns(now.timestamp())
            smtp = settings() if due else None
            for campaign in due:
                assert smtp is not None
                summary = send(journal, campaign, smtp)
                yield summary
                if summary.stopped == "interrupted":
                    return
                if summary.stopped:
                    break
            if after_all is not None:
                after_all(journal)
