"""`mailer init`'s core: provider presets, the guess from an address, the answers'
checks, and the two files.

`profile.toml` is edited with tomlkit, so an existing one keeps its comments,
layout and every key `init` does not ask for (organisation, title, phones,
photo, address, the channels not named again); the result is checked by the same
reader that `--profile` uses.  `.env` holds the server settings and never a
secret (the password goes to the keyring with `mailer login`, or comes from a
command).  Both are created 0600, and an existing file is only changed when the
caller says so (after asking the user).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import SECURITY_MODES
from ..errors import ConfigError
from ..files import private_dir, private_file
from .providers import PROVIDERS

if TYPE_CHECKING:
    from tomlkit import TOMLDocument

_GOOGLE_DOMAINS = {"gmail.com", "googlemail.com"}
_MICROSOFT_NAMES = {"outlook", "hotmail", "live", "msn"}  # outlook.de, hotmail.co.uk, ...
# what mail programs call the two TLS modes: "SSL" (and "SSL/TLS") is TLS from the first
# byte, the mode of port 465 (RFC 8314 3.3)
_SECURITY_NAMES = {"ssl": "tls", "ssl/tls": "tls", "tls/ssl": "tls", "smtps": "tls",
                   "implicit tls": "tls", "start tls": "starttls", "start-tls": "starttls"}


def guess_provider(email: str) -> str | None:
    """gmail for Google's consumer domains, outlook for Microsoft's; None: ask."""
    domain = email.rpartition("@")[2].lower().rstrip(".")
    if domain in _GOOGLE_DOMAINS:
        return "gmail"
    if domain.split(".", 1)[0] in _MICROSOFT_NAMES and "." in domain:
        return "outlook"
    return None


def sender_address(text: str) -> str:
    """The sender's address, normalised; ConfigError saying why it cannot be one."""
    from email_validator import EmailNotValidError, validate_email

    value = text.strip()
    try:
        address = str(validate_email(value, check_deliverability=False).normalized)
    except EmailNotValidError as err:
        raise ConfigError(f"{value!r} is not an e-mail address: {err}") from None
    if not address.isascii():  # the envelope sender is sent without SMTPUTF8
        raise ConfigError(f"{value!r}: the sender's address must be ASCII.")
    return address


def security_mode(text: str) -> str:
    """One of SECURITY_MODES from what a user or a mail program calls it ("SSL",
    "STARTTLS"); ConfigError for anything else."""
    key = " ".join(text.lower().split())
    mode = _SECURITY_NAMES.get(key, key)
    if mode not in SECURITY_MODES:
        raise ConfigError(f"{text!r} is not one of {', '.join(SECURITY_MODES)} (SSL is tls).")
    return mode


def port_number(text: str) -> int:
    try:
        port = int(text.strip())
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise ConfigError(f"{text!r} is not a port number (1 to 65535; usually 587, or 465 "
                          f"for tls).")
    return port


@dataclass(frozen=True, slots=True)
class Person:
    """What `mailer init` asks for the profile."""

    name: str
    email: str
    event: str = ""
    lang: str = "en"
    channels: tuple[tuple[str, str], ...] = ()  # (network, value)


@dataclass(frozen=True, slots=True)
class Account:
    """What `mailer init` asks for the server (.env)."""

    email: str
    provider: str
    host: str
    port: int
    security: str
    auth: str
    username: str
    client_id: str = ""
    tenant: str = ""


_NEW_PROFILE = (
    "Written by `mailer init`; profile.example.toml explains every key you can add.",
    "For more on your vCard and under your mail, remove the # of a line and fill it in:",
    'organisation = "Example Labs GmbH"',
    'title = "Developer Advocate"',
    'phones = ["+49 30 1234567"]',
    'photo = "me.jpg"                  # .jpg or .png next to this file, under 100 kB',
    "A postal address is an [address] table at the end (see profile.example.toml).",
)


