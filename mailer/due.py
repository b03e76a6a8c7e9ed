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

from .config import SmtpSettings
from .journal import Journal, journal_path
from .ratelimit import Rate
from .runlock import RunLock
from .sender import RetryPolicy, SendSummary, make_limiter, send_campaign_sync


def send_due(state_dir: Path, now: datetime, settings: Callable[[], SmtpSettings],
             limits: tuple[Rate, ...], concurrency: int) -> Iterator[SendSummary]:
    """One summary per due campaign sent; nothing when nothing is due, when there
    is no journal yet, or when another run-due holds the lock.  `settings` is
    asked only when something is due, so an idle tick needs no SMTP account.
    Stops after a campaign whose run stopped early."""
    path = journal_path(state_dir)
    with RunLock(state_dir) as lock:
        if not lock.acquired or not path.exists():
            return
        with Journal(path) as journal:
            journal.retry_deferred(now.timestamp())
            due = journal.due_campaigns(now.timestamp())
            if not due:
                return
            smtp = settings()
            for campaign in due:
                summary = send_campaign_sync(
                    journal, campaign, smtp, limiter=make_limiter(journal, limits),
                    concurrency=concurrency, retry=RetryPolicy(attempts=1), handle_sigint=True)
                yield summary
                if summary.stopped:
                    return
