"""`--at WHEN`: parsing and showing the time a campaign is sent.

Time rules (all tested in Europe/Berlin across both DST transitions):
- relative times ("in 2h") are real elapsed time: computed in UTC;
- day words ("tomorrow 09:00", "mon 09:00") are wall-clock times in the local
  zone; a wall time skipped by spring-forward moves to the first valid instant
  (02:30 -> 03:00), one repeated by fall-back means its first occurrence;
- "mon 09:00" means the next Monday 09:00 that is not in the past: on a Monday
  at 08:00 it is today, at 10:00 it is next week.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

import tzlocal

from ..errors import ConfigError
from ..sanitize import shown


def accepted_forms(now: datetime) -> str:
    """One line, like every error: the forms a user is most likely to mean; the ISO
    example is a week from `now`, so that copying it never gives a time in the past."""
    example = f"{now.date() + timedelta(days=7):%Y-%m-%d}T09:00"
    return (
        f"'now', '{example}' (local time; '+01:00' for another zone), 'today 18:30', "
        "'tomorrow 09:00', 'mon 09:00', 'Montag 9 Uhr', 'in 2h', 'in 1h30m' or 'in 3 days'"
    )


# Day words are a closed, tiny vocabulary.  dateparser is not used for them
# because it picks next week for "mon 09:00" on a Monday at 08:00 and shifts
# nonexistent DST times by the gap instead of to the first valid instant.
_DAY_OFFSETS = {"today": 0, "heute": 0, "tomorrow": 1, "morgen": 1}
_WEEKDAY_NAMES = (
    ("mon", "monday", "mo", "montag"),
    ("tue", "tues", "tuesday", "di", "dienstag"),
    ("wed", "wednesday", "mi", "mittwoch"),
    ("thu", "thur", "thurs", "thursday", "do", "donnerstag"),
    ("fri", "friday", "fr", "freitag"),
    ("sat", "saturday", "sa", "samstag", "sonnabend"),
    ("sun", "sunday", "so", "sonntag"),
)
_WEEKDAYS = {name: number for number, names in enumerate(_WEEKDAY_NAMES) for name in names}
# A time of day: "09:00", "9.30", "9am", "9:30 p.m.", "9 Uhr", "um 9.30 Uhr", "at 9am".
# A bare "9" is refused: it could be a date as well as an hour.
_TIME_OF_DAY = re.compile(
    r"(?:at |um )?(?P<hour>\d{1,2})(?:[:.](?P<minute>\d{2}))?"
    r" ?(?P<suffix>am|pm|a\.m\.|p\.m\.|uhr)?"
)
# "in" followed by number+unit pairs; the units themselves are dateparser's job.
_RELATIVE = re.compile(r"in(\s*\d+\s*[^\W\d_]+\.?)+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Timing:
    """When `send` sends: `now`, the `--at` time when given, and `later` when
    that time is in the future (then run-due sends; else it is sent now)."""

    now: datetime
    at: datetime | None = None

    @classmethod
    def of(cls, at: str | None, now_text: str | None) -> Timing:
        now = now_from(now_text)
        return cls(now, parse_when(at, now) if at else None)

    @property
    def later(self) -> datetime | None:
        return self.at if self.at is not None and self.at > self.now else None


def local_now() -> datetime:
    """The current time in the machine's named zone (a ZoneInfo, so that wall
    times on the other side of a DST change get the right offset)."""
    return datetime.now(local_zone())


_warned: set[str] = set()


def local_zone() -> tzinfo:
    """The machine's named zone, or UTC with a warning (once per run) when TZ or
    /etc/localtime names none: a cron job with a stray TZ must still send and report,
    not crash on every run, and the times it prints then say "UTC"."""
    try:
        return tzlocal.get_localzone()
    except (LookupError, ValueError, OSError):  # ZoneInfoNotFoundError is a LookupError
        setting = os.environ.get("TZ")
        named = f"TZ={shown(setting)!r}" if setting is not None else "/etc/localtime"
        if named not in _warned:
            _warned.add(named)
            print(f"mailer: warning: {named} names no time zone; times are read and shown "
                  f"in UTC (set TZ to a zone such as Europe/Berlin, or unset it)",
                  file=sys.stderr)
        return UTC


def now_from(text: str | None) -> datetime:
    """`local_now()`, or the ISO time of a hidden `--now` option (tests and
    dry runs), seen in the local zone; a time without offset is local."""
    if text is None:
        return local_now()
    zone = local_zone()
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"--now {text!r} is not an ISO 8601 time.") from None
    if parsed.tzinfo is None:
        return _wall_time(parsed.date(), parsed.timetz(), zone)
    return parsed.astimezone(zone)


def parse_when(text: str, now: datetime) -> datetime:
    """Parse `--at WHEN` into an aware datetime, in `now`'s zone unless the text
    names an offset.  Raises ConfigError when unreadable or in the past."""
    if now.tzinfo is None:
        raise ValueError("parse_when needs an aware `now`")
    words = text.strip().lower().replace(",", " ").split()
    if words == ["now"]:
        return now
    when = (
        _parse_iso(text.strip(), now.tzinfo)
        or _parse_relative(words, now)
        or _parse_day_and_time(words, now, now.tzinfo)
    )
    if when is None:
        raise ConfigError(
            f"Cannot understand the time {text!r}; write it like {accepted_forms(now)} "
            "(README, '--at WHEN', has every form)."
        )
    if when < now:
        raise ConfigError(
            f"{text!r} means {format_when(when, now)}, which is in the past. "
            f"Use 'now' to send right away."
        )
    return when


def _parse_iso(text: str, zone: tzinfo) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        return parsed
    return _wall_time(parsed.date(), parsed.time(), zone)


def _parse_relative(words: list[str], now: datetime) -> datetime | None:
    text = " ".join(words)
    if not _RELATIVE.fullmatch(text):
        return None
    import dateparser  # slow to import; only "in ..." needs it

    # A naive UTC base makes dateparser return a pure duration; adding it to
    # `now` in UTC keeps "in 2h" two real hours across a DST change.
    base = datetime(2000, 1, 1)
    later: datetime | None = dateparser.parse(
        text,
        languages=["en", "de"],
        settings={"RELATIVE_BASE": base, "TIMEZONE": "UTC", "RETURN_AS_TIMEZONE_AWARE": False},
    )
    if later is None:
        return None
    return (now.astimezone(UTC) + (later - base)).astimezone(now.tzinfo)


def _time_of_day(text: str) -> time | None:
    match = _TIME_OF_DAY.fullmatch(text)
    if match is None:
        return None
    hour, minute = int(match["hour"]), int(match["minute"] or 0)
    suffix = (match["suffix"] or "").replace(".", "")
    if not suffix and match["minute"] is None:
        return None
    if suffix in ("am", "pm"):
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if suffix == "pm" else 0)  # 12am is midnight, 12pm noon
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def _parse_day_and_time(words: list[str], now: datetime, zone: tzinfo) -> datetime | None:
    if len(words) < 2:
        return None
    day_word = words[0].rstrip(".")
    at = _time_of_day(" ".join(words[1:]))
    if at is None:
        return None
    today = now.date()
    if day_word in _DAY_OFFSETS:
        return _wall_time(today + timedelta(days=_DAY_OFFSETS[day_word]), at, zone)
    if day_word not in _WEEKDAYS:
        return None
    days_ahead = (_WEEKDAYS[day_word] - today.weekday()) % 7
    when = _wall_time(today + timedelta(days=days_ahead), at, zone)
    if when < now:  # that weekday is today but the time has passed: next week
        when = _wall_time(today + timedelta(days=days_ahead + 7), at, zone)
    return when


def _wall_time(day: date, at: time, zone: tzinfo) -> datetime:
    """`day` at wall-clock `at` in `zone`: the first occurrence when fall-back
    repeats it, the first valid instant when spring-forward skips it."""
    when = datetime.combine(day, at, tzinfo=zone).replace(fold=0)
    if _exists(when):
        return when
    when = when.replace(second=0, microsecond=0)
    while not _exists(when):  # DST gaps are whole minutes, at most a few hours
        when += timedelta(minutes=1)  # wall-clock step: same tzinfo, naive fields
    return when


def _exists(when: datetime) -> bool:
    round_trip = when.astimezone(UTC).astimezone(when.tzinfo)
    return round_trip.replace(tzinfo=None) == when.replace(tzinfo=None)


def format_when(when: datetime, now: datetime) -> str:
    """'Mon 2026-11-30 09:00 CET (in 2 days 22 h)', in `now`'s zone."""
    local = when.astimezone(now.tzinfo)
    # in UTC: with one shared tzinfo Python subtracts wall times, off by an hour across DST
    return f"{local:%a %Y-%m-%d %H:%M %Z} ({_relative(when.astimezone(UTC) - now.astimezone(UTC))})"


def _relative(delta: timedelta) -> str:
    minutes = round(abs(delta).total_seconds() / 60)
    if minutes == 0:
        return "now"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [(days, "day" if days == 1 else "days"), (hours, "h"), (mins, "min")]
    shown = [f"{n} {unit}" for n, unit in _two_most_significant(parts)]
    text = " ".join(shown)
    return f"in {text}" if delta > timedelta(0) else f"{text} ago"


def _two_most_significant(parts: list[tuple[int, str]]) -> list[tuple[int, str]]:
    first = next(i for i, (n, _) in enumerate(parts) if n)
    return [(n, unit) for n, unit in parts[first : first + 2] if n]