def read_profile_document(path: Path) -> TOMLDocument | None:
    """The existing profile.toml as an editable document; None when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"Cannot read {path}: {err}. Fix it, or move it away to start "
                          f"afresh; nothing was written.") from None
    import tomlkit  # loads only here, not for every `mailer --help`
    from tomlkit.exceptions import TOMLKitError

    try:
        return tomlkit.parse(text)
    except TOMLKitError as err:
        raise ConfigError(f"{path} is not valid TOML ({err}): fix it, or move it away to "
                          f"start afresh; nothing was written.") from None


def existing_text(document: TOMLDocument | None, key: str) -> str:
    """A text value of the existing profile, as a default answer; "" when absent."""
    value = document.get(key) if document is not None else None
    return str(value).strip() if isinstance(value, str) else ""


def existing_networks(document: TOMLDocument | None) -> list[str]:
    return [str(c.get("network", "")) for c in _channels(document)]


def profile_text(person: Person, document: TOMLDocument | None = None) -> str:
    """profile.toml with `person`'s answers: a new file, or `document` updated in
    place (a channel of a network named again gets the new value, others stay)."""
    import tomlkit

    doc = document if document is not None else _new_profile()
    for key, value in (("name", person.name), ("email", person.email), ("lang", person.lang)):
        doc[key] = value
    if person.event:
        doc["event"] = person.event
    _merge_channels(doc, person.channels)
    return tomlkit.dumps(doc)


def _new_profile() -> TOMLDocument:
    import tomlkit

    doc = tomlkit.document()
    for line in _NEW_PROFILE:
        doc.add(tomlkit.comment(line))
    doc.add(tomlkit.nl())
    return doc


def _merge_channels(doc: TOMLDocument, pairs: tuple[tuple[str, str], ...]) -> None:
    """A network named again gets the new value in its place; a new one is added at
    the end, as one [[channels]] table (as in profile.example.toml, so errors name a line)."""
    import tomlkit

    listed = doc.get("channels")
    for network, value in pairs:
        same = next((c for c in _channels(doc) if c.get("network") == network
                     and "label" not in c), None)
        if same is not None:
            same["value"] = value
            continue
        table = tomlkit.table()
        table.update({"network": network, "value": value})
        table.trivia.indent = "\n"  # a blank line before each [[channels]]
        if listed is None:
            listed = doc["channels"] = tomlkit.aot()
        if isinstance(listed, tomlkit.items.AoT):
            listed.append(table)
        elif isinstance(listed, list):  # written inline: stays inline
            listed.append({"network": network, "value": value})
        # anything else is no list of channels: the profile reader names it


def _channels(document: TOMLDocument | None) -> list[Any]:
    value = document.get("channels") if document is not None else None
    return [c for c in value if isinstance(c, dict)] if isinstance(value, list) else []


_PLAIN_VALUE = re.compile(r"[\w.@+:/-]*")


def _env_value(value: str) -> str:
    if _PLAIN_VALUE.fullmatch(value):
        return value
    if "\n" in value or "\r" in value:
        raise ConfigError(f"{value!r} cannot go into .env: it has a line break.")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def env_text(account: Account) -> str:
    lines = [
        "# Written by `mailer init`. No secret belongs here: `mailer login` keeps the password",
        "# (or the OAuth2 sign-in) in the OS keyring; or set MAILER_SMTP_PASSWORD_COMMAND.",
        f"MAILER_SMTP_HOST={_env_value(account.host)}",
        f"MAILER_SMTP_PORT={account.port}",
        f"MAILER_SMTP_SECURITY={account.security}",
        f"MAILER_SMTP_USERNAME={_env_value(account.username)}",
        f"MAILER_SMTP_AUTH={account.auth}",
    ]
    if account.auth == "oauth2":
        preset = PROVIDERS[account.provider]
        lines.append(f"MAILER_OAUTH2_PROVIDER={preset.oauth_provider}")
        lines.append(f"MAILER_OAUTH2_CLIENT_ID={_env_value(account.client_id)}")
        if preset.oauth_provider == "microsoft":
            lines.append(f"MAILER_OAUTH2_TENANT={_env_value(account.tenant or 'common')}")
    lines.append("# the sending limits of `--provider` when none is given")
    lines.append(f"MAILER_PROVIDER={account.provider}")
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str, *, replace: bool) -> None:
    """Write `text` to `path` as 0600, atomically; an existing file only when `replace`."""
    if os.path.lexists(path) and not replace:
        raise ConfigError(f"{path} exists; not replacing it.")
    try:
        private_dir(path.parent)
        with private_file(path, replace=replace) as out:
            out.write(text)
    except FileExistsError:  # it appeared meanwhile
        raise ConfigError(f"{path} exists; not replacing it.") from None
