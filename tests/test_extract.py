"""Card field extraction from OCR lines with the usual OCR slips; no OCR engine needed."""

from __future__ import annotations

import pytest

from mailer.contacts.extract import (
    EMAIL_REVIEW_THRESHOLD,
    OcrLine,
    extract,
    name_agreement,
    split_name,
    transliterate,
)


def card(*rows: tuple[str, float] | str, score: float = 0.99) -> list[OcrLine]:
    """Lines stacked top to bottom; a (text, height) pair sets the font size."""
    lines, y = [], 20.0
    for row in rows:
        text, height = row if isinstance(row, tuple) else (row, 30.0)
        box = ((40.0, y), (40.0 + 18 * len(text), y), (40.0 + 18 * len(text), y + height),
               (40.0, y + height))  # fmt: skip
        lines.append(OcrLine(text, box, score))
        y += height + 15
    return lines


def test_clean_card_gives_every_field() -> None:
    fields = extract(
        card(
            ("Jürgen Müller", 60),
            "Geschäftsführer",
            "Nordlicht Software GmbH",
            "Tel. +49 30 1234567",
            "Mobil 0171 2345678",
            "Fax +49 30 1234568",
            "E-Mail: juergen.mueller@nordlicht.example.com",
            "www.nordlicht.example.com",
        ),
        region="DE",
    )
    assert fields.name.value == "Jürgen Müller"
    assert fields.title.value == "Geschäftsführer"
    assert fields.company.value == "Nordlicht Software GmbH"
    assert fields.email.value == "juergen.mueller@nordlicht.example.com"
    assert fields.email.confidence >= EMAIL_REVIEW_THRESHOLD and not fields.needs_review
    assert [(p.number, p.kind) for p in fields.phones] == [
        ("+49301234567", "phone"),
        ("+491712345678", "mobile"),
        ("+49301234568", "fax"),
    ]
    assert fields.website.value == "www.nordlicht.example.com"
    assert "Geschäftsführer" in fields.raw_text


@pytest.mark.parametrize(
    ("printed", "expected"),
    [
        ("anna.koch©example.com", "anna.koch@example.com"),
        ("anna.koch(aexample.com", "anna.koch@example.com"),
        ("anna.koch (at) example.com", "anna.koch@example.com"),
        ("anna.koch@examplecom", "anna.koch@example.com"),
        ("anna.koch@example.corn", "anna.koch@example.com"),
        ("anna.koch @ example. com", "anna.koch@example.com"),
        ("e-mail:anna.koch@example.org.", "anna.koch@example.org"),
    ],
)
def test_ocr_slips_in_addresses_are_repaired_and_flagged(printed: str, expected: str) -> None:
    fields = extract(card(("Anna Koch", 50), printed))
    assert fields.email.value == expected
    if printed.lower().startswith("e-mail") or " @ " in printed:
        assert not fields.needs_review  # a label, a trailing dot, spaces: nothing guessed
    else:
        assert fields.needs_review, "a repaired address must be confirmed by the user"


def test_domain_is_checked_against_the_printed_web_site() -> None:
    lost_dot = extract(card("info@beltiscom.example.net", "www.beltis.com.example.net"))
    assert lost_dot.email.value == "info@beltis.com.example.net"
    misread = extract(card("info@nordllcht.example.com", "www.nordlicht.example.com"))
    assert misread.email.value == "info@nordlicht.example.com"
    assert misread.needs_review


def test_web_site_and_address_on_one_line() -> None:
    fields = extract(card("www.nordlicht.example.com | info@nordlicht.example.com"))
    assert fields.website.value == "www.nordlicht.example.com"
    assert fields.email.value == "info@nordlicht.example.com"
    assert extract(card("E-Mail anna@example.com, info@example.org")).website.value == ""


def test_a_handle_is_not_an_address() -> None:
    fields = extract(card("f @EspaçoVillimpenta", "Twitter: @nordlicht"))
    assert fields.emails == ()
    assert fields.needs_review


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("Tel.: 030 1234567", "phone"),
        ("Telefon 030 1234567", "phone"),
        ("M: 030 1234567", "mobile"),
        ("Mobil: +49 30 1234567", "mobile"),
        ("Handy 030 1234567", "mobile"),
        ("Fax 030 1234567", "fax"),
        ("Tel./Fax 030 1234567", "phone"),
        ("0171 2345678", "mobile"),  # no label: the numbering plan says mobile
        ("030 1234567", "phone"),
    ],
)
def test_phone_labels_in_english_and_german(line: str, kind: str) -> None:
    (phone,) = extract(card(line), region="DE").phones
    assert phone.kind == kind
    assert phone.number in ("+49301234567", "+491712345678")


def test_phone_region_and_postcodes() -> None:
    fields = extract(card("(11) 2076-5555", "Cep 01014-000", "3569-6905"), region="BR")
    # a local number without area code has no E.164 form; a postcode is no phone
    assert [p.number for p in fields.phones] == ["+551120765555"]


def test_name_is_the_large_line_agreeing_with_the_address() -> None:
    fields = extract(
        card(
            ("ACME Solutions", 70),
            ("Sören Schäfer", 40),
            "Head of Sales",
            ("Peter Paul", 30),
            "soeren.schaefer@acme.example.org",
        )
    )
    assert fields.name.value == "Sören Schäfer"
    assert fields.title.value == "Head of Sales"
    assert fields.company.value == "ACME Solutions"  # spells the e-mail domain


