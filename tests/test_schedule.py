"""schedule.py: --at parsing (with Europe/Berlin DST), the echo, the run-due lock
across real processes, and the cron line / systemd timer against fake
`crontab` and `systemctl` programs (a real user crontab must never change)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailer import schedule
from mailer.errors import ConfigError
from mailer.schedule import Job, RunLock, Tools, format_when, parse_when

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
    for form in ("tomorrow 09:00", "mon 09:00", "in 2h", "2026-11-30T09:00", "now"):
        assert form in str(err.value)


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
    zone = schedule.local_now().tzinfo
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


# --- RunLock: two real processes ----------------------------------------------

HOLDER = """
import sys
from pathlib import Path
from mailer.schedule import RunLock
with RunLock(Path(sys.argv[1])) as lock:
    print(lock.acquired, flush=True)
    sys.stdin.readline()  # hold until the test says so
"""


def start_holder(state: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )


def try_in_other_process(state: Path) -> bool:
    child = start_holder(state)
    out, _ = child.communicate("\n", timeout=60)
    return out.strip() == "True"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


def test_a_second_process_does_not_get_the_lock_and_does_not_wait(state: Path) -> None:
    holder = start_holder(state)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "True"
        with RunLock(state) as lock:
            assert not lock.acquired
        assert not try_in_other_process(state)
    finally:
        holder.communicate("\n", timeout=60)
    with RunLock(state) as lock:  # released when the holder finished
        assert lock.acquired
        assert not try_in_other_process(state)
    assert try_in_other_process(state)


def test_a_killed_holder_leaves_no_stale_lock(state: Path) -> None:
    holder = start_holder(state)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "True"
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    holder.stdin.close()  # type: ignore[union-attr]
    holder.stdout.close()
    with RunLock(state) as lock:
        assert lock.acquired
        assert (state / "run-due.lock").read_text().strip() == str(os.getpid())


def test_an_unusable_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Cannot open the lock file"), RunLock(tmp_path / "gone"):
        pass


def test_two_locks_in_one_process_exclude_each_other_too(state: Path) -> None:
    with RunLock(state) as first, RunLock(state) as second:
        assert first.acquired and not second.acquired


# --- cron ----------------------------------------------------------------------

FAKE_CRONTAB = """#!{python}
# A stand-in for crontab(1): the "user crontab" is the file next to this script.
import sys
from pathlib import Path
table = Path(__file__).with_name("crontab.txt")
if sys.argv[1:] == ["-l"]:
    if not table.exists():
        sys.exit("no crontab for tester")
    sys.stdout.write(table.read_text())
elif sys.argv[1:] == ["-"]:
    table.write_text(sys.stdin.read())
else:
    sys.exit("usage: crontab -l | crontab -")
"""

FAKE_SYSTEMCTL = """#!/bin/sh
# A stand-in for systemctl: records each call; fails when told to.
echo "$*" >> "$(dirname "$0")/systemctl-calls.txt"
if [ -e "$(dirname "$0")/systemctl-fails" ]; then
    echo "Failed to connect to bus: No medium found" >&2
    exit 1
