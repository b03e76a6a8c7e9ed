"""One rate limiter shared by every connection of a run.

A sliding-window log: each rule "N per W seconds" admits a message at time t
only if fewer than N messages were admitted in (t - W, t].  That is exactly
the promise "over any window of W seconds, at most N messages", with no burst
allowance beyond it (a token bucket would let a full bucket through on top of
the steady rate).  Several rules (30/min and 2000/day) hold at once.  The log
keeps the last N admission times of the largest rule, so memory is bounded by
the limit, not by the run.

The clock and the sleep are injectable, so tests drive the limiter with a fake
clock instead of wall time; the default clock is wall time so that the journal's
send times from earlier runs today can seed a daily limit.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from .errors import ConfigError

UNITS = {
    "s": 1.0, "sec": 1.0, "second": 1.0,
    "m": 60.0, "min": 60.0, "minute": 60.0,
    "h": 3600.0, "hour": 3600.0,
    "d": 86400.0, "day": 86400.0,
}
UNIT_NAMES = {1.0: "s", 60.0: "min", 3600.0: "hour", 86400.0: "day"}
RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+?)s?\s*$")


@dataclass(frozen=True, slots=True)
class Rate:
    count: int
    per: float  # window in seconds

    def __str__(self) -> str:
        return f"{self.count}/{UNIT_NAMES.get(self.per, f'{self.per:g}s')}"


# Published sending limits; sources in the README ("Rate limits and presets").
PRESETS: dict[str, tuple[Rate, ...]] = {
    # Gmail consumer accounts: 500 recipients a day (support.google.com/mail/answer/22839)
    "gmail": (Rate(20, 60.0), Rate(500, 86400.0)),
    # Google Workspace: 2,000 messages a day per user (support.google.com/a/answer/166852)
    "workspace": (Rate(30, 60.0), Rate(2000, 86400.0)),
    # Exchange Online: 30 messages a minute, 10,000 recipients a day
    # (learn.microsoft.com/.../exchange-online-limits#sending-limits)
    "m365": (Rate(30, 60.0), Rate(10000, 86400.0)),
    # Outlook.com: 1,000 non-relationship recipients a day for Microsoft 365 subscribers,
    # "lower for non-subscribers" (support.microsoft.com "Sending limits in Outlook.com");
    # 300 a day is what free accounts report, so the preset takes that

    "outlook": (Rate(30, 60.0), Rate(300, 86400.0)),
    # IONOS Mail Basic/Business: 500 e-mails an hour once the contract is 30 days old
    # (50 in the first week) (ionos.com/help "What are the mass mailing limits?")
    "ionos": (Rate(30, 60.0), Rate(500, 3600.0)),
    # Unknown provider: modest, like a person sending by hand
    "generic": (Rate(20, 60.0), Rate(1000, 86400.0)),
}


def parse_rates(values: Iterable[str]) -> tuple[Rate, ...]:
    """`["30/min", "2000/day"]` or `["30/min,2000/day"]`; `none` alone turns
    the limit off (empty tuple)."""
    parts = [p.strip().lower() for v in values for p in v.split(",") if p.strip()]
    if parts == ["none"]:
        return ()
    rates = []
    for part in parts:
        match = RATE_RE.match(part)
        if not match or match.group(2) not in UNITS or int(match.group(1)) < 1:
            raise ConfigError(
                f"--rate {part!r} is not a rate: use N/min, N/hour or N/day "
                f"(N at least 1, several comma-separated), or 'none'."
            )
        rates.append(Rate(int(match.group(1)), UNITS[match.group(2)]))
    return tuple(sorted(set(rates), key=lambda r: r.per))


def describe(rates: Sequence[Rate]) -> str:
    return ", ".join(map(str, rates)) if rates else "no limit"


class RateLimiter:
    def __init__(
        self,
        rates: Sequence[Rate] = (),
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] | None = None,  # default asyncio.sleep
        history: Iterable[float] = (),
    ) -> None:
        """`history`: admission times before this run (e.g. today's sent
        messages from the journal), oldest first."""
        self.rates = tuple(rates)
        self._clock = clock
        if sleep is None:
            import asyncio  # here: `mailer --help` and `status` read PRESETS, never sleep

            sleep = asyncio.sleep
        self._sleep = sleep
        depth = max((r.count for r in self.rates), default=0)
        self._log: deque[float] = deque(history, maxlen=depth)

    def __str__(self) -> str:
        return describe(self.rates)

    def wait_time(self, now: float | None = None) -> float:
        """Seconds until the next message may go (0: now)."""
        t = self._clock() if now is None else now
        wait = 0.0
        for rate in self.rates:
            if len(self._log) >= rate.count:
                wait = max(wait, self._log[-rate.count] + rate.per - t)
        return wait

    async def acquire(self) -> None:
        """Wait for a slot and take it.  Check and record happen without an
        await in between, so concurrent callers on one loop cannot overshoot."""
        if not self.rates:
            return
        while (wait := self.wait_time()) > 0:
            await self._sleep(wait)
        self._log.append(self._clock())

    def refund(self) -> None:
        """Return the slot just taken when nothing was sent with it."""
        if self.rates and self._log:
            self._log.pop()
