"""`mailer contacts PATH...` through click's runner: JSON, tables, counts, rejects file, errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

import mailer.cli.contacts  # noqa: F401  (registers the command on the group)
from mailer.cli.app import main

FIXTURES = Path(__file__).parent / "fixtures" / "contacts"
EXAMPLE = Path(__file__).resolve().parents[1] / "contacts.csv.example"


def run(*args: str, width: int = 80) -> Result:
    return CliRunner().invoke(main, ["contacts", *args], env={"COLUMNS": str(width)})


def test_json_is_one_object_whose_counts_add_up() -> None:
    result = run(str(EXAMPLE), str(FIXTURES / "rejects_and_broken.vcf"), "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert set(data) == {"contacts", "rejected", "duplicates", "counts", "flagged", "columns"}
    counts = data["counts"]
    assert counts == {"read": 10, "accepted": 6, "duplicates": 0, "rejected": 4}
    assert counts["read"] == counts["accepted"] + counts["duplicates"] + counts["rejected"]
    assert data["rejected"][0] == {
        "source": f"{EXAMPLE}:7",
        "name": "Missing Address",
        "reason": "no e-mail address",
        "fields": {"name": "Missing Address", "org": "Nowhere Inc", "title": "CTO", "lang": "en"},
    }
    assert data["contacts"][1]["name"] == "Jürgen Müller"


def test_json_reports_invalid_values_dropped_from_kept_contacts(tmp_path: Path) -> None:
    contacts = tmp_path / "two_addresses.csv"
    contacts.write_text(
        "Name,E-mail 1,E-mail 2\nAda Lovelace,ada@example.com,not-an-address\n", encoding="utf-8"
    )
    data = json.loads(run(str(contacts), "--json").stdout)
    assert [c["email"] for c in data["contacts"]] == ["ada@example.com"]
    assert len(data["flagged"]) == 1
    assert data["flagged"][0]["source"] == f"{contacts}:2"
    assert "not-an-address" in json.dumps(data["flagged"][0])


def test_table_lists_rejects_and_ends_with_the_counts_line() -> None:
    google = str(FIXTURES / "google_legacy.csv")  # its Grace Hopper is the example's too
    result = run(str(EXAMPLE), google, google)
    assert result.exit_code == 0
    lines = result.stdout.rstrip("\n").splitlines()
    assert lines[-1] == "read 8 = accepted 5 + duplicate 2 + rejected 1"
    assert "Ada Lovelace" in result.stdout
    assert "no e-mail address" in result.stdout
    assert "Duplicates (merged)" in result.stdout


def test_rejects_file_can_be_fed_back_in(tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.csv"
    first = run(str(EXAMPLE), str(FIXTURES / "linkedin_Connections.csv"), "--rejects", str(rejects))
    assert first.exit_code == 0
    assert f"rejected entries written to {rejects}" in first.stdout
    again = run(str(rejects), "--json")
    assert again.exit_code == 0
    data = json.loads(again.stdout)
    names = [r["fields"].get("name") for r in data["rejected"]]
    assert names == ["Missing Address", "Grace Hopper"]


def test_contact_data_is_never_rich_markup(tmp_path: Path) -> None:
    path = tmp_path / "markup.csv"
    path.write_text("Name,Email\n[red]Mal[/],mallory@example.com\n", encoding="utf-8")
    result = run(str(path))
    assert "[red]Mal[/]" in result.stdout


def test_unknown_layout_exits_2_with_the_headers_and_no_traceback() -> None:
    result = run(str(FIXTURES / "unknown_layout.csv"))
    assert result.exit_code == 2
    assert result.stderr.startswith("mailer: error: ")
    assert "'ID', 'Wer', 'Kontaktweg'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    typo = run(str(FIXTURES / "unknown_layout.csv"), "--map", "Kontaktwg=email")
    assert typo.exit_code == 2 and "the column that --map names for email is not in" in (
        typo.stderr) and "'ID', 'Wer', 'Kontaktweg'" in typo.stderr
    fixed = run(str(FIXTURES / "unknown_layout.csv"), "--map", "Kontaktweg=email", "--json")
    assert json.loads(fixed.stdout)["counts"]["accepted"] == 2


def test_bad_options_exit_2() -> None:
    assert run(str(EXAMPLE), "--map", "no-equals-sign").exit_code == 2
    assert "COLUMN=FIELD" in run(str(EXAMPLE), "--map", "no-equals-sign").stderr
    bad_region = run(str(EXAMPLE), "--region", "XX")
    assert bad_region.exit_code == 2 and "--region" in bad_region.stderr


def test_phone_region_option(tmp_path: Path) -> None:
    path = tmp_path / "ch.csv"
    path.write_text("Name,Email,Phone\nHeidi,heidi@example.ch,044 668 18 00\n", encoding="utf-8")
    data = json.loads(run(str(path), "--region", "CH", "--json").stdout)
    assert data["contacts"][0]["phones"] == ["+41446681800"]


def test_contacts_kept_without_an_invalid_value_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    path.write_text("Name,Email,Email 2\nAda,ada@example.com,not an address\n", encoding="utf-8")
    result = run(str(path), width=200)
    assert "Accepted, invalid values dropped" in result.stdout
    assert "invalid e-mail value(s) dropped, contact kept: 'not an address'" in result.stdout
    assert result.stdout.splitlines()[-1] == "read 1 = accepted 1 + duplicate 0 + rejected 0"


def test_only_rejects_print_no_empty_accepted_table(tmp_path: Path) -> None:
    broken = tmp_path / "broken.vcf"
    broken.write_text("BEGIN:VCARD\nFN:Mia Weber\n", encoding="utf-8")
    result = run(str(broken))
    assert result.exit_code == 0, result.output
    assert "Accepted" not in result.output and "Rejected" in result.output
    assert result.output.rstrip().endswith("read 1 = accepted 0 + duplicate 0 + rejected 1")
