"""when.py: --at parsing (with Europe/Berlin DST) and the echo of the time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailer.errors import ConfigError
from mailer.schedule import when
from mailer.schedule.when import format_when, parse_when

PROJECT = Path(__file__).resolve().parents[1]
BERLIN = ZoneInfo("Europe/Berlin")
FRIDAY_EVENING = datetime(2026, 11, 27, 20, 0, tzinfo=BERLIN)  # back from the conference


def berlin(*fields: int, fold: int = 0) -> datetime:
    return datetime(*fields, tzinfo=BERLIN, fold=fold)  # type: ignore[misc]


# --- parse_when --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30T09:00", berlin(2026, 11, 30, 9, 0)),
        ("2026-11-30 09:00", berlin(2026, 11, 30, 9, 0)),
        ("2026-11-30", berlin(2026, 11, 30, 0, 0)),
        ("tomorrow 09:00", berlin(2026, 11, 28, 9, 0)),
        ("morgen 9:00", berlin(2026, 11, 28, 9, 0)),
        ("today 21:30", berlin(2026, 11, 27, 21, 30)),
        ("heute 20:00", FRIDAY_EVENING),
        ("now", FRIDAY_EVENING),
    ],
)
def test_absolute_and_day_word_forms_are_local_wall_times(text: str, expected: datetime) -> None:
    when = parse_when(text, FRIDAY_EVENING)
    assert when == expected
    assert when.tzinfo is BERLIN


def test_iso_with_a_zone_keeps_that_zone() -> None:
    when = parse_when("2026-11-30 09:00+00:00", FRIDAY_EVENING)
    assert when.utcoffset() == timedelta(0)
    assert when == berlin(2026, 11, 30, 10, 0)
    assert parse_when("2026-11-30T08:00Z", FRIDAY_EVENING) == berlin(2026, 11, 30, 9, 0)


@pytest.mark.parametrize(
    "text",
    [
        "mon 09:00",
        "Monday 9:00",
        "Mo 09:00",
        "montag 9:00",
        "MONTAG 09:00",
        "Mo. 9:00",
        "mon, 9:00",
    ],
)
def test_weekday_names_english_and_german(text: str) -> None:
    assert parse_when(text, FRIDAY_EVENING) == berlin(2026, 11, 30, 9, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sa 9:00", date(2026, 11, 28)),
        ("so 9:00", date(2026, 11, 29)),
        ("di 9:00", date(2026, 12, 1)),
        ("mi 9:00", date(2026, 12, 2)),
        ("do 9:00", date(2026, 12, 3)),
        ("fr 9:00", date(2026, 12, 4)),  # Friday 09:00 has passed this Friday evening
    ],
)
def test_two_letter_german_weekdays(text: str, expected: date) -> None:
    assert parse_when(text, FRIDAY_EVENING) == berlin(*expected.timetuple()[:3], 9, 0)


def test_weekday_of_today_is_today_until_its_time_has_passed() -> None:
    monday_8 = berlin(2026, 11, 30, 8, 0)
    assert parse_when("mon 09:00", monday_8) == berlin(2026, 11, 30, 9, 0)
    assert parse_when("mon 08:00", monday_8) == monday_8  # exactly now is not the past
    assert parse_when("mon 07:59", monday_8) == berlin(2026, 12, 7, 7, 59)
    assert parse_when("fri 21:00", FRIDAY_EVENING) == berlin(2026, 11, 27, 21, 0)


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("in 2h", timedelta(hours=2)),
        ("in 30 min", timedelta(minutes=30)),
        ("in 3 days", timedelta(days=3)),
        ("in 1h30m", timedelta(hours=1, minutes=30)),
        ("in 1h 30m", timedelta(hours=1, minutes=30)),
        ("in 2 Stunden", timedelta(hours=2)),
        ("In 5 Minuten", timedelta(minutes=5)),
    ],
)
def test_relative_times(text: str, delta: timedelta) -> None:
    assert parse_when(text, FRIDAY_EVENING) == FRIDAY_EVENING + delta


@pytest.mark.parametrize(
    "text", ["today 08:00", "heute 19:59", "2026-11-27T19:00", "2025-01-01", "2026-11-27 18:00Z"]
)
def test_a_time_in_the_past_is_an_error_saying_what_was_understood(text: str) -> None:
    with pytest.raises(ConfigError, match="in the past") as err:
        parse_when(text, FRIDAY_EVENING)
    assert text in str(err.value)
    assert "2026-11-27" in str(err.value) or "2025-01-01" in str(err.value)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "soon",
        "mon",
        "tomorrow",
        "next week",
        "in 2026",
        "in 2 bananas",
        "9:00",
        "mon 25:00",
        "in -2h",
        "2026-13-01",
        "2 hours ago",
    ],
)
def test_unreadable_text_lists_the_accepted_forms(text: str) -> None:
    with pytest.raises(ConfigError, match="Cannot understand") as err:
        parse_when(text, FRIDAY_EVENING)
    # the ISO example is a week after FRIDAY_EVENING, never a date in the past
    for form in ("tomorrow 09:00", "mon 09:00", "in 2h", "2026-12-04T09:00", "now"):
        assert form in str(err.value)
    assert "\n" not in str(err.value)  # every error is one line


# --- daylight saving in Europe/Berlin ----------------------------------------
# 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET.


def test_relative_time_across_spring_forward_is_real_time() -> None:
    now = berlin(2026, 3, 29, 1, 30)
    when = parse_when("in 2h", now)
    assert when.astimezone(UTC) - now.astimezone(UTC) == timedelta(hours=2)
    assert (when.hour, when.minute, when.utcoffset()) == (4, 30, timedelta(hours=2))


def test_relative_time_across_fall_back_is_real_time() -> None:
    now = berlin(2026, 10, 25, 1, 30)  # CEST
    when = parse_when("in 2h", now)
    assert when.astimezone(UTC) - now.astimezone(UTC) == timedelta(hours=2)
    # 02:30 for the second time that night, in winter time
    assert (when.hour, when.minute, when.utcoffset()) == (2, 30, timedelta(hours=1))


def test_days_are_real_time_too_when_relative() -> None:
    now = berlin(2026, 3, 27, 12, 0)
    when = parse_when("in 3 days", now)
    assert when.astimezone(UTC) - now.astimezone(UTC) == timedelta(days=3)
    assert when.hour == 13  # the wall clock moved forward meanwhile


def test_tomorrow_is_wall_time_across_spring_forward() -> None:
    when = parse_when("tomorrow 09:00", berlin(2026, 3, 28, 12, 0))
    assert (when.day, when.hour, when.utcoffset()) == (29, 9, timedelta(hours=2))
    assert when.astimezone(UTC) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)


def test_tomorrow_is_wall_time_across_fall_back() -> None:
    when = parse_when("tomorrow 09:00", berlin(2026, 10, 24, 12, 0))
    assert when.astimezone(UTC) == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["tomorrow 02:30", "sun 02:30", "2026-03-29T02:30"])
def test_a_skipped_wall_time_moves_to_the_first_valid_instant(text: str) -> None:
    when = parse_when(text, berlin(2026, 3, 28, 12, 0))
    assert when.astimezone(UTC) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST
    assert (when.hour, when.minute) == (3, 0)


@pytest.mark.parametrize("text", ["tomorrow 02:30", "sun 02:30", "2026-10-25T02:30"])
def test_a_repeated_wall_time_means_its_first_occurrence(text: str) -> None:
    when = parse_when(text, berlin(2026, 10, 24, 12, 0))
    assert when.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert when.utcoffset() == timedelta(hours=2)


def test_needs_an_aware_now() -> None:
    with pytest.raises(ValueError):
        parse_when("now", datetime(2026, 11, 27, 20, 0))


def test_local_now_has_a_named_zone_that_knows_dst() -> None:
    zone = when.local_now().tzinfo
    assert isinstance(zone, ZoneInfo)


# --- format_when -------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "now", "text"),
    [
        (
            berlin(2026, 11, 30, 9, 0),
            berlin(2026, 11, 27, 11, 0),
            "Mon 2026-11-30 09:00 CET (in 2 days 22 h)",
        ),
        (
            berlin(2026, 11, 28, 9, 0),
            berlin(2026, 11, 27, 9, 0),
            "Sat 2026-11-28 09:00 CET (in 1 day)",
        ),
        (berlin(2026, 11, 27, 21, 30), FRIDAY_EVENING, "Fri 2026-11-27 21:30 CET (in 1 h 30 min)"),
        (berlin(2026, 11, 27, 20, 5), FRIDAY_EVENING, "Fri 2026-11-27 20:05 CET (in 5 min)"),
        (FRIDAY_EVENING, FRIDAY_EVENING, "Fri 2026-11-27 20:00 CET (now)"),
        (berlin(2026, 11, 27, 17, 0), FRIDAY_EVENING, "Fri 2026-11-27 17:00 CET (3 h ago)"),
        (
            berlin(2026, 7, 1, 9, 0),
            berlin(2026, 6, 30, 9, 0),
            "Wed 2026-07-01 09:00 CEST (in 1 day)",
        ),
        (
            datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
            berlin(2026, 11, 30, 8, 0),
            "Mon 2026-11-30 09:00 CET (in 1 h)",
        ),
    ],
)
def test_format_when_is_an_unambiguous_local_echo(when: datetime, now: datetime, text: str) -> None:
    assert format_when(when, now) == text


def test_the_echo_of_the_fall_back_repeat_shows_which_02_30() -> None:
    now = berlin(2026, 10, 24, 12, 0)
    first, second = berlin(2026, 10, 25, 2, 30), berlin(2026, 10, 25, 2, 30, fold=1)
    assert format_when(first, now).startswith("Sun 2026-10-25 02:30 CEST")
    assert format_when(second, now).startswith("Sun 2026-10-25 02:30 CET")


def test_the_echo_counts_real_hours_across_a_dst_change() -> None:
    """Saturday noon to Sunday 09:00 is 22 real hours at fall-back, 20 at spring-forward."""
    fall_back = format_when(berlin(2026, 10, 25, 9, 0), berlin(2026, 10, 24, 12, 0))
    spring_forward = format_when(berlin(2026, 3, 29, 9, 0), berlin(2026, 3, 28, 12, 0))
    assert fall_back.endswith("(in 22 h)") and spring_forward.endswith("(in 20 h)")


