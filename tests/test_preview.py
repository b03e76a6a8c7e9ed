"""Preview: .eml files and index.html for a plan, in a real browser, and the CLI."""

from __future__ import annotations

import email
import shutil
from datetime import UTC, datetime
from email.policy import default as default_policy
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailer import config
from mailer.campaign.plan import PlanItem, Status, plan
from mailer.campaign.preview import write_preview
from mailer.cli import main
from mailer.compose.message import Composer
from mailer.compose.profile import load_profile
from mailer.journal import Journal
from mailer.models import Contact, Rejected
from tests.tools import chromium_dom

DATE = datetime(2026, 2, 2, 9, 30, tzinfo=UTC)
NASTY = '<script>alert("x")</script> {{ 7 * 7 }}'


@pytest.fixture
def composer(project_root: Path) -> Composer:
    return Composer(load_profile(project_root / "profile.example.toml"))


@pytest.fixture
def entries() -> list[Contact | Rejected]:
    return [
        Contact(email="ada@example.com", name="Ada Lovelace", lang="en", source="c.csv:2"),
        Contact(email="juergen@example.org", name="Jürgen Müller", lang="de", source="c.csv:3"),
        Contact(email="quiet@example.net", name="Quiet Person", source="c.csv:4"),
        Contact(email="nasty@example.com", name=NASTY, source="c.csv:5"),
        Contact(email="card@example.de", name="Card Reader", needs_review=True, source="c.jpg#1"),
        Contact(email="ADA@example.com", source="c.csv:6"),
        Rejected(source="c.csv:7", reason="no e-mail address", fields={"Name": "X"}),
    ]


@pytest.fixture
def items(tmp_path: Path, composer: Composer, entries: list[Contact | Rejected]) -> list[PlanItem]:
    with Journal(tmp_path / "journal.sqlite3") as journal:
        journal.suppress_add("quiet@example.net", "asked")
        return list(plan(entries, composer, journal))


def test_writes_one_eml_per_draft_and_an_index(tmp_path: Path, items: list[PlanItem]) -> None:
    out = tmp_path / "preview"
    summary = write_preview(items, out, date=DATE)
    statuses = {item.email: item.status for item in items if item.email}
    assert statuses["quiet@example.net"] is Status.SUPPRESSED
    assert statuses["card@example.de"] is Status.REVIEW
    assert summary.counts == {
        Status.NEW: 3,
        Status.DUPLICATE: 1,
        Status.REJECTED: 1,
        Status.SUPPRESSED: 1,
        Status.REVIEW: 1,
    }
    assert summary.total == 7
    emls = sorted(out.glob("*.eml"))
    assert summary.messages == len(emls) == 5  # every contact with a draft, whatever its status
    for path in emls:
        msg = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        assert msg["Date"].datetime == DATE
        assert msg.defects == []
    index = summary.index.read_text(encoding="utf-8")
    assert summary.index == out / "index.html"
    for item in items:
        assert item.source in index
        assert f">{item.status.value}</span>" in index
        if item.email:
            assert f"&lt;{item.email}&gt;" in index
    assert "language de" in index and "language en" in index
    assert "no e-mail address" in index and "same address as c.csv:2" in index
    assert "Content-Security-Policy" in index
    # the nasty name is shown escaped, in the page and the frame; the one script is mailer's
    assert "<script>alert" not in index and index.count("<script>") == 1
    assert "{{ 7 * 7 }}" in index


def test_a_new_preview_replaces_the_old_messages(tmp_path: Path, items: list[PlanItem]) -> None:
    out = tmp_path / "preview"
    write_preview(items, out, date=DATE)
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    summary = write_preview(items[:1], out, date=DATE)
    assert summary.messages == 1
    assert [p.name for p in out.glob("*.eml")] == ["0001-ada@example.com.eml"]
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_index_shows_every_recipient_in_headless_chromium(
    tmp_path: Path, items: list[PlanItem]
) -> None:
    summary = write_preview(items, tmp_path / "preview", date=DATE)
    dom = chromium_dom(summary.index, tmp_path / "chromium")
    assert "<section" in dom
    for item in items:
        if item.email:
            assert item.email in dom
        assert item.source in dom
    assert dom.count("<iframe") == summary.messages
    assert "Guten Tag Jürgen Müller" in dom


def test_preview_command(
    project_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich folds long cells in a narrow terminal
    state = config.state_dir(config.environment())
    with Journal(state / "journal.sqlite3") as journal:
        journal.suppress_add("grace@example.net")
    out = tmp_path / "preview"
    result = CliRunner().invoke(
        main,
        [
            "preview",
            str(project_root / "contacts.csv.example"),
            "--profile",
            str(project_root / "profile.example.toml"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "grace@example.net" in result.output and "suppressed" in result.output
    assert str(out / "index.html") in result.output.replace("\n", "")
    index = (out / "index.html").read_text(encoding="utf-8")
    for address in (
        "ada.lovelace@example.com",
        "juergen.mueller@example.org",
        "kim.lee@example.org",
    ):
        assert address in index
    assert len(list(out.glob("*.eml"))) == 5


def test_preview_reads_the_profile_here_without_profile_option(
    project_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(project_root / "contacts.csv.example", tmp_path / "contacts.csv")
    args = ["preview", "contacts.csv", "--out", "preview"]
    missing = CliRunner().invoke(main, args)
    assert missing.exit_code == 2 and not (tmp_path / "preview").exists()
    assert "--profile" in missing.output and "mailer init" in missing.output
    assert "Traceback" not in missing.output
    shutil.copy(project_root / "profile.example.toml", tmp_path / "profile.toml")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "preview").glob("*.eml"))) == 5


def test_preview_command_reports_bad_map_without_traceback(
    project_root: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        main,
        [
            "preview",
            str(project_root / "contacts.csv.example"),
            "--profile",
            str(project_root / "profile.example.toml"),
            "--out",
            str(tmp_path),
            "--map",
            "Mail",
        ],
    )
    assert result.exit_code == 2
    assert "--map 'Mail': write it as COLUMN=FIELD" in result.output


def test_preview_command_reports_template_errors(project_root: Path, tmp_path: Path) -> None:
    templates = tmp_path / "templates" / "en"
    templates.mkdir(parents=True)
    for name, body in (("subject.txt.j2", "Hi"), ("body.txt.j2", "{% if %}"), ("body.html.j2", "")):
        (templates / name).write_text(body, encoding="utf-8")
    shutil.copy(project_root / "profile.example.toml", tmp_path / "profile.toml")
    result = CliRunner().invoke(
        main,
        [
            "preview",
            str(project_root / "contacts.csv.example"),
            "--profile",
            str(tmp_path / "profile.toml"),
            "--out",
            str(tmp_path / "out"),
            "--templates",
            str(tmp_path / "templates"),
        ],
    )
    assert result.exit_code == 2
    assert "en/body.txt.j2, line 1" in result.output
    assert "Traceback" not in result.output


def test_the_preview_is_readable_by_the_user_only(tmp_path: Path, items: list[PlanItem]) -> None:
    """The .eml files and the page carry every contact's name and address."""
    out = tmp_path / "preview"
    write_preview(items, out, date=DATE)
    assert out.stat().st_mode & 0o777 == 0o700
    for path in out.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
