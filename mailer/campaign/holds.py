"""When a campaign may take new messages and when it may be sent: the rules
`send`, `send --at` and `resend` share.

- a cancelled campaign takes nothing more: a new one needs a new name;
- a campaign scheduled for later is sent by `mailer run-due` once due: a plain
  `send` refuses to send it early (`--at now` sends it now, `--at WHEN` moves
  it), and `resend` queues but leaves the sending to run-due.
"""

from __future__ import annotations

from datetime import datetime

from ..errors import ConfigError
from ..journal import Campaign, Journal
from ..schedule.when import format_when


def check_can_queue(journal: Journal, campaign: str, now: datetime, *, at_given: bool) -> None:
    """Refuse to add to a cancelled campaign, and to send early one scheduled
    for later (unless --at says when)."""
    held = journal.campaign(campaign)
    if held is None:
        return
    if held.cancelled_at is not None:
        raise ConfigError(f"Campaign {campaign!r} was cancelled; pass --campaign with a new "
                          f"name to start another one.")
    later = due_later(held, now.timestamp())
    if not at_given and later is not None:
        due = datetime.fromtimestamp(later, now.tzinfo)
        raise ConfigError(
            f"Campaign {campaign!r} is scheduled for {format_when(due, now)}: "
            f"`mailer run-due` sends it then. To send it right away, add --at now; to "
            f"change the time, --at WHEN.")


def check_can_resend(journal: Journal, campaign: str) -> Campaign | None:
    """The campaign's record; refuses a cancelled campaign."""
    held = journal.campaign(campaign)
    if held is not None and held.cancelled_at is not None:
        raise ConfigError(f"Campaign {campaign!r} was cancelled; nothing is resent from it.")
    return held


def due_later(held: Campaign | None, now: float) -> float | None:
    """The campaign's time when it lies after `now`: then run-due, not this
    command, sends it."""
    if held is None or held.scheduled_at is None or held.scheduled_at <= now:
        return None
    return held.scheduled_at
