"""`profile.toml` -> `Profile`: the sender and their channels.

Known networks get their label, link form and vCard property here, so the
templates and the sender's vCard (sender_vcard.py) agree.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import quote, urlsplit, urlunsplit

from ..addresses import InvalidAddress, normalize_address
from ..errors import ConfigError
from ..sanitize import problem

VCARD_VERSIONS = ("3.0", "4.0")
MAX_PHOTO_BYTES = 100_000  # the photo rides along in every message


@dataclass(frozen=True, slots=True)
class Network:
    label: str
    kind: str  # "social" (X-SOCIALPROFILE), "impp" (IMPP) or "url" (URL)
    service: str  # TYPE / X-SERVICE-TYPE in the vCard; "" for plain URLs
    value: str  # how the channel is written in profile.toml, for error messages
    domains: tuple[str, ...] = ()  # hosts a full URL must be on ("" = any https URL)


NETWORKS: dict[str, Network] = {
    "linkedin": Network(
        "LinkedIn", "social", "linkedin", "a profile name or URL", ("linkedin.com",)
    ),
    "xing": Network("XING", "social", "xing", "a profile name or URL", ("xing.com",)),
    "mastodon": Network("Mastodon", "social", "mastodon", "@user@instance or a profile URL"),
    "bluesky": Network("Bluesky", "social", "bluesky", "a handle or URL", ("bsky.app",)),
    "github": Network("GitHub", "social", "github", "a user name or URL", ("github.com",)),
    "flickr": Network("Flickr", "social", "flickr", "a user name or URL", ("flickr.com",)),
    "instagram": Network(
        "Instagram", "social", "instagram", "a user name or URL", ("instagram.com",)
    ),
    "threads": Network(
        "Threads", "social", "threads", "a user name or URL", ("threads.net", "threads.com")
    ),
    "x": Network("X", "social", "twitter", "a user name or URL", ("x.com", "twitter.com")),
    "youtube": Network(
        "YouTube", "social", "youtube", "@handle or a channel URL", ("youtube.com",)
    ),
    "skype": Network("Skype", "impp", "Skype", "a Skype name"),
    "signal": Network(
        "Signal", "impp", "Signal", "a phone number or signal.me URL", ("signal.me",)
    ),
    "telegram": Network("Telegram", "impp", "Telegram", "a user name or t.me URL", ("t.me",)),
    "whatsapp": Network("WhatsApp", "impp", "WhatsApp", "a phone number or wa.me URL", ("wa.me",)),
    "web": Network("Website", "url", "", "a URL"),
    "blog": Network("Blog", "url", "", "a URL"),
    "calendar": Network("Book a meeting", "url", "", "a booking URL"),
    "other": Network("", "url", "", "a URL, with a label"),
}

# Labels of the generic links in the other template languages (network names stay as they are).
TRANSLATED_LABELS: dict[str, dict[str, str]] = {
    "de": {"web": "Website", "blog": "Blog", "calendar": "Termin vereinbaren"},
}

_HANDLE = re.compile(r"[\w.\-]+")  # user names of the simple "https://host/<name>" networks
_LINK_FORMS = {
    "linkedin": "https://www.linkedin.com/in/{}",
    "xing": "https://www.xing.com/profile/{}",
    "github": "https://github.com/{}",
    "flickr": "https://www.flickr.com/people/{}",
    "instagram": "https://www.instagram.com/{}",
    "threads": "https://www.threads.net/@{}",
    "x": "https://x.com/{}",
    "telegram": "https://t.me/{}",
}


@dataclass(frozen=True, slots=True)
class Channel:
    network: str  # a key of NETWORKS
    url: str  # the link: https://..., or skype:NAME?chat
    text: str  # what the mail shows: the handle as people know it (@alex), else the URL
    label: str  # the profile's own label, else the network's

    def label_for(self, lang: str) -> str:
        """The label in a template language: custom labels are kept as written."""
        if self.label != NETWORKS[self.network].label:
            return self.label
        return TRANSLATED_LABELS.get(lang, {}).get(self.network, self.label)


@dataclass(frozen=True, slots=True)
class PostalAddress:
    street: str = ""
    city: str = ""
    postcode: str = ""
    region: str = ""
    country: str = ""


@dataclass(frozen=True, slots=True)
class Photo:
    data: bytes
    mime: str  # image/jpeg or image/png


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    email: str
    given: str = ""
    family: str = ""
    org: str = ""
    title: str = ""
    phones: tuple[str, ...] = ()  # international format, "+49 30 1234567"
    address: PostalAddress | None = None
    photo: Photo | None = None
    channels: tuple[Channel, ...] = ()
    event: str = ""  # where you met, e.g. "FOSDEM 2026"; the templates mention it when set
    # (language, phrase): how each language says "at the event" ("auf der FOSDEM 2026"),
    # which no rule can derive: German takes an article that depends on the event's name
    event_phrases: tuple[tuple[str, str], ...] = ()
    lang: str = "en"  # template language when a contact's is unknown
    region: str = "DE"  # phone numbers without +country are read in this region
    unsubscribe_url: str = ""  # optional HTTPS one-click unsubscribe (RFC 8058)

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2]

    def event_phrase(self, lang: str) -> str:
        """The profile's phrase for `lang`, else "" (the template then words it itself)."""
        return dict(self.event_phrases).get(lang, "")



