"""Where the secrets of a run come from: one `Credentials` per run, for SMTP and IMAP alike.

Password sources, first match wins:
1. MAILER_SMTP_PASSWORD_COMMAND: a command (run without a shell) whose first
   output line is the password, e.g. `pass show mail/smtp`;
2. the OS keyring (Secret Service, macOS Keychain, Windows Credential Locker),
   where `mailer login` stored it;
3. MAILER_SMTP_PASSWORD from the environment or `.env`.
With MAILER_SMTP_AUTH=oauth2 the login is an OAuth2 access token instead
(accounts/oauth.py), renewed from the refresh token in the keyring.

Each login is an object that knows its secret (the `config.Login` protocol):
the SMTP and IMAP login steps ask it, and never ask which kind it is.  A secret is
looked up when the first connection logs in, not when the settings are read:
scheduling a send or a run-due with nothing due never runs the command.  It is
then kept in memory for the run, so K connections, reconnects and the IMAP Sent
copies do not run the command again.  No error message ever carries it.

A secret goes only to the server it belongs to: IMAP shares the SMTP login when it
is the same user name at the same service, that is, for a password an IMAP server of
the same provider (providers.py), of the same registrable domain (the Public Suffix
List) or both servers on loopback, and for an OAuth2 token only the IMAP server of
the provider that issued it.  Otherwise IMAP has its own password, from
MAILER_IMAP_PASSWORD_COMMAND, the keyring or MAILER_IMAP_PASSWORD, in that order.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import selectors
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import IO, TYPE_CHECKING

from .. import config
from ..config import ImapSettings, Login, SmtpSettings
from ..errors import AuthError, ConfigError
from ..sanitize import clean
from .keystore import (
    PASSWORD_SERVICE,
    find_keyring_meanwhile,
    keyring_account,
    keyring_get,
    keyring_name,
)
from .providers import oauth_provider_of_imap, same_provider

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

OUTPUT_LIMIT = 64 * 1024  # bytes of a password command's output read, per stream
KILL_WAIT = 5.0  # seconds to wait for a killed command to be reaped


def run_password_command(command: str, timeout: float,
                         variable: str = "MAILER_SMTP_PASSWORD_COMMAND") -> str:
    """The first line the command prints.  Runs in its own session, so that a hung
    command is killed with everything it started; its output is read up to the
    first line and at most OUTPUT_LIMIT bytes, and nothing waits past `timeout`
    (a child that keeps the output open after the command exited holds up nothing)."""
    try:
        argv = shlex.split(command)
    except ValueError as err:
        raise AuthError(f"{variable} cannot be split into words: {err}.") from None
    if not argv:
        raise AuthError(f"{variable} is empty.")
    shown = f"{variable} ({clean(argv[0])})"
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as err:
        raise AuthError(f"{variable} cannot run {clean(argv[0])}: {err.strerror}. "
                        f"Check the command and its PATH.") from None
    assert proc.stdout is not None and proc.stderr is not None
    with proc.stdout, proc.stderr:
        finished = _read_until_exit(proc, proc.stdout, proc.stderr, timeout)
    if finished is None:
        limit = variable.replace("_COMMAND", "_TIMEOUT")
        raise AuthError(f"{shown} did not finish within {timeout:g} s and was stopped. Check "
                        f"that it runs without asking (or raise {limit}).")
    out, err_out = finished
    if proc.returncode != 0:
        last = [line for line in err_out.decode(errors="replace").splitlines() if line.strip()]
        why = f": {clean(last[-1])[:200]}" if last else ""
        raise AuthError(f"{shown} failed with exit status {proc.returncode}{why}. Run it "
                        f"yourself to see why.")
    if b"\n" not in out and len(out) >= OUTPUT_LIMIT:
        raise AuthError(f"{shown} printed more than {OUTPUT_LIMIT // 1024} KiB without a line "
                        f"end: its first line must be the password.")
    password = out.decode(errors="replace").split("\n", 1)[0].rstrip("\r")
    if not password:
        raise AuthError(f"{shown} printed no password (its first line is empty).")
    return password


@dataclass
class _Output:
    """One output stream of a password command, read without blocking and bounded:
    stdout up to its first line end, stderr's last OUTPUT_LIMIT bytes."""

    file: IO[bytes]
    head: bool  # stdout: keep the beginning, stop after the first line end
    data: bytearray = field(default_factory=bytearray)

    def read(self) -> bool:
        """Take what is there; False when nothing more is wanted (end of file, or
        stdout's first line is in: the command may then fill the pipe and wait)."""
        try:
            chunk = os.read(self.file.fileno(), OUTPUT_LIMIT)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        self.data += chunk
        if self.head:
            return b"\n" not in self.data and len(self.data) < OUTPUT_LIMIT
        del self.data[:-OUTPUT_LIMIT]
        return True


