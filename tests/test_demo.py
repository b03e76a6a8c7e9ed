"""The README's first quick-start command: the whole path on the example data."""

from __future__ import annotations

import email
import email.policy
import mailbox
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from mailer.cli import main

PROJECT = Path(__file__).resolve().parents[1]


def run_demo(workdir: Path) -> str:
    result = CliRunner().invoke(main, ["demo", "--dir", str(workdir)])
    assert result.exit_code == 0, result.output
    return result.output


def assert_delivered_five_after_a_dry_run(output: str, folder: Path) -> None:
    # the demo delivers to its own capture server; the preview page it points to is the dry
    # run written before that, and both say so, so "sent nothing" and "delivered 5" agree
    assert "Delivered 5 message(s) over SMTP to the capture server" in output
    assert "nothing left this machine" in output
    assert "(the dry run, before sending)" in output
    page = (folder / "preview" / "index.html").read_text(encoding="utf-8")
    assert "A dry run, written" in page and "writing this page sent nothing" in page


def test_demo_sends_every_example_contact_once_and_reports_the_rejected_row(
    tmp_path: Path,
) -> None:
    output = run_demo(tmp_path / "demo")
    assert_delivered_five_after_a_dry_run(output, tmp_path / "demo")
    assert "contacts.csv.example:7: no e-mail address" in output
    messages = list(mailbox.Maildir(tmp_path / "demo" / "Maildir"))
    assert sorted(m["Delivered-To"] for m in messages) == [
        "ada.lovelace@example.com",
        "grace@example.net",
        "juergen.mueller@example.org",
        "kim.lee@example.org",
        "zoe.unal@example.com",
    ]
    for raw in messages:
        parsed = email.message_from_bytes(raw.as_bytes(), policy=email.policy.default)
        assert parsed["Date"] and parsed["Message-ID"].endswith("@example.com>")
        assert [p.get_content_type() for p in parsed.walk()] == [
            "multipart/mixed",
            "multipart/alternative",
            "text/plain",
            "text/html",
            "text/vcard",
        ]
    assert (tmp_path / "demo" / "preview" / "index.html").is_file()


def test_demo_is_repeatable(tmp_path: Path) -> None:
    run_demo(tmp_path / "demo")
    output = run_demo(tmp_path / "demo")
    assert_delivered_five_after_a_dry_run(output, tmp_path / "demo")
    assert len(list(mailbox.Maildir(tmp_path / "demo" / "Maildir"))) == 5


def test_demo_runs_as_a_module_in_a_fresh_process(tmp_path: Path) -> None:
    """No traceback, exit 0, the printed paths exist: what a new user sees."""
    result = subprocess.run(
        [sys.executable, "-m", "mailer", "demo", "--dir", str(tmp_path / "d")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(PROJECT), "MAILER_ENV_FILE": "", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"Preview page:       {tmp_path / 'd' / 'preview' / 'index.html'}" in result.stdout
