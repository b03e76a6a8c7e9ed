"""--at as people write it: "mon 9am", "Montag 9 Uhr"; and a bad --at is reported
before anything else, even in a script without a terminal."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from mailer.cli import main
from mailer.errors import ConfigError
from mailer.schedule.when import parse_when

BERLIN = ZoneInfo("Europe/Berlin")
FRIDAY = datetime(2026, 11, 27, 15, 0, tzinfo=BERLIN)
PROJECT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("text", "hour", "minute"),
    [
        ("mon 9am", 9, 0),
        ("Mon 9 am", 9, 0),
        ("monday at 9:30 pm", 21, 30),
        ("Monday 9 a.m.", 9, 0),
        ("mon 12am", 0, 0),
        ("mon 12pm", 12, 0),
        ("Montag 9 Uhr", 9, 0),
        ("Montag, 9 Uhr", 9, 0),
        ("Mo. 9.30 Uhr", 9, 30),
        ("montag um 9 Uhr", 9, 0),
        ("Montag 9.30", 9, 30),
        ("mon 09:00", 9, 0),
    ],
)
def test_weekday_with_the_time_written_as_people_write_it(
    text: str, hour: int, minute: int
) -> None:
    assert parse_when(text, FRIDAY) == datetime(2026, 11, 30, hour, minute, tzinfo=BERLIN)


def test_day_words_take_the_same_times() -> None:
    assert parse_when("morgen um 9 Uhr", FRIDAY) == datetime(2026, 11, 28, 9, tzinfo=BERLIN)
    assert parse_when("tomorrow 9am", FRIDAY) == datetime(2026, 11, 28, 9, tzinfo=BERLIN)


@pytest.mark.parametrize(
    "text", ["mon 9", "mon 13pm", "mon 0am", "mon 25:00", "mon 9:60", "mon 9 o'clock", "9am"]
)
def test_ambiguous_or_impossible_times_are_refused_with_the_forms(text: str) -> None:
    with pytest.raises(ConfigError, match="Montag 9 Uhr"):
        parse_when(text, FRIDAY)


def test_a_bad_at_is_reported_before_no_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAILER_SMTP_HOST", "127.0.0.1")
    (tmp_path / "contacts.csv").write_text("Name,Email\nAda,ada@example.com\n", encoding="utf-8")
    shutil.copy(PROJECT / "profile.example.toml", tmp_path / "profile.toml")
    args = ["send", "contacts.csv", "--profile", "profile.toml"]
    bad = CliRunner().invoke(main, [*args, "--at", "someday"])  # no terminal: stdin is a pipe
    assert bad.exit_code == 2
    assert bad.stderr.startswith("mailer: error: Cannot understand the time 'someday'")
    assert bad.stderr.count("\n") == 1  # one line, the forms included
    assert "No terminal" not in bad.stderr
    good = CliRunner().invoke(main, [*args, "--at", "Montag 9 Uhr"])
    assert good.exit_code == 2 and "No terminal to confirm on" in good.stderr
    assert "Scheduled for" not in good.output  # refused before it says anything else
