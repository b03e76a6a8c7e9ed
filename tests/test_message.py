"""Composer: golden messages, MIME structure, headers, language choice, and
injection attempts through every contact field."""

from __future__ import annotations

import email
import itertools
import os
import subprocess
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest

from mailer.compose.message import Composer, sanitize, vcard_filename
from mailer.compose.profile import Profile, load_profile
from mailer.compose.sender_vcard import sender_vcard
from mailer.errors import ConfigError, TemplateError
from mailer.models import Contact

GOLDEN = Path(__file__).parent / "golden"
DATE = datetime(2026, 2, 2, 9, 30, tzinfo=UTC)
INJECTIONS = [
    "Eve\r\nBcc: victim@example.net",
    "Eve\nSubject: pwned",
    "=?utf-8?q?Eve=0ABcc:_victim@example.net?=",
    "==??utf-8?q?=0A?=",
    "Eve\u2028Bcc: victim@example.net",
    "Eve\u202e\u200b\x00\x1b[31m",
    "{{ 7 * 7 }} {% for i in range(3) %}loop{% endfor %}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    '<script>alert(1)</script> "quoted" \\ , ; <x@example.net>',
    "Jürgen Müller-Lüdenscheidt " * 20,
    "A" * 2000,  # no space to fold at: still no line over 998 octets
    "word " * 400,
]


@pytest.fixture
def profile(project_root: Path) -> Profile:
    return load_profile(project_root / "profile.example.toml")


def composer(profile: Profile, **kwargs: object) -> Composer:
    ids = itertools.count(1)
    return Composer(profile, message_id=lambda: f"<test-{next(ids)}@example.com>", **kwargs)


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(msg, EmailMessage)
    return msg


