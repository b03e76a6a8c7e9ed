"""Import, second round: several addresses in a cell, the preferred vCard address, the
person's name apart from the display name, the column report, nested cards, header-only
files and output to a pipe."""

from __future__ import annotations

import email
import itertools
import json
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import mailer.cli.contacts  # noqa: F401  (registers the command on the group)
from mailer.cli.app import main
from mailer.compose.message import Composer
from mailer.compose.profile import load_profile
from mailer.contacts import iter_contacts, load_contacts
from mailer.contacts.csvfile import ColumnReport
from mailer.contacts.normalize import split_cell
from mailer.errors import InputError
from mailer.models import Contact, Rejected
from tests.smtpd import SmtpServer

FIXTURES = Path(__file__).parent / "fixtures" / "contacts"


def run(*args: str, width: int = 80) -> Result:
    return CliRunner().invoke(main, ["contacts", *args], env={"COLUMNS": str(width)})


def by_source(path: Path) -> dict[int, Contact | Rejected]:
    return {int(i.source.rpartition(":")[2]): i for i in iter_contacts([path])}


# ------------------------------------------------------------ several addresses per cell


@pytest.mark.parametrize(
    ("cell", "values"),
    [
        ("lina@example.com; li.na@example.net", ["lina@example.com", "li.na@example.net"]),
        ("a@example.org, b@example.org", ["a@example.org", "b@example.org"]),
        ("a@example.org\r\nb@example.org", ["a@example.org", "b@example.org"]),
        ("a@example.org ::: b@example.org", ["a@example.org", "b@example.org"]),
        ("a@example.org b@example.org", ["a@example.org", "b@example.org"]),
        ("a@example.org;", ["a@example.org"]),
        ("a@example.org ::: junk", ["a@example.org", "junk"]),
        ('"Doe, Jane" <jane@example.com>', ['"Doe, Jane" <jane@example.com>']),
        ("Jane <jane@example.com>, b@example.org", ["Jane <jane@example.com>", "b@example.org"]),
        ("email other", ["email other"]),  # not addresses: one invalid value, as read
        (" ; , ", []),
        ("ada@example.com (work); b@example.org", ["ada@example.com", "b@example.org"]),
    ],
)
def test_split_cell(cell: str, values: list[str]) -> None:
    assert split_cell(cell) == values


def test_every_address_in_a_cell_is_kept_first_valid_is_primary() -> None:
    flags: list[Rejected] = []
    path = FIXTURES / "multi_address.csv"
    streamed = iter_contacts([path], on_flag=flags.append)
    items = {int(i.source.rpartition(":")[2]): i for i in streamed}
    expected = {
        2: ("lina@example.com", "li.na@example.net"),
        3: ("ben@example.org", "b.ohm@example.org"),
        4: ("cleo@example.com", "cleo.home@example.net"),  # newline inside a quoted cell
        6: ("dan@example.com", "dan.g@example.org"),
        7: ("eva@example.com",),
        9: ("jane@example.com", "j.doe@example.org"),
    }
    for line, emails in expected.items():
        item = items[line]
        assert isinstance(item, Contact), item
        assert (item.email, item.emails) == (emails[0], emails)
    # an invalid extra address flags the contact; it is not rejected
    [flag] = flags
    assert flag.source.endswith(":7") and flag.name == "Eva Stern"
    assert "'not an address'" in flag.reason
    # only a cell without any valid address rejects, with the name it carried
    finn = items[8]
    assert isinstance(finn, Rejected) and finn.name == "Finn Roth"
    assert finn.reason.startswith("invalid e-mail address 'nope'")
    result = load_contacts([path])
    assert result.read == len(items) == 7


@pytest.mark.parametrize(
    "header", ["emails", "E-Mail-Adressen", "E-Mail-Adresse", "Mail privat", "Email addresses",
               "Mail", "e-mail values", "Mail 1"],
)  # fmt: skip
def test_email_column_synonyms(tmp_path: Path, header: str) -> None:
    path = tmp_path / "synonym.csv"
    path.write_text(f"Name;{header}\nLina;lina@example.com, l@example.org\n", encoding="utf-8")
    [lina] = load_contacts([path]).contacts
    assert lina.emails == ("lina@example.com", "l@example.org")


