"""The mail language of a contact, and why: the order of the rule, country data, card text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from phonenumbers import country_code_for_region as country_code

import mailer.cli.contacts  # noqa: F401  (registers the command on the group)
from mailer.cli.app import main
from mailer.compose.message import Composer
from mailer.compose.profile import load_profile
from mailer.contacts import load_contacts
from mailer.language import Decision, country_languages, decide, text_language
from mailer.models import Contact

SHIPPED = ("de", "en")


def c(email: str = "x@example.com", **fields: object) -> Contact:
    return Contact(email=email, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("contact", "expected"),
    [
        # 1. the contact's own language wins over everything else
        (c("a@example.fr", lang="de", phone_country="FR"), "de: language de"),
        (c("a@example.de", lang="fr"), "en: language fr"),  # no French templates: English
        # 2. the phone's country, before the address
        (c("a@example.fr", phone_country="DE"), "de: +49 phone"),
        (c("a@example.de", phone_country="US"), "en: +1 phone"),
        (c("a@example.com", phone_country="CH"), "de: +41 phone"),
        (c("a@example.com", phone_country="LU"), "de: +352 phone"),
        (c("a@example.com", phone_country="BE"), "en: +32 phone"),  # no majority for German
        (c("a@example.com", phones=("+4930901820",)), "de: profile default"),  # not from import
        # 3. the country-code TLD of an address
        (c("a@example.fr"), "en: .fr address"),
        (c("a@example.co.jp"), "en: .jp address"),
        (c("a@example.pl"), "en: .pl address"),
        (c("a@example.nl"), "en: .nl address"),
        (c("a@example.co.uk"), "en: .uk address"),
        (c("a@example.at"), "de: .at address"),
        (c("a@example.li"), "de: .li address"),
        (c("a@example.lu"), "de: .lu address"),
        (c("a@gmail.com", emails=("a@gmail.com", "a@example.ch")), "de: .ch address"),
        # 4. the card's text
        (c("a@example.com", text_lang="de"), "de: card text in de"),
        (c("a@example.com", text_lang="fr"), "en: card text in fr"),
        # 5. nothing known
        (c("a@example.com"), "de: profile default"),
        (c("a@example.org"), "de: profile default"),
        (c("a@example.eu"), "de: profile default"),  # .eu is no country
    ],
)
def test_rule_and_its_order(contact: Contact, expected: str) -> None:
    assert str(decide(contact, "de", SHIPPED)) == expected


def test_an_added_template_folder_is_picked_by_the_same_rule() -> None:
    with_french = ("de", "en", "fr")
    assert decide(c("a@example.fr"), "de", with_french) == Decision("fr", ".fr address")
    assert decide(c("a@example.be"), "de", with_french).lang == "en"  # no majority language
    assert decide(c("a@example.com", lang="fr-CA"), "de", with_french).lang == "fr"
    # without English templates an unknown language falls through to the profile's
    assert decide(c("a@example.fr"), "de", ("de",)) == Decision("de", "profile default")


def test_country_languages_come_from_cldr_majorities() -> None:
    assert country_languages("DE") == ("de",)
    assert country_languages("CH")[0] == "de"
    assert "de" in country_languages("LU")
    assert "de" not in country_languages("BE")
    assert country_languages("XX") == ()


def test_card_text_language() -> None:
    pytest.importorskip("py3langid")
    german = "Max Mustermann | Geschäftsführer | Muster GmbH | Hauptstraße 1 | 10115 Berlin"
    french = "Marie Dupont | Directrice commerciale | Société Générale | 12 rue de la Paix"
    assert text_language(german) == "de"
    assert text_language(french) == "fr"
    assert text_language("Lina Berg | lina@example.com | +49 170 1234567") == ""  # too little


def test_composer_records_the_language_and_why(project_root: Path) -> None:
    profile = load_profile(project_root / "profile.example.toml")
    composer = Composer(profile)
    draft = composer.render(c("a@example.fr", phone_country="DE"))
    assert (draft.lang, draft.lang_why) == ("de", "+49 phone")
    forced = Composer(profile, lang="en").render(c("a@example.de"))
    assert (forced.lang, forced.lang_why) == ("en", "--lang")


def test_an_international_event_gets_english_except_german_speakers(tmp_path: Path) -> None:
    """The issue's case: profile lang de; .fr, .jp, .pl, .nl, .com addresses, +1 phones."""
    path = tmp_path / "event.csv"
    path.write_text(
        "Name,Email,Phone\n"
        "Claire,claire@example.fr,\nKenji,kenji@example.jp,\nOla,ola@example.pl,\n"
        "Daan,daan@example.nl,\nSam,sam@example.com,+1 202 555 0123\n"
        "Jonas,jonas@example.de,\nLea,lea@example.com,+43 1 5880 0\nNiemand,n@example.com,\n",
        encoding="utf-8",
    )
    langs = [decide(x, "de", SHIPPED).lang for x in load_contacts([path]).contacts]
    assert langs == ["en", "en", "en", "en", "en", "de", "de", "de"]