def mailcheck(shared_dir: Path, folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(shared_dir / "tools" / "mailcheck"), "--max-date-age=0", *extra, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("lang", "contact"),
    [
        ("en", Contact(email="ada.lovelace@example.com", name="Ada Lovelace", lang="en")),
        ("de", Contact(email="juergen.mueller@example.org", name="Jürgen Müller", lang="de")),
        ("de-noname", Contact(email="info@example.de")),
    ],
)
def test_golden_messages(profile: Profile, lang: str, contact: Contact) -> None:
    """The whole wire form, Date and Message-ID pinned.  After a deliberate change,
    regenerate with MAILER_UPDATE_GOLDEN=1 and read the diff."""
    wire = composer(profile).render(contact).wire(DATE)
    golden = GOLDEN / f"{lang}.eml"
    if os.environ.get("MAILER_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(wire)
    assert wire == golden.read_bytes()


def test_structure_and_headers(profile: Profile) -> None:
    draft = composer(profile).render(
        Contact(email="juergen.mueller@example.org", name="Jürgen Müller", lang="de")
    )
    assert b"\r\nDate:" not in draft.payload and not draft.payload.startswith(b"Date:")
    msg = parse(draft.wire(DATE))
    assert msg.defects == []
    assert str(msg["From"]) == "Alex Example <alex@example.com>"
    assert str(msg["To"]) == "Jürgen Müller <juergen.mueller@example.org>"
    assert msg["To"].addresses[0].addr_spec == draft.recipient == "juergen.mueller@example.org"
    assert msg["Date"].datetime == DATE
    assert msg["Message-ID"] == draft.message_id == "<test-1@example.com>"
    assert msg["MIME-Version"] == "1.0"
    # a personal one-off mail, not list mail: no list headers without an unsubscribe URL
    assert not [name for name in msg if name.lower().startswith("list-")]
    assert msg["Subject"] == draft.subject == "FOSDEM 2026: meine Kontaktdaten"
    assert draft.sender == "alex@example.com" and not draft.smtputf8

    assert msg.get_content_type() == "multipart/mixed"
    alternative, card = msg.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    text, html = alternative.get_payload()
    assert text.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert text.get_content().replace("\r\n", "\n") == draft.text
    assert "Guten Tag Jürgen Müller," in draft.text
    assert "nur einmal" in draft.text and "abmelden" not in draft.text
    assert html.get_content().replace("\r\n", "\n") == draft.html
    assert card.get_content_type() == "text/vcard"
    assert card.get_filename() == "Alex_Example.vcf"
    assert card.get_content().replace("\r\n", "\n") == sender_vcard(profile, "3.0", "de").replace(
        "\r\n", "\n"
    )
    for part in msg.walk():
        assert part.defects == []
    assert max(len(line) for line in draft.payload.split(b"\r\n")) <= 76


def test_default_html_is_plain_and_safe(profile: Profile) -> None:
    html = composer(profile).render(Contact(email="ada@example.com", name="Ada")).html
    lowered = html.lower()
    for forbidden in ("<img", "<script", "<link", "url(", "<iframe", "onload=", "dear friend"):
        assert forbidden not in lowered
    for channel in profile.channels:
        assert f'href="{channel.url}"' in html


def test_one_click_unsubscribe_only_with_an_https_url(profile: Profile) -> None:
    from dataclasses import replace

    with_url = replace(profile, unsubscribe_url="https://example.com/u?id=1")
    msg = parse(composer(with_url).render(Contact(email="ada@example.com")).wire(DATE))
    assert msg["List-Unsubscribe"] == (
        "<mailto:alex@example.com?subject=unsubscribe>, <https://example.com/u?id=1>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Id"] == "<alex.contacts.example.com>"  # complete list headers, for SA


def test_greeting_falls_back_without_a_name(profile: Profile) -> None:
    c = composer(profile)
    german = c.render(Contact(email="info@example.de"))
    assert german.lang == "de" and german.text.startswith("Guten Tag,\n")
    english = c.render(Contact(email="info@example.com"))
    assert english.text.startswith("Hello,\n")
    built = c.render(Contact(email="a@example.com", given="Ada", family="Lovelace"))
    assert built.text.startswith("Hello Ada Lovelace,\n")
    for draft in (german, english, built):
        assert "friend" not in draft.text.lower()
        assert draft.subject != draft.subject.upper()


@pytest.mark.parametrize(
    ("contact", "override", "expected"),
    [
        (Contact(email="a@example.com", lang="de"), None, "de"),
        (Contact(email="a@example.de", lang="en"), None, "en"),
        (Contact(email="a@example.at"), None, "de"),
        (Contact(email="a@example.ch"), None, "de"),
        (Contact(email="a@example.com"), None, "en"),  # the profile's default
        (Contact(email="a@example.com", lang="fr"), None, "en"),  # no French templates
        (Contact(email="a@example.de", lang="de"), "en", "en"),  # --lang wins
    ],
)
def test_language_choice(
    profile: Profile, contact: Contact, override: str | None, expected: str
) -> None:
    assert composer(profile, lang=override).render(contact).lang == expected


def test_unknown_lang_is_refused(profile: Profile, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--lang is 'fr'.*only for de, en") as err:
        Composer(profile, lang="fr")
    # the next step, not the path of the installed package's data folder
    assert "the shipped templates have" in str(err.value) and "--templates DIR" in str(err.value)
    assert "site-packages" not in str(err.value) and "_data" not in str(err.value)
    german_only = write_templates(tmp_path, "Hallo", "Text\n", "<p>Text</p>", lang="de")
    with pytest.raises(ConfigError, match=r"The profile's lang is 'en'.*only for de: choose"):
        Composer(profile, templates=german_only)
    assert Composer(profile, templates=german_only, lang="de").languages == ("de",)


def write_templates(folder: Path, subject: str, text: str, html: str, lang: str = "en") -> Path:
    (folder / lang).mkdir(parents=True)
    (folder / lang / "subject.txt.j2").write_text(subject, encoding="utf-8")
    (folder / lang / "body.txt.j2").write_text(text, encoding="utf-8")
    (folder / lang / "body.html.j2").write_text(html, encoding="utf-8")
    return folder


HEADERS = ["Date", "From", "To", "Subject", "Message-ID", "MIME-Version", "Content-Type"]
ALL_FIELDS = "{{ contact.name }} | {{ contact.org }} | {{ contact.title }}"


@pytest.mark.parametrize("field", ["name", "org", "title", "given", "family"])
def test_injection_through_every_field_is_a_harmless_literal(
    profile: Profile, tmp_path: Path, shared_dir: Path, field: str
) -> None:
    fields = ALL_FIELDS + " | {{ contact.given }} {{ contact.family }}"
    templates = write_templates(
        tmp_path / "templates", f"Hi {fields}", f"Hello {fields}\n", f"<p>Hello {fields}</p>\n"
    )
    c = composer(profile, templates=templates)
    out = tmp_path / "out"
    out.mkdir()
    for number, attack in enumerate(INJECTIONS):
        contact = Contact(email=f"target{number}@example.com", **{field: attack})
        draft = c.render(contact)
        raw = draft.wire(DATE)
        (out / f"{number}.eml").write_bytes(raw)
        msg = parse(raw)
        assert sorted(msg.keys()) == sorted(HEADERS)
        assert [a.addr_spec for a in msg["To"].addresses] == [f"target{number}@example.com"]
        for value in (msg["Subject"], msg["To"], draft.text, draft.html):
            assert "\n" not in str(value).rstrip("\n")
            assert "=?" not in str(value)
        assert "49" not in draft.text and "looploop" not in draft.text
        assert "<script>" not in draft.html
        assert sanitize(attack) in draft.text  # printed as it was written, never run
        assert max(map(len, raw.split(b"\r\n"))) <= 998
    result = mailcheck(shared_dir, out)
    assert result.returncode == 0, result.stdout


def test_literal_template_syntax_survives(profile: Profile) -> None:
    draft = composer(profile).render(Contact(email="a@example.com", name="{{ 7 * 7 }}"))
    assert draft.text.startswith("Hello {{ 7 * 7 }},\n")
    assert "Hello {{ 7 * 7 }}," in draft.html


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Ada\r\nBcc: x", "Ada Bcc: x"),
        ("A\u200bda\u202e", "Ada"),
        ("==??utf-8?q?x?=", "utf-8?q?x?="),
        ("  Zoë\u00a0Ünal  ", "Zoë Ünal"),
        ("Jürgen Müller", "Jürgen Müller"),
        ("a\u2029b\tc", "a b c"),
    ],
)
def test_sanitize(raw: str, clean: str) -> None:
    assert sanitize(raw) == clean


