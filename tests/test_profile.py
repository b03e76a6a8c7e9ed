"""profile.toml: validation that points at the key and line, channel links, the vCard."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import pytest
import vobject
from click.testing import CliRunner

from mailer.cli import main
from mailer.compose.profile import NETWORKS, load_profile
from mailer.compose.sender_vcard import sender_vcard
from mailer.errors import ConfigError
from tests.tools import require_tool

# (network, value in profile.toml, expected link, expected shown text)
CHANNELS = [
    ("linkedin", "alex-example", "https://www.linkedin.com/in/alex-example", None),
    ("xing", "Alex_Example", "https://www.xing.com/profile/Alex_Example", None),
    (
        "mastodon",
        "@alex@social.example.org",
        "https://social.example.org/@alex",
        "@alex@social.example.org",
    ),
    (
        "bluesky",
        "alex.bsky.social",
        "https://bsky.app/profile/alex.bsky.social",
        "@alex.bsky.social",
    ),
    ("github", "alex-example", "https://github.com/alex-example", "@alex-example"),
    ("flickr", "alexpix", "https://www.flickr.com/people/alexpix", None),
    ("instagram", "@alex.example", "https://www.instagram.com/alex.example", "@alex.example"),
    ("threads", "alex.example", "https://www.threads.net/@alex.example", "@alex.example"),
    ("x", "alexexample", "https://x.com/alexexample", "@alexexample"),
    ("youtube", "@AlexTalks", "https://www.youtube.com/@AlexTalks", "@AlexTalks"),
    ("skype", "live:.cid.123abc", "skype:live:.cid.123abc?chat", "live:.cid.123abc"),
    ("signal", "0151 23456789", "https://signal.me/#p/+4915123456789", "+49 1512 3456789"),
    ("telegram", "alex_example", "https://t.me/alex_example", "@alex_example"),
    ("whatsapp", "+49 151 23456789", "https://wa.me/4915123456789", "+49 1512 3456789"),
    ("web", "https://alex.example.com/", "https://alex.example.com/", None),
    ("blog", "https://blog.example.com/", "https://blog.example.com/", None),
    ("calendar", "https://cal.example.com/alex", "https://cal.example.com/alex", None),
    ("other", "https://podcast.example.net/a,b;c", "https://podcast.example.net/a%2Cb%3Bc", None),
]


def write_profile(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "profile.toml"
    path.write_text(body, encoding="utf-8")
    return path


def full_profile(tmp_path: Path) -> Path:
    channels = "".join(
        f'\n[[channels]]\nnetwork = "{net}"\nvalue = "{value}"\n'
        + ('label = "Podcast"\n' if net == "other" else "")
        for net, value, _, _ in CHANNELS
    )
    return write_profile(
        tmp_path,
        'name = "Zoë Exämple"\nemail = "zoe@example.com"\norganisation = "Example Labs"\n'
        'title = "Engineer"\nphones = ["030 1234567"]\nregion = "DE"\n'
        '[address]\nstreet = "Beispielstraße 1"\ncity = "Berlin"\npostcode = "10115"\n'
        'country = "Germany"\n' + channels,
    )


def test_example_profile_loads(project_root: Path) -> None:
    profile = load_profile(project_root / "profile.example.toml")
    assert profile.name == "Alex Example"
    assert profile.domain == "example.com"
    assert profile.channels and profile.phones == ("+49 30 1234567",)


def test_every_known_network_gets_its_link_form(tmp_path: Path) -> None:
    profile = load_profile(full_profile(tmp_path))
    assert [c.network for c in profile.channels] == [net for net, *_ in CHANNELS]
    for channel, (net, _, url, text) in zip(profile.channels, CHANNELS, strict=True):
        assert channel.url == url, net
        assert channel.text == (text or url), net
    assert {c.network for c in profile.channels} == set(NETWORKS)
    assert profile.channels[-1].label == "Podcast"
    assert profile.given == "Zoë" and profile.family == "Exämple"
    assert profile.phones == ("+49 30 1234567",)


def test_labels_follow_the_template_language(tmp_path: Path) -> None:
    profile = load_profile(full_profile(tmp_path))
    by_net = {c.network: c for c in profile.channels}
    assert by_net["calendar"].label_for("de") == "Termin vereinbaren"
    assert by_net["calendar"].label_for("en") == "Book a meeting"
    assert by_net["linkedin"].label_for("de") == "LinkedIn"
    assert by_net["other"].label_for("de") == "Podcast"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('name = "A"\nemail = "a@example.com"\ncolour = "red"\n', "line 3: colour: unknown key"),
        ('name = "A"\n\nemail = "not an address"\n', "line 3: email: 'not an address' is not"),
        ('email = "a@example.com"\n', "name: is required"),
        (
            'name = "A"\nemail = "a@example.com"\nphones = "030 1"\n',
            "line 3: phones: must be a list",
        ),
        (
            'name = "A"\nemail = "a@example.com"\nunsubscribe_url = "http://example.com/u"\n',
            "line 3: unsubscribe_url: must be an https:// URL",
        ),
        (
            'name = "A"\nemail = "a@example.com"\nunsubscribe_url = "https://e.example/u>, <x"\n',
            "line 3: unsubscribe_url: must be an https:// URL",
        ),
        (
            'name = "A"\nemail = "a@example.com"\n[[channels]]\nnetwork = "web"\nvalue = "https://a.example.com"\n'
            '[[channels]]\nnetwork = "linkdin"\nvalue = "alex"\n',
            "line 7: channels[2].network: 'linkdin' is not a known network",
        ),
        (
            'name = "A"\nemail = "a@example.com"\n[[channels]]\nnetwork = "mastodon"\n'
            'value = "alex"\n',
            "line 5: channels[1].value: 'alex' is not @user@instance",
        ),
        (
            'name = "A"\nemail = "a@example.com"\n[[channels]]\nnetwork = "linkedin"\n'
            'value = "https://evil.example.net/in/alex"\n',
            "line 5: channels[1].value:",
        ),
        (
            'name = "A"\nemail = "a@example.com"\n[[channels]]\nnetwork = "linkedin"\n'
            'value = "https://evillinkedin.com/in/alex"\n',
            "line 5: channels[1].value:",
        ),
        (
            'name = "A"\nemail = "a@example.com"\n[[channels]]\nnetwork = "other"\n'
            'value = "https://x.example.com"\n',
            'channels[1].label: is required for network = "other"',
        ),
        (
            'name = "A"\nemail = "a@example.com"\n[[channels]]\nnetwork = "whatsapp"\n'
            'value = "call me"\n',
            "line 5: channels[1].value: 'call me' is not a phone number",
        ),
        ('name = "A"\nemail = "a@example.com"\nlang = "german"\n', "line 3: lang:"),
        (
            'name = "A"\nemail = "a@example.com"\ntitle = \n',
            "not valid TOML: Invalid value (at line 3",
        ),
    ],
)
def test_errors_name_the_key_and_line(tmp_path: Path, body: str, expected: str) -> None:
    path = write_profile(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_a_profile_saved_in_another_encoding_says_to_save_it_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "profile.toml"
    path.write_bytes('name = "Jürgen"\nemail = "j@example.com"\n'.encode("cp1252"))
    with pytest.raises(ConfigError, match="save it as UTF-8"):
        load_profile(path)


def test_photo_too_big_is_refused_and_a_small_one_is_embedded(tmp_path: Path) -> None:
    (tmp_path / "big.jpg").write_bytes(b"\xff\xd8" + b"\0" * 200_000)
    path = write_profile(tmp_path, 'name = "A B"\nemail = "a@example.com"\nphoto = "big.jpg"\n')
    with pytest.raises(ConfigError, match=r"line 3: photo: .* kB"):
        load_profile(path)
    (tmp_path / "small.jpg").write_bytes(b"\xff\xd8\xff\xe0small")
    path = write_profile(tmp_path, 'name = "A B"\nemail = "a@example.com"\nphoto = "small.jpg"\n')
    card = vobject.readOne(sender_vcard(load_profile(path), "3.0"))
    assert card.photo.value == b"\xff\xd8\xff\xe0small"


def _channels_in(card: vobject.base.Component) -> set[tuple[str, str]]:
    """(kind, value) of every channel-carrying property a reader sees."""
    found = set()
    for prop in card.getChildren():
        name = prop.name.upper()
        if name in ("X-SOCIALPROFILE", "IMPP", "URL"):
            found.add((name, prop.value))
    return found


def _expected_channels() -> set[tuple[str, str]]:
    expected = set()
    for net, _, url, text in CHANNELS:
        kind = NETWORKS[net].kind
        if kind == "social":
            expected.add(("X-SOCIALPROFILE", url))
        elif kind == "impp":
            expected.add(("IMPP", f"skype:{text}" if net == "skype" else url))
        else:
            expected.add(("URL", url))
    return expected


@pytest.mark.parametrize("version", ["3.0", "4.0"])
def test_vcard_round_trips_through_vobject_with_every_channel(tmp_path: Path, version: str) -> None:
    text = sender_vcard(load_profile(full_profile(tmp_path)), version)
    assert text.startswith(f"BEGIN:VCARD\r\nVERSION:{version}\r\n")
    card = vobject.readOne(text)
    assert card.fn.value == "Zoë Exämple"
    assert card.email.value == "zoe@example.com"
    assert card.org.value == ["Example Labs"]
    assert card.adr.value.street == "Beispielstraße 1"
    assert _channels_in(card) == _expected_channels()
    types = {p.value: p.params.get("TYPE") for p in card.contents["x-socialprofile"]}
    assert types["https://x.com/alexexample"] == ["twitter"]
    labels = {p.value for p in card.contents.get("x-ablabel", [])}
    assert labels == {"Blog", "Book a meeting", "Podcast"}
    assert max(len(line.encode()) for line in text.split("\r\n")) <= 75


def test_vcard_rejects_unknown_version(project_root: Path) -> None:
    with pytest.raises(ConfigError, match=r"2\.1"):
        sender_vcard(load_profile(project_root / "profile.example.toml"), "2.1")


ICAL_READER = """
import ICAL from "ical.js";
import { readFileSync } from "node:fs";
const card = new ICAL.Component(ICAL.parse(readFileSync(process.argv[2], "utf8")));
console.log(JSON.stringify(card.getAllProperties().map(p => [p.name, String(p.getFirstValue())])));
"""


@pytest.fixture(scope="module")
def ical_js(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder to run node in where `import "ical.js"` (the parser Thunderbird uses) resolves
    to the copy .ci/run installed; the tests never fetch it themselves."""
    installed = Path(require_tool("ical.js"))
    folder = tmp_path_factory.mktemp("icaljs")
    (folder / "node_modules").symlink_to(installed / "node_modules", target_is_directory=True)
    (folder / "read.mjs").write_text(ICAL_READER, encoding="utf-8")
    return folder