def test_no_name_on_a_shop_card() -> None:
    fields = extract(
        card(
            ("LIDER FRIO", 110),
            "Consul Electrolux Continental",
            "Trabalhamos com todas as marcas",
            "liderfrio@example.com",
        )
    )
    assert fields.name.value == ""
    assert fields.title.value == ""


def test_company_from_the_domain_when_nothing_else_names_it() -> None:
    assert extract(card("Anna Koch", "anna@contoso.example.com")).company.value == "Contoso"
    assert extract(card("Anna Koch", "anna.koch@gmail.com")).company.value == ""


def test_control_characters_and_encoded_words_are_stripped_from_text_not_addresses() -> None:
    """A name is cleaned; an address glued to a control character is rejected, as the one
    validator rejects it from a CSV (issue 24: cleaning can make someone else's address)."""
    fields = extract(card(("Anna\u200b Koch=?", 50), "anna.koch@example.com\u0007"))
    assert fields.name.value == "Anna Koch"
    assert fields.emails == ()
    assert extract(card("Anna Koch", "E-Mail: anna.koch@example.com")).email.value == (
        "anna.koch@example.com")


def test_helpers() -> None:
    assert transliterate("Jürgen Weiß-Çelik") == "juergen weiss-celik"
    assert name_agreement("Dr. Jürgen Müller", "j.mueller") == 1
    assert name_agreement("Jürgen Müller", "juergen.mueller") == 2
    assert name_agreement("Peter Paul", "anna") == 0
    assert split_name("Dr. Avery Smith") == ("Avery", "Smith")
    assert split_name("Cher") == ("", "")


def test_empty_input() -> None:
    fields = extract([])
    assert fields.emails == () and fields.name.value == "" and fields.raw_text == ""


# ------------------------------------------------------------- names that generalise


@pytest.mark.parametrize(
    ("printed", "honorific", "name"),
    [
        ("MASASHI ARAI", "", "Masashi Arai"),  # capitals
        ("MATTHIAS ZIMMERMANN", "", "Matthias Zimmermann"),
        ("carol soh", "", "Carol Soh"),  # lower case
        ("TS. ĐỖ CHÍ PHI", "TS.", "Đỗ Chí Phi"),  # Vietnamese academic title
        ("Prof. Dr. Jürgen von der Heide", "Prof. Dr.", "Jürgen von der Heide"),
        ("Dipl.-Ing. Karl Meier", "Dipl.-Ing.", "Karl Meier"),
        ("Aguinaldo M. Righetti Jr.", "", "Aguinaldo M. Righetti Jr."),  # suffix kept
        ("Priya Sharma, MBA", "", "Priya Sharma, MBA"),
        ("황선규 (Sunkyoo Hwang)", "", "Sunkyoo Hwang"),  # the Latin part
        ("Rose Baker", "", "Rose Baker"),  # names that are also words
    ],
)
def test_names_in_every_style(printed: str, honorific: str, name: str) -> None:
    lines = card(("ACME", 40), (printed, 50), "Sales Director", "Tel. +49 30 1234567",
                 "contact@acme.example.com")  # fmt: skip
    fields = extract(lines, region="DE")
    assert (fields.honorific.value, fields.name.value) == (honorific, name)


def test_person_wins_over_a_company_line_that_looks_like_a_name() -> None:
    lines = card(("BAY TECH", 48), ("Diana Monica Rios", 40), "Account Manager",
                 "Tel. +1 415 555 0100", "drios@baytech.example.com")  # fmt: skip
    fields = extract(lines)
    assert fields.name.value == "Diana Monica Rios"
    assert fields.company.value == "BAY TECH"


def test_a_kanji_name_is_not_the_title() -> None:
    fields = extract(card(("Masashi Arai", 50), "新井 雅史", "masashi.arai@example.com"))
    assert fields.name.value == "Masashi Arai" and fields.title.value == ""


def test_company_never_from_a_tld_and_logo_not_doubled() -> None:
    assert extract(card("Anna Koch", "anna@abc.com.vn")).company.value == "Abc"
    assert extract(card("Anna Koch", "anna@sakura.vn")).company.value == "Sakura"
    assert extract(card("Anna Koch", "anna@x.sg")).company.value == ""  # no 1-letter company
    doubled = extract(card("ASAHI ASAHI SANGYO VIETNAM CO., LTD.", "Anna Koch"))
    assert doubled.company.value == "ASAHI SANGYO VIETNAM CO., LTD."


@pytest.mark.parametrize(
    ("lines", "region", "number"),
    [
        # the country at the end of the address
        (("Tel. (415) 555-0132", "500 Market St, San Francisco, CA 94105, USA"), "US",
         "+14155550132"),
        (("Mobile 98450 12345", "12 MG Road, Bengaluru 560001, India"), "IN", "+919845012345"),
        # a +prefix elsewhere on the card
        (("Office +1 212 555 0100", "Cell (646) 555-0199"), "US", "+16465550199"),
        # the country-code TLD of the e-mail address
        (("M 0412 345 678", "jo@firm.com.au"), "AU", "+61412345678"),
        # nothing on the card: the profile's region
        (("030 1234567",), "DE", "+49301234567"),
    ],
)  # fmt: skip
def test_phone_region_from_the_card(lines: tuple[str, ...], region: str, number: str) -> None:
    fields = extract(card(*lines), region="DE")
    assert fields.region == region
    assert number in [p.number for p in fields.phones]
