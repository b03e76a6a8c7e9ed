"""Settings from the environment and `.env`: the SMTP account and the state directory.

Secrets (the SMTP password) live only in `SmtpSettings.password`, whose repr
hides it, so that no log line, journal row or preview can carry it.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs
from dotenv import dotenv_values

from .errors import ConfigError

SECURITY_MODES = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    security: str = "starttls"  # one of SECURITY_MODES
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 30.0
    allow_insecure: bool = False  # plain SMTP to a non-loopback host, explicitly wanted

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

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

    The file is `env_file`, else $MAILER_ENV_FILE (empty: no file), else ./.env."""
    if env_file is None:
        configured = os.environ.get("MAILER_ENV_FILE")
        env_file = Path.cwd() / ".env" if configured is None else Path(configured)
    path = env_file
    values: dict[str, str] = {}
    if str(path) not in ("", ".") and path.is_file():
        values.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    values.update(os.environ)
    return values


def smtp_settings(env: Mapping[str, str]) -> SmtpSettings:
    """Build and validate the SMTP settings from MAILER_SMTP_* variables."""
    host = env.get("MAILER_SMTP_HOST", "").strip()
    if not host:
        raise ConfigError(
            "No SMTP server configured: set MAILER_SMTP_HOST (and _PORT, _USERNAME, "
            "_PASSWORD, _SECURITY) in the environment or in .env; see .env.example."
        )
    security = env.get("MAILER_SMTP_SECURITY", "starttls").strip().lower() or "starttls"
    if security not in SECURITY_MODES:
        raise ConfigError(
            f"MAILER_SMTP_SECURITY={security!r} is not one of {', '.join(SECURITY_MODES)}."
        )
    port_text = env.get("MAILER_SMTP_PORT", "").strip()
    try:
        port = int(port_text) if port_text else DEFAULT_PORTS[security]
    except ValueError:
        raise ConfigError(f"MAILER_SMTP_PORT={port_text!r} is not a number.") from None
    if not 0 < port < 65536:
        raise ConfigError(f"MAILER_SMTP_PORT={port} is out of range.")
    timeout_text = env.get("MAILER_SMTP_TIMEOUT", "").strip()
    try:
        timeout = float(timeout_text) if timeout_text else 30.0
    except ValueError:
        raise ConfigError(f"MAILER_SMTP_TIMEOUT={timeout_text!r} is not a number.") from None
    settings = SmtpSettings(
        host=host,
        port=port,
        security=security,
        username=env.get("MAILER_SMTP_USERNAME", "").strip(),
        password=env.get("MAILER_SMTP_PASSWORD", ""),
        timeout=timeout,
        allow_insecure=env.get("MAILER_SMTP_ALLOW_INSECURE", "").strip().lower()
        in ("1", "true", "yes"),
    )
    settings.check_safe()
    return settings


def state_dir(env: Mapping[str, str]) -> Path:
    """MAILER_HOME, else the platform's per-user data directory; created on demand, and
    kept private (0700): it holds every contact, every message and the OCR cache."""
    configured = env.get("MAILER_HOME", "").strip()
    path = (
        Path(configured).expanduser() if configured else Path(platformdirs.user_data_dir("mailer"))
    )
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.stat().st_mode & 0o077:  # also one an earlier version created 0755
            path.chmod(0o700)
    except OSError as err:
        raise ConfigError(f"Cannot create the state directory {path}: {err.strerror}") from None
    return path
