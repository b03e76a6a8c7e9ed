"""`mailer schedule install|remove|show` through click, against fake crontab and
systemctl programs (MAILER_CRONTAB, MAILER_SYSTEMCTL, MAILER_SYSTEMD_DIR)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import mailer.cli  # noqa: F401  (registers every command)
from mailer.cli.app import main
from mailer.schedule import timer

FAKE_CRONTAB = f"""#!{sys.executable}
import sys
from pathlib import Path
table = Path(__file__).with_name("crontab.txt")
if sys.argv[1:] == ["-l"]:
    if not table.exists():
        sys.exit("no crontab for tester")
    sys.stdout.write(table.read_text())
else:
    table.write_text(sys.stdin.read())
"""

FAKE_SYSTEMCTL = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/systemctl-calls.txt"
"""

USER_LINES = "MAILTO=me@example.org\n30 3 * * * /usr/local/bin/backup\n"


class Fakes:
    def __init__(self, root: Path) -> None:
        self.bin = root / "bin"
        self.bin.mkdir()
        self.crontab = self._executable("crontab", FAKE_CRONTAB)
        self.systemctl = self._executable("systemctl", FAKE_SYSTEMCTL)
        self.table = self.bin / "crontab.txt"
        self.calls = self.bin / "systemctl-calls.txt"
        self.units = root / "units"

    def _executable(self, name: str, text: str) -> Path:
        path = self.bin / name
        path.write_text(text)
        path.chmod(0o755)
        return path


@pytest.fixture(autouse=True)
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fakes:
    """Every test here runs against fakes: a real crontab or timer must never change."""
    fakes = Fakes(tmp_path)
    monkeypatch.setenv("MAILER_CRONTAB", str(fakes.crontab))
    monkeypatch.setenv("MAILER_SYSTEMCTL", str(fakes.systemctl))
    monkeypatch.setenv("MAILER_SYSTEMD_DIR", str(fakes.units))
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    return fakes


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["schedule", *args], catch_exceptions=False)


def test_install_cron_twice_keeps_one_line_and_the_users_lines(
    fakes: Fakes, isolated_env: Path
) -> None:
    fakes.table.write_text(USER_LINES)
    first = run("install", "--cron")
    second = run("install", "--cron", "--every", "10")
    assert first.exit_code == second.exit_code == 0, first.output + second.output
    assert "crontab -l" in second.output
    lines = fakes.table.read_text().splitlines()
    assert lines[:2] == USER_LINES.splitlines()
    assert len(lines) == 3
    ours = lines[2]
    assert ours.startswith("*/10 * * * * umask 077 && cd ")  # the log is private too
    assert f"cd {Path.cwd()} && " in ours  # run-due finds the same .env as send
    assert f"MAILER_HOME={isolated_env} " in ours
    assert f">> {isolated_env / 'run-due.log'} 2>&1 # mailer run-due" in ours
    program = ours.split(" && ")[1].split()[1]
    assert Path(program).is_absolute()


def test_install_without_a_flag_uses_cron_when_crontab_exists(fakes: Fakes) -> None:
    result = run("install")
    assert result.exit_code == 0, result.output
    assert "# mailer run-due" in fakes.table.read_text()
    assert not fakes.units.exists()


def test_install_print_changes_nothing(fakes: Fakes) -> None:
    cron = run("install", "--cron", "--print")
    timer = run("install", "--systemd", "--print", "--every", "15")
    assert cron.exit_code == timer.exit_code == 0
    assert cron.output.strip().endswith("# mailer run-due")
    assert cron.output.count("\n") == 1  # just the line, ready to paste
    assert "OnCalendar=*:0/15" in timer.output and "ExecStart=" in timer.output
    assert not fakes.table.exists()
    assert not fakes.units.exists()
    assert not fakes.calls.exists()


def test_remove_cron_keeps_the_users_lines(fakes: Fakes) -> None:
    fakes.table.write_text(USER_LINES)
    run("install", "--cron")
    result = run("remove", "--cron")
    assert result.exit_code == 0
    assert "Removed" in result.output
    assert fakes.table.read_text() == USER_LINES


