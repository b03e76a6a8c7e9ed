"""The cron line or systemd user timer that starts `mailer run-due` every few minutes:
rendering, installing, removing and showing it."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import ConfigError
from ..files import private_dir, private_file
from ..sanitize import problem, shown

Kind = Literal["cron", "systemd"]
KINDS: tuple[Kind, ...] = ("cron", "systemd")

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
        # cron and systemd read one setting per line: a newline (or any control character)
        # in a path would add lines of its own, so such a path is refused, never quoted
        for what, value in (("working directory", str(self.workdir)),
                            ("MAILER_HOME", self.mailer_home), ("log file", str(self.log)),
                            *(("mailer's path", part) for part in self.command)):  # fmt: skip
            why = problem(value, encoded_word_ok=True)
            if why:
                raise ConfigError(
                    f"The {what} '{shown(value)}' {why}, which a cron line or a systemd "
                    f"unit cannot hold safely; run the scheduler from a plain folder."
                )
        if self.every_minutes not in ALLOWED_INTERVALS:
            allowed = ", ".join(map(str, ALLOWED_INTERVALS))
            raise ConfigError(
                f"--every {self.every_minutes}: use a number of minutes that divides the hour "
                f"({allowed}), so that runs are evenly spaced."
            )


@dataclass(frozen=True, slots=True)
class Tools:
    """The programs and directory that install/remove/show touch; tests point
    them at fakes (MAILER_CRONTAB, MAILER_SYSTEMCTL, MAILER_SYSTEMD_DIR).  These
    are test seams, not settings: `from_env` is given the process environment
    only, never a `.env` found in the working directory, which could name any
    program to run."""

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
class TimerChange:
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
    # umask: the log it appends to names campaigns and counts, so it is the user's alone
    command = (
        f"umask 077 && cd {shlex.quote(str(job.workdir))} && {env}{shlex.join(job.command)}"
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


def install(kind: Kind, job: Job, tools: Tools) -> TimerChange:
    """Add (or replace) the cron line, or write and enable the systemd timer.
    Installing twice leaves one entry."""
    if kind == "cron":
        kept = [line for line in _read_crontab(tools) if not _is_ours(line)]
        _write_crontab(tools, [*kept, cron_line(job)])
        return TimerChange(f"Added to your crontab:\n  {cron_line(job)}\nCheck with: crontab -l")
    private_dir(tools.unit_dir)
    for name, content in systemd_units(job).items():
        with private_file(tools.unit_dir / name) as out:
            out.write(content)
    written = f"Wrote {tools.unit_dir / UNIT}.service and .timer."
    why, manual = _systemctl(tools, ["daemon-reload"], ["enable", "--now", f"{UNIT}.timer"])
    if manual:
        return TimerChange(f"{written} The timer is NOT active: {why}", manual)
    return TimerChange(
        f"{written} Timer enabled.\n"
        f"Check with: systemctl --user list-timers {UNIT}.timer; journalctl --user -u {UNIT}\n"
        f"User timers run only while you are logged in, unless you run "
        f"`loginctl enable-linger {_user()}`."
    )


def remove(kind: Kind, tools: Tools) -> TimerChange:
    """Remove only our cron line (the user's other lines stay), or stop the
    timer and delete our two unit files."""
    if kind == "cron":
        lines = _read_crontab(tools)
        kept = [line for line in lines if not _is_ours(line)]
        if len(kept) == len(lines):
            return TimerChange("There is no mailer line in your crontab; nothing to remove.")
        _write_crontab(tools, kept)
        return TimerChange("Removed the mailer line from your crontab.")
    paths = [tools.unit_dir / name for name in (f"{UNIT}.timer", f"{UNIT}.service")]
    if not any(path.exists() for path in paths):
        return TimerChange(f"There is no {UNIT} timer in {tools.unit_dir}; nothing to remove.")
    why, manual = _systemctl(tools, ["disable", "--now", f"{UNIT}.timer"])
    if manual:  # systemd unreachable: undo `enable` ourselves, as disable would have
        (tools.unit_dir / "timers.target.wants" / f"{UNIT}.timer").unlink(missing_ok=True)
    for path in paths:
        path.unlink(missing_ok=True)
    if manual:
        return TimerChange(
            f"Deleted the {UNIT} unit files, but could not tell systemd: {why}",
            (f"systemctl --user stop {UNIT}.timer", "systemctl --user daemon-reload"),
        )
    _, manual = _systemctl(tools, ["daemon-reload"])
    return TimerChange(f"Stopped the timer and deleted the {UNIT} unit files.", manual)


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
