"""Every CSV mailer writes goes through one writer that keeps strangers' text from
running as a spreadsheet formula: `--rejects`, `cards review`, the problems report."""

from __future__ import annotations

import csv
import os
import re
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailer.cli import main
from mailer.contacts.scans import REVIEW_COLUMNS, write_review
from mailer.csvsafe import safe_cell, write_csv
from tests.smtpd import Fault, SmtpServer

PROJECT = Path(__file__).resolve().parents[1]
FORMULAS = ["=HYPERLINK(\"http://example.com\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def assert_no_formula(path: Path) -> None:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.reader(fh):
            for cell in row:
                if re.fullmatch(r"\+[\d ]+", cell):  # a phone number as mailer writes it
                    continue
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (path, cell)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("value", FORMULAS)
def test_a_formula_start_becomes_text(value: str) -> None:
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["Ada Lovelace", "+49 171 1234567", "", "a=b", "ada@example.com"])
def test_ordinary_values_and_phone_numbers_stay_as_they_are(value: str) -> None:
    assert safe_cell(value) == value


def test_write_csv_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_text("old", encoding="utf-8")
    write_csv(path, ["a", "b"], [{"a": "=1", "b": 2}, {"a": None}])
    assert read(path) == [{"a": "'=1", "b": "2"}, {"a": "", "b": ""}]
    assert_no_formula(path)
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temporary file left


def test_rejects_file(tmp_path: Path) -> None:
    contacts = tmp_path / "c.csv"
    contacts.write_text("Name,Email,Company\n=cmd|' /C calc'!A0,not-an-address,@SUM(1)\n",
                        encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    result = CliRunner().invoke(main, ["contacts", str(contacts), "--rejects", str(rejects)])
    assert result.exit_code == 0, result.output
    [row] = read(rejects)
    assert row["name"] == "'=cmd|' /C calc'!A0" and row["org"] == "'@SUM(1)"
    assert_no_formula(rejects)


def test_cards_review_file(tmp_path: Path) -> None:
    out = tmp_path / "reviewed.csv"
    row = dict.fromkeys(REVIEW_COLUMNS, "")
    row.update({REVIEW_COLUMNS[0]: "=1+1", REVIEW_COLUMNS[1]: "-x", "phone": "+49 30 1234567"})
    write_review(out, [row])
    [written] = read(out)
    assert written[REVIEW_COLUMNS[0]] == "'=1+1" and written["phone"] == "+49 30 1234567"
    assert_no_formula(out)


def test_problems_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         isolated_env: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "contacts.csv").write_text("Name,Email\nAda,ada@example.com\n", encoding="utf-8")
    shutil.copy(PROJECT / "profile.example.toml", tmp_path / "profile.toml")
    with SmtpServer() as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        server.fault("ada@example.com", Fault(reply="550 =HYPERLINK(\"http://example.com\")"))
        result = CliRunner().invoke(main, ["send", "contacts.csv", "--profile", "profile.toml",
                                           "--rate", "none", "--yes"])
    assert result.exit_code == 1, result.output
    report = isolated_env / "problems-contacts.csv"  # the state directory
    [row] = read(report)
    assert row["state"] == "failed" and row["reply"] == "'=HYPERLINK(\"http://example.com\")"
    assert_no_formula(report)
