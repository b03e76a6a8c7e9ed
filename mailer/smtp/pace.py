"""One rate limiter shared by every connection of a run: an even pace, and caps.

The pace: the rule with the shortest window, N per W, spaces the starts of
messages at least W/N apart across all connections, a generic cell rate
algorithm with no burst tolerance (a token bucket of depth 1).  `--rate
1200/min` sends one message every 50 ms, never 200 at once: a window's whole
budget at once is what trips providers' "too many messages too quickly"
throttles, and an even pace is what people expect from the rate they typed.

The caps: every longer rule (500/day next to 20/min) is a sliding window over
its whole length: a message may start at t only if fewer than N started in
(t - W, t], counting the messages earlier runs sent (`history`, from the
journal).  Pacing a daily rule instead would mean one message every three
minutes for 500/day, which nobody asking for "20/min, at most 500 a day" wants.

Together: in any interval of length t, at most floor(t*N/W) + 1 messages start
for the pace rule, and at most N in any window W for every rule.  The log
keeps the last N start times of the largest cap, so memory is bounded by the
limit, not by the run.

The clock and the sleep are injectable, so tests drive the limiter with a fake
clock instead of wall time; the default clock is wall time so that the
journal's send times from earlier runs can seed the caps and the pace.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from ..errors import ConfigError

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


def pace_of(rates: Sequence[Rate]) -> Rate | None:
    """The rule that sets the pace: the shortest window (the slowest of those)."""
    return min(rates, key=lambda r: (r.per, r.count), default=None)


def _seconds(value: float) -> str:
    return f"{value:.3g} s" if value < 60 else f"{value / 60:.3g} min"


class RateLimiter:
    def __init__(
        self,
        rates: Sequence[Rate] = (),
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] | None = None,  # default asyncio.sleep
        history: Iterable[float] = (),
    ) -> None:
        """`history`: start times before this run (e.g. the journal's sent
        messages within the longest window), oldest first."""
        self.rates = tuple(rates)
        self.pace = pace_of(self.rates)
        self.interval = self.pace.per / self.pace.count if self.pace else 0.0
        self.caps = tuple(r for r in self.rates if r is not self.pace)
        self._clock = clock
        if sleep is None:
            import asyncio  # here: `mailer --help` and `status` read the presets, never sleep

            sleep = asyncio.sleep
        self._sleep = sleep
        depth = max((r.count for r in self.rates), default=0)
        self._log: deque[float] = deque(history, maxlen=depth)
        # the earliest time the next message may start (GCRA's theoretical arrival time)
        self._next = self._log[-1] + self.interval if self._log else float("-inf")
        self._taken = 0  # slots handed out, for refunds
        self._before: tuple[float, float | None] = (self._next, None)

    def __str__(self) -> str:
        if self.pace is None:
            return "no limit"
        text = f"one message every {_seconds(self.interval)} ({self.pace})"
        if self.caps:
            text += ", at most " + ", ".join(map(str, self.caps))
        return text

    def blocked(self, now: float | None = None) -> tuple[float, Rate | None]:
        """Seconds until the next message may start (0: now), and the rule
        that holds it back."""
        t = self._clock() if now is None else now
        wait, rule = max(0.0, self._next - t), self.pace
        for rate in self.rates:  # the pace rule too: its window count stays exact in floats
            if len(self._log) >= rate.count:
                cap_wait = self._log[-rate.count] + rate.per - t
                if cap_wait > wait:
                    wait, rule = cap_wait, rate
        return (wait, rule) if wait > 0 else (0.0, None)

    def wait_time(self, now: float | None = None) -> float:
        """Seconds until the next message may start (0: now)."""
        return self.blocked(now)[0]

    async def acquire(self) -> int:
        """Wait for a slot and take it; returns its number, for `refund`.  Check
        and record happen without an await in between, so concurrent callers
        on one loop cannot overshoot."""
        if not self.rates:
            return 0
        while (wait := self.wait_time()) > 0:
            await self._sleep(wait)
        now = self._clock()
        dropped = self._log[0] if len(self._log) == self._log.maxlen else None
        self._before = (self._next, dropped)
        self._log.append(now)
        self._next = max(self._next, now) + self.interval
        self._taken += 1
        return self._taken

    def refund(self, slot: int) -> None:
        """Return a slot when nothing was sent with it, if no slot was taken
        since (else keep it: giving it back then could let two starts crowd)."""
        if not self.rates or slot != self._taken or not self._log:
            return
        self._log.pop()
        self._next, dropped = self._before
        if dropped is not None:
            self._log.appendleft(dropped)
        self._taken += 1  # a second refund of the same slot is a no-op