@pytest.mark.parametrize("version", ["3.0", "4.0"])
def test_ical_js_reads_every_channel(tmp_path: Path, ical_js: Path, version: str) -> None:
    card = tmp_path / "card.vcf"
    card.write_text(sender_vcard(load_profile(full_profile(tmp_path)), version), encoding="utf-8")
    out = subprocess.run(
        ["node", "read.mjs", str(card)], cwd=ical_js, capture_output=True, check=True, timeout=60
    )
    props = [tuple(p) for p in json.loads(out.stdout)]
    assert ("fn", "Zoë Exämple") in props
    assert ("email", "zoe@example.com") in props
    seen = {(name.upper(), value) for name, value in props}
    assert _expected_channels() <= seen


def test_ical_js_reads_the_photo(tmp_path: Path, ical_js: Path) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4
    (tmp_path / "me.jpg").write_bytes(jpeg)
    path = write_profile(tmp_path, 'name = "A B"\nemail = "a@example.com"\nphoto = "me.jpg"\n')
    profile = load_profile(path)
    photos = {}
    for version in ("3.0", "4.0"):
        card = tmp_path / f"card-{version}.vcf"
        card.write_text(sender_vcard(profile, version), encoding="utf-8")
        out = subprocess.run(
            ["node", "read.mjs", str(card)],
            cwd=ical_js,
            capture_output=True,
            check=True,
            timeout=60,
        )
        photos[version] = dict(json.loads(out.stdout))["photo"]
    assert base64.b64decode(photos["3.0"]) == jpeg  # ENCODING=b
    assert photos["4.0"] == "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()


