"""A real IMAP server (Dovecot) on 127.0.0.1 for tests.

    with Dovecot() as imap:
        imap.settings()          # ImapSettings for mailer (STARTTLS, the test CA trusted)
        imap.deliver(raw_bytes)  # put a message into INBOX
        imap.client()            # an IMAPClient logged in as the test user

Dovecot runs in the foreground from its own temporary dovecot.conf: a
passwd-file user database with one user, a Maildir, TLS with a trustme
certificate, and SPECIAL-USE folders (Sent, Drafts, Junk, Trash).  It listens
on free ports of 127.0.0.1 (143 style with STARTTLS, and implicit TLS), and is
stopped with SIGTERM at the end.

Dovecot refuses to give mail access to uid 0, so when the tests run as root
(as CI does) the mail user is Dovecot's own system user `dovecot`, which owns
the server's directory; otherwise everything runs as the current user.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest
import trustme
from imapclient import IMAPClient

from mailer.config import ImapSettings
from tests.smtpd import free_port

USER, PASSWORD = "ann@example.org", "imap-secret"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
info_log_path = {base}/dovecot.log
default_internal_user = {internal}
default_internal_group = {group}
default_login_user = {login}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}
mail_uid = {uid}
mail_gid = {gid}
mail_location = maildir:{base}/mail/%u
mail_privileged_group =
mail_fsync = never
disable_plaintext_auth = yes
auth_mechanisms = plain login xoauth2
ssl = yes
ssl_cert = <{base}/cert.pem
ssl_key = <{base}/key.pem
ssl_dh = <{base}/dh.pem
ssl_min_protocol = TLSv1.2
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
{sent}  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


SENT = """\
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
"""


class Dovecot:
    def __init__(self, *, special_use: bool = True) -> None:
        self.special_use = special_use  # False: no folder is marked \\Sent
        self._tmp = tempfile.TemporaryDirectory(prefix="dovecot-")
        self.base = Path(self._tmp.name)
        self.ca_file = self.base / "ca.pem"
        self.port = free_port()
        self.tls_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def _write_config(self) -> Path:
        base = self.base
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.ca_file))
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(str(base / "key.pem"))
        (base / "cert.pem").write_bytes(b"".join(b.bytes() for b in cert.cert_chain_pems))
        shutil.copy("/usr/share/dovecot/dh.pem", base / "dh.pem")
        (base / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        for sub in ("run", "state", "mail"):
            (base / sub).mkdir()
        if os.geteuid() == 0:  # Dovecot never serves mail as root
            mail_user = pwd.getpwnam("dovecot")
            internal, login = "dovecot", "dovenull"
            for path in [base, *base.rglob("*")]:
                os.chown(path, mail_user.pw_uid, mail_user.pw_gid)
            base.chmod(0o755)
        else:
            mail_user = pwd.getpwuid(os.getuid())
            internal = login = mail_user.pw_name
        conf = base / "dovecot.conf"
        conf.write_text(CONF.format(sent=SENT if self.special_use else "",
            base=base, uid=mail_user.pw_uid, gid=mail_user.pw_gid, internal=internal,
            group=grp.getgrgid(mail_user.pw_gid).gr_name, login=login, port=self.port,
            tls_port=self.tls_port,
        ))
        return conf

    def __enter__(self) -> Dovecot:
        conf = self._write_config()
        self._process = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)],
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                out = self._process.stdout.read() if self._process.stdout else b""
                raise RuntimeError(f"dovecot exited: {out.decode(errors='replace')}{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.__exit__(None, None, None)
        raise RuntimeError(f"dovecot did not start within 15 s: {self.log()}")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout:
                self._process.stdout.close()
            self._process = None
        self._tmp.cleanup()

    def log(self) -> str:
        path = self.base / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- for clients ------------------------------------------------------------

    def settings(self, *, security: str = "starttls") -> ImapSettings:
        return ImapSettings(host="127.0.0.1",
                            port=self.tls_port if security == "tls" else self.port,
                            security=security, username=USER, password=PASSWORD, timeout=10.0)

    def env(self) -> dict[str, str]:
        """MAILER_IMAP_* (and SSL_CERT_FILE) for mailer in a subprocess or CliRunner."""
        return {"MAILER_IMAP_HOST": "127.0.0.1", "MAILER_IMAP_PORT": str(self.port),
                "MAILER_IMAP_SECURITY": "starttls", "MAILER_IMAP_USERNAME": USER,
                "MAILER_IMAP_PASSWORD": PASSWORD, "SSL_CERT_FILE": str(self.ca_file)}

    def client_tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def client(self) -> IMAPClient:
        client = IMAPClient("127.0.0.1", port=self.tls_port, ssl=True,
                            ssl_context=self.client_tls(), timeout=10)
        client.login(USER, PASSWORD)
        return client

    def deliver(self, *messages: bytes, folder: str = "INBOX") -> None:
        with self.client() as client:
            for raw in messages:
                client.append(folder, raw)

    def messages(self, folder: str) -> list[tuple[bytes, tuple[bytes, ...]]]:
        """Every message of a folder with its flags, in UID order."""
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            fetched = client.fetch(client.search("ALL"), ["BODY.PEEK[]", "FLAGS"])
            return [(fetched[uid][b"BODY[]"], tuple(fetched[uid][b"FLAGS"]))
                    for uid in sorted(fetched)]


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A fresh Dovecot per test (it starts in about 0.1 s).  Under CI=true a
    missing Dovecot fails the test: .ci/run installs it."""
    if not os.access(DOVECOT, os.X_OK):
        message = "dovecot is not installed (Debian: apt-get install dovecot-imapd)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with Dovecot() as server:
        yield server
