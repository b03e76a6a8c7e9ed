"""`mailer init`'s core: provider presets, the guess from an address, and the two files.

`profile.toml` is written with tomli-w and checked by the same reader that
`--profile` uses; `.env` holds the server settings and never a secret (the
password goes to the keyring with `mailer login`, or comes from a command).
Both are created 0600, and an existing file is only replaced when the caller
says so (after asking the user).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from ..errors import ConfigError
from ..files import private_dir, private_file
from .providers import PROVIDERS

PRESETS = PROVIDERS  # `mailer init`'s choices: the providers mailer knows

_GOOGLE_DOMAINS = {"gmail.com", "googlemail.com"}
_MICROSOFT_NAMES = {"outlook", "hotmail", "live", "msn"}  # outlook.de, hotmail.co.uk, ...


def guess_provider(email: str) -> str | None:
    """gmail for Google's consumer domains, outlook for Microsoft's; None: ask."""
    domain = email.rpartition("@")[2].lower().rstrip(".")
    if domain in _GOOGLE_DOMAINS:
        return "gmail"
    if domain.split(".", 1)[0] in _MICROSOFT_NAMES and "." in domain:
        return "outlook"
    return None


@dataclass(frozen=True, slots=True)
class Account:
    """Everything `mailer init` asks for."""

    name: str
    email: str
    provider: str
    host: str
    port: int
    security: str
    auth: str
    username: str
    event: str = ""
    lang: str = "en"
    channels: tuple[tuple[str, str], ...] = ()  # (network, value)
    client_id: str = ""
    tenant: str = ""


def profile_text(account: Account) -> str:
    data: dict[str, object] = {"name": account.name, "email": account.email,
                               "lang": account.lang}
    if account.event:
        data["event"] = account.event
    # one [[channels]] table each, as in profile.example.toml (and so errors name a line)
    channels = "".join("\n[[channels]]\n" + tomli_w.dumps({"network": n, "value": v})
                       for n, v in account.channels)
    return ("# Written by `mailer init`; profile.example.toml explains every key you can add\n"
            "# (organisation, title, phones, photo, address, ...).\n\n" + tomli_w.dumps(data)
            + channels)


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
        preset = PRESETS[account.provider]
        lines.append(f"MAILER_OAUTH2_PROVIDER={preset.oauth_provider}")
        lines.append(f"MAILER_OAUTH2_CLIENT_ID={_env_value(account.client_id)}")
        if preset.oauth_provider == "microsoft":
            lines.append(f"MAILER_OAUTH2_TENANT={_env_value(account.tenant or 'common')}")
    lines.append("# the sending limits of `--provider` when none is given")
    lines.append(f"MAILER_PROVIDER={account.provider}")
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str, *, replace: bool) -> None:
    """Write `text` to `path` as 0600, atomically; an existing file only when `replace`."""
    if path.exists() and not replace:
        raise ConfigError(f"{path} exists; not replacing it.")
    try:
        private_dir(path.parent)
        with private_file(path, replace=replace) as out:
            out.write(text)
    except FileExistsError:  # it appeared meanwhile
        raise ConfigError(f"{path} exists; not replacing it.") from None
