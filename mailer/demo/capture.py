"""A local capture SMTP server: accepts everything on loopback and stores it in a Maildir.

It stands in for the user's provider in the demo and in the README's
walk-throughs, so the whole path (SMTP dialogue included) runs without an
account or a network.  It listens on loopback only and relays nothing.
"""

from __future__ import annotations

import mailbox
import socket
from pathlib import Path
from types import TracebackType

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from ..errors import ConfigError


class MaildirHandler:
    """aiosmtpd handler: one Maildir message per recipient, bytes kept as received."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = mailbox.Maildir(maildir, create=True)
        self.received = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        for rcpt in envelope.rcpt_tos:
            # What a delivering MTA prepends, so a mail client shows the envelope.
            trace = f"Return-Path: <{envelope.mail_from}>\r\nDelivered-To: {rcpt}\r\n"
            self.maildir.add(trace.encode("utf-8") + content)
            self.received += 1
        return "250 OK: captured"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class CaptureServer:
    """Context manager running the capture server in a background thread."""

    def __init__(self, maildir: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ConfigError("The capture server listens on loopback only.")
        self.host = host
        self.port = port or free_port(host)
        self.maildir = maildir
        self.handler = MaildirHandler(maildir)
        # SMTPUTF8 on, so non-ASCII addresses can be demonstrated too.
        self._controller = Controller(
            self.handler, hostname=host, port=self.port, enable_SMTPUTF8=True
        )

    def __enter__(self) -> CaptureServer:
        # Bind once first: aiosmtpd reports a taken port only after its 5 s ready timeout.
        try:
            with socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio does
                probe.bind((self.host, self.port))
        except OSError as err:
            raise ConfigError(
                f"Cannot start the capture server on {self.host}:{self.port}: "
                f"{err.strerror or err} (another capture server?): stop it, or choose "
                f"another --port."
            ) from None
        try:
            self._controller.start()
        except (OSError, RuntimeError) as err:
            raise ConfigError(
                f"Cannot start the capture server on {self.host}:{self.port}: {err}"
            ) from None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._controller.stop()