# -- loading -------------------------------------------------------------------------------------

_TOP_KEYS = {
    "name",
    "given",
    "family",
    "email",
    "organisation",
    "title",
    "phones",
    "photo",
    "event",
    "event_phrase",
    "lang",
    "region",
    "unsubscribe_url",
    "address",
    "channels",
}


_ADDRESS_KEYS = {"street", "city", "postcode", "region", "country"}
_CHANNEL_KEYS = {"network", "value", "label"}


def load_profile(path: Path) -> Profile:
    """Read and validate profile.toml; every error names the file, line and key."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"Cannot read the profile {path}: {err}. TOML is UTF-8: save it "
                          f"as UTF-8 in your editor.") from None
    except OSError as err:
        raise ConfigError(f"Cannot read the profile {path}: {err.strerror or err}.") from None
    return parse_profile(text, path)


def parse_profile(text: str, path: Path) -> Profile:
    """Validate profile.toml's `text` (e.g. before `mailer init` writes it); every
    error names `path`, line and key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return _Reader(path, text).profile(data)


class _Where(TypedDict):
    """Where in the file a key is: `[[table]]` number `index` (0-based)."""

    table: str
    index: int


class _Reader:
    """Validates the parsed TOML.  tomllib keeps no positions, so `__init__` maps each
    key to its line by its `key =` text, which is enough for `fail` to point at it."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines: dict[tuple[str, int, str], int] = {}
        table, counts = "", {"": 0}
        for number, line in enumerate(text.splitlines(), 1):
            header = re.match(r"\s*(\[\[?)\s*([\w.-]+)\s*\]", line)
            if header:
                table = header.group(2)
                counts[table] = counts.get(table, -1) + 1 if header.group(1) == "[[" else 0
                self.lines.setdefault((table, counts[table], ""), number)
                continue
            key = re.match(r"\s*([\w-]+)\s*=", line)
            if key:
                self.lines.setdefault((table, counts[table], key.group(1)), number)

    def fail(self, message: str, key: str, *, table: str = "", index: int = 0) -> ConfigError:
        line = self.lines.get((table, index, key)) or self.lines.get((table, index, ""))
        where = f"{self.path}, line {line}" if line else str(self.path)
        shown = (
            f"{table}[{index + 1}].{key}"
            if table == "channels"
            else ".".join(filter(None, (table, key)))
        )
        return ConfigError(f"{where}: {shown}: {message}")

    def string(
        self,
        data: Mapping[str, Any],
        key: str,
        *,
        table: str = "",
        index: int = 0,
        required: bool = False,
    ) -> str:
        value = data.get(key, "")
        if not isinstance(value, str):
            raise self.fail("must be a text in quotes.", key, table=table, index=index)
        value = value.strip()
        if required and not value:
            raise self.fail("is required and must not be empty.", key, table=table, index=index)
        why = problem(value)  # the profile goes into From and the vCard: used as is or refused
        if why:
            raise self.fail(f"{why}.", key, table=table, index=index)
        return value

    def unknown(
        self, data: Mapping[str, Any], known: set[str], *, table: str = "", index: int = 0
    ) -> None:
        for key in data:
            if key not in known:
                raise self.fail(
                    f"unknown key (known: {', '.join(sorted(known))}).",
                    key,
                    table=table,
                    index=index,
                )

    def profile(self, data: Mapping[str, Any]) -> Profile:
        self.unknown(data, _TOP_KEYS)
        name = self.string(data, "name", required=True)
        email = self.string(data, "email", required=True)
        try:
            email = normalize_address(email)
        except InvalidAddress as err:
            raise self.fail(f"{email!r} is not an e-mail address: {err}", "email") from None
        if not email.isascii():  # the envelope sender is sent without SMTPUTF8
            raise self.fail(f"{email!r}: the sender's address must be ASCII.", "email")
        lang = self.string(data, "lang") or "en"
        if not re.fullmatch(r"[a-z]{2}", lang):
            raise self.fail(
                f'{lang!r} is not a two-letter language code like "de" or "en".', "lang"
            )
        from phonenumbers import SUPPORTED_REGIONS

        region = self.string(data, "region").upper() or "DE"
        if region not in SUPPORTED_REGIONS:
            raise self.fail(f'{region!r} is not a two-letter country code like "DE".', "region")
        unsubscribe_url = self.string(data, "unsubscribe_url")
        if unsubscribe_url and not _is_https(unsubscribe_url):
            raise self.fail(
                "must be an https:// URL (RFC 8058 one-click needs HTTPS).", "unsubscribe_url"
            )
        try:
            unsubscribe_url = _ascii_url(unsubscribe_url)
        except ValueError:  # UnicodeError from IDNA, or a port that is no number
            raise self.fail(
                "has a host name or port that cannot be used.", "unsubscribe_url"
            ) from None
        if len(unsubscribe_url) > _MAX_URL:
            raise self.fail(
                f"is longer than {_MAX_URL} characters: it must fit on one header line.",
                "unsubscribe_url",
            )
        given, family = self.string(data, "given"), self.string(data, "family")
        if not given and not family:
            given, _, family = name.rpartition(" ")
            given, family = (given, family) if given else (family, "")
        return Profile(
            name=name,
            email=email,
            given=given,
            family=family,
            org=self.string(data, "organisation"),
            title=self.string(data, "title"),
            phones=self.phones(data.get("phones", []), region),
            address=self.address(data.get("address")),
            photo=self.photo(data),
            channels=self.channels(data.get("channels", []), region),
            event=self.string(data, "event"),
            event_phrases=self.event_phrases(data.get("event_phrase", {})),
            lang=lang,
            region=region,
            unsubscribe_url=unsubscribe_url,
        )

    def event_phrases(self, value: Any) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, dict):
            raise self.fail(
                'must be a table: [event_phrase] with de = "auf der FOSDEM 2026" and the like.',
                "event_phrase",
            )
        phrases = []
        for lang in value:
            if not re.fullmatch(r"[a-z]{2}", lang):
                raise self.fail(
                    f'{lang!r} is not a two-letter language code like "de" or "en".',
                    lang,
                    table="event_phrase",
                )
            phrase = self.string(value, lang, table="event_phrase", required=True)
            phrases.append((lang, phrase))
        return tuple(phrases)

    def phones(self, value: Any, region: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise self.fail('must be a list of texts, e.g. ["+49 30 1234567"].', "phones")
        return tuple(self.phone(p, region, "phones") for p in value)

    def phone(self, text: str, region: str, key: str, *, table: str = "", index: int = 0) -> str:
        import phonenumbers

        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_possible_number(number):
            raise self.fail(f"{text!r} is not a phone number.", key, table=table, index=index)
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)

    def address(self, value: Any) -> PostalAddress | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(
                "must be a table: [address] with street, city, postcode, country.", "address"
            )
        self.unknown(value, _ADDRESS_KEYS, table="address")
        return PostalAddress(
            **{key: self.string(value, key, table="address") for key in _ADDRESS_KEYS}
        )

    def photo(self, data: Mapping[str, Any]) -> Photo | None:
        name = self.string(data, "photo")
        if not name:
            return None
        path = (self.path.parent / name).expanduser()
        mime = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}.get(
            path.suffix.lower()
        )
        if mime is None:
            raise self.fail("must be a .jpg or .png file.", "photo")
        try:
            photo = path.read_bytes()
        except OSError as err:
            raise self.fail(f"cannot read {path}: {err.strerror}.", "photo") from None
        if len(photo) > MAX_PHOTO_BYTES:
            raise self.fail(
                f"{path} has {len(photo) // 1000} kB; it goes into every message, so keep "
                f"it under {MAX_PHOTO_BYTES // 1000} kB (e.g. 256x256 pixels).",
                "photo",
            )
        return Photo(photo, mime)

    def channels(self, value: Any, region: str) -> tuple[Channel, ...]:
        if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
            raise self.fail("must be [[channels]] tables with network and value.", "channels")
        return tuple(self.channel(entry, index, region) for index, entry in enumerate(value))

    def channel(self, entry: Mapping[str, Any], index: int, region: str) -> Channel:
        where: _Where = {"table": "channels", "index": index}
        self.unknown(entry, _CHANNEL_KEYS, **where)
        key = self.string(entry, "network", required=True, **where).lower()
        network = NETWORKS.get(key)
        if network is None:
            raise self.fail(
                f"{key!r} is not a known network (known: {', '.join(NETWORKS)}); use "
                f'network = "other" with a label for anything else.',
                "network",
                **where,
            )
        value = self.string(entry, "value", required=True, **where)
        label = self.string(entry, "label", **where) or network.label
        if not label:
            raise self.fail('is required for network = "other".', "label", **where)
        try:
            url, text = _link(
                key, value, network, lambda p: self.phone(p, region, "value", **where)
            )
        except ValueError:
            raise self.fail(
                f"{value!r} is not {network.value} for {label}.", "value", **where
            ) from None
        return Channel(network=key, url=url, text=text, label=label)


def _is_https(url: str) -> bool:
    """An https URL that fits in List-Unsubscribe's <...>, comma-separated list."""
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname) and not re.search(r'[\s<>",]', url)


