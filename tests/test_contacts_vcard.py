"""vCard import: one test per exporter quirk, on fixture files and byte variants of them."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from mailer.contacts import iter_contacts, load_contacts
from mailer.contacts.normalize import sanitise
from mailer.errors import InputError
from mailer.models import Contact, Rejected

FIXTURES = Path(__file__).parent / "fixtures" / "contacts"


def contacts_of(path: Path) -> list[Contact]:
    items = list(iter_contacts([path]))
    assert all(isinstance(i, Contact) for i in items), items
    return items  # type: ignore[return-value]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_outlook_21_quoted_printable_with_charsets_and_soft_breaks() -> None:
    [ada] = contacts_of(FIXTURES / "outlook_2.1_qp.vcf")
    assert ada.name == "Jürgen Müller"  # UTF-8 QP split by a soft line break
    assert (ada.given, ada.family) == ("Jürgen", "Müller")  # ISO-8859-1 QP
    assert ada.org == "Beispiel € GmbH"  # windows-1252 QP, first ORG component
    assert ada.title == "Leiter Vertrieb"
    assert ada.emails == ("juergen.mueller@example.org",)
    assert ada.phones == ("+49301234567",)  # E.164 with the default region DE
    assert ada.source == f"{FIXTURES / 'outlook_2.1_qp.vcf'}:1"


def test_apple_groups_preferred_address_escapes_and_photo() -> None:
    [ada] = contacts_of(FIXTURES / "apple_3.0_groups.vcf")
    assert ada.email == "ada@example.com"  # type=pref on the second EMAIL
    assert ada.emails == ("ada@example.com", "ada.work@example.com")
    assert ada.org == "Analytical Engines, Ltd"  # escaped comma kept, unit after \; dropped
    assert ada.website == "https://ada.example.org"
    assert ada.phones == ("+442079460000",)


def test_versions_21_30_40_in_one_file_with_folding_and_names() -> None:
    grace, kim, john, nobody = contacts_of(FIXTURES / "mixed_versions.vcf")
    assert grace.name == "Rear Admiral Grace Brewster Hopper"  # no FN: built from N
    assert kim.name == "Kim Lee"  # folded with a tab
    assert kim.email == "kim.lee@example.org"  # folded inside the address
    assert john.email == "john.doe@example.com"  # PREF=1 first, domain lower-cased
    assert john.emails == ("john.doe@example.com", "backup@example.com")
    assert john.name == ""  # FN was the local part: not a name
    assert john.lang == "de"
    assert nobody.name == ""  # no FN, no N: left empty, never "nobody-named"
    lines = [c.source.rsplit(":", 1)[1] for c in (grace, kim, john, nobody)]
    assert lines == ["1", "6", "13", "20"]  # BEGIN:VCARD lines


@pytest.mark.parametrize(
    ("newline", "bom", "codec"),
    [
        (b"\r\n", b"", "utf-8"),
        (b"\n", codecs.BOM_UTF8, "utf-8"),
        (b"\r", b"", "utf-8"),
        (b"\r\r\n", b"", "utf-8"),
        (b"\r\n", codecs.BOM_UTF16_LE, "utf-16-le"),
        (b"\r\n", b"", "utf-16-be"),
    ],
    ids=["crlf", "lf-bom", "cr-only", "crcrlf", "utf16le-bom", "utf16be-no-bom"],
)
def test_line_ends_boms_and_utf16(tmp_path: Path, newline: bytes, bom: bytes, codec: str) -> None:
    text = (FIXTURES / "mixed_versions.vcf").read_bytes().replace(b"\n", newline)
    data = bom + text.decode("utf-8").encode(codec)
    items = contacts_of(write(tmp_path, "variant.vcf", data))
    assert [c.email for c in items] == [
        "grace@example.net", "kim.lee@example.org", "john.doe@example.com",
        "nobody-named@example.com",
    ]  # fmt: skip
    assert items[1].name == "Kim Lee"


def test_rejected_cards_say_why_and_an_unterminated_card_does_not_swallow_the_next() -> None:
    path = FIXTURES / "rejects_and_broken.vcf"
    items = list(iter_contacts([path]))
    assert [type(i).__name__ for i in items] == ["Rejected", "Rejected", "Rejected", "Contact"]
    no_address, invalid, cut, after = items
    assert isinstance(no_address, Rejected) and no_address.reason == "no e-mail address"
    assert no_address.fields == {"name": "No Address", "org": "Nowhere Inc"}
    assert isinstance(invalid, Rejected)
    assert invalid.reason.startswith("invalid e-mail address 'not-an-address'")
    assert isinstance(cut, Rejected) and cut.reason.startswith("incomplete card")
    assert cut.fields["email"] == "cut.off@example.com"  # what was read is kept
    assert isinstance(after, Contact) and after.name == "After The Cut"
    assert [i.source for i in items] == [f"{path}:{n}" for n in (1, 6, 11, 15)]


def test_big_embedded_photo_is_skipped(tmp_path: Path) -> None:
    photo = b"".join(b" " + b"A" * 74 + b"\r\n" for _ in range(40_000))  # ~3 MB of base64
    card = (
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ada Lovelace\r\nPHOTO;ENCODING=b;TYPE=JPEG:\r\n"
        + photo
        + b"EMAIL:ada@example.com\r\nEND:VCARD\r\n"
    )
    [ada] = contacts_of(write(tmp_path, "photo.vcf", card))
    assert (ada.name, ada.email) == ("Ada Lovelace", "ada@example.com")


def test_every_text_field_is_sanitised(tmp_path: Path) -> None:
    card = (
        "BEGIN:VCARD\nVERSION:3.0\n"
        "FN:Eve\\nBcc: victim@example.com =?utf-8?q?x?= \u202egnp.exe\u200b\x07\n"
        "ORG:Evil\u2028Corp\tInc\n"
        "TITLE:==??Boss\n"
        "EMAIL: eve@EXAMPLE.com \n"
        "END:VCARD\n"
    )
    [eve] = contacts_of(write(tmp_path, "evil.vcf", card.encode("utf-8")))
    assert eve.name == "Eve Bcc: victim@example.com utf-8?q?x?= gnp.exe"
    assert eve.org == "Evil Corp Inc"
    assert eve.title == "Boss"
    assert eve.email == "eve@example.com"


def test_duplicates_across_files_are_merged_keeping_the_richest(tmp_path: Path) -> None:
    thin = write(tmp_path, "thin.vcf", b"BEGIN:VCARD\nEMAIL:ADA@example.com\nEND:VCARD\n")
    result = load_contacts([thin, FIXTURES / "apple_3.0_groups.vcf"])
    [ada] = result.contacts
    assert ada.name == "Ada Lovelace" and ada.org == "Analytical Engines, Ltd"
    assert ada.source == f"{thin}:1"  # the first occurrence keeps its place
    assert set(ada.emails) == {"ADA@example.com", "ada.work@example.com"}
    [dup] = result.duplicates
    assert (dup.source, dup.kept) == (f"{FIXTURES / 'apple_3.0_groups.vcf'}:1", f"{thin}:1")
    assert result.read == 2


def test_file_without_any_card_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.vcf", b"ENCODING:UTF-8\r\n\r\n")
    with pytest.raises(InputError, match=r"empty\.vcf: no vCard found"):
        list(iter_contacts([path]))


def test_vcard_in_a_txt_file_is_recognised(tmp_path: Path) -> None:
    path = write(tmp_path, "export.txt", (FIXTURES / "apple_3.0_groups.vcf").read_bytes())
    assert [c.email for c in contacts_of(path)] == ["ada@example.com"]


def test_entries_from_the_card_reader_are_sanitised_too() -> None:
    ocr = Contact(email="ada@example.com", name="Ada\u202e Lovelace\n", phones=("+44\x00 20",),
                  source="cards/a.jpg#1", needs_review=True)  # fmt: skip
    clean = sanitise(ocr)
    assert isinstance(clean, Contact)
    assert (clean.name, clean.phones, clean.needs_review) == ("Ada Lovelace", ("+44 20",), True)
    rejected = sanitise(Rejected("cards/b.jpg#2", "no e-mail address", {"name": "Eve\x1b[31m"}))
    assert isinstance(rejected, Rejected) and rejected.fields == {"name": "Eve[31m"}


def test_embedded_21_agent_card_is_part_of_its_card(tmp_path: Path) -> None:
    data = (
        b"BEGIN:VCARD\r\nVERSION:2.1\r\nFN:Boss\r\nEMAIL:boss@example.com\r\nAGENT:\r\n"
        b"BEGIN:VCARD\r\nVERSION:2.1\r\nFN:Assistant\r\nEMAIL:assistant@example.com\r\n"
        b"END:VCARD\r\nTITLE:Chief\r\nEND:VCARD\r\n"
        b"begin:vcard\r\nversion:2.1\r\nfn:Next\r\nemail:next@example.com\r\nend:vcard\r\n"
    )
    boss, nxt = contacts_of(write(tmp_path, "agent.vcf", data))
    assert (boss.name, boss.emails, boss.title) == ("Boss", ("boss@example.com",), "Chief")
    assert (nxt.name, nxt.source) == ("Next", f"{tmp_path / 'agent.vcf'}:13")
