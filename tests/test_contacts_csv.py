"""CSV import: the exporters' layouts, encodings, delimiters, preambles and --map."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from mailer.contacts import iter_contacts, load_contacts
from mailer.contacts.csvfile import write_rejects
from mailer.errors import ConfigError, InputError
from mailer.models import Contact, Rejected

FIXTURES = Path(__file__).parent / "fixtures" / "contacts"
PROJECT = Path(__file__).resolve().parents[1]


def contacts_of(path: Path, **options: object) -> list[Contact]:
    items = list(iter_contacts([path], **options))  # type: ignore[arg-type]
    assert all(isinstance(i, Contact) for i in items), items
    return items  # type: ignore[return-value]


def test_project_example_imports_five_contacts_and_one_reject() -> None:
    result = load_contacts([PROJECT / "contacts.csv.example"])
    assert [c.name for c in result.contacts] == [
        "Ada Lovelace", "Jürgen Müller", "Grace Hopper", "Zoë Ünal", "Kim Lee",
    ]  # fmt: skip
    assert [c.lang for c in result.contacts] == ["en", "de", "en", "de", ""]
    assert result.contacts[0].title == "Chief Mathematician"
    [missing] = result.rejected
    assert (missing.reason, missing.fields["name"]) == ("no e-mail address", "Missing Address")
    assert missing.source.endswith("contacts.csv.example:7")


def test_google_contacts_new_header_generation() -> None:
    ada, grace = contacts_of(FIXTURES / "google_new.csv")
    assert (ada.name, ada.given, ada.family) == ("Ada Lovelace", "Ada", "Lovelace")
    assert ada.emails == ("ada@example.com", "ada.home@example.com")
    assert (ada.org, ada.title) == ("Analytical Engines Ltd", "Chief Mathematician")
    assert ada.website == "https://ada.example.org"
    assert ada.phones == ("+442079460000",)
    assert grace.name == "Grace Brewster Hopper"  # composed, the prefix is not a name
    assert grace.source.endswith("google_new.csv:4")  # Ada's notes span lines 2-3


def test_google_legacy_star_marks_the_primary_address_and_cells_hold_several() -> None:
    [grace] = contacts_of(FIXTURES / "google_legacy.csv")
    assert grace.emails == ("grace@example.net", "grace.home@example.net", "grace.old@example.net")
    assert (grace.org, grace.title) == ("Compiler Works", "Rear Admiral")
    assert grace.phones == ("+491512345678",)


def test_outlook_title_is_a_salutation_and_display_name_column_is_not_an_address() -> None:
    [jm] = contacts_of(FIXTURES / "outlook.csv")
    assert (jm.name, jm.title, jm.org) == ("Jürgen Müller", "Leiter Vertrieb", "Beispiel GmbH")
    assert jm.emails == ("juergen.mueller@example.org", "jm@example.com")
    assert jm.phones == ("+49301234567", "+491711234567")  # the fax column is not a phone
    assert jm.website == "www.example.org"


def test_linkedin_notes_above_the_header() -> None:
    path = FIXTURES / "linkedin_Connections.csv"
    ada, grace = iter_contacts([path])
    assert isinstance(ada, Contact)
    assert (ada.name, ada.email, ada.title) == ("Ada Lovelace", "ada@example.com",
                                                "Chief Mathematician")  # fmt: skip
    assert ada.website == "https://www.linkedin.com/in/ada-example"
    assert ada.source == f"{path}:5"
    assert isinstance(grace, Rejected) and grace.reason == "no e-mail address"
    assert grace.fields["org"] == "Compiler Works"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("camcard.csv", ("Kim Lee", "Example Studio", "Art Director",
                         ("kim@example.com", "kim.lee@example.org"),
                         ("+491701234567", "+49307654321"), "www.example.com")),
        ("abbyy.csv", ("Zoë Ünal", "Example Studio", "Designerin", ("zoe.unal@example.com",),
                       ("+49897654321",), "https://example.com")),
        ("generic_scanner.csv", ("Ada Lovelace", "Analytical Engines Ltd", "Chief Mathematician",
                                 ("ada@example.com",), ("+447700900123",), "example.org")),
        ("ocr_review.csv", ("Ada Lovelace", "Analytical Engines Ltd", "Chief Mathematician",
                            ("ada@example.com",), ("+442079460000",), "example.org")),
    ],
)  # fmt: skip
def test_card_scanner_exports(name: str, expected: tuple[object, ...]) -> None:
    [c] = contacts_of(FIXTURES / name)
    assert (c.name, c.org, c.title, c.emails, c.phones, c.website) == expected


@pytest.mark.parametrize(
    ("codec", "bom", "newline"),
    [
        ("utf-8", b"", "\n"),
        ("utf-8", codecs.BOM_UTF8, "\r\n"),
        ("utf-16-le", codecs.BOM_UTF16_LE, "\r\n"),
        ("utf-16-be", b"", "\n"),
        ("cp1252", b"", "\r\n"),
        ("cp1252", b"", "\r"),
    ],
)
def test_german_excel_in_every_encoding(
    tmp_path: Path, codec: str, bom: bytes, newline: str
) -> None:
    text = (FIXTURES / "german_excel.csv").read_text(encoding="utf-8").replace("\n", newline)
    path = tmp_path / "Kontakte.csv"
    path.write_bytes(bom + text.encode(codec))
    jm, zoe = contacts_of(path)
    assert (jm.given, jm.family, jm.name) == ("Jürgen", "Müller", "Jürgen Müller")
    assert (jm.org, jm.title, jm.lang) == ("Beispiel GmbH", "Leiter Vertrieb", "de")
    assert jm.phones == ("+49301234567", "+491711234567")
    assert zoe.org == "Straße & Söhne KG"
    assert zoe.source == f"{path}:3"


def test_tab_delimited_and_a_late_latin1_byte_after_64_kb(tmp_path: Path) -> None:
    rows = [f"Person {i}\tperson{i}@example.com\tFirma" for i in range(3000)]
    rows.append("Jürgen Müller\tjm@example.org\tBäckerei")
    path = tmp_path / "big.txt"
    path.write_bytes(("Name\tE-Mail\tFirma\n" + "\n".join(rows) + "\n").encode("cp1252"))
    items = contacts_of(path)
    assert len(items) == 3001
    assert (items[-1].name, items[-1].org) == ("Jürgen Müller", "Bäckerei")


def test_quoted_newlines_and_blank_lines_keep_physical_line_numbers() -> None:
    path = FIXTURES / "quoted_newlines.csv"
    items = contacts_of(path)
    assert [c.source for c in items] == [f"{path}:3", f"{path}:7", f"{path}:10"]


def test_unknown_layout_lists_the_headers_and_how_to_map() -> None:
    path = FIXTURES / "unknown_layout.csv"
    with pytest.raises(InputError) as err:
        list(iter_contacts([path]))
    message = str(err.value)
    assert "no e-mail column" in message
    assert "'ID', 'Wer', 'Kontaktweg'" in message
    assert "--map" in message


def test_map_overrides_and_accepts_field_synonyms() -> None:
    path = FIXTURES / "unknown_layout.csv"
    ada, grace = contacts_of(path, mapping={"kontaktweg": "email", "Wer": "Name"})
    assert grace.email == "grace@example.net"
    assert (ada.name, ada.email) == ("Ada Lovelace", "ada@example.com")
    [only_mail] = contacts_of(FIXTURES / "generic_scanner.csv", mapping={"Company": "ignore"})
    assert only_mail.org == ""
    [org_from_title] = contacts_of(FIXTURES / "generic_scanner.csv", mapping={"Title": "Firma"})
    assert org_from_title.org == "Analytical Engines Ltd"  # first non-empty of the two


def test_map_to_an_unknown_field_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown field 'colour'"):
        list(iter_contacts([FIXTURES / "unknown_layout.csv"], mapping={"Wer": "colour"}))


def test_rejects_file_imports_again_after_the_user_fixes_it(tmp_path: Path) -> None:
    result = load_contacts([PROJECT / "contacts.csv.example", FIXTURES / "rejects_and_broken.vcf"])
    rejects = tmp_path / "rejects.csv"
    write_rejects(rejects, result.rejected)
    again = load_contacts([rejects])
    assert [r.fields for r in again.rejected[:1]] == [result.rejected[0].fields]
    assert len(again.rejected) == len(result.rejected) - 1  # the cut-off card has an address now
    fixed = rejects.read_text(encoding="utf-8-sig").replace(
        ",Missing Address,,,,", ",Missing Address,,,missing@example.com,"
    )
    rejects.write_text(fixed, encoding="utf-8")
    again = load_contacts([rejects])
    assert "missing@example.com" in [c.email for c in again.contacts]
    assert again.read == len(result.rejected)


def test_empty_file_and_folder_without_contacts_are_input_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.csv: the file is empty"):
        list(iter_contacts([empty]))
    folder = tmp_path / "nothing"
    folder.mkdir()
    (folder / "notes.md").write_text("hi")
    with pytest.raises(InputError, match="no contacts files in this folder"):
        list(iter_contacts([folder]))


def test_a_folder_stands_for_its_files_in_name_order(tmp_path: Path) -> None:
    for name in ("b.vcf", "a.csv"):
        (tmp_path / name).write_bytes((FIXTURES / ("apple_3.0_groups.vcf" if name == "b.vcf"
                                                   else "abbyy.csv")).read_bytes())  # fmt: skip
    items = contacts_of(tmp_path)
    assert [c.source for c in items] == [f"{tmp_path / 'a.csv'}:2", f"{tmp_path / 'b.vcf'}:1"]


def test_address_cells_with_a_display_name_or_mailto(tmp_path: Path) -> None:
    path = tmp_path / "outlook-ish.csv"
    path.write_text(
        'Name,E-Mail\nAda,"Ada Lovelace <ada@Example.COM>"\nGrace,mailto:grace@example.net\n',
        encoding="utf-8",
    )
    assert [c.email for c in contacts_of(path)] == ["ada@example.com", "grace@example.net"]


def test_spreadsheets_and_binary_files_get_a_hint_not_garbage(tmp_path: Path) -> None:
    sheet = tmp_path / "Kontakte.xlsx"
    sheet.write_bytes(b"PK\x03\x04\x14\x00\x06\x00")
    with pytest.raises(InputError, match="save the sheet as CSV"):
        list(iter_contacts([sheet]))
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01")
    with pytest.raises(InputError, match="not a text file"):
        list(iter_contacts([binary]))


def test_idn_and_smtputf8_addresses_are_valid_and_compared_case_insensitively(
    tmp_path: Path,
) -> None:
    path = tmp_path / "idn.csv"
    path.write_text(
        "Name,E-Mail\nBuchladen,info@BÜCHER.example\nJürgen,jürgen@example.de\n"
        "Again,INFO@bücher.example\nPunycode,x@xn--bcher-kva.example\n",
        encoding="utf-8",
    )
    result = load_contacts([path])
    assert [c.email for c in result.contacts] == [
        "info@bücher.example", "jürgen@example.de", "x@bücher.example",
    ]  # fmt: skip
    assert [(d.source, d.kept) for d in result.duplicates] == [(f"{path}:4", f"{path}:2")]
