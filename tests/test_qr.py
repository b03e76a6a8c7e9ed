"""QR codes on cards: payload parsing (vCard through the project's reader, MeCard, BIZCARD,
mailto, URL), and generated cards with segno codes read offline through the real
decoder and OCR engine: the code's fields win, a card whose address is only in the
code still imports."""

from __future__ import annotations

import dataclasses
import random
import socket
import sys
from pathlib import Path

import pytest

from mailer.contacts.extract import Field, OcrLine, extract
from mailer.contacts.qr import QrContact, parse_payload, parse_payloads

sys.path.insert(0, str(Path(__file__).parent))


def test_vcard_payload_goes_through_the_vcard_reader() -> None:
    code = parse_payload(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Müller;Jürgen;;Dr.;\r\nFN:Dr. Jürgen Müller\r\n"
        "ORG:Nordlicht GmbH\r\nTITLE:CEO\r\nEMAIL;TYPE=work:j@nordlicht.example.com\r\n"
        "EMAIL;TYPE=pref:jm@nordlicht.example.com\r\nTEL;TYPE=cell:+49 171 2345678\r\n"
        "URL:https\\://nordlicht.example.com\r\nEND:VCARD"
    )
    assert code == QrContact(
        "vcard", "Dr. Jürgen Müller", "Jürgen", "Müller", "Nordlicht GmbH", "CEO",
        ("jm@nordlicht.example.com", "j@nordlicht.example.com"), ("+49 171 2345678",),
        "https://nordlicht.example.com",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            r"MECARD:N:Doe,John;TEL:+1 212 555 0100;EMAIL:john@example.com;"
            r"URL:https\://example.com;ORG:Acme\; Sons;;",
            QrContact("mecard", "John Doe", "John", "Doe", "Acme; Sons", "",
                      ("john@example.com",), ("+1 212 555 0100",), "https://example.com"),
        ),
        (
            "MECARD:N:Jane Roe;EMAIL:jane@example.org;;",
            QrContact("mecard", "Jane Roe", emails=("jane@example.org",)),
        ),
        (
            "BIZCARD:N:Sean;X:Owen;T:Software Engineer;C:Example Inc;A:76 9th Ave;"
            "B:+12125551212;M:+12125550000;E:sean@example.net;;",
            QrContact("bizcard", "Sean Owen", "Sean", "Owen", "Example Inc", "Software Engineer",
                      ("sean@example.net",), ("+12125551212", "+12125550000")),
        ),
        ("mailto:a%2Bb@example.com?subject=Hi", QrContact("mailto", emails=("a+b@example.com",))),
        ("https://www.example.net/card", QrContact("url", website="https://www.example.net/card")),
        ("WIFI:T:WPA;S:guest;P:secret;;", None),
        ("just some text", None),
        ("BEGIN:VCARD\r\nVERSION:3.0\r\nEND:VCARD", None),
        ("MECARD:;;", None),
    ],
)  # fmt: skip
def test_payloads(payload: str, expected: QrContact | None) -> None:
    assert parse_payload(payload) == expected


def test_hostile_payload_is_bounded_and_cleaned() -> None:
    code = parse_payload("MECARD:N:Evil\x1b[31m,Eve\u200b;EMAIL:eve@example.com;" + "X" * 100_000)
    assert code is not None and code.given == "Eve" and code.emails == ("eve@example.com",)
    assert "\x1b" not in code.name and "\u200b" not in code.name


def _line(text: str, y: float, height: float = 30.0) -> OcrLine:
    box = ((40.0, y), (40.0 + 18 * len(text), y), (40.0 + 18 * len(text), y + height),
           (40.0, y + height))  # fmt: skip
    return OcrLine(text, box, 0.95)


def test_code_wins_field_by_field_and_disagreements_are_kept() -> None:
    printed = [
        _line("Jurgen Muller", 20, 60),
        _line("CEO", 100),
        _line("Tel. 030 1234567", 200),
        _line("jurgen@nordllcht.example.com", 250),
    ]
    (code,) = parse_payloads(
        ["MECARD:N:Müller,Jürgen;EMAIL:juergen@nordlicht.example.com;TEL:+491712345678;;"]
    )
    fields = extract(printed, region="DE", codes=[code])
    assert fields.name == Field("Jürgen Müller", 1.0)
    assert fields.email == Field("juergen@nordlicht.example.com", 1.0)
    assert not fields.needs_review
    assert fields.title.value == "CEO"  # the code has none: the print fills it
    assert [p.number for p in fields.phones] == ["+491712345678", "+49301234567"]
    assert {(d.field, d.printed) for d in fields.disagreements} == {
        ("name", "Jurgen Muller"),
        ("email", "jurgen@nordllcht.example.com"),
    }
    assert fields.qr == ("mecard",)


# ---------------------------------------------------------------- through the engine

pytest.importorskip("rapidocr", reason="the OCR extra is not installed: pip install '.[ocr]'")

from cardgen import (  # noqa: E402
    HeldOutTruth,
    find_fonts,
    held_out_truth,
    photograph,
    render_held_out,
)

from mailer.contacts.scans import iter_cards, read_cards  # noqa: E402
from mailer.models import Contact  # noqa: E402


@pytest.fixture(scope="module")
def qr_cards(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, HeldOutTruth]]:
    """One card per kind of code; the vCard and mailto cards print no e-mail address."""
    fonts = find_fonts()
    if not fonts:
        pytest.skip("no DejaVu/Liberation font: apt-get install fonts-dejavu-core")
    rng = random.Random(15)
    folder = tmp_path_factory.mktemp("qr")
    cards = []
    for i, (kind, damage, photo) in enumerate(
        [("vcard", "rotated", True), ("mecard", "covered", False), ("mailto", "", True),
         ("url", "rotated", False)]
    ):  # fmt: skip
        truth = held_out_truth(rng, "plain", "left", kind)
        printed = "" if kind in ("vcard", "mailto") else truth.email
        truth = dataclasses.replace(truth, qr_damage=damage, printed_email=printed)
        image = render_held_out(truth, fonts[i % len(fonts)], rng)
        path = folder / f"qr-{kind}.{'jpg' if photo else 'png'}"
        (photograph(image, rng) if photo else image).save(path)
        cards.append((path, truth))
    return cards


@pytest.mark.slow
def test_qr_cards_read_offline_and_the_code_wins(
    qr_cards: list[tuple[Path, HeldOutTruth]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("this test allows no network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    read = {
        source: fields
        for source, fields, _ in read_cards([p for p, _ in qr_cards], cache_dir=tmp_path)
    }
    for path, truth in qr_cards:
        fields = read[f"{path}#1"]
        assert fields is not None and fields.qr == (truth.qr,), path.name
        if truth.qr in ("vcard", "mecard"):
            assert fields.name == Field(truth.name, 1.0)
            assert fields.company == Field(truth.company, 1.0)
            assert truth.phones[1] in [p.number for p in fields.phones]
        if truth.qr in ("vcard", "mecard", "mailto"):
            assert fields.email == Field(truth.email, 1.0)
        if truth.qr == "url":
            assert fields.website == Field(f"https://{truth.website}/contact", 1.0)
    # the vCard and mailto cards print no address at all: they still import, unflagged
    contacts = list(iter_cards([p for p, _ in qr_cards[::2]], cache_dir=tmp_path))
    assert all(isinstance(c, Contact) and not c.needs_review for c in contacts)
    assert [getattr(c, "email", "") for c in contacts] == [t.email for _, t in qr_cards[::2]]