def _read_until_exit(proc: subprocess.Popen[bytes], stdout: IO[bytes], stderr: IO[bytes],
                     timeout: float) -> tuple[bytes, bytes] | None:
    """(stdout, stderr) once the command has exited; None when it had not within
    `timeout`, after killing its session."""
    deadline = time.monotonic() + timeout
    out, err = _Output(stdout, head=True), _Output(stderr, head=False)
    with selectors.DefaultSelector() as selector:
        for output in (out, err):
            os.set_blocking(output.file.fileno(), False)
            selector.register(output.file, selectors.EVENT_READ, output)
        while proc.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                _kill(proc)
                return None
            # a short wait: the exit is noticed even while a child of it holds a pipe open
            for key, _ in selector.select(min(left, 0.05)):
                if not key.data.read():
                    selector.unregister(key.fileobj)
        for key in list(selector.get_map().values()):  # what came just before the exit
            key.data.read()
    return bytes(out.data), bytes(err.data)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the command's whole session (its process group), then a bounded wait."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(KILL_WAIT)


@dataclass
class PasswordSource:
    """A password looked up once, on first use, in the documented order: a `config.Login`."""

    host: str
    username: str
    command: str = ""
    fallback: str = field(default="", repr=False)  # <prefix>_PASSWORD
    timeout: float = 60.0
    prefix: str = "MAILER_SMTP"  # whose variables: MAILER_SMTP or MAILER_IMAP
    _cached: str | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def oauth(self) -> bool:
        return False

    @property
    def provider(self) -> str:
        return ""

    def origin(self) -> str:
        """Where the password comes from, for `mailer check` (never the password)."""
        if self.command:
            return f"password from {self.prefix}_PASSWORD_COMMAND"
        if keyring_get(PASSWORD_SERVICE, keyring_account(self.host, self.username)):
            return f"password from the OS keyring, {keyring_name()}"
        return f"password from {self.prefix}_PASSWORD" if self.fallback else "password from nowhere"

    def secret(self) -> str:
        with self._lock:
            if self._cached is None:
                self._cached = self._lookup()
            return self._cached

    def prepare(self) -> None:
        """The keyring loads while the contacts are read and the first connection
        opens; no secret is read and nothing is run (a password command needs no
        keyring)."""
        if not self.command and self._cached is None:
            find_keyring_meanwhile(self._lock)

    def renew(self, refused: str) -> str | None:
        """A refused password stays refused: one login attempt, no second."""
        return None

    def _lookup(self) -> str:
        if self.command:
            return run_password_command(self.command, self.timeout,
                                        f"{self.prefix}_PASSWORD_COMMAND")
        stored = keyring_get(PASSWORD_SERVICE, keyring_account(self.host, self.username))
        if stored:
            return stored
        if self.fallback:
            return self.fallback
        if self.prefix == "MAILER_IMAP":
            raise AuthError(
                f"No IMAP password for {self.username} at {self.host}: set "
                f"MAILER_IMAP_PASSWORD_COMMAND or MAILER_IMAP_PASSWORD (the SMTP password goes "
                f"only to an IMAP server of the same provider or domain with the same user "
                f"name, an OAuth2 sign-in only to its own provider's IMAP server).")
        raise AuthError(
            f"No password for {self.username} at {self.host}: run `mailer login` to store "
            f"it in the OS keyring, or set MAILER_SMTP_PASSWORD_COMMAND or MAILER_SMTP_PASSWORD."
        )