def test_install_show_remove_systemd(fakes: Fakes) -> None:
    installed = run("install", "--systemd")
    assert installed.exit_code == 0, installed.output
    assert "Timer enabled" in installed.output
    assert "systemctl --user list-timers" in installed.output
    assert fakes.calls.read_text().splitlines() == [
        "--user daemon-reload",
        "--user enable --now mailer-run-due.timer",
    ]
    shown = run("show", "--systemd")
    assert "systemd: installed" in shown.output and "OnCalendar=*:0/5" in shown.output
    removed = run("remove", "--systemd")
    assert removed.exit_code == 0
    assert list(fakes.units.iterdir()) == []
    assert "systemd: not installed" in run("show", "--systemd").output


def test_show_both_kinds(fakes: Fakes) -> None:
    run("install", "--cron")
    result = run("show")
    assert result.exit_code == 0
    assert "cron: installed\n" in result.output
    assert "systemd: not installed" in result.output
    for check in (
        "crontab -l",
        "systemctl --user list-timers",
        "journalctl --user -u mailer-run-due",
    ):
        assert check in result.output


def test_remove_without_a_flag_removes_both(fakes: Fakes) -> None:
    fakes.table.write_text(USER_LINES)
    run("install", "--cron")
    run("install", "--systemd")
    result = run("remove")
    assert result.exit_code == 0
    assert fakes.table.read_text() == USER_LINES
    assert list(fakes.units.iterdir()) == []


def test_without_systemctl_install_says_what_to_run_by_hand(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILER_SYSTEMCTL", str(fakes.bin / "no-such-systemctl"))
    result = run("install", "--systemd")
    assert result.exit_code == 0
    assert "NOT active" in result.output
    assert "Run by hand:\n  systemctl --user daemon-reload\n" in result.output
    assert (fakes.units / "mailer-run-due.timer").exists()


def test_a_bad_interval_is_a_clear_error_and_changes_nothing(fakes: Fakes) -> None:
    result = CliRunner().invoke(main, ["schedule", "install", "--cron", "--every", "7"])
    assert result.exit_code == 2
    assert "mailer: error: --every 7" in result.output
    assert "Traceback" not in result.output
    assert not fakes.table.exists()


def test_no_crontab_program_is_a_clear_error(fakes: Fakes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILER_CRONTAB", str(fakes.bin / "no-such-crontab"))
    result = CliRunner().invoke(main, ["schedule", "install", "--cron"])
    assert result.exit_code == 2
    assert "mailer: error:" in result.output and "--systemd" in result.output
    shown = run("show")
    assert "cron: no crontab program on this machine" in shown.output


def test_mailer_command_is_the_running_script_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "venv" / "bin" / "mailer"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    link = tmp_path / "mailer"
    link.symlink_to(script)
    monkeypatch.setattr(sys, "argv", [str(link), "schedule", "install"])
    assert timer.mailer_command() == (str(script),)


def test_mailer_command_falls_back_to_python_m_mailer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "__main__.py")])
    monkeypatch.setenv("PATH", str(tmp_path))  # no `mailer` on PATH
    program, *rest = timer.mailer_command()
    assert Path(program).is_absolute()
    assert rest == ["-m", "mailer"]


def test_install_passes_the_sending_limits_on_to_run_due(fakes: Fakes) -> None:
    cron = run("install", "--cron", "--print", "--provider", "gmail", "--rate", "10/min",
               "--concurrency", "2")
    assert cron.exit_code == 0, cron.output
    assert " run-due --provider gmail --rate 10/min --concurrency 2 >> " in cron.output
    bad = run("install", "--cron", "--print", "--rate", "lots")
    assert bad.exit_code == 2 and "--rate" in bad.output


def test_install_with_inbox_but_no_imap_account_fails_now_not_in_every_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAILER_SMTP_HOST", "smtp.example.org")  # no IMAP preset for it
    result = CliRunner().invoke(main, ["schedule", "install", "--cron", "--inbox", "--print"])
    assert result.exit_code == 2
    assert result.stderr.startswith("mailer: error: No IMAP server configured: set")