fi
"""


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture
def tools(tmp_path: Path) -> Tools:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    return Tools(
        crontab=str(executable(bin_dir / "crontab", FAKE_CRONTAB.format(python=sys.executable))),
        systemctl=str(executable(bin_dir / "systemctl", FAKE_SYSTEMCTL)),
        unit_dir=tmp_path / "config" / "systemd" / "user",
    )


def crontab_text(tools: Tools) -> str:
    return (Path(tools.crontab).with_name("crontab.txt")).read_text()


def systemctl_calls(tools: Tools) -> list[str]:
    calls = Path(tools.systemctl).with_name("systemctl-calls.txt")
    return calls.read_text().splitlines() if calls.exists() else []


@pytest.fixture
def job(tmp_path: Path) -> Job:
    return Job(
        command=("/opt/mailer/bin/mailer", "run-due"),
        workdir=tmp_path / "project",
        log=tmp_path / "state" / "run-due.log",
        mailer_home=str(tmp_path / "state"),
    )


USER_LINES = "MAILTO=me@example.org\n# nightly backup\n30 3 * * * /usr/local/bin/backup --all\n"


def test_cron_install_twice_leaves_one_line_and_the_users_lines(tools: Tools, job: Job) -> None:
    Path(tools.crontab).with_name("crontab.txt").write_text(USER_LINES)
    schedule.install("cron", job, tools)
    schedule.install("cron", job, tools)
    lines = crontab_text(tools).splitlines()
    assert lines[:3] == USER_LINES.splitlines()
    assert lines[3:] == [schedule.cron_line(job)]
    assert crontab_text(tools).endswith("\n")


def test_cron_install_again_replaces_the_interval(tools: Tools, job: Job) -> None:
    schedule.install("cron", job, tools)
    schedule.install("cron", Job(job.command, job.workdir, job.log, every_minutes=15), tools)
    ours = [line for line in crontab_text(tools).splitlines() if "mailer run-due" in line]
    assert len(ours) == 1
    assert ours[0].startswith("*/15 * * * * ")


def test_cron_install_into_an_empty_crontab(tools: Tools, job: Job) -> None:
    outcome = schedule.install("cron", job, tools)
    assert crontab_text(tools) == schedule.cron_line(job) + "\n"
    assert "crontab -l" in outcome.message and not outcome.manual
    assert schedule.show("cron", tools) == schedule.cron_line(job)


def test_cron_remove_removes_only_our_line(tools: Tools, job: Job) -> None:
    Path(tools.crontab).with_name("crontab.txt").write_text(USER_LINES)
    schedule.install("cron", job, tools)
    assert "Removed" in schedule.remove("cron", tools).message
    assert crontab_text(tools) == USER_LINES
    assert "nothing to remove" in schedule.remove("cron", tools).message
    assert crontab_text(tools) == USER_LINES
    assert schedule.show("cron", tools) is None


@pytest.mark.parametrize(("every", "minutes"), [(1, "*"), (5, "*/5"), (30, "*/30"), (60, "0")])
def test_cron_line_schedule_fields(job: Job, every: int, minutes: str) -> None:
    line = schedule.cron_line(Job(job.command, job.workdir, job.log, every_minutes=every))
    assert line.startswith(f"{minutes} * * * * ")
    assert line.endswith(" # mailer run-due")


@pytest.mark.parametrize("every", [0, 7, 45, 90, -5])
def test_an_interval_that_does_not_divide_the_hour_is_refused(job: Job, every: int) -> None:
    with pytest.raises(ConfigError, match="divides the hour"):
        Job(job.command, job.workdir, job.log, every_minutes=every)


FAKE_MAILER = """#!/bin/sh
echo "cwd=$(pwd)"
echo "MAILER_HOME=$MAILER_HOME"
echo "args=$*"
echo "oops" >&2
"""


def test_the_cron_command_runs_in_sh_with_awkward_paths(tmp_path: Path) -> None:
    """The line's command part, run by /bin/sh as cron would, reaches the
    right program in the right directory, with MAILER_HOME and the log."""
    awkward = tmp_path / "it's a dir with spaces"
    (awkward / "project").mkdir(parents=True)
    mailer = executable(awkward / "mailer", FAKE_MAILER)
    job = Job(
        command=(str(mailer), "run-due"),
        workdir=awkward / "project",
        log=awkward / "run-due.log",
        mailer_home=str(awkward / "state $HOME"),
    )
    command = schedule.cron_line(job).split(" ", 5)[5]  # after the five time fields
    subprocess.run(["/bin/sh", "-c", command], check=True, env={"PATH": os.defpath})
    assert job.log.read_text().splitlines() == [
        f"cwd={awkward / 'project'}",
        f"MAILER_HOME={awkward / 'state $HOME'}",
        "args=run-due",
        "oops",
    ]


def test_percent_is_escaped_for_cron(tmp_path: Path) -> None:
    job = Job(("/opt/mailer",), tmp_path / "100%", tmp_path / "log")
    line = schedule.cron_line(job)
    assert "100\\%" in line
    assert "%" not in line.replace("\\%", "")


def test_a_failing_crontab_is_a_clear_error(tools: Tools, job: Job) -> None:
    executable(Path(tools.crontab), "#!/bin/sh\necho 'crontab: permission denied' >&2\nexit 1\n")
    with pytest.raises(ConfigError, match="permission denied"):
        schedule.install("cron", job, tools)


def test_no_crontab_program_is_a_clear_error(tmp_path: Path, job: Job) -> None:
    tools = Tools(crontab=str(tmp_path / "nowhere" / "crontab"))
    with pytest.raises(ConfigError, match="was not found"):
        schedule.install("cron", job, tools)


# --- systemd -------------------------------------------------------------------


def test_systemd_install_writes_units_and_enables_the_timer(tools: Tools, job: Job) -> None:
    outcome = schedule.install("systemd", job, tools)
    timer = (tools.unit_dir / "mailer-run-due.timer").read_text()
    service = (tools.unit_dir / "mailer-run-due.service").read_text()
    assert "OnCalendar=*:0/5\n" in timer and "Persistent=true\n" in timer
    assert "ExecStart=/opt/mailer/bin/mailer run-due\n" in service
    assert f"WorkingDirectory={job.workdir}\n" in service
    assert f"Environment=MAILER_HOME={job.mailer_home}\n" in service
    assert systemctl_calls(tools) == [
        "--user daemon-reload",
        "--user enable --now mailer-run-due.timer",
    ]
    assert not outcome.manual
    assert "systemctl --user list-timers" in outcome.message
    assert "journalctl --user -u mailer-run-due" in outcome.message


def test_systemd_install_twice_is_the_same_two_files(tools: Tools, job: Job) -> None:
    schedule.install("systemd", job, tools)
    first = {p.name: p.read_text() for p in tools.unit_dir.iterdir()}
    schedule.install("systemd", job, tools)
    assert {p.name: p.read_text() for p in tools.unit_dir.iterdir()} == first
    assert sorted(first) == ["mailer-run-due.service", "mailer-run-due.timer"]


def test_without_systemctl_the_units_are_written_and_the_steps_named(
    tmp_path: Path, job: Job
) -> None:
    tools = Tools(systemctl=str(tmp_path / "no-systemctl"), unit_dir=tmp_path / "units")
    outcome = schedule.install("systemd", job, tools)
    assert (tools.unit_dir / "mailer-run-due.timer").exists()
    assert "NOT active" in outcome.message and "was not found" in outcome.message
    assert outcome.manual == (
        "systemctl --user daemon-reload",
        "systemctl --user enable --now mailer-run-due.timer",
    )


def test_a_failing_systemctl_is_reported_with_its_reason(tools: Tools, job: Job) -> None:
    Path(tools.systemctl).with_name("systemctl-fails").touch()
    outcome = schedule.install("systemd", job, tools)
    assert "Failed to connect to bus" in outcome.message
    assert outcome.manual[-1] == "systemctl --user enable --now mailer-run-due.timer"
    assert systemctl_calls(tools) == ["--user daemon-reload"]  # stopped at the first failure


def test_systemd_remove(tools: Tools, job: Job) -> None:
    schedule.install("systemd", job, tools)
    assert schedule.show("systemd", tools) is not None
    outcome = schedule.remove("systemd", tools)
    assert not outcome.manual
    assert not (tools.unit_dir / "mailer-run-due.timer").exists()
    assert not (tools.unit_dir / "mailer-run-due.service").exists()
    assert systemctl_calls(tools)[-2:] == [
        "--user disable --now mailer-run-due.timer",
        "--user daemon-reload",
    ]
    assert schedule.show("systemd", tools) is None
    assert "nothing to remove" in schedule.remove("systemd", tools).message


def test_systemd_remove_without_a_reachable_systemd_undoes_enable_itself(
    tools: Tools, job: Job
) -> None:
    schedule.install("systemd", job, tools)
    wants = tools.unit_dir / "timers.target.wants"
    wants.mkdir()
    (wants / "mailer-run-due.timer").symlink_to(tools.unit_dir / "mailer-run-due.timer")
    (wants / "other.timer").symlink_to(tools.unit_dir / "other.timer")
    Path(tools.systemctl).with_name("systemctl-fails").touch()
    outcome = schedule.remove("systemd", tools)
    assert sorted(p.name for p in tools.unit_dir.rglob("*")) == [
        "other.timer",
        "timers.target.wants",
    ]
    assert outcome.manual == (
        "systemctl --user stop mailer-run-due.timer",
        "systemctl --user daemon-reload",
    )


def test_render_prints_without_touching_anything(tools: Tools, job: Job) -> None:
    text = schedule.render("systemd", job, tools)
    assert f"# {tools.unit_dir / 'mailer-run-due.timer'}" in text
    assert "OnCalendar=*:0/5" in text
    assert schedule.render("cron", job, tools) == schedule.cron_line(job)
    assert not tools.unit_dir.exists()
    assert systemctl_calls(tools) == []
    assert not Path(tools.crontab).with_name("crontab.txt").exists()


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("every", schedule.ALLOWED_INTERVALS)
def test_systemd_accepts_every_calendar_we_write(job: Job, every: int) -> None:
    units = schedule.systemd_units(Job(job.command, job.workdir, job.log, every_minutes=every))
    calendar = next(
        line.split("=", 1)[1]
        for line in units["mailer-run-due.timer"].splitlines()
        if line.startswith("OnCalendar=")
    )
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "calendar", calendar], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_verifies_our_units_with_awkward_paths(tmp_path: Path) -> None:
    """`systemd-analyze verify` parses the units as systemd would: quoting of
    spaces, % and $ in paths must survive."""
    awkward = tmp_path / "my 100% $project"
    awkward.mkdir()
    mailer = executable(awkward / "mailer $x", FAKE_MAILER)
    job = Job(
        (str(mailer), "run-due"), awkward, awkward / "log", mailer_home=str(awkward / "st ate")
    )
    tools = Tools(systemctl=str(tmp_path / "no-systemctl"), unit_dir=tmp_path / "units")
    schedule.install("systemd", job, tools)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    result = subprocess.run(
        [
            SYSTEMD_ANALYZE,
            "--user",
            "verify",
            "--man=no",
            *(
                str(tools.unit_dir / name)
                for name in ("mailer-run-due.timer", "mailer-run-due.service")
            ),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