class Credentials:
    """The logins of one run, built once from the settings: `smtp()` and `imap()` give
    the settings with their login attached, the same login object (and so the same
    looked-up secret) wherever it is the same account."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self._smtp: SmtpSettings | None = None

    def smtp(self) -> SmtpSettings:
        """The SMTP account; ConfigError when there is none or it is set up wrong."""
        if self._smtp is None:
            settings = config.smtp_settings(self.env)
            self._smtp = replace(settings, login=self._smtp_login(settings))
        return self._smtp

    def _smtp_login(self, s: SmtpSettings) -> Login | None:
        if s.auth == "oauth2":
            from .oauth import TokenSource, oauth_settings  # the sign-in server: only for it

            return TokenSource(oauth_settings(self.env, s.host), s.username)
        if s.username:
            return PasswordSource(s.host, s.username, s.password_command, s.password,
                                  s.password_timeout)
        return None

    def imap(self, provider: str | None = None) -> ImapSettings | None:
        """The IMAP account (see `config.imap_settings`), None without one."""
        settings = config.imap_settings(self.env, provider)
        if settings is None:
            return None
        if not (settings.password or settings.password_command):
            shared = self._shared_login(settings)
            if shared is not None:
                return replace(settings, login=shared)
        return replace(settings, login=PasswordSource(
            settings.host, settings.username, settings.password_command,
            fallback=settings.password, timeout=settings.password_timeout,
            prefix="MAILER_IMAP"))

    def _shared_login(self, imap: ImapSettings) -> Login | None:
        """The SMTP login, when IMAP may use it: the same user name, and the same
        service: for an OAuth2 token the IMAP server of the provider that issued it,
        for a password one of `same_service`."""
        try:
            smtp = self.smtp()
        except ConfigError:  # no SMTP account: only MAILER_IMAP_* can log in
            return None
        login = smtp.login
        if login is None or login.username != imap.username:
            return None
        if login.oauth:
            issuer = login.provider
            return login if issuer and issuer == oauth_provider_of_imap(imap.host) else None
        return login if same_service(smtp.host, imap.host) else None


def same_service(smtp_host: str, imap_host: str) -> bool:
    """May the SMTP password go to this IMAP server: one provider's servers (the
    provider table), one registrable domain (`smtp.example.com`, `imap.example.com`;
    two sites under a shared suffix such as github.io are two owners), the same host,
    or both on loopback (a test server, a local bridge)."""
    smtp, imap = _ascii_host(smtp_host), _ascii_host(imap_host)
    if smtp == imap or same_provider(smtp, imap):
        return True
    if config.is_loopback(smtp) or config.is_loopback(imap):
        return config.is_loopback(smtp) and config.is_loopback(imap)
    if _is_ip(smtp) or _is_ip(imap):  # an address has no registrable domain
        return False
    domain = _public_suffixes().privatesuffix(smtp)
    return domain is not None and domain == _public_suffixes().privatesuffix(imap)


def _ascii_host(host: str) -> str:
    """The host name lower-cased, without a trailing dot, internationalised names in
    their ASCII form, so that `bücher.example` and `xn--bcher-kva.example` are one."""
    host = host.strip().lower().rstrip(".")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:  # not a name IDNA 2003 can spell: compared as written
        return host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


@cache
def _public_suffixes() -> PublicSuffixList:
    """The whole Public Suffix List, private section included, shipped inside
    `publicsuffixlist`: a name under a shared hosting suffix is its owner's alone."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()

