"""Composer renders what is the same for everyone once and the rest per message:
the bytes are those of rendering every template whole, for any contact."""

from __future__ import annotations

import itertools
from email.headerregistry import Address
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailer.compose.message import DOT_ATOM, Composer
from mailer.compose.profile import Profile, load_profile
from mailer.models import Contact

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile(PROJECT / "profile.example.toml")


def whole(composer: Composer) -> Composer:
    """The same Composer rendering every template whole, as before the split."""
    for split in itertools.chain.from_iterable(composer._templates.values()):
        split._parts = [(False, split.template)]
        split._pieces = None
    return composer


def pinned(profile: Profile, **kwargs: object) -> Composer:
    return Composer(profile, message_id=lambda: "<pinned@example.org>", **kwargs)  # type: ignore[arg-type]


names = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30) | st.sampled_from(
    ["", "Ada Lovelace", 'Ada "the" Lovelace', "O'Brien, Pat", "Zoë Ünal", "李小龙", "{{ 7*7 }}"])
atext = st.text("abcxyz019!#$%&'*+-/=?^_`{|}~", min_size=1, max_size=8)
locals_ = st.lists(atext, min_size=1, max_size=3).map(".".join) | st.sampled_from(
    ["jürgen", "a..b", ".dot", "dot.", "x"])
contacts = st.builds(
    lambda local, name, given, org, lang: Contact(
        email=f"{local}@example.com", name=name, given=given, org=org, lang=lang),
    locals_, names, names, names, st.sampled_from(["", "en", "de"]),
)


@pytest.fixture(scope="module")
def shipped(profile: Profile) -> tuple[Composer, Composer]:
    return pinned(profile), whole(pinned(profile))


@settings(max_examples=200, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(contact=contacts)
def test_the_split_rendering_is_byte_for_byte_the_whole_one(
    shipped: tuple[Composer, Composer], contact: Contact
) -> None:
    split, reference = shipped
    try:
        expected = reference.render(contact)
    except Exception as err:  # what the whole rendering refuses, the split one refuses alike
        with pytest.raises(type(err)):
            split.render(contact)
        return
    assert split.render(contact) == expected


def test_the_shipped_templates_are_cut_and_their_subject_rendered_once(profile: Profile) -> None:
    composer = Composer(profile)
    for lang in composer.languages:
        subject, text, html = composer._templates[lang]
        assert [same for same, _ in subject._parts] == [True]
        for split in (text, html):  # the greeting per message, the channels and footer once
            kinds = [same for same, _ in split._parts]
            assert True in kinds and False in kinds


TRICKY = {
    # the subject is per recipient; a loop over the channels that names the contact
    "subject.txt.j2": "For {{ contact.name or 'you' }}"
                      "{% if sender.event %} ({{ sender.event }}){% endif %}",
    "body.txt.j2": (
        "{% for channel in channels %}{{ contact.given }}: {{ channel.label }} {{ loop.index }}\n"
        "{% endfor %}{{ sender.name | upper }} {{ range(3) | list }}\n"
        "{% for contact in channels %}{{ contact.url }}{% endfor %}\n{{ subject }}\n"
    ),
    # a name set in one node and used in the next: rendered whole
    "body.html.j2": "{% set who = contact.name %}<p>{{ who }}</p>{% for c in channels %}"
                    "<a href=\"{{ c.url }}\">{{ c.text }}</a>{% endfor %}",
}


def test_templates_that_name_the_contact_anywhere_render_as_whole(
    profile: Profile, tmp_path: Path
) -> None:
    (tmp_path / "en").mkdir()
    for name, text in TRICKY.items():
        (tmp_path / "en" / name).write_text(text)
    split = pinned(profile, templates=tmp_path, lang="en")
    reference = whole(pinned(profile, templates=tmp_path, lang="en"))
    subject, text, html = split._templates["en"]
    assert [same for same, _ in subject._parts] == [True, False, True]
    assert html._parts == [(False, html.template)]  # {% set %}: not cut
    for contact in (Contact(email="a@example.com", name="Ada Lovelace", given="Ada"),
                    Contact(email="b@example.org")):
        assert split.render(contact) == reference.render(contact)


def test_a_static_part_fails_where_the_whole_template_would(
    profile: Profile, tmp_path: Path
) -> None:
    """An undefined name in a part rendered once is reported with its line, at
    the first message, and again at every later one."""
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "subject.txt.j2").write_text("Hi")
    (tmp_path / "en" / "body.txt.j2").write_text("Hello {{ contact.name }}\n{{ sender.nope }}\n")
    (tmp_path / "en" / "body.html.j2").write_text("<p>hi</p>")
    composer = Composer(profile, templates=tmp_path, lang="en")
    for _ in range(2):
        with pytest.raises(Exception, match=r"en/body\.txt\.j2, line 2: .*nope"):
            composer.render(Contact(email="a@example.com", name="Ada"))


@settings(max_examples=300, derandomize=True, deadline=None)
@given(local=st.lists(atext, min_size=1, max_size=3).map(".".join),
       domain=st.lists(st.text("abc-019", min_size=1, max_size=6), min_size=1,
                       max_size=3).map(".".join),
       name=names)
def test_a_dot_atom_address_is_the_address_parsing_would_give(
    local: str, domain: str, name: str
) -> None:
    """Composer skips the stdlib's parse for a plain dot-atom address: the
    Address built from its parts is the one the parse would have made."""
    assert DOT_ATOM.fullmatch(local) and DOT_ATOM.fullmatch(domain)

    def outcome(**parts: str) -> tuple[str, str] | type[Exception]:
        try:
            address = Address(display_name=name, **parts)
        except (ValueError, IndexError) as err:  # e.g. a line break in the name: both refuse
            return type(err)
        return str(address), address.addr_spec

    assert outcome(username=local, domain=domain) == outcome(addr_spec=f"{local}@{domain}")


