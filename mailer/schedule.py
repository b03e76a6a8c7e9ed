"""When to send: `--at WHEN` parsing, the run-due lock, and the cron line or
systemd user timer that starts `mailer run-due` every few minutes.

Time rules (all tested in Europe/Berlin across both DST transitions):
- relative times ("in 2h") are real elapsed time: computed in UTC;
- day words ("tomorrow 09:00", "mon 09:00") are wall-clock times in the local
  zone; a wall time skipped by spring-forward moves to the first valid instant
  (02:30 -> 03:00), one repeated by fall-back means its first occurrence;
- "mon 09:00" means the next Monday 09:00 that is not in the past: on a Monday
  at 08:00 it is today, at 10:00 it is next week.
"""

from __future__ import annotations

import fcntl
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from types import TracebackType
from typing import Literal

import tzlocal

from .errors import ConfigError

Kind = Literal["cron", "systemd"]
KINDS: tuple[Kind, ...] = ("cron", "systemd")

ACCEPTED_FORMS = """\
  now
  2026-11-30T09:00, 2026-11-30 09:00+01:00, 2026-11-30   ISO 8601; without a zone it is local time
  today 18:30, tomorrow 09:00                             also German: heute, morgen
  mon 09:00, Monday 9:00, Mo 09:00, montag 9:00           the next such weekday, English or German
  in 2h, in 30 min, in 3 days, in 1h30m                   real elapsed time from now"""

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
# "in" followed by number+unit pairs; the units themselves are dateparser's job.
_RELATIVE = re.compile(r"in(\s*\d+\s*[^\W\d_]+\.?)+", re.IGNORECASE)


def local_now() -> datetime:
    """The current time in the machine's named zone (a ZoneInfo, so that wall
    times on the other side of a DST change get the right offset)."""
    return datetime.now(tzlocal.get_localzone())


def now_from(text: str | None) -> datetime:
    """`local_now()`, or the ISO time of a hidden `--now` option (tests and
    dry runs), seen in the local zone; a time without offset is local."""
    if text is None:
        return local_now()
    zone = tzlocal.get_localzone()
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
        raise ConfigError(f"Cannot understand the time {text!r}. Accepted forms:\n{ACCEPTED_FORMS}")
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
    later = dateparser.parse(
        text,
        languages=["en", "de"],
        settings={"RELATIVE_BASE": base, "TIMEZONE": "UTC", "RETURN_AS_TIMEZONE_AWARE": False},
    )
    if later is None:
        return None
    return (now.astimezone(UTC) + (later - base)).astimezone(now.tzinfo)


def _parse_day_and_time(words: list[str], now: datetime, zone: tzinfo) -> datetime | None:
    if len(words) != 2:
        return None
    day_word, time_word = words[0].rstrip("."), words[1]
    try:
        at = datetime.strptime(time_word, "%H:%M").time()
    except ValueError:
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


class RunLock:
    """Non-blocking exclusive lock so that overlapping `run-due` invocations
    (cron every 5 minutes, a slow run) never work at the same time.

        with RunLock(state_dir) as lock:
            if not lock.acquired:
                return  # another run is busy; it will do the work

    flock is released by the kernel when the process dies, so a crashed run
    never leaves a stale lock behind.  The file itself is kept on purpose:
    deleting a lock file lets two processes lock two different files.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "run-due.lock"
        self.acquired = False
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as err:
            raise ConfigError(f"Cannot open the lock file {self.path}: {err.strerror}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return self
        self.acquired = True
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())  # who holds it, for a curious human
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None
        self.acquired = False


# --- cron and systemd ------------------------------------------------------

CRON_MARKER = "# mailer run-due"
UNIT = "mailer-run-due"
ALLOWED_INTERVALS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)  # divide the hour evenly


@dataclass(frozen=True, slots=True)
class Job:
    """What cron or systemd runs, and where."""

    command: tuple[str, ...]  # absolute path of mailer (or python -m mailer), then "run-due"
    workdir: Path  # run-due reads .env (the SMTP settings) from here
    log: Path  # cron appends output here; systemd logs to the user journal
    every_minutes: int = 5
    mailer_home: str = ""  # passed on when set, so run-due finds the same journal

    def __post_init__(self) -> None:
        if self.every_minutes not in ALLOWED_INTERVALS:
            allowed = ", ".join(map(str, ALLOWED_INTERVALS))
            raise ConfigError(
                f"--every {self.every_minutes}: use a number of minutes that divides the hour "
                f"({allowed}), so that runs are evenly spaced."
            )


@dataclass(frozen=True, slots=True)
class Tools:
    """The programs and directory that install/remove/show touch; tests point
    them at fakes (MAILER_CRONTAB, MAILER_SYSTEMCTL, MAILER_SYSTEMD_DIR)."""

    crontab: str = "crontab"
    systemctl: str = "systemctl"
    unit_dir: Path = Path.home() / ".config" / "systemd" / "user"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Tools:
        config_home = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        return cls(
            crontab=env.get("MAILER_CRONTAB") or "crontab",
            systemctl=env.get("MAILER_SYSTEMCTL") or "systemctl",
            unit_dir=Path(env.get("MAILER_SYSTEMD_DIR") or config_home / "systemd" / "user"),
        )

    def default_kind(self) -> Kind:
        """cron when a crontab program exists, else a systemd timer."""
        if shutil.which(self.crontab):
            return "cron"
        if shutil.which(self.systemctl):
            return "systemd"
        raise ConfigError(
            "Neither crontab nor systemctl was found. Use `mailer schedule install --print "
            "--cron` to see the line and run `mailer run-due` every few minutes yourself."
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What install/remove did, for the user; `manual` lists the commands
    still to run by hand when systemctl was missing or failed."""

    message: str
    manual: tuple[str, ...] = ()