def test_vcard_filename_is_ascii() -> None:
    assert vcard_filename("Zoë Ünal") == "Zoe_Unal.vcf"
    assert vcard_filename("山田太郎") == "contact.vcf"
    assert vcard_filename('a"b\r\nc') == "a_b_c.vcf"


def test_non_ascii_addresses(profile: Profile, tmp_path: Path, shared_dir: Path) -> None:
    c = composer(profile)
    idn = c.render(Contact(email="info@müller.example", name="Müller"))
    assert idn.recipient == "info@xn--mller-kva.example" and not idn.smtputf8
    utf8 = c.render(Contact(email="jürgen@example.com", name="Jürgen"))
    assert utf8.smtputf8 and utf8.recipient == "jürgen@example.com"
    # raw UTF-8 headers (RFC 6532) are read from text: the bytes parser keeps them as surrogates
    msg = email.message_from_string(utf8.wire(DATE).decode("utf-8"), policy=default_policy)
    assert msg["To"].addresses[0].addr_spec == "jürgen@example.com"
    # mailcheck judges by the stdlib parser, which flags any non-ASCII local part even with
    # --utf8, so only the IDN message goes through it
    (tmp_path / "idn.eml").write_bytes(idn.wire(DATE))
    result = mailcheck(shared_dir, tmp_path)
    assert result.returncode == 0, result.stdout


def test_undefined_variable_names_template_and_line(profile: Profile, tmp_path: Path) -> None:
    templates = write_templates(
        tmp_path, "Hi", "Hello\n\n{{ contact.nmae }}\n", "<p>{{ contact.name }}</p>"
    )
    with pytest.raises(TemplateError, match=r"en/body\.txt\.j2, line 3: .*nmae"):
        composer(profile, templates=templates).render(Contact(email="a@example.com"))


def test_syntax_error_names_template_and_line(profile: Profile, tmp_path: Path) -> None:
    templates = write_templates(tmp_path, "Hi", "ok\n", "<p>\n{% if %}</p>")
    with pytest.raises(TemplateError, match=r"en/body\.html\.j2, line 2"):
        composer(profile, templates=templates)


def test_sandbox_blocks_unsafe_attributes(profile: Profile, tmp_path: Path) -> None:
    templates = write_templates(
        tmp_path, "Hi", "{{ ''.__class__.__mro__[1].__subclasses__() }}\n", "<p>x</p>"
    )
    with pytest.raises(TemplateError, match=r"body\.txt\.j2"):
        composer(profile, templates=templates).render(Contact(email="a@example.com"))


def test_missing_template_file_is_named(profile: Profile, tmp_path: Path) -> None:
    templates = write_templates(tmp_path, "Hi", "ok\n", "<p>x</p>")
    (templates / "en" / "body.html.j2").unlink()
    with pytest.raises(TemplateError, match=r"en/body\.html\.j2 is missing"):
        composer(profile, templates=templates)


def test_message_ids_are_unique_on_the_sender_domain(profile: Profile) -> None:
    c = Composer(profile)
    ids = {c.render(Contact(email=f"p{i}@example.com")).message_id for i in range(50)}
    assert len(ids) == 50
    assert all(i.startswith("<") and i.endswith("@example.com>") for i in ids)


@pytest.mark.parametrize(
    ("phrases", "lang", "expected"),
    [
        ((("de", "auf der FOSDEM 2026"),), "de", "die ich auf der FOSDEM 2026 kennengelernt"),
        ((), "de", "die ich im Rahmen von FOSDEM 2026 kennengelernt"),  # no article guessed
        ((), "en", "everyone I met at FOSDEM 2026,"),
        ((("en", "at the FOSDEM booth"),), "en", "everyone I met at the FOSDEM booth,"),
    ],
)
def test_the_event_is_worded_by_the_profile_else_by_the_template(
    profile: Profile, phrases: tuple[tuple[str, str], ...], lang: str, expected: str
) -> None:
    from dataclasses import replace

    c = composer(replace(profile, event="FOSDEM 2026", event_phrases=phrases), lang=lang)
    draft = c.render(Contact(email="ada@example.com", name="Ada"))
    assert expected in draft.text
    assert expected in draft.html


def test_a_german_mail_attaches_a_vcard_with_german_labels(profile: Profile) -> None:
    c = composer(profile)
    de = parse(c.render(Contact(email="a@example.de")).wire(DATE))
    en = parse(c.render(Contact(email="a@example.com", lang="en")).wire(DATE))
    assert "X-ABLABEL:Termin vereinbaren" in de.get_payload()[1].get_content()
    assert "X-ABLABEL:Book a meeting" in en.get_payload()[1].get_content()