def test_card_command_prints_the_vcard(project_root: Path) -> None:
    profile_path = project_root / "profile.example.toml"
    runner = CliRunner()
    result = runner.invoke(main, ["card", "--profile", str(profile_path)])
    assert result.exit_code == 0, result.output
    assert result.output == sender_vcard(load_profile(profile_path), "3.0").replace("\r\n", "\n")
    result = runner.invoke(main, ["card", "--profile", str(profile_path), "--version", "4.0"])
    assert result.exit_code == 0
    assert "VERSION:4.0" in result.output


def test_card_command_reports_profile_errors_without_traceback(tmp_path: Path) -> None:
    path = write_profile(tmp_path, 'name = "A"\nemail = "a@example.com"\nnickname = "x"\n')
    result = CliRunner().invoke(main, ["card", "--profile", str(path)])
    assert result.exit_code == 2
    assert "line 3: nickname: unknown key" in result.output
    assert "Traceback" not in result.output


def test_event_phrase_per_language(tmp_path: Path) -> None:
    profile = load_profile(
        write_profile(
            tmp_path,
            'name = "A B"\nemail = "a@example.com"\nevent = "FOSDEM 2026"\n'
            '[event_phrase]\nde = "auf der FOSDEM 2026"\nen = "at FOSDEM 2026"\n',
        )
    )
    assert profile.event_phrase("de") == "auf der FOSDEM 2026"
    assert profile.event_phrase("en") == "at FOSDEM 2026"
    assert profile.event_phrase("fr") == ""  # the template words it from `event`


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('event_phrase = "auf der FOSDEM"\n', "line 3: event_phrase: must be a table"),
        ('[event_phrase]\ngerman = "auf der FOSDEM"\n', "line 4: event_phrase.german: 'german' is"),
        ('[event_phrase]\nde = ""\n', "line 4: event_phrase.de: is required"),
        ('[event_phrase]\nde = 3\n', "line 4: event_phrase.de: must be a text"),
    ],
)
def test_bad_event_phrase_names_line_and_key(tmp_path: Path, body: str, message: str) -> None:
    path = write_profile(tmp_path, 'name = "A B"\nemail = "a@example.com"\n' + body)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_profile(path)


@pytest.mark.parametrize("version", ["3.0", "4.0"])
def test_a_mobile_number_is_a_cell_phone_in_the_vcard(tmp_path: Path, version: str) -> None:
    path = write_profile(
        tmp_path,
        'name = "A B"\nemail = "a@example.com"\nphones = ["0171 2345678", "030 1234567"]\n',
    )
    card = vobject.readOne(sender_vcard(load_profile(path), version))
    types = {
        tel.value.removeprefix("tel:").replace(" ", "").replace("-", ""): [
            t.upper() for t in tel.params["TYPE"]
        ]
        for tel in card.contents["tel"]
    }
    assert types == {"+491712345678": ["CELL"], "+49301234567": ["WORK", "VOICE"]}


def test_vcard_link_labels_in_the_mail_language(tmp_path: Path) -> None:
    profile = load_profile(full_profile(tmp_path))
    card = vobject.readOne(sender_vcard(profile, "3.0", "de"))
    labels = {p.value for p in card.contents["x-ablabel"]}
    assert labels == {"Blog", "Termin vereinbaren", "Podcast"}  # a label you wrote stays
