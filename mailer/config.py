"""Settings from the environment and `.env`: the SMTP and IMAP accounts and the state directory.

This module reads settings only; it logs in nowhere.  `accounts.credentials.Credentials`
attaches a `Login` to the settings (a password source or an OAuth2 token source),
whose secret is looked up when the first connection logs in.  Secrets live only in
`password` fields and in the logins, whose reprs hide them, so that no log line,
journal row or preview can carry them.
"""

from __future__ import annotations

import ipaddress
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from dotenv import dotenv_values

from .accounts.providers import PROVIDERS, Provider, by_smtp_host
from .errors import ConfigError
from .files import private_dir

SECURITY_MODES = ("starttls", "tls", "none")
AUTH_MODES = ("password", "oauth2")
# warned about in a readable .env
SECRET_KEYS = ("MAILER_SMTP_PASSWORD", "MAILER_IMAP_PASSWORD", "MAILER_OAUTH2_CLIENT_SECRET")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


class Login(Protocol):
    """How one login gets its secret: a password source or an OAuth2 token source
    (accounts/credentials.py, accounts/oauth.py).  The SMTP and IMAP login steps ask
    it for the secret when they need it and never ask which kind it is."""

    @property
    def username(self) -> str: ...

    @property
    def oauth(self) -> bool:
        """True: the secret is an OAuth2 access token (XOAUTH2, OAUTHBEARER)."""

    @property
    def provider(self) -> str:
        """The OAuth2 provider that issued the token ("google"), "" for a password."""

    def secret(self) -> str:
        """The password or access token; looked up on first use, then kept."""

    def prepare(self) -> None:
        """Get ready in the background to look the secret up (load the store it
        comes from), reading nothing yet: the run is about to log in."""

    def renew(self, refused: str) -> str | None:
        """After the server refused `refused`: a new secret to try once, or None."""

    def origin(self) -> str:
        """Where the secret comes from, in words (never the secret)."""


def is_loopback(host: str) -> bool:
    """localhost or a loopback address: the one place where plain text may go."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    security: str = "starttls"  # one of SECURITY_MODES
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 30.0  # per command
    data_timeout: float = 600.0  # for the reply to the final dot (RFC 5321 4.5.3.2.6)
    allow_insecure: bool = False  # plain SMTP to a non-loopback host, explicitly wanted
    auth: str = "password"  # one of AUTH_MODES
    password_command: str = ""  # MAILER_SMTP_PASSWORD_COMMAND
    password_timeout: float = 60.0  # MAILER_SMTP_PASSWORD_TIMEOUT
    # where the password or token comes from (accounts.credentials); None: `password` above
    login: Login | None = field(default=None, repr=False, compare=False)

    @property
    def is_loopback(self) -> bool:
        return is_loopback(self.host)

    def check_safe(self) -> None:
        """Refuse plain text to a remote host unless explicitly allowed."""
        if self.security == "none" and not self.is_loopback and not self.allow_insecure:
            raise ConfigError(
                f"MAILER_SMTP_SECURITY=none would send your password and mail unencrypted to "
                f"{self.host}. Use starttls or tls, or set MAILER_SMTP_ALLOW_INSECURE=1 if you "
                f"really mean it."
            )
        if self.password and not self.username:
            raise ConfigError("MAILER_SMTP_PASSWORD is set but MAILER_SMTP_USERNAME is not.")


def environment(env_file: Path | None = None) -> dict[str, str]:
    """The process environment over the values of `.env` (the environment wins).

    The file is `env_file`, else $MAILER_ENV_FILE (empty or /dev/null: no file), else ./.env."""
    configured = None
    if env_file is None:
        configured = os.environ.get("MAILER_ENV_FILE")
        if configured is not None and configured.strip() == os.devnull:
            configured = ""  # /dev/null: the usual way to say "no file", as the empty value
        env_file = Path.cwd() / ".env" if configured is None else Path(configured)
    path = env_file
    values: dict[str, str] = {}
    if configured and not path.is_file():  # a name the user gave: silence would mislead
        raise ConfigError(f"MAILER_ENV_FILE={configured!r} is not a file: point it at your "
                          f".env, or unset it to read ./.env.")
    if str(path) not in ("", ".") and path.is_file():
        try:
            read = dotenv_values(path)
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"Cannot read {path}: {err}. Fix its permissions or encoding "
                              f"(UTF-8), or set MAILER_ENV_FILE to another file.") from None
        values.update({k: v for k, v in read.items() if v is not None})
        for key in SECRET_KEYS:
            if values.get(key):
                _warn_if_readable(path, key)
                break
    values.update(os.environ)
    return values


_warned: set[Path] = set()


def _warn_if_readable(path: Path, key: str) -> None:
    """A secret in a file every user of the machine can read: say so, once per run."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & stat.S_IROTH and path not in _warned:
        _warned.add(path)
        print(f"mailer: warning: {path} holds {key} and every user of this "
              f"machine can read it; fix it with: chmod 600 {path}", file=sys.stderr)


