"""One error format for everything: click's own usage errors and mailer's errors alike
are one line `mailer: error: ...` on stderr that says where to look next, exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailer.cli import main

PROJECT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["send", "c.csv", "--profile", "nope.toml"],
            "mailer: error: Invalid value for '--profile': File 'nope.toml' does not exist. "
            "See 'mailer send --help'.",
        ),
        (
            ["sned"],
            "mailer: error: No such command 'sned'. Did you mean 'send'? See 'mailer --help'.",
        ),
        (["--bogus"], "mailer: error: No such option '--bogus'. See 'mailer --help'."),
        (["send"], "mailer: error: Missing argument 'PATHS...'. See 'mailer send --help'."),
        (
            ["contacts", "c.csv", "--map"],
            "mailer: error: Option '--map' requires an argument. See 'mailer contacts --help'.",
        ),
        (
            ["suppress", "bogus"],
            "mailer: error: No such command 'bogus'. See 'mailer suppress --help'.",
        ),
    ],
)
def test_usage_errors_are_one_mailer_line_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.csv").write_text("email\na@example.com\n", encoding="utf-8")
    result = CliRunner().invoke(main, args, prog_name="mailer")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(expected), result.stderr
    assert "Error:" not in result.stderr and "Usage:" not in result.stderr


def test_a_mailer_error_has_the_same_format(tmp_path: Path) -> None:
    bad = tmp_path / "profile.toml"
    bad.write_text('name = "A"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["card", "--profile", str(bad)], prog_name="mailer")
    assert result.exit_code == 2
    assert result.stderr.startswith("mailer: error: ") and "email" in result.stderr


def test_mailer_alone_still_prints_the_help() -> None:
    result = CliRunner().invoke(main, [], prog_name="mailer")
    assert "Usage: mailer [OPTIONS] COMMAND" in result.output
    assert "mailer: error" not in result.output


def test_python_dash_m_names_the_command_mailer() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mailer", "sned"],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().endswith("See 'mailer --help'.")