def test_mail_1_and_mail_2_columns(tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    path.write_text("Name,Mail 1,Mail 2\nLina,,lina@example.com\nBo,bo@example.org,b@example.org\n")
    lina, bo = load_contacts([path]).contacts
    assert lina.emails == ("lina@example.com",)
    assert bo.emails == ("bo@example.org", "b@example.org")


# ------------------------------------------------------------------ the preferred address


def test_preferred_vcard_address_whatever_the_line_order() -> None:
    items = list(iter_contacts([FIXTURES / "pref_and_kinds.vcf"]))
    pia, tom, zoe = items[:3]
    assert isinstance(pia, Contact) and isinstance(tom, Contact) and isinstance(zoe, Contact)
    # 4.0: PREF=1 before PREF=2 before none (RFC 6350 5.3)
    assert pia.emails == ("pia@example.org", "pia.work@example.com", "pia.home@example.com")
    assert tom.email == "tom@example.net"  # 3.0 TYPE=pref in an Apple group, second line
    assert zoe.email == "zoe@example.de"  # 2.1 bare PREF, second line


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_lowest_pref_wins_in_every_order(tmp_path: Path, order: tuple[int, ...]) -> None:
    lines = [
        "EMAIL;PREF=3:third@example.com",
        "EMAIL;PREF=1:first@example.com",
        "EMAIL;TYPE=work;PREF=2:second@example.com",
    ]
    body = "\r\n".join(lines[i] for i in order)
    path = tmp_path / "pref.vcf"
    path.write_text(f"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:P\r\n{body}\r\nEND:VCARD\r\n")
    [contact] = load_contacts([path]).contacts
    assert contact.emails == ("first@example.com", "second@example.com", "third@example.com")


# ------------------------------------------------------------ person's name vs display name


def test_company_entries_have_a_display_name_and_no_person() -> None:
    items = list(iter_contacts([FIXTURES / "pref_and_kinds.vcf"]))
    baeckerei, acme, mia = items[3:]
    assert isinstance(baeckerei, Contact) and isinstance(acme, Contact)
    assert (baeckerei.display, baeckerei.person) == ("Bäckerei Sonnenschein", "")  # KIND:org
    assert (acme.display, acme.person) == ("Acme Widgets", "")  # X-ABShowAs:COMPANY
    assert isinstance(mia, Rejected)
    assert (mia.name, mia.reason) == ("Mia Weber", "no e-mail address")
    assert mia.to_json()["name"] == "Mia Weber"


def test_google_file_as_and_organisation_only_rows() -> None:
    items = by_source(FIXTURES / "google_file_as.csv")
    shop, mia, firm = items[2], items[3], items[4]
    assert isinstance(shop, Contact) and isinstance(firm, Contact)
    assert (shop.name, shop.display, shop.person) == ("", "Bäckerei Sonnenschein", "")
    assert (firm.display, firm.person, firm.org) == ("Nur Firma GmbH", "", "Nur Firma GmbH")
    assert isinstance(mia, Rejected) and mia.name == "Mia Weber"


def test_a_person_keeps_their_name_for_the_salutation(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(
        "First Name,Last Name,Company,Email\n"
        "Mia,Weber,Bäckerei Sonnenschein,mia@example.com\n"
        ",,Acme,hello@example.org\n",
        encoding="utf-8",
    )
    mia, acme = load_contacts([path]).contacts
    assert (mia.display, mia.person) == ("Mia Weber", "Mia Weber")
    assert (acme.display, acme.person) == ("Acme", "")


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(msg, EmailMessage)
    return msg


def test_to_shows_the_display_name_salutation_a_person_only(project_root: Path) -> None:
    composer = Composer(load_profile(project_root / "profile.example.toml"), lang="en")
    company = by_source(FIXTURES / "google_file_as.csv")[2]
    person = by_source(FIXTURES / "multi_address.csv")[7]
    assert isinstance(company, Contact) and isinstance(person, Contact)
    shop = composer.render(company)
    assert parse(shop.payload)["To"].addresses[0].display_name == "Bäckerei Sonnenschein"
    assert shop.text.startswith("Hello,\n")
    eva = composer.render(person)
    assert eva.text.startswith("Hello Eva Stern,\n")
    assert parse(eva.payload)["To"].addresses[0].display_name == "Eva Stern"


def test_cjk_names_are_greeted_family_name_first(project_root: Path, tmp_path: Path) -> None:
    path = tmp_path / "google.csv"  # Google's export composes the name in Western order
    path.write_text(
        "First Name,Last Name,E-mail 1 - Value,Language\n"
        "太郎,田中,taro@example.jp,en\n"
        "민준,김,minjun@example.kr,de\n"
        "Taro,Tanaka,tanaka@example.jp,en\n"
        "Jürgen,Müller,juergen@example.de,de\n",
        encoding="utf-8",
    )
    composer = Composer(load_profile(project_root / "profile.example.toml"))
    greetings = [composer.render(c).text.splitlines()[0] for c in load_contacts([path]).contacts]
    assert greetings == ["Hello 田中太郎,", "Guten Tag 김민준,", "Hello Taro Tanaka,",
                         "Guten Tag Jürgen Müller,"]
    html = composer.render(load_contacts([path]).contacts[0]).html
    assert "Hello 田中太郎," in html


# ---------------------------------------------------------------------- column report


def test_partly_recognised_layout_says_what_was_used_and_ignored() -> None:
    reports: list[ColumnReport] = []
    path = FIXTURES / "partial_layout.csv"
    [lisa] = load_contacts([path], on_columns=reports.append).contacts
    assert (lisa.name, lisa.email, lisa.org) == ("Lisa Kunz", "lisa@example.de", "Kunz AG")
    [report] = reports
    assert report.used == (("Person", "name"), ("Mail privat", "email"), ("Firma 2", "org"))
    assert report.ignored == ("Notiz",)
    text = run(str(path)).stdout
    assert "ignored: 'Notiz'" in text and "--map 'Notiz=FIELD'" in text
    data = json.loads(run(str(path), "--json").stdout)
    assert data["columns"] == [
        {
            "source": str(path),
            "used": [
                {"column": "Person", "field": "name"},
                {"column": "Mail privat", "field": "email"},
                {"column": "Firma 2", "field": "org"},
            ],
            "ignored": ["Notiz"],
        }
    ]


def test_a_layout_without_any_name_column_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "nameless.csv"
    path.write_text("Wer;Mail\nLina Berg;lina@example.com\n", encoding="utf-8")
    reports: list[ColumnReport] = []
    load_contacts([path], on_columns=reports.append)
    assert reports[0].nameless and reports[0].ignored == ("Wer",)
    fixed: list[ColumnReport] = []
    [lina] = load_contacts([path], mapping={"wer": "name"}, on_columns=fixed.append).contacts
    assert lina.name == "Lina Berg" and not fixed[0].ignored and not fixed[0].nameless


def test_label_columns_and_phonetic_names_are_not_contact_fields() -> None:
    reports: list[ColumnReport] = []
    load_contacts([FIXTURES / "google_new.csv"], on_columns=reports.append)
    used = dict(reports[0].used)
    assert "Phonetic First Name" not in used  # a phonetic name is no phone number
    assert "E-mail 1 - Label" not in reports[0].ignored  # describes a column that is used


# --------------------------------------------------------------------- broken files


def test_nested_card_is_reported_as_nested() -> None:
    result = load_contacts([FIXTURES / "nested.vcf"])
    outer, no_end = result.rejected
    assert outer.name == "Outer Card" and outer.source.endswith(":1")
    assert outer.reason.startswith("a card nested inside this card (BEGIN:VCARD at line 5)")
    assert no_end.name == "No End" and no_end.reason.startswith("incomplete card")
    assert [c.email for c in result.contacts] == ["after@example.com", "fine@example.com"]
    assert result.read == 4  # entries are top-level cards: the nested one is none


def test_header_only_csv_is_no_contacts_and_exit_2() -> None:
    path = FIXTURES / "header_only.csv"
    with pytest.raises(InputError, match=f"no contacts in {path}"):
        list(iter_contacts([path]))
    result = run(str(path))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"mailer: error: no contacts in {path}")


def test_output_to_a_pipe_does_not_wrap_addresses(tmp_path: Path) -> None:
    address = "a.very.long.local.part.for.testing@subdomain.of.a.long.example.com"
    path = tmp_path / "long.csv"
    path.write_text(f"Name,Email\nLina Berg-Långnamn,{address}\n", encoding="utf-8")
    result = run(str(path), width=40)  # CliRunner's stdout is no terminal
    assert any(address in line for line in result.stdout.splitlines())
    assert any(f"{path}:2" in line for line in result.stdout.splitlines())


# ------------------------------------------------------------------ preview and send


def test_preview_shows_who_the_language_and_why_and_the_column_note(
    project_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILER_HOME", str(tmp_path / "state"))
    path = tmp_path / "event.csv"
    path.write_text(
        "Person;Mail privat;Telefon;Messestand\n"
        "Jonas Berg;jonas@example.com;+49 30 901820;booth\n"
        "Claire Roy;claire@example.fr;;talk\n"
        "Mia Weber;;;no address\n",
        encoding="utf-8",
    )
    out = tmp_path / "preview"
    profile = project_root / "profile.example.toml"
    result = CliRunner().invoke(
        main, ["preview", str(path), "--profile", str(profile), "--out", str(out), "--lang", "en"]
    )
    assert result.exit_code == 0, result.output
    assert "en: --lang" in result.stdout
    result = CliRunner().invoke(
        main, ["preview", str(path), "--profile", str(profile), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any("jonas@example.com" in ln and "de: +49 phone" in ln for ln in lines)
    assert any("claire@example.fr" in ln and "en: .fr address" in ln for ln in lines)
    assert any("Mia Weber" in ln and "no e-mail address" in ln for ln in lines)
    assert "mailer: note:" in result.stderr and "ignored: 'Messestand'" in result.stderr
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "(+49 phone)" in index and "(.fr address)" in index
    assert "Mia Weber" in index


@pytest.mark.parametrize("name", ["google_new.csv", "google_legacy.csv", "outlook.csv",
                                  "camcard.csv", "linkedin_Connections.csv"])
def test_preview_of_an_ordinary_export_prints_no_column_note(
    project_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv("MAILER_HOME", str(tmp_path / "state"))
    args = ["preview", str(FIXTURES / name), "--profile",
            str(project_root / "profile.example.toml"), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "mailer: note:" not in result.stderr
    assert "columns used" in run(str(FIXTURES / name)).stdout  # `contacts` still shows all


def test_the_column_note_names_only_the_columns_mailer_does_not_know(
    project_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILER_HOME", str(tmp_path / "state"))
    path = tmp_path / "export.csv"
    lines = (FIXTURES / "outlook.csv").read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([lines[0] + ",Kontaktweg", *(ln + ",Messe" for ln in lines[1:])])
                    + "\n", encoding="utf-8")
    args = ["preview", str(path), "--profile", str(project_root / "profile.example.toml"),
            "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "ignored: 'Kontaktweg'. To use one" in result.stderr
    assert "Business Fax" not in result.stderr and "Department" not in result.stderr


def test_send_plan_names_a_rejected_entry(work: Path, server: SmtpServer) -> None:
    (work / "contacts.csv").write_text("Name,Email\nAnna,anna@example.com\nMia Weber,\n",
                                       encoding="utf-8")
    import mailer.cli.send  # noqa: F401  (registers send)

    result = CliRunner().invoke(main, ["send", "contacts.csv", "--profile", "profile.toml",
                                       "--at", "in 1 day", "--yes"])
    assert result.exit_code == 0, result.output
    assert "  contacts.csv:3: Mia Weber: rejected: no e-mail address" in result.output
    assert server.received == []  # planned and queued for later, nothing sent


def test_mailers_own_review_file_reports_no_ignored_columns() -> None:
    reports: list[ColumnReport] = []
    load_contacts([FIXTURES / "ocr_review.csv"], on_columns=reports.append)
    assert reports[0].ignored == ()
    assert ("raw_text", "card_text") in reports[0].used


def test_column_report_is_cleaned_text(tmp_path: Path) -> None:
    path = tmp_path / "evil.csv"
    path.write_bytes(b"Name,Email,\x1b[31mNotes\xe2\x80\xae\n Lina,lina@example.com,x\n")
    reports: list[ColumnReport] = []
    load_contacts([path], on_columns=reports.append)
    assert reports[0].ignored == ("[31mNotes",)
