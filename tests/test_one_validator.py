"""Issue 24, item 2: an address is accepted or rejected by the one validator
(`addresses.normalize_address`) whatever its source.

The same list, clean and hostile, goes through every way an address enters mailer: a
CSV, a vCard, each kind of QR code (and one real code image through the decoder), the
OCR text of a card, the profile and `mailer suppress add`.  Each source must give the
validator's verdict: the same address, or none; never a cleaned one (a QR code's
`bob\\u200b@example.com` became `bob@example.com`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailer.addresses import InvalidAddress, address_key, normalize_address
from mailer.cli import main
from mailer.contacts import load_contacts
from mailer.contacts.extract import OcrLine, extract
from mailer.contacts.qr import parse_payload
from mailer.contacts.scans import to_contact
from mailer.errors import MailerError
from mailer.models import Contact

ADDRESSES = [
    "ada@example.com",
    "Ada.Lovelace@Example.COM",
    "o'brien@example.org",
    "eve@example.net",  # the "e" of an address is no "E:" label
    "email@example.com",
    "bob\u200b@example.com",  # zero-width space
    "eve=?x@example.com",  # an encoded word's start
    "fo\x1bo@example.com",  # escape
    "mallory\u202e@example.com",  # right-to-left override
    "trudy\u00ad@example.com",  # soft hyphen
    "carol@exa\u200cmple.com",  # zero-width non-joiner in the domain
    "dave@example.com\u200b",
    "\u2060dave@example.com",  # word joiner
    "a\x7f@example.com",  # DEL
]


def verdict(value: str) -> str | None:
    try:
        return normalize_address(value)
    except InvalidAddress:
        return None


def only_address(contacts: list[Contact]) -> str | None:
    assert len(contacts) <= 1
    return contacts[0].email if contacts else None


def from_csv(value: str, tmp_path: Path) -> str | None:
    path = tmp_path / "c.csv"
    path.write_text(f"Name,Email\nAda Lovelace,{value}\n", encoding="utf-8")
    return only_address(load_contacts([path]).contacts)


def from_vcard(value: str, tmp_path: Path) -> str | None:
    path = tmp_path / "c.vcf"
    path.write_text(f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ada Lovelace\r\nEMAIL:{value}\r\n"
                    f"END:VCARD\r\n", encoding="utf-8")
    try:
        return only_address(load_contacts([path]).contacts)
    except MailerError:
        return None  # the whole file refused: the address was not accepted either


def from_code(payload: str) -> str | None:
    """A card whose print has only the name, and the code."""
    code = parse_payload(payload)
    fields = extract([OcrLine("Ada Lovelace", ((0, 0), (200, 0), (200, 20), (0, 20)), 0.99)],
                     codes=[code] if code else [])
    contact = to_contact("card.png", fields)
    return contact.email if isinstance(contact, Contact) else None


def from_mailto(value: str, tmp_path: Path) -> str | None:
    return from_code(f"mailto:{value}")


def from_mecard(value: str, tmp_path: Path) -> str | None:
    return from_code(f"MECARD:N:Lovelace,Ada;EMAIL:{value};;")


def from_bizcard(value: str, tmp_path: Path) -> str | None:
    return from_code(f"BIZCARD:N:Ada;X:Lovelace;E:{value};;")


def from_qr_vcard(value: str, tmp_path: Path) -> str | None:
    return from_code(f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ada Lovelace\r\nEMAIL:{value}\r\n"
                     f"END:VCARD")


def from_ocr(value: str, tmp_path: Path) -> str | None:
    lines = [OcrLine("Ada Lovelace", ((0, 0), (200, 0), (200, 20), (0, 20)), 0.99),
             OcrLine(value, ((0, 40), (300, 40), (300, 60), (0, 60)), 0.99)]
    contact = to_contact("card.png", extract(lines))
    return contact.email if isinstance(contact, Contact) else None


def from_profile(value: str, tmp_path: Path) -> str | None:
    from mailer.compose.profile import load_profile

    path = tmp_path / "profile.toml"
    path.write_text(f"name = \"Ada Lovelace\"\nemail = {json.dumps(value)}\n", encoding="utf-8")
    try:
        return load_profile(path).email
    except MailerError:
        return None


def suppressed() -> set[str]:
    listed = CliRunner().invoke(main, ["suppress", "list", "--json"])
    return {str(entry["address"]) for entry in json.loads(listed.output or "[]")}


def from_suppress_add(value: str, tmp_path: Path) -> str | None:
    before = suppressed()
    result = CliRunner().invoke(main, ["suppress", "add", value])
    if result.exit_code != 0:
        assert result.exit_code == 2 and "is not an e-mail address" in result.output
        return None
    (added,) = suppressed() - before
    return added


SOURCES: dict[str, Callable[[str, Path], str | None]] = {
    "csv": from_csv, "vcard": from_vcard, "qr mailto": from_mailto, "qr mecard": from_mecard,
    "qr bizcard": from_bizcard, "qr vcard": from_qr_vcard, "ocr text": from_ocr,
    "profile": from_profile, "suppress add": from_suppress_add,
}


@pytest.mark.parametrize("source", SOURCES)
def test_every_source_gives_the_validators_verdict(source: str, tmp_path: Path) -> None:
    got = {}
    for i, value in enumerate(ADDRESSES):
        folder = tmp_path / str(i)
        folder.mkdir()
        got[value] = SOURCES[source](value, folder)
    expected = {value: verdict(value) for value in ADDRESSES}
    if source == "suppress add":  # the list keeps the key addresses are compared by
        expected = {value: found and address_key(found) for value, found in expected.items()}
    assert got == expected


def test_the_list_holds_both_verdicts() -> None:
    accepted = [v for v in ADDRESSES if verdict(v)]
    assert 0 < len(accepted) < len(ADDRESSES) - 5


def test_a_real_code_keeps_the_hidden_character_and_is_rejected() -> None:
    """zxing hands the text over as encoded: the zero-width space reaches the validator."""
    pytest.importorskip("zxingcpp", reason="the OCR extra is not installed")
    import io

    import segno
    from PIL import Image

    from mailer.contacts.qr import decode_qr

    payload = "MECARD:N:Lovelace,Ada;EMAIL:bob\u200b@example.com;;"
    png = io.BytesIO()
    segno.make(payload, error="m", micro=False).save(png, kind="png", scale=6, border=4)
    png.seek(0)
    (text,) = decode_qr(Image.open(png).convert("RGB"))
    assert text == payload and from_code(text) is None