_FIX = "; set it in .env or the environment (see README, 'Your SMTP account')."


def _number(env: Mapping[str, str], key: str, default: float, *, port: bool = False) -> float:
    """A positive number setting (a port: an integer 1..65535), or a one-line error that
    names the variable and where to fix it; 0 or less would make every step time out."""
    text = env.get(key, "").strip()
    if not text:
        return default
    try:
        value = int(text) if port else float(text)
    except ValueError:
        kind = "a port number" if port else "a number of seconds"
        raise ConfigError(f"{key}={text!r} is not {kind}{_FIX}") from None
    if port and not 0 < value < 65536:
        raise ConfigError(f"{key}={text} is out of range (1 to 65535){_FIX}")
    if not value > 0:
        raise ConfigError(f"{key}={text} must be more than 0 seconds{_FIX}")
    return value


def _connection(
    env: Mapping[str, str], prefix: str, default_security: str, default_ports: Mapping[str, int]
) -> tuple[str, int, float]:
    """<prefix>_SECURITY, _PORT (default: the security's port) and _TIMEOUT, validated:
    SMTP and IMAP read them by the same rules."""
    security = env.get(f"{prefix}_SECURITY", "").strip().lower() or default_security
    if security not in SECURITY_MODES:
        raise ConfigError(
            f"{prefix}_SECURITY={security!r} is not one of {', '.join(SECURITY_MODES)}{_FIX}"
        )
    port = int(_number(env, f"{prefix}_PORT", default_ports[security], port=True))
    return security, port, _number(env, f"{prefix}_TIMEOUT", 30.0)


def smtp_settings(env: Mapping[str, str]) -> SmtpSettings:
    """Build and validate the SMTP settings from MAILER_SMTP_* variables."""
    host = env.get("MAILER_SMTP_HOST", "").strip()
    if not host:
        raise ConfigError(
            "No SMTP server configured: run `mailer init` here (it writes .env), or set "
            "MAILER_SMTP_HOST (and _PORT, _SECURITY, _USERNAME) in .env or the environment."
        )
    security, port, timeout = _connection(env, "MAILER_SMTP", "starttls", DEFAULT_PORTS)
    data_timeout = _number(env, "MAILER_SMTP_DATA_TIMEOUT", 600.0)
    username = env.get("MAILER_SMTP_USERNAME", "").strip()
    password = env.get("MAILER_SMTP_PASSWORD", "")
    auth = env.get("MAILER_SMTP_AUTH", "").strip().lower() or "password"
    if auth not in AUTH_MODES:
        raise ConfigError(f"MAILER_SMTP_AUTH={auth!r} is not one of {', '.join(AUTH_MODES)}{_FIX}")
    if auth == "oauth2" and not username:
        raise ConfigError("MAILER_SMTP_AUTH=oauth2 needs MAILER_SMTP_USERNAME: your address.")
    settings = SmtpSettings(
        host=host,
        port=port,
        security=security,
        username=username,
        password=password,
        timeout=timeout,
        data_timeout=data_timeout,
        allow_insecure=env.get("MAILER_SMTP_ALLOW_INSECURE", "").strip().lower()
        in ("1", "true", "yes"),
        auth=auth,
        password_command=env.get("MAILER_SMTP_PASSWORD_COMMAND", "").strip(),
        password_timeout=_number(env, "MAILER_SMTP_PASSWORD_TIMEOUT", 60.0),
    )
    settings.check_safe()
    return settings


