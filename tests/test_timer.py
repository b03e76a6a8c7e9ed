"""timer.py: the cron line / systemd timer against fake `crontab` and `systemctl`
programs (a real user crontab must never change)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailer.errors import ConfigError
from mailer.schedule import timer
from mailer.schedule.timer import Job, Tools

PROJECT = Path(__file__).resolve().parents[1]
BERLIN = ZoneInfo("Europe/Berlin")
FRIDAY_EVENING = datetime(2026, 11, 27, 20, 0, tzinfo=BERLIN)  # back from the conference


def berlin(*fields: int, fold: int = 0) -> datetime:
    return datetime(*fields, tzinfo=BERLIN, fold=fold)  # type: ignore[misc]

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
    timer.install("cron", job, tools)
    timer.install("cron", job, tools)
    lines = crontab_text(tools).splitlines()
    assert lines[:3] == USER_LINES.splitlines()
    assert lines[3:] == [timer.cron_line(job)]
    assert crontab_text(tools).endswith("\n")


def test_cron_install_again_replaces_the_interval(tools: Tools, job: Job) -> None:
    timer.install("cron", job, tools)
    timer.install("cron", Job(job.command, job.workdir, job.log, every_minutes=15), tools)
    ours = [line for line in crontab_text(tools).splitlines() if "mailer run-due" in line]
    assert len(ours) == 1
    assert ours[0].startswith("*/15 * * * * ")


def test_cron_install_into_an_empty_crontab(tools: Tools, job: Job) -> None:
    outcome = timer.install("cron", job, tools)
    assert crontab_text(tools) == timer.cron_line(job) + "\n"
    assert "crontab -l" in outcome.message and not outcome.manual
    assert timer.show("cron", tools) == timer.cron_line(job)


def test_cron_remove_removes_only_our_line(tools: Tools, job: Job) -> None:
    Path(tools.crontab).with_name("crontab.txt").write_text(USER_LINES)
    timer.install("cron", job, tools)
    assert "Removed" in timer.remove("cron", tools).message
    assert crontab_text(tools) == USER_LINES
    assert "nothing to remove" in timer.remove("cron", tools).message
    assert crontab_text(tools) == USER_LINES
    assert timer.show("cron", tools) is None


@pytest.mark.parametrize(("every", "minutes"), [(1, "*"), (5, "*/5"), (30, "*/30"), (60, "0")])
def test_cron_line_schedule_fields(job: Job, every: int, minutes: str) -> None:
    line = timer.cron_line(Job(job.command, job.workdir, job.log, every_minutes=every))
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
    command = timer.cron_line(job).split(" ", 5)[5]  # after the five time fields
    subprocess.run(["/bin/sh", "-c", command], check=True, env={"PATH": os.defpath})
    assert job.log.read_text().splitlines() == [
        f"cwd={awkward / 'project'}",
        f"MAILER_HOME={awkward / 'state $HOME'}",
        "args=run-due",
        "oops",
    ]


def test_percent_is_escaped_for_cron(tmp_path: Path) -> None:
    job = Job(("/opt/mailer",), tmp_path / "100%", tmp_path / "log")
    line = timer.cron_line(job)
    assert "100\\%" in line
    assert "%" not in line.replace("\\%", "")


def test_a_failing_crontab_is_a_clear_error(tools: Tools, job: Job) -> None:
    executable(Path(tools.crontab), "#!/bin/sh\necho 'crontab: permission denied' >&2\nexit 1\n")
    with pytest.raises(ConfigError, match="permission denied"):
        timer.install("cron", job, tools)


def test_no_crontab_program_is_a_clear_error(tmp_path: Path, job: Job) -> None:
    tools = Tools(crontab=str(tmp_path / "nowhere" / "crontab"))
    with pytest.raises(ConfigError, match="was not found"):
        timer.install("cron", job, tools)


# --- systemd -------------------------------------------------------------------


def test_systemd_install_writes_units_and_enables_the_timer(tools: Tools, job: Job) -> None:
    outcome = timer.install("systemd", job, tools)
    unit = (tools.unit_dir / "mailer-run-due.timer").read_text()
    service = (tools.unit_dir / "mailer-run-due.service").read_text()
    assert "OnCalendar=*:0/5\n" in unit and "Persistent=true\n" in unit
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
    timer.install("systemd", job, tools)
    first = {p.name: p.read_text() for p in tools.unit_dir.iterdir()}
    timer.install("systemd", job, tools)
    assert {p.name: p.read_text() for p in tools.unit_dir.iterdir()} == first
    assert sorted(first) == ["mailer-run-due.service", "mailer-run-due.timer"]


def test_without_systemctl_the_units_are_written_and_the_steps_named(
    tmp_path: Path, job: Job
) -> None:
    tools = Tools(systemctl=str(tmp_path / "no-systemctl"), unit_dir=tmp_path / "units")
    outcome = timer.install("systemd", job, tools)
    assert (tools.unit_dir / "mailer-run-due.timer").exists()
    assert "NOT active" in outcome.message and "was not found" in outcome.message
    assert outcome.manual == (
        "systemctl --user daemon-reload",
        "systemctl --user enable --now mailer-run-due.timer",
    )


def test_a_failing_systemctl_is_reported_with_its_reason(tools: Tools, job: Job) -> None:
    Path(tools.systemctl).with_name("systemctl-fails").touch()
    outcome = timer.install("systemd", job, tools)
    assert "Failed to connect to bus" in outcome.message
    assert outcome.manual[-1] == "systemctl --user enable --now mailer-run-due.timer"
    assert systemctl_calls(tools) == ["--user daemon-reload"]  # stopped at the first failure


def test_systemd_remove(tools: Tools, job: Job) -> None:
    timer.install("systemd", job, tools)
    assert timer.show("systemd", tools) is not None
    outcome = timer.remove("systemd", tools)
    assert not outcome.manual
    assert not (tools.unit_dir / "mailer-run-due.timer").exists()
    assert not (tools.unit_dir / "mailer-run-due.service").exists()
    assert systemctl_calls(tools)[-2:] == [
        "--user disable --now mailer-run-due.timer",
        "--user daemon-reload",
    ]
    assert timer.show("systemd", tools) is None
    assert "nothing to remove" in timer.remove("systemd", tools).message


def test_systemd_remove_without_a_reachable_systemd_undoes_enable_itself(
    tools: Tools, job: Job
) -> None:
    timer.install("systemd", job, tools)
    wants = tools.unit_dir / "timers.target.wants"
    wants.mkdir()
    (wants / "mailer-run-due.timer").symlink_to(tools.unit_dir / "mailer-run-due.timer")
    (wants / "other.timer").symlink_to(tools.unit_dir / "other.timer")
    Path(tools.systemctl).with_name("systemctl-fails").touch()
    outcome = timer.remove("systemd", tools)
    assert sorted(p.name for p in tools.unit_dir.rglob("*")) == [
        "other.timer",
        "timers.target.wants",
    ]
    assert outcome.manual == (
        "systemctl --user stop mailer-run-due.timer",
        "systemctl --user daemon-reload",
    )


def test_render_prints_without_touching_anything(tools: Tools, job: Job) -> None:
    text = timer.render("systemd", job, tools)
    assert f"# {tools.unit_dir / 'mailer-run-due.timer'}" in text
    assert "OnCalendar=*:0/5" in text
    assert timer.render("cron", job, tools) == timer.cron_line(job)
    assert not tools.unit_dir.exists()
    assert systemctl_calls(tools) == []
    assert not Path(tools.crontab).with_name("crontab.txt").exists()


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("every", timer.ALLOWED_INTERVALS)
def test_systemd_accepts_every_calendar_we_write(job: Job, every: int) -> None:
    units = timer.systemd_units(Job(job.command, job.workdir, job.log, every_minutes=every))
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
    timer.install("systemd", job, tools)
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