_MAX_URL = 900  # List-Unsubscribe holds it with the mailto link: one line is 998 octets


def _ascii_url(url: str) -> str:
    """The URL as a header carries it: an international host name in its IDNA
    ("xn--") form, any other non-ASCII character percent-encoded (RFC 3987 3.1)."""
    if url.isascii():
        return url
    parts = urlsplit(url)
    host = (parts.hostname or "").encode("idna").decode("ascii")
    netloc = host + (f":{parts.port}" if parts.port else "")
    keep = "/?#[]@!$&'()*+,;=:%-._~"
    return urlunsplit(
        (parts.scheme, netloc, *(quote(p, safe=keep) for p in (parts.path, parts.query)),
         quote(parts.fragment, safe=keep))
    )  # fmt: skip


def _link(key: str, value: str, network: Network, phone: Any) -> tuple[str, str]:
    """(link, shown text) of a channel value; ValueError when it does not fit the network."""
    if value.startswith(("https://", "http://")):
        host = urlsplit(value).hostname or ""
        on_network = any(host == d or host.endswith(f".{d}") for d in network.domains)
        if " " in value or not host or (network.domains and not on_network):
            raise ValueError(value)
        # "," and ";" are separators in a vCard line, and readers disagree on escaping them
        url = value.replace(",", "%2C").replace(";", "%3B")
        return url, url
    if network.kind == "url":
        raise ValueError(value)  # web, blog, calendar and other links must be URLs
    if key == "mastodon":
        user, _, instance = value.removeprefix("@").partition("@")
        if not _HANDLE.fullmatch(user) or not re.fullmatch(r"[\w-]+(\.[\w-]+)+", instance):
            raise ValueError(value)
        return f"https://{instance}/@{user}", f"@{user}@{instance}"
    if key == "bluesky":
        handle = value.removeprefix("@")
        if not re.fullmatch(r"[\w-]+(\.[\w-]+)+", handle):
            raise ValueError(value)
        return f"https://bsky.app/profile/{handle}", f"@{handle}"
    if key == "youtube":
        handle = value.removeprefix("@")
        if not _HANDLE.fullmatch(handle):
            raise ValueError(value)
        return f"https://www.youtube.com/@{handle}", f"@{handle}"
    if key == "skype":
        if not re.fullmatch(r"[\w.:,\-]+", value):
            raise ValueError(value)
        return f"skype:{quote(value, safe=':.,-_')}?chat", value
    if key in ("signal", "whatsapp"):
        number = phone(value)  # raises ConfigError naming the key itself
        digits = re.sub(r"\D", "", number)
        url = f"https://signal.me/#p/+{digits}" if key == "signal" else f"https://wa.me/{digits}"
        return url, number
    handle = value.removeprefix("@")
    if not _HANDLE.fullmatch(handle):
        raise ValueError(value)
    url = _LINK_FORMS[key].format(handle)
    return url, url if key in ("linkedin", "xing", "flickr") else f"@{handle}"  # known by URL
