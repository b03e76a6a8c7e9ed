"""Names on cards never seen (third round) and the phone region from the card's own
evidence, from OCR lines; no OCR engine needed.  The names here are not from the
photos the extractor was developed on."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mailer.contacts import load_contacts
from mailer.contacts.extract import OcrLine, extract
from mailer.contacts.names import parse_name
from mailer.contacts.scans import REVIEW_COLUMNS, is_back, merge_sides, review_row, same_person
from mailer.csvsafe import write_csv
from tests.test_extract import card


@pytest.mark.parametrize(
    ("printed", "name", "given", "family"),
    [
        ("Jiwoo Baek", "Jiwoo Baek", "Jiwoo", "Baek"),  # Korean given name no dictionary has
        ("Taeyang Seo", "Taeyang Seo", "Taeyang", "Seo"),
        ("TRẦN THỊ THU", "Trần Thị Thu", "Thị Thu", "Trần"),  # Vietnamese: family first
        ("Phạm Minh Khoa", "Phạm Minh Khoa", "Minh Khoa", "Phạm"),
        ("NGUYEN VAN BINH", "Nguyen Van Binh", "Van Binh", "Nguyen"),  # "Van" no particle
        ("Quynh Pham", "Quynh Pham", "Quynh", "Pham"),  # given first where printed so
        ("Ravi", "Ravi", "Ravi", ""),
    ],
)  # fmt: skip
def test_names_of_many_countries(printed: str, name: str, given: str, family: str) -> None:
    fields = extract(
        card((printed, 55), "Account Manager", "Tel. +84 24 3825 1234", "info@firm.example.com")
    )
    assert fields.name.value == name
    parsed = parse_name(printed)
    assert (parsed.given, parsed.family) == (given, family) if parsed else family == ""


def test_a_one_word_line_is_no_name_without_the_cards_support() -> None:
    """A city or a brand that is also a given name, small and away from the contacts."""
    fields = extract(card("Sales Office", ("Paris", 24), ("Orchid Labs", 60),
                          "contact@orchid.example.com", "Tel. +33 1 42 68 53 00"))  # fmt: skip
    assert fields.name.value == ""
    shop = extract(card(("Flores", 60), "Arranjos e buquês", "floresana@example.com"))
    assert shop.name.value == ""  # one word in the address: a shop's name as often


def test_never_a_company_or_slogan_line() -> None:
    fields = extract(
        card(("HWANG TECH", 80), ("Building Better Bridges", 34), ("Sunkyoo Hwang", 44),
             "Senior Engineer", "Tel. +82 2 312 3456", "s.hwang@hwangtech.example.com")
    )  # fmt: skip
    assert fields.name.value == "Sunkyoo Hwang"


def write_review(path: Path, lines: list[OcrLine]) -> dict[str, str]:
    row = review_row("card.jpg#1", extract(lines, region="DE"))
    write_csv(path, REVIEW_COLUMNS, [row])
    return row


def test_an_assumed_region_stays_an_assumption(tmp_path: Path) -> None:
    """A card naming no country: its numbers are read for the profile's region, but the
    review CSV keeps them as printed, so the re-imported contact has no phone country
    (which would choose the language of the mail)."""
    out = tmp_path / "reviewed.csv"
    row = write_review(out, card(("Ana Souza", 50), "Gerente", "(11) 91234-5678",
                                 "ana.souza@gmail.com"))  # fmt: skip
    assert (row["mobile"] or row["phone"]) == "(11) 91234-5678"
    assert row["number_region"] == "DE, assumed" and row["e164_guess"].startswith("+49 ")
    (contact,) = load_contacts([out]).contacts
    assert contact.phone_country == ""


@pytest.mark.parametrize(
    ("evidence", "region"),
    [
        ("Av. Paulista 1000, São Paulo - SP, Brasil", "BR"),
        ("www.souza.example.com.br", "BR"),
        ("Tel. +55 11 3456-7890", "BR"),
        ("Rua Augusta 1500, Consolação, São Paulo", "BR"),  # the number's own area
    ],
)
def test_the_cards_own_region_is_used_and_shown(
    tmp_path: Path, evidence: str, region: str
) -> None:
    row = write_review(tmp_path / "r.csv", card(("Ana Souza", 50), "Gerente",
                                                "(11) 91234-5678", "ana@example.com",
                                                evidence))  # fmt: skip
    assert row["number_region"] == region
    assert "+55 11 91234-5678" in (row["mobile"], row["phone"], row["more_numbers"])
    with (tmp_path / "r.csv").open(encoding="utf-8-sig", newline="") as handle:
        assert next(csv.DictReader(handle))["e164_guess"] == ""


def test_back_sides_are_recognised_and_merged() -> None:
    front = extract(card(("Ana Souza", 50), "Gerente", "Tel. +55 11 3456-7890",
                         "ana@souza.example.com"))  # fmt: skip
    logo = extract(card(("SOUZA & FILHOS", 80), "Ideas that travel well"))
    name_only = extract(card(("Ana Souza", 50), "Gerente"))
    translated = extract(card(("Ana Souza", 50), "Sales Manager", "Phone +55 11 3456-7890",
                              "Mobile +55 11 91234-5678"))  # fmt: skip
    stranger = extract(card(("Rui Costa", 50), "rui@costa.example.com", "+55 11 3456-7890"))
    assert is_back(extract([])) and is_back(logo)
    assert not is_back(name_only) and not is_back(translated)
    assert same_person(front, translated) and not same_person(front, stranger)
    merged = merge_sides(front, translated)
    assert (merged.name, merged.title, merged.emails) == (front.name, front.title, front.emails)
    assert {p.number for p in merged.phones} == {"+551134567890", "+5511912345678"}