def test_contacts_json_shows_language_and_why(tmp_path: Path, project_root: Path) -> None:
    path = tmp_path / "two.csv"
    path.write_text(
        "Name,Email,Phone\nClaire,claire@example.fr,\nJonas,jonas@example.com,+49 30 901820\n"
        "Kim,kim@example.com,\n",
        encoding="utf-8",
    )
    run = CliRunner().invoke
    plain = json.loads(run(main, ["contacts", str(path), "--json"]).stdout)
    assert [x["language"] for x in plain["contacts"]] == [
        {"lang": "en", "why": ".fr address"},
        {"lang": "de", "why": "+49 phone"},
        {"lang": None, "why": "profile default"},  # no --profile: not known here
    ]
    profile = project_root / "profile.example.toml"
    with_profile = run(main, ["contacts", str(path), "--json", "--profile", str(profile)])
    default = json.loads(with_profile.stdout)["contacts"][2]["language"]
    assert default == {"lang": load_profile(profile).lang, "why": "profile default"}
    table = run(main, ["contacts", str(path)], env={"COLUMNS": "200"}).stdout
    assert "en: .fr address" in table and "de: +49 phone" in table
    assert ": profile default" not in table and "profile default" in table


def test_vcard_lang_with_the_lowest_pref(tmp_path: Path) -> None:
    path = tmp_path / "lang.vcf"
    path.write_text(
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Lea\r\nLANG;PREF=2:en\r\nLANG;PREF=1:de-AT\r\n"
        "EMAIL:lea@example.com\r\nEND:VCARD\r\n"
    )
    [lea] = load_contacts([path]).contacts
    assert str(decide(lea, "en", SHIPPED)) == "de: language de"


def test_reviewed_card_csv_uses_the_cards_text(tmp_path: Path) -> None:
    """`cards review` writes the OCR text as raw_text; imported again, it still counts."""
    pytest.importorskip("py3langid")
    path = tmp_path / "reviewed.csv"
    path.write_text(
        "file,status,name,email,raw_text\n"
        'cards/1.jpg#1,ok,Max Muster,max@example.com,"Max Muster | Geschäftsführer | '
        'Muster GmbH | Hauptstraße 1 | 10115 Berlin"\n',
        encoding="utf-8",
    )
    [card] = load_contacts([path]).contacts
    assert card.text_lang == "de"
    assert str(decide(card, "en", SHIPPED)) == "de: card text in de"


@pytest.mark.parametrize(
    ("phone", "country"),
    [
        ("+49 30 901820", "DE"),
        ("0049 30 901820", "DE"),  # the international prefix instead of "+"
        ("+1 202 555 0123", "US"),
        ("+41 44 668 18 00", "CH"),
        ("030 901820", ""),  # national: its country was only assumed (--region)
        ("01 42 68 53 00", ""),  # a French number written nationally is no German one
        ("+800 1234 5678", ""),  # international freephone: no country
        ("n/a", ""),
    ],
)
def test_only_a_phone_written_with_its_country_code_counts(
    tmp_path: Path, phone: str, country: str
) -> None:
    path = tmp_path / "phone.csv"
    path.write_text(f"Name,Email,Phone\nP,p@example.fr,{phone}\n", encoding="utf-8")
    [contact] = load_contacts([path]).contacts
    assert contact.phone_country == country
    expected = f"+{country_code(country)} phone" if country else ".fr address"
    assert decide(contact, "de", SHIPPED).why == expected


def test_a_card_read_by_ocr_carries_its_texts_language() -> None:
    """The card reader's last step (no OCR engine needed): OCR lines -> fields -> contact."""
    pytest.importorskip("py3langid")
    from mailer.contacts.extract import OcrLine, extract
    from mailer.contacts.scans import to_contact

    texts = ["Max Mustermann", "Geschäftsführer", "Muster GmbH", "Hauptstraße 1, 10115 Berlin",
             "max@example.com"]  # fmt: skip
    lines = [
        OcrLine(text, ((0.0, y), (600.0, y), (600.0, y + 40), (0.0, y + 40)), 0.99)
        for y, text in zip(range(0, 500, 100), texts, strict=False)
    ]
    card = to_contact("cards/1.jpg#1", extract(lines))
    assert isinstance(card, Contact) and card.text_lang == "de"
    assert decide(card, "en", SHIPPED) == Decision("de", "card text in de")
