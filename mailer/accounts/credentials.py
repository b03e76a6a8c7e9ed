"""Where the SMTP password comes from, and the OS keyring that holds secrets.

Password sources, first match wins:
1. MAILER_SMTP_PASSWORD_COMMAND: a command (run without a shell) whose first
   output line is the password, e.g. `pass show mail/smtp`;
2. the OS keyring (Secret Service, macOS Keychain, Windows Credential Locker),
   where `mailer login` stored it;
3. MAILER_SMTP_PASSWORD from the environment or `.env`.

The password is looked up when the first connection logs in, not when the
settings are read: scheduling a send or a run-due with nothing due never runs
the command.  It is then kept in memory for the run, so K connections and
reconnects do not run the command again.  No error message ever carries it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import threading
from dataclasses import dataclass, field

import keyring
import keyring.backends.fail
import keyring.errors

from ..errors import AuthError, ConfigError
from ..sanitize import clean

PASSWORD_SERVICE = "mailer-smtp"  # keyring service of SMTP passwords; the user name is the key


def keyring_account(host: str, username: str) -> str:
    """One keyring entry per login and server: the same address may log in to two."""
    return f"{username}@{host}"


def keyring_get(service: str, account: str) -> str | None:
    """The stored secret; None when there is none or no keyring can be reached
    (a headless machine without Secret Service is normal, not an error)."""
    try:
        return keyring.get_password(service, account)
    except keyring.errors.KeyringError:
        return None
    except RuntimeError:  # some backends raise bare RuntimeErrors when D-Bus is missing
        return None


def keyring_set(service: str, account: str, secret: str) -> None:
    try:
        keyring.set_password(service, account, secret)
    except (keyring.errors.KeyringError, RuntimeError) as err:
        raise ConfigError(
            f"Cannot store the secret in the OS keyring: {_keyring_problem(err)}. Set "
            f"MAILER_SMTP_PASSWORD_COMMAND (e.g. `pass show mail/smtp`) in .env instead, "
            f"or MAILER_SMTP_PASSWORD in a .env only you can read."
        ) from None


def _keyring_problem(err: Exception) -> str:
    """Why the keyring failed, in a clause: without any backend keyring's own text is a
    paragraph about installing backends (a headless machine without Secret Service)."""
    if isinstance(keyring.get_keyring(), keyring.backends.fail.Keyring):
        return "this machine has none (no Secret Service, Keychain or Credential Locker)"
    return f"{keyring_name()}: {clean(str(err)).rstrip('.')}"


def keyring_delete(service: str, account: str) -> bool:
    """Remove an entry; False when there was none."""
    try:
        keyring.delete_password(service, account)
    except keyring.errors.PasswordDeleteError:
        return False
    except (keyring.errors.KeyringError, RuntimeError) as err:
        raise ConfigError(
            f"Cannot reach the OS keyring to remove the secret: {_keyring_problem(err)}."
        ) from None
    return True


def keyring_name() -> str:
    backend = keyring.get_keyring()
    return f"{type(backend).__module__}.{type(backend).__name__}"


def run_password_command(command: str, timeout: float) -> str:
    """The first line the command prints.  Runs in its own process group so
    that a hung command is killed with everything it started."""
    try:
        argv = shlex.split(command)
    except ValueError as err:
        raise AuthError(f"MAILER_SMTP_PASSWORD_COMMAND cannot be split into words: {err}.") \
            from None
    if not argv:
        raise AuthError("MAILER_SMTP_PASSWORD_COMMAND is empty.")
    shown = clean(argv[0])
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as err:
        raise AuthError(
            f"MAILER_SMTP_PASSWORD_COMMAND cannot run {shown}: {err.strerror}. "
            f"Check the command and its PATH."
        ) from None
    try:
        out, err_out = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AuthError(
            f"MAILER_SMTP_PASSWORD_COMMAND ({shown}) gave no password within {timeout:g} s "
            f"and was stopped. Check that it runs without asking (or raise "
            f"MAILER_SMTP_PASSWORD_TIMEOUT)."
        ) from None
    if proc.returncode != 0:
        last = [line for line in err_out.decode(errors="replace").splitlines() if line.strip()]
        why = f": {clean(last[-1])[:200]}" if last else ""
        raise AuthError(
            f"MAILER_SMTP_PASSWORD_COMMAND ({shown}) failed with exit status "
            f"{proc.returncode}{why}. Run it yourself to see why."
        )
    password = out.decode(errors="replace").split("\n", 1)[0].rstrip("\r")
    if not password:
        raise AuthError(
            f"MAILER_SMTP_PASSWORD_COMMAND ({shown}) printed no password (its first line "
            f"is empty)."
        )
    return password


@dataclass
class PasswordSource:
    """Looks the password up once, on first use, in the documented order."""

    host: str
    username: str
    command: str = ""
    fallback: str = field(default="", repr=False)  # MAILER_SMTP_PASSWORD
    timeout: float = 60.0
    _cached: str | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def origin(self) -> str:
        """Where the password will come from, for `mailer check` (never the password)."""
        if self.command:
            return "MAILER_SMTP_PASSWORD_COMMAND"
        if keyring_get(PASSWORD_SERVICE, keyring_account(self.host, self.username)):
            return f"the OS keyring, {keyring_name()}"
        return "MAILER_SMTP_PASSWORD" if self.fallback else "nowhere"

    def password(self) -> str:
        with self._lock:
            if self._cached is None:
                self._cached = self._lookup()
            return self._cached

    def _lookup(self) -> str:
        if self.command:
            return run_password_command(self.command, self.timeout)
        stored = keyring_get(PASSWORD_SERVICE, keyring_account(self.host, self.username))
        if stored:
            return stored
        if self.fallback:
            return self.fallback
        raise AuthError(
            f"No password for {self.username} at {self.host}: run `mailer login` to store "
            f"it in the OS keyring, or set MAILER_SMTP_PASSWORD_COMMAND or MAILER_SMTP_PASSWORD."
        )