def state_dir(env: Mapping[str, str]) -> Path:
    """MAILER_HOME, else the platform's per-user data directory; created on demand, and
    kept private (0700): it holds every contact, every message and the OCR cache."""
    configured = env.get("MAILER_HOME", "").strip()
    if configured:
        path = Path(configured).expanduser()
    else:
        import platformdirs  # only here (a few ms of every command's start otherwise)

        path = Path(platformdirs.user_data_dir("mailer"))
    try:
        private_dir(path)
        if path.stat().st_mode & 0o077:  # also one an earlier version created 0755
            path.chmod(0o700)
    except OSError as err:
        raise ConfigError(f"Cannot create the state directory {path}: {err.strerror}") from None
    return path


# --- IMAP: the way back (Sent copies, bounces, replies) ----------------------

IMAP_DEFAULT_PORTS = {"tls": 993, "starttls": 143, "none": 143}
_NO_IMAP = Provider("", "")  # a provider without an IMAP preset


@dataclass(frozen=True, slots=True)
class ImapSettings:
    host: str
    port: int
    security: str = "tls"  # one of SECURITY_MODES
    username: str = ""
    password: str = field(default="", repr=False)  # MAILER_IMAP_PASSWORD
    timeout: float = 30.0
    provider: str = ""  # the preset it came from, "" for none
    sent_folder: str = ""  # MAILER_IMAP_SENT: used when no folder is marked \Sent
    password_command: str = ""  # MAILER_IMAP_PASSWORD_COMMAND
    password_timeout: float = 60.0  # MAILER_IMAP_PASSWORD_TIMEOUT
    # where the password or token comes from (accounts.credentials); None: `password` above
    login: Login | None = field(default=None, repr=False, compare=False)

    @property
    def is_loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def provider_copies_sent(self) -> bool:
        """The provider puts every mail sent through its SMTP server into Sent itself."""
        known = PROVIDERS.get(self.provider)
        return known is not None and known.copies_sent


def imap_settings(env: Mapping[str, str], provider: str | None = None) -> ImapSettings | None:
    """MAILER_IMAP_* over the provider preset (--provider, else recognised from
    MAILER_SMTP_HOST); None when no IMAP host is known.  The user name defaults to
    the SMTP one; whether the SMTP password goes with it is
    `accounts.credentials.Credentials.imap`'s to decide, so `password` here is only
    MAILER_IMAP_PASSWORD.  TLS is required for every host but loopback."""
    if provider is None or not PROVIDERS.get(provider, _NO_IMAP).imap_host:
        provider = by_smtp_host(env.get("MAILER_SMTP_HOST", ""))
    preset = PROVIDERS.get(provider or "", _NO_IMAP)
    host = env.get("MAILER_IMAP_HOST", "").strip() or preset.imap_host
    if not host:
        return None
    security, port, timeout = _connection(env, "MAILER_IMAP", "tls", IMAP_DEFAULT_PORTS)
    username = (env.get("MAILER_IMAP_USERNAME", "").strip()
                or env.get("MAILER_SMTP_USERNAME", "").strip())
    settings = ImapSettings(
        host=host, port=port, security=security, username=username,
        password=env.get("MAILER_IMAP_PASSWORD", ""), timeout=timeout, provider=provider or "",
        sent_folder=env.get("MAILER_IMAP_SENT", "").strip(),
        password_command=env.get("MAILER_IMAP_PASSWORD_COMMAND", "").strip(),
        password_timeout=_number(env, "MAILER_IMAP_PASSWORD_TIMEOUT", 60.0))
    if security == "none" and not settings.is_loopback:
        raise ConfigError(
            f"MAILER_IMAP_SECURITY=none would send your password and mail unencrypted to "
            f"{host}. Use tls or starttls."
        )
    if not username:
        raise ConfigError("No IMAP login: set MAILER_IMAP_USERNAME (or MAILER_SMTP_USERNAME).")
    return settings
