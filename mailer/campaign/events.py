"""What goes into the campaign service and what comes out of it: the requests
(`SendRequest`, `ResendRequest`, the `Sending` options), the answers
(`Finished`, `Declined`, `Scheduled`, `Cancelled`, ...), what the caller is
shown before a question (`PlanSummary`, `ResendShown`, `CancelShown`) and the
`Events` of a run.  Small frozen dataclasses, light to import: the command
line builds and reads them without loading the journal or the SMTP stack.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .. import config
from ..models import State

if TYPE_CHECKING:
    from ..compose.message import Composer
    from ..contacts.csvfile import ColumnReport
    from ..journal import Row as Row
    from ..schedule.when import Timing
    from ..smtp.pace import Rate
    from ..smtp.sender import Progress as Progress
    from ..smtp.sender import SendSummary as SendSummary
    from ..smtp.sender import Wait as Wait
    from .plan import Tally
    from .resend import ResendPlan


@dataclass(frozen=True, slots=True)
class Sending:
    """The sending options as given: what to send with, and what to repeat in
    the command that resumes a paused campaign."""

    rates: tuple[str, ...] = ()
    provider: str | None = None
    concurrency: int = 1
    again: tuple[str, ...] = ()  # the command that resumes; default `mailer resume NAME ...`
    sent_copy: bool = True  # file what was sent in the IMAP Sent folder (--no-sent-copy)

    def resume_command(self, campaign: str) -> str:
        return shlex.join(self.again or ("mailer", "resume", campaign, *self.args()))

    @property
    def limits(self) -> tuple[Rate, ...]:
        return choose_rates(self.rates, self.provider)

    def args(self) -> list[str]:
        return [*(["--provider", self.provider] if self.provider else []),
                *(arg for rate in self.rates for arg in ("--rate", rate)),
                *(["--concurrency", str(self.concurrency)] if self.concurrency != 1 else [])]


def choose_rates(rates: tuple[str, ...], provider: str | None) -> tuple[Rate, ...]:
    """--rate wins over --provider; with neither, the cautious generic preset."""
    from ..accounts.providers import PROVIDERS
    from ..smtp.pace import parse_rates

    return parse_rates(rates) if rates else PROVIDERS[provider or "generic"].rates


def server_line(settings: config.SmtpSettings) -> str:
    who = f", as {settings.username}" if settings.username else ""
    return f"SMTP server {settings.host}:{settings.port} ({settings.security}{who})"


def rate_text(limits: tuple[Rate, ...]) -> str:
    from ..smtp.pace import RateLimiter

    return str(RateLimiter(limits))  # "one message every 3 s (20/min), at most 500/day"


# --- what the caller hears and is asked ---------------------------------------


@dataclass(frozen=True, slots=True)
class PlanSummary:
    """What a send is about to queue, shown before the question."""

    campaign: str
    tally: Tally
    to_send: int  # queued in the campaign with this run's new ones
    added: int  # rows this run adds (new contacts not queued before)
    at: datetime | None = None  # scheduled for (None: now)
    how: str = ""  # server, pace and connections, for a send now


@dataclass(frozen=True, slots=True)
class Starting:
    """A run is about to send: where, how fast, what."""

    server: str
    pace: str
    concurrency: int
    campaign: str
    plan: str  # "3 queued message(s)", or "the new contacts as they are read ..."
    header: bool  # False when the question before sending has just said it


class Events(Protocol):
    """What happens during a run, for the caller to show."""

    def columns(self, report: ColumnReport) -> None: ...
    def plan(self, summary: PlanSummary) -> None: ...
    def starting(self, start: Starting) -> None: ...
    def sending(self) -> AbstractContextManager[Callable[[Progress], None]]: ...
    def waiting(self, wait: Wait) -> None: ...
    def interrupted(self, in_flight: int | None) -> None: ...
    def note(self, line: str) -> None: ...
    def warning(self, line: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Finished:
    """A run that sent (or found nothing to send)."""

    summary: SendSummary
    problems: Path | None  # the CSV of failed, deferred and unknown recipients
    tally: Tally | None = None  # the plan, when the contacts were read while sending


@dataclass(frozen=True, slots=True)
class Declined:
    """Nothing was queued: the answer was no, or there was nothing to queue."""

    empty: bool = False  # nothing to schedule at all (no question was asked)


@dataclass(frozen=True, slots=True)
class Scheduled:
    campaign: str
    queued: int  # waiting for the time
    added: int  # of them queued by this run
    at: datetime


@dataclass(frozen=True, slots=True)
class SendRequest:
    """`mailer send`: the contacts files and how to read and render them."""

    paths: Sequence[Path]
    composer: Composer
    campaign: str
    timing: Timing
    options: Sending
    region: str = "DE"
    mapping: Mapping[str, str] | None = None
    again: bool = False  # also mail people mailed in an earlier campaign
    assume_yes: bool = False
    profile: Path | None = None  # recorded with the files, for the inbox's advice


@dataclass(frozen=True, slots=True)
class ResendRequest:
    """`mailer resend`: which recipients, and the corrected files if given."""

    campaign: str | None
    states: tuple[State, ...]
    only: tuple[str, ...] = ()
    paths: Sequence[Path] = ()
    composer: Composer | None = None
    region: str = "DE"
    mapping: Mapping[str, str] | None = None
    bounced: bool = False  # --bounced: without a campaign, the one the bounces are in


@dataclass(frozen=True, slots=True)
class ResendShown:
    """The resend about to happen, shown before the question."""

    campaign: str
    states: tuple[State, ...]
    plan: ResendPlan
    tally: Tally | None  # the files' plan, when files were given


@dataclass(frozen=True, slots=True)
class CancelShown:
    campaign: str
    counts: dict[State, int]


@dataclass(frozen=True, slots=True)
class Cancelled:
    campaign: str
    outcome: Literal["done", "declined", "already"]
    removed: int = 0


@dataclass(frozen=True, slots=True)
class CampaignInfo:
    """One line of `mailer campaigns`."""

    name: str
    created_at: float
    scheduled_at: float | None
    cancelled_at: float | None
    paused_at: float | None
    counts: dict[State, int] = field(default_factory=dict)
    held_reason: str = ""  # paused by an account error, with it

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "created_at": self.created_at,
                "scheduled_at": self.scheduled_at, "cancelled_at": self.cancelled_at,
                "paused_at": self.paused_at, "held_reason": self.held_reason,
                "counts": {str(s): n for s, n in self.counts.items()}}


class Quiet:
    """Events nobody listens to (a program driving a campaign on its own)."""

    def columns(self, report: ColumnReport) -> None:
        pass

    def plan(self, summary: PlanSummary) -> None:
        pass

    def starting(self, start: Starting) -> None:
        pass

    def sending(self) -> AbstractContextManager[Callable[[Progress], None]]:
        from contextlib import nullcontext

        return nullcontext(lambda _: None)

    def waiting(self, wait: Wait) -> None:
        pass

    def interrupted(self, in_flight: int | None) -> None:
        pass

    def note(self, line: str) -> None:
        pass

    def warning(self, line: str) -> None:
        pass