def mailer_command() -> tuple[str, ...]:
    """How cron/systemd should start this mailer: the absolute path of the
    running `mailer` script, else the one on PATH, else `python -m mailer`."""
    argv0 = Path(sys.argv[0])
    if argv0.name.startswith("mailer") and argv0.is_file():
        return (str(argv0.resolve()),)
    found = shutil.which("mailer")
    if found:
        return (str(Path(found).resolve()),)
    # not resolved: a venv's python is a symlink and must stay the venv's
    return (str(Path(sys.executable).absolute()), "-m", "mailer")


def cron_line(job: Job) -> str:
    """One crontab line; `%` is escaped because cron turns it into a newline."""
    minutes = {1: "*", 60: "0"}.get(job.every_minutes, f"*/{job.every_minutes}")
    env = f"MAILER_HOME={shlex.quote(job.mailer_home)} " if job.mailer_home else ""
    command = (
        f"cd {shlex.quote(str(job.workdir))} && {env}{shlex.join(job.command)}"
        f" >> {shlex.quote(str(job.log))} 2>&1"
    ).replace("%", "\\%")
    return f"{minutes} * * * * {command} {CRON_MARKER}"


def systemd_units(job: Job) -> dict[str, str]:
    """File name -> content of the service and its timer."""
    environment = (
        f"Environment={_systemd_quote(f'MAILER_HOME={job.mailer_home}')}\n"
        if job.mailer_home
        else ""
    )
    # ExecStart expands $VAR in the arguments (not in the program path): $$ is a literal $
    program, *args = job.command
    exec_start = " ".join(
        [_systemd_quote(program), *(_systemd_quote(arg.replace("$", "$$")) for arg in args)]
    )
    service = (
        "[Unit]\n"
        "Description=mailer: send scheduled campaigns and retry deferred recipients\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"WorkingDirectory={_no_specifiers(str(job.workdir))}\n"
        f"{environment}"
        f"ExecStart={exec_start}\n"
    )
    on_calendar = "*:00" if job.every_minutes == 60 else f"*:0/{job.every_minutes}"
    timer = (
        "[Unit]\n"
        f"Description=Run mailer run-due every {job.every_minutes} minutes\n\n"
        "[Timer]\n"
        f"OnCalendar={on_calendar}\n"
        "Persistent=true\n\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return {f"{UNIT}.service": service, f"{UNIT}.timer": timer}


def _no_specifiers(value: str) -> str:
    """systemd expands %x specifiers in unit settings; %% is a literal %."""
    return value.replace("%", "%%")


def _systemd_quote(value: str) -> str:
    """A value for Environment= or one ExecStart argument: in double quotes
    when it holds spaces, quotes or backslashes."""
    value = _no_specifiers(value)
    if re.fullmatch(r"[\w@%+=:,./$-]+", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(kind: Kind, job: Job, tools: Tools) -> str:
    """What `install --print` shows: exactly what would be written."""
    if kind == "cron":
        return cron_line(job)
    return "\n".join(
        f"# {tools.unit_dir / name}\n{content}" for name, content in systemd_units(job).items()
    )


def install(kind: Kind, job: Job, tools: Tools) -> Outcome:
    """Add (or replace) the cron line, or write and enable the systemd timer.
    Installing twice leaves one entry."""
    if kind == "cron":
        kept = [line for line in _read_crontab(tools) if not _is_ours(line)]
        _write_crontab(tools, [*kept, cron_line(job)])
        return Outcome(f"Added to your crontab:\n  {cron_line(job)}\nCheck with: crontab -l")
    tools.unit_dir.mkdir(parents=True, exist_ok=True)
    for name, content in systemd_units(job).items():
        (tools.unit_dir / name).write_text(content, encoding="utf-8")
    written = f"Wrote {tools.unit_dir / UNIT}.service and .timer."
    why, manual = _systemctl(tools, ["daemon-reload"], ["enable", "--now", f"{UNIT}.timer"])
    if manual:
        return Outcome(f"{written} The timer is NOT active: {why}", manual)
    return Outcome(
        f"{written} Timer enabled.\n"
        f"Check with: systemctl --user list-timers {UNIT}.timer; journalctl --user -u {UNIT}\n"
        f"User timers run only while you are logged in, unless you run "
        f"`loginctl enable-linger {_user()}`."
    )


def remove(kind: Kind, tools: Tools) -> Outcome:
    """Remove only our cron line (the user's other lines stay), or stop the
    timer and delete our two unit files."""
    if kind == "cron":
        lines = _read_crontab(tools)
        kept = [line for line in lines if not _is_ours(line)]
        if len(kept) == len(lines):
            return Outcome("There is no mailer line in your crontab; nothing to remove.")
        _write_crontab(tools, kept)
        return Outcome("Removed the mailer line from your crontab.")
    paths = [tools.unit_dir / name for name in (f"{UNIT}.timer", f"{UNIT}.service")]
    if not any(path.exists() for path in paths):
        return Outcome(f"There is no {UNIT} timer in {tools.unit_dir}; nothing to remove.")
    why, manual = _systemctl(tools, ["disable", "--now", f"{UNIT}.timer"])
    if manual:  # systemd unreachable: undo `enable` ourselves, as disable would have
        (tools.unit_dir / "timers.target.wants" / f"{UNIT}.timer").unlink(missing_ok=True)
    for path in paths:
        path.unlink(missing_ok=True)
    if manual:
        return Outcome(
            f"Deleted the {UNIT} unit files, but could not tell systemd: {why}",
            (f"systemctl --user stop {UNIT}.timer", "systemctl --user daemon-reload"),
        )
    _, manual = _systemctl(tools, ["daemon-reload"])
    return Outcome(f"Stopped the timer and deleted the {UNIT} unit files.", manual)


def show(kind: Kind, tools: Tools) -> str | None:
    """What is installed: our cron line, or the timer and service files; None if nothing."""
    if kind == "cron":
        ours = [line for line in _read_crontab(tools) if _is_ours(line)]
        return "\n".join(ours) or None
    existing = [
        f"# {path}\n{path.read_text(encoding='utf-8')}"
        for path in (tools.unit_dir / f"{UNIT}.timer", tools.unit_dir / f"{UNIT}.service")
        if path.exists()
    ]
    return "\n".join(existing) or None


def _is_ours(line: str) -> bool:
    return line.rstrip().endswith(CRON_MARKER)


def _read_crontab(tools: Tools) -> list[str]:
    result = _run_crontab(tools, ["-l"])
    if result.returncode != 0:
        if "no crontab" in result.stderr.lower():
            return []
        raise ConfigError(f"`crontab -l` failed: {result.stderr.strip()}")
    return result.stdout.splitlines()


def _write_crontab(tools: Tools, lines: list[str]) -> None:
    text = "".join(f"{line}\n" for line in lines)  # cron ignores a last line without newline
    result = _run_crontab(tools, ["-"], text)
    if result.returncode != 0:
        raise ConfigError(f"`crontab -` refused the new crontab: {result.stderr.strip()}")


def _run_crontab(
    tools: Tools, args: list[str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [tools.crontab, *args], input=stdin, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise ConfigError(
            f"{tools.crontab!r} was not found: install cron, or use --systemd, or "
            f"--print to see the line."
        ) from None


def _systemctl(tools: Tools, *steps: list[str]) -> tuple[str, tuple[str, ...]]:
    """Run `systemctl --user STEP` for each step until one fails.  Returns why
    it failed and the commands still to run by hand; ("", ()) when all worked."""
    for done, step in enumerate(steps):
        command = [tools.systemctl, "--user", *step]
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False)
        except FileNotFoundError:
            why = f"{tools.systemctl!r} was not found."
        else:
            if result.returncode == 0:
                continue
            detail = "; ".join(result.stderr.split("\n")).strip("; ") or f"exit {result.returncode}"
            why = f"`{shlex.join(command)}` failed: {detail}"
        return why, tuple(shlex.join(["systemctl", "--user", *s]) for s in steps[done:])
    return "", ()


def _user() -> str:
    return os.environ.get("USER") or os.environ.get("LOGNAME") or "$USER"
