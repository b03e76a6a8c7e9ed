"""The shared limiter, driven by a fake clock: no wall time, no timing assertions."""

from __future__ import annotations

import asyncio
from bisect import bisect_left

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailer.accounts.providers import PROVIDERS
from mailer.errors import ConfigError
from mailer.smtp.pace import Rate, RateLimiter, describe, parse_rates


class FakeClock:
    """Time that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)  # let the other acquirers run


def max_in_window(times: list[float], window: float) -> int:
    """The most events in any half-open window [t, t + window)."""
    ordered = sorted(times)
    return max(
        (bisect_left(ordered, t + window) - i for i, t in enumerate(ordered)), default=0
    )


def test_parse_rates() -> None:
    assert parse_rates(["30/min"]) == (Rate(30, 60.0),)
    assert parse_rates(["30/min,2000/day"]) == (Rate(30, 60.0), Rate(2000, 86400.0))
    assert parse_rates(["2000/day", "30 / minute"]) == (Rate(30, 60.0), Rate(2000, 86400.0))
    assert parse_rates(["100/hours"]) == (Rate(100, 3600.0),)
    assert parse_rates(["none"]) == ()
    assert describe(parse_rates(["30/min,2000/day"])) == "30/min, 2000/day"
    assert describe(()) == "no limit"


@pytest.mark.parametrize("bad", ["30", "30/fortnight", "0/min", "-3/min", "none,30/min", "x/min"])
def test_parse_rates_rejects_nonsense(bad: str) -> None:
    with pytest.raises(ConfigError, match="--rate"):
        parse_rates([bad])


def test_presets_are_valid_and_have_a_daily_or_hourly_cap() -> None:
    assert set(PROVIDERS) == {"gmail", "workspace", "m365", "outlook", "ionos", "generic"}
    for provider in PROVIDERS.values():
        rates = provider.rates
        assert rates and all(r.count >= 1 for r in rates)
        assert max(r.per for r in rates) >= 3600
    assert Rate(30, 60.0) in PROVIDERS["m365"].rates
    assert Rate(2000, 86400.0) in PROVIDERS["workspace"].rates


def run_acquirers(limiter: RateLimiter, clock: FakeClock, workers: int, total: int) -> list[float]:
    times: list[float] = []

    async def worker() -> None:
        while len(times) < total:
            await limiter.acquire()
            times.append(clock())

    async def main() -> None:
        await asyncio.gather(*(worker() for _ in range(workers)))

    asyncio.run(main())
    return times[:total]


@settings(max_examples=60, deadline=None)
@given(
    rates=st.lists(
        st.builds(Rate, st.integers(1, 12), st.sampled_from([1.0, 7.5, 60.0, 3600.0])),
        min_size=1, max_size=3,
    ),
    workers=st.integers(1, 6),
    total=st.integers(1, 60),
)
def test_no_window_ever_exceeds_any_rule(rates: list[Rate], workers: int, total: int) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rates, clock=clock, sleep=clock.sleep)
    times = run_acquirers(limiter, clock, workers, total)
    for rate in rates:
        assert max_in_window(times, rate.per) <= rate.count


def test_rule_is_reached_not_just_respected() -> None:
    """30/min over 10 minutes admits 300: the limiter does not crawl below its rate."""
    clock = FakeClock()
    limiter = RateLimiter([Rate(30, 60.0)], clock=clock, sleep=clock.sleep)
    times = run_acquirers(limiter, clock, 4, 300)
    assert times[-1] - times[0] < 10 * 60
    assert max_in_window(times, 60.0) == 30


def test_history_from_earlier_runs_counts_against_the_day() -> None:
    clock = FakeClock()
    earlier = [clock.now - 3600.0, clock.now - 1800.0]
    limiter = RateLimiter([Rate(2, 86400.0)], clock=clock, sleep=clock.sleep, history=earlier)
    assert limiter.wait_time() == pytest.approx(86400.0 - 3600.0)
    run_acquirers(limiter, clock, 1, 1)
    assert clock.now == pytest.approx(earlier[0] + 86400.0)


def test_refund_returns_the_slot() -> None:
    clock = FakeClock()
    limiter = RateLimiter([Rate(1, 60.0)], clock=clock, sleep=clock.sleep)
    async def take() -> int:
        return await limiter.acquire()

    slot = asyncio.run(take())
    assert limiter.wait_time() == pytest.approx(60.0)
    limiter.refund(slot)
    assert limiter.wait_time() == 0


def test_no_rates_never_waits() -> None:
    clock = FakeClock()
    limiter = RateLimiter((), clock=clock, sleep=clock.sleep)
    run_acquirers(limiter, clock, 3, 1000)
    assert clock.now == 1_000_000.0
    assert str(limiter) == "no limit"
