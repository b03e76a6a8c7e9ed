"""What a new user meets first: the distribution name, --version, shell completion."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from click.testing import CliRunner

from mailer import DISTRIBUTION, __version__
from mailer.cli import main
from mailer.contacts.scans import INSTALL_HINT

PROJECT = Path(__file__).resolve().parents[1]


def test_distribution_name_is_ours_and_the_command_stays_mailer() -> None:
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == DISTRIBUTION != "mailer"  # "mailer" on PyPI is someone else's
    assert project["scripts"] == {"mailer": "mailer.cli:main"}
    assert "version" in project["dynamic"]  # read from mailer/__init__.py: one place


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(main, ["--version"], prog_name="mailer")
    assert result.exit_code == 0
    assert result.output == f"mailer {__version__} ({DISTRIBUTION})\n"


def test_bash_completion_completes_commands_and_options() -> None:
    def complete(words: str) -> list[str]:
        env = {
            "_MAILER_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        }
        result = CliRunner().invoke(main, [], prog_name="mailer", env=env)
        assert result.exit_code == 0, result.output
        return [line.split(",", 1)[1] for line in result.output.splitlines()]

    assert complete("mailer pre") == ["preview"]
    assert "--profile" in complete("mailer send --pro")


def test_completion_script_is_what_the_readme_tells_to_source() -> None:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    assert "_MAILER_COMPLETE=bash_source mailer" in readme
    result = CliRunner().invoke(
        main, [], prog_name="mailer", env={"_MAILER_COMPLETE": "bash_source"}
    )
    assert "_MAILER_COMPLETE=bash_complete" in result.output


def test_no_install_command_names_the_other_projects_package() -> None:
    """`pip install '.[ocr]'` installs an unrelated 2015 project."""
    texts = [PROJECT / "README.md", *(PROJECT / "mailer").rglob("*.py")]
    texts += [path for path in PROJECT.glob("tests/*.py") if path.name != "test_packaging.py"]
    for path in texts:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"install[^\n]*\bmailer\[", text), path
    assert DISTRIBUTION in INSTALL_HINT and "[ocr]" in INSTALL_HINT
