"""SMTP connections over aiosmtplib, each kept open for many messages.

One `Connection` logs in once and then runs MAIL / RCPT / DATA for message
after message (logging in per message gets accounts blocked: Gmail answers
"454 Too many login attempts").  When the server has closed an idle
connection, or refuses more messages on it, the next message reconnects
transparently: nothing of that message had been sent yet.

Failures that concern the whole account (cannot connect, TLS, login) raise
the `SmtpError` subclasses; everything about one recipient comes back as a
`Reply` (the server's code and text) or as an exception saying where the
transaction was when the reply did not come:

- `Lost`: before the final dot was written (MAIL, RCPT, DATA, the body).
  The server cannot have taken the message: it may be sent again.
- `NoFinalReply`: after the final dot, no reply (closed, reset, or nothing
  within `SmtpSettings.data_timeout`, 10 minutes by default as RFC 5321
  4.5.3.2.6 asks).  The server may have taken the message and delivered it
  (RFC 1047): it must not be sent again without the user's say-so.

A transaction is two calls: `begin` (MAIL, RCPT, DATA, up to DATA's 354)
and `finish` (the content, the final dot and its reply), so that the caller
can record in its journal that the content is about to go out in between.
aiosmtplib's `data()` writes the body and the final dot in one go, which
leaves no way to tell the two apart, so the DATA phase is driven here: the
body flushed to the socket, then a last look whether the connection is still
up, then the dot.

With a server that offers PIPELINING (RFC 2920), MAIL, RCPT and DATA go out
in one write (pipeline.py) and the first refusal among their replies is the
message's reply; the content still waits for the 354.  `finish(..., then=)`
puts the next message's MAIL, RCPT and DATA in the same write as the final
dot: one round trip a message.  A server that offers PIPELINING and cannot
take it (no reply to the group, "bad sequence") gets the message again at
once, one command at a time, and so does the rest of the run on that
connection; one that cannot take commands behind a final dot gets them after
its reply from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import aiosmtplib
from aiosmtplib.protocol import normalize_message_line_endings
from aiosmtplib.response import SMTPResponse

from ..config import DEFAULT_PORTS, SmtpSettings
from ..errors import AuthError, ConnectError, TlsError
from ..sanitize import clean
from .login import authenticate
from .pipeline import Group, PipeliningProtocol, pipelined_protocol


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


@dataclass(frozen=True, slots=True)
class Envelope:
    sender: str
    recipient: str
    smtputf8: bool = False  # the message needs SMTPUTF8 (an address needs it anyway)


@dataclass(frozen=True, slots=True)
class Finished:
    """A message's end: the reply to its final dot and, when the next message
    began in the same write, how that began: `begin`'s answer, or `Lost` as
    `begin` would raise it; None: not begun, begin it again."""

    reply: Reply
    then: Reply | Lost | None = None


GO_AHEAD = 354  # DATA's reply when the content may follow
BODY_CHUNK = 64 * 1024  # asyncio's write high-water mark


class Lost(Exception):
    """No reply, and the final dot was never written: nothing was delivered."""


class NoFinalReply(Exception):
    """No reply to the final dot: the message may have been delivered."""


# Our own reply for a recipient the server cannot take at all: RFC 6531 says
# a client must not send an SMTPUTF8 address to a server that lacks it.
NO_SMTPUTF8 = Reply(553, "the recipient address needs SMTPUTF8, which this server does not offer")

_GROUP_OK = ((250,), (250, 251), (354,))  # what MAIL, RCPT and DATA answer when they agree
# "not recognised", "not implemented", "bad sequence": what a server answers to a
# group it reads as something else than three commands in order
_OUT_OF_ORDER = frozenset({500, 502, 503})


class Connection:
    """One authenticated SMTP session, reconnected on demand."""

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str = "localhost",
    ) -> None:
        self.settings = settings
        self._tls = tls_context
        self._local_hostname = local_hostname
        self._smtp: aiosmtplib.SMTP | None = None
        self._opened: aiosmtplib.SMTP | None = None  # greeted, not yet logged in
        self.logins = 0  # connections opened (each with one login): for reports and tests
        # True from the moment the final dot of the current message is handed to
        # the socket: if the transaction is cancelled now, the message may be out.
        self.dot_written = False
        # PIPELINING when the server offers it, until it shows it cannot take it;
        # `across`: commands behind a final dot, until it shows it cannot take those
        self.pipelining = self.across = True

    @property
    def connected(self) -> bool:
        return self._smtp is not None and self._smtp.is_connected

    async def connect(self) -> None:
        """Open (or take up the session `open` made, while the server keeps it),
        secure and log in; raises ConnectError, TlsError or AuthError."""
        if self._opened is None or not self._opened.is_connected:
            await self.open()
        await self.login()

    async def open(self) -> None:
        """Connect, secure and greet, without AUTH: a session that `login` takes
        up, so that it can wait for another connection's login to succeed first.
        Raises ConnectError or TlsError."""
        if self._tls is None and self.settings.security != "none":
            self._tls = ssl.create_default_context()  # verifies the server's certificate
        self.close()
        self._opened, _ = await open_session(self.settings, self._tls, self._local_hostname)

    async def login(self) -> None:
        """AUTH on the session `open` made; raises AuthError."""
        smtp, self._opened = self._opened, None
        assert smtp is not None, "open() first"
        if self.settings.username:
            try:
                await authenticate(smtp, self.settings)  # password or OAuth2: see login.py
            except AuthError:
                smtp.close()
                raise
        self._smtp = smtp
        self.logins += 1

    @property
    def pipelines(self) -> bool:
        """Whether `finish` can begin the next message in the same write."""
        smtp = self._smtp
        return (self.across and self.pipelining and smtp is not None and smtp.is_connected
                and smtp.supports_extension("pipelining"))

    async def send(self, sender: str, recipient: str, message: bytes, *, smtputf8: bool) -> Reply:
        """One whole transaction: `begin`, and `finish` once the 354 came."""
        reply = await self.begin(Envelope(sender, recipient, smtputf8))
        if reply.code != GO_AHEAD:
            return reply
        return (await self.finish(message)).reply

    async def begin(self, envelope: Envelope) -> Reply:
        """MAIL, RCPT and DATA.  Returns DATA's 354 (the content goes next, by
        `finish`) or the first reply that is not a success (the transaction
        reset); raises `Lost` when no reply came.  Reconnects transparently when
        the connection was found closed (or answered 421) before anything of
        this message was sent, and when a server that offers PIPELINING turns
        out not to take it (then one command at a time)."""
        self.dot_written = False
        # at most: the connection found closed, then a server found not to pipeline
        for _ in range(3):
            fresh = not self.connected
            if fresh:
                await self.connect()
            smtp = self._smtp
            assert smtp is not None
            commands = _commands(smtp, envelope)
            if isinstance(commands, Reply):
                return commands
            protocol = pipelined_protocol(smtp) if self.pipelining else None
            if protocol is not None:
                reply = await self._pipelined(protocol, commands, fresh)
            else:
                reply = await self._one_by_one(smtp, commands, fresh)
            if reply is not None:
                return reply
        raise AssertionError("unreachable")

    async def _one_by_one(
        self, smtp: aiosmtplib.SMTP, envelope: tuple[bytes, bytes], fresh: bool
    ) -> Reply | None:
        """MAIL, RCPT and DATA one at a time; None: reconnect and try again."""
        mail, rcpt = envelope
        try:
            reply = await smtp.execute_command(mail)
        except aiosmtplib.SMTPServerDisconnected:
            if fresh:
                raise Lost("the server closed the connection") from None
            return None  # closed while idle: reconnect, nothing was sent
        except aiosmtplib.SMTPTimeoutError:
            raise Lost(f"no reply to MAIL within {self.settings.timeout:g} s") from None
        if reply.code == 421 and not fresh:
            self.close()
            return None  # per-connection limit reached: a new connection may take it
        if reply.code != 250:
            await self._reset()
            return Reply(reply.code, reply.message)
        return await self._rest(smtp, rcpt)

    async def _pipelined(
        self, protocol: PipeliningProtocol, envelope: tuple[bytes, bytes], fresh: bool
    ) -> Reply | None:
        """MAIL, RCPT and DATA in one write (RFC 2920); None: reconnect and try again."""
        try:
            group = await protocol.group((*envelope, b"DATA"), self.settings.timeout)
        except aiosmtplib.SMTPServerDisconnected:  # found closed: nothing was written
            if fresh:
                raise Lost("the server closed the connection") from None
            return None
        if group.unusable:
            raise self._unusable(group.unusable)
        refused = _refusal(group.replies)
        if refused is not None and refused.code in _OUT_OF_ORDER:
            # a server that cannot take the commands together answers "bad sequence"
            # or "syntax error"; nothing was sent: again at once, one at a time
            self.close()
            self.pipelining = False
            return None
        if refused is None and len(group.replies) < len(_GROUP_OK):
            self.close()
            if group.timed_out:  # perhaps a server that offers PIPELINING and cannot
                self.pipelining = False
                return None  # nothing was sent: again at once, one command at a time
            if not group.replies and not fresh:
                return None  # closed while idle: reconnect, nothing was sent
            raise self._closed_early()
        return await self._answer(group.replies, refused, fresh)

    async def _answer(self, replies: Sequence[SMTPResponse], refused: SMTPResponse | None,
                      fresh: bool) -> Reply | None:
        """What the replies to a group of MAIL, RCPT and DATA (all three, or up
        to a refusal) come to: the 354, or the refusal with the transaction
        reset; None: try again on a new connection."""
        if refused is None:
            return Reply(replies[-1].code, replies[-1].message)
        if refused is replies[0] and refused.code == 421 and not fresh:
            self.close()
            return None  # per-connection limit reached: a new connection may take it
        complete = len(replies) == len(_GROUP_OK)
        if refused.code == 421 or not complete or replies[-1].code == GO_AHEAD:
            self.close()  # closing, or waiting for content that must not come
        else:
            await self._reset()
        return Reply(refused.code, refused.message)

    async def _rest(self, smtp: aiosmtplib.SMTP, rcpt: bytes) -> Reply:
        try:
            reply = await smtp.execute_command(rcpt)
            if reply.code not in (250, 251):
                await self._reset()
                return Reply(reply.code, reply.message)
            reply = await smtp.execute_command(b"DATA")
            if reply.code != GO_AHEAD:
                if reply.code == 421:
                    self.close()
                else:
                    await self._reset()
        except aiosmtplib.SMTPTimeoutError:  # first: it is an OSError too (TimeoutError)
            self.close()
            raise Lost(f"no reply within {self.settings.timeout:g} s before the message was "
                       f"complete; nothing was delivered") from None
        except (aiosmtplib.SMTPServerDisconnected, OSError):
            raise self._closed_early() from None
        except aiosmtplib.SMTPException as err:  # an unreadable reply
            self.close()
            raise Lost(f"no usable reply before the message was complete ({err}); nothing "
                       f"was delivered") from None
        return Reply(reply.code, reply.message)

    def _closed_early(self) -> Lost:
        """The server went away before the final dot: nothing was delivered."""
        self.close()
        return Lost("the server closed the connection before the message was complete; "
                    "nothing was delivered")

    def _unusable(self, why: str) -> Lost:
        """What came back to MAIL, RCPT and DATA was not SMTP: nothing was delivered."""
        self.close()
        return Lost(f"no usable reply to MAIL, RCPT and DATA ({clean(why)}); nothing was "
                    f"delivered")

    async def finish(self, message: bytes, then: Envelope | None = None) -> Finished:
        """After `begin`'s 354: the content, the final dot and its reply.  With
        `then`, where the server pipelines, the next message's MAIL, RCPT and
        DATA go out in the same write as the dot (RFC 2920 3.1) and `Finished`
        says how it began.  Raises `Lost` when the dot was not written,
        `NoFinalReply` when no reply to it came; `then` was not begun then."""
        smtp = self._smtp
        if smtp is None:
            raise self._closed_early()
        try:
            await self._write_body(smtp, message)
        except (aiosmtplib.SMTPServerDisconnected, OSError):
            raise self._closed_early() from None
        following = _commands(smtp, then) if then is not None and self.pipelines else None
        self.dot_written = True
        protocol = smtp.protocol
        if not isinstance(following, tuple) or not isinstance(protocol, PipeliningProtocol):
            return Finished(await self._final(smtp))
        try:
            group = await protocol.group((b".", *following, b"DATA"), self.settings.timeout,
                                         first_timeout=self.settings.data_timeout)
        except aiosmtplib.SMTPServerDisconnected:  # found closed: the dot was not written
            self.dot_written = False
            raise self._closed_early() from None
        if not group.replies:
            raise self._no_final_reply(timed_out=group.timed_out, unusable=group.unusable)
        dot = group.replies[0]
        self.dot_written = False  # its reply came: that message is settled
        return Finished(Reply(dot.code, dot.message), await self._behind(dot, group))

    async def _behind(self, dot: SMTPResponse, group: Group) -> Reply | Lost | None:
        """How the message begun behind a final dot began, from the rest of the
        group's replies, as `begin` would take them on a connection already open."""
        rest = group.replies[1:]
        refused = _refusal(rest)
        complete = refused is not None or len(rest) == len(_GROUP_OK)
        if dot.code == 421:  # the server is closing: not begun, again on a new connection
            self.close()
            return None
        if group.unusable:
            self.across = False
            return self._unusable(group.unusable)
        if (refused is not None and refused.code in _OUT_OF_ORDER) or (
                not complete and group.timed_out):
            self.close()  # it does not take commands behind a final dot: not begun
            self.across = False
            return None
        if not complete:  # closed: while idle, as it were, or in the middle of the group
            self.close()
            return self._closed_early() if rest else None
        return await self._answer(rest, refused, fresh=False)

    def _no_final_reply(self, *, timed_out: bool = False, unusable: str = "") -> NoFinalReply:
        """No reply to the final dot (closed, none in time, or not SMTP): the
        connection is of no more use, and the message may have been delivered."""
        self.close()
        if timed_out:
            return NoFinalReply(f"no reply within {self.settings.data_timeout:g} s after the "
                                f"whole message: it may have been delivered")
        if unusable:
            return NoFinalReply(f"no usable reply after the whole message "
                                f"({clean(unusable)}): it may have been delivered")
        return NoFinalReply("the server closed the connection after the whole message "
                            "without a reply: it may have been delivered")

    async def _final(self, smtp: aiosmtplib.SMTP) -> Reply:
        """The final dot alone, and its reply."""
        try:
            reply = await smtp.execute_command(b".", timeout=self.settings.data_timeout)
        except aiosmtplib.SMTPTimeoutError:
            raise self._no_final_reply(timed_out=True) from None
        except (aiosmtplib.SMTPServerDisconnected, OSError):
            raise self._no_final_reply() from None
        except aiosmtplib.SMTPException as err:
            raise self._no_final_reply(unusable=str(err)) from None
        if reply.code == 421:
            self.close()
        return Reply(reply.code, reply.message)

    @staticmethod
    async def _write_body(smtp: aiosmtplib.SMTP, message: bytes) -> None:
        """Write the dot-stuffed body (without the final dot) in chunks under
        flow control, giving the loop a turn after each to notice a close or
        reset that has arrived: only a connection still up gets the dot.  (In
        chunks because over TLS one big write is encrypted and queued whole,
        and drain would return before any of it left.)"""
        protocol = smtp.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        body = memoryview(stuffed(message))
        for start in range(0, len(body), BODY_CHUNK):
            protocol.write(bytes(body[start:start + BODY_CHUNK]))  # raises once closing
            await protocol._drain_helper()  # StreamWriter.drain()'s contract, kept by aiosmtplib
            await asyncio.sleep(0)
        if not protocol.is_connected:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")

    async def _reset(self) -> None:
        """RSET after a refused step, so the next transaction starts clean."""
        if not self.connected:
            return
        assert self._smtp is not None
        try:
            reply = await self._smtp.execute_command(b"RSET")
        except aiosmtplib.SMTPException:
            self.close()
            return
        if reply.code != 250:
            self.close()

    def close(self) -> None:
        for smtp in (self._smtp, self._opened):
            if smtp is not None:
                smtp.close()
        self._smtp = self._opened = None

    async def quit(self) -> None:
        """Polite end of the session; errors here change nothing."""
        if self.connected:
            assert self._smtp is not None
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await self._smtp.quit()
        self.close()


def _commands(smtp: aiosmtplib.SMTP, envelope: Envelope) -> tuple[bytes, bytes] | Reply:
    """MAIL FROM and RCPT TO for `envelope`, or our own refusal when it cannot go."""
    smtputf8 = envelope.smtputf8 or not (envelope.sender.isascii()
                                         and envelope.recipient.isascii())
    options = b""
    if smtputf8:
        if not smtp.supports_extension("smtputf8"):
            return NO_SMTPUTF8
        options = b" SMTPUTF8"
    encoding = "utf-8" if smtputf8 else "ascii"
    return (b"MAIL FROM:<" + envelope.sender.encode(encoding) + b">" + options,
            b"RCPT TO:<" + envelope.recipient.encode(encoding) + b">")


def _refusal(replies: Sequence[SMTPResponse]) -> SMTPResponse | None:
    """The first of a group's replies to MAIL, RCPT and DATA that is not agreement."""
    return next((r for r, ok in zip(replies, _GROUP_OK, strict=False) if r.code not in ok),
                None)


def stuffed(message: bytes) -> bytes:
    """The content as DATA sends it (RFC 5321 4.5.2): CRLF line ends, a dot
    doubled at the start of a line, ending in CRLF.  What Composer writes has
    CRLF throughout already: counting says so without a regular expression
    over the message (aiosmtplib's two would rewrite every message)."""
    crlf = message.count(b"\r\n")
    if not (crlf == message.count(b"\n") == message.count(b"\r") and message.endswith(b"\r\n")):
        message = normalize_message_line_endings(message)
    if message.startswith(b"."):
        message = b"." + message
    return message.replace(b"\r\n.", b"\r\n..")


# -- one connect path, one mapping of aiosmtplib's errors to mailer's -------------------

PORT_HINT = ("Check MAILER_SMTP_HOST, MAILER_SMTP_PORT and MAILER_SMTP_SECURITY "
             "(submission is port 587 with starttls, or 465 with tls).")
CERT_HINT = "The certificate must match MAILER_SMTP_HOST: use the name your provider documents."


async def open_session(settings: SmtpSettings, tls_context: ssl.SSLContext | None,
                       local_hostname: str = "localhost") -> tuple[aiosmtplib.SMTP, str]:
    """Connect, secure (TLS or STARTTLS) and greet (EHLO, HELO if refused): the session
    and the server's banner.  Every failure is a ConnectError or TlsError that names
    the setting to change; `send` and `check` both come through here."""
    s = settings
    smtp = aiosmtplib.SMTP(
        hostname=s.host,
        port=s.port,
        use_tls=s.security == "tls",
        start_tls=False,  # done below, so that a failure is reported as TLS
        tls_context=tls_context,
        timeout=s.timeout,
        local_hostname=local_hostname,  # looked up once per run, not per connection
    )
    try:
        banner = await smtp.connect()
    except (aiosmtplib.SMTPException, OSError) as err:
        raise await _connect_failure(s, err) from None
    try:
        await _greet(smtp, s)
        if s.security == "starttls":
            await _starttls(smtp, s, tls_context)
            await _greet(smtp, s)
    except (ConnectError, TlsError):
        smtp.close()
        raise
    return smtp, banner.message


async def _greet(smtp: aiosmtplib.SMTP, s: SmtpSettings) -> None:
    """EHLO (again, after STARTTLS): the extensions and AUTH methods; HELO if refused."""
    try:
        try:
            await smtp.ehlo()
        except aiosmtplib.SMTPHeloError:
            await smtp.helo()
    except (aiosmtplib.SMTPException, OSError) as err:
        raise ConnectError(f"{s.host}:{s.port} does not accept EHLO or HELO: "
                           f"{clean(str(err))}") from None


async def _starttls(smtp: aiosmtplib.SMTP, s: SmtpSettings,
                    tls_context: ssl.SSLContext | None) -> None:
    where = f"{s.host}:{s.port}"
    if not smtp.supports_extension("starttls"):
        raise TlsError(f"{where} does not offer STARTTLS. {PORT_HINT}")
    try:
        await smtp.starttls(tls_context=tls_context)
    except (aiosmtplib.SMTPException, OSError) as err:
        cause = err.__cause__ or err
        raise TlsError(f"STARTTLS with {where} failed: {clean(str(cause))}. {CERT_HINT}") \
            from None


async def _connect_failure(s: SmtpSettings, err: Exception) -> ConnectError | TlsError:
    """What failed on connecting, and the setting that most likely caused it."""
    where = f"{s.host}:{s.port}"
    cause = err.__cause__ if err.__cause__ is not None else err
    if isinstance(cause, ssl.SSLCertVerificationError):
        return TlsError(f"TLS with {where} failed: {clean(str(cause))}. {CERT_HINT}")
    if isinstance(cause, ssl.SSLError):
        if s.security == "tls" and await speaks_starttls(s):
            return TlsError(f"TLS with {where} failed: port {s.port} speaks STARTTLS, not TLS "
                            f"from the start: set MAILER_SMTP_SECURITY=starttls (or use port "
                            f"465 with tls).")
        return TlsError(f"TLS with {where} failed: {clean(str(cause))}. {PORT_HINT}")
    return ConnectError(_cannot_connect(s, err))


async def speaks_starttls(s: SmtpSettings) -> bool:
    """Whether the port answers as a plain SMTP server that offers STARTTLS: one look
    (EHLO, no login) after TLS from the start failed there."""
    probe = aiosmtplib.SMTP(hostname=s.host, port=s.port, use_tls=False, start_tls=False,
                            timeout=min(s.timeout, 10.0))
    try:
        await probe.connect()
        await probe.ehlo()
        return probe.supports_extension("starttls")
    except (aiosmtplib.SMTPException, OSError):
        return False
    finally:
        probe.close()


def connect_hint(err: Exception) -> str:
    """The setting a failed connection most likely points at."""
    cause = err.__cause__
    if isinstance(cause, socket.gaierror):
        return "Check MAILER_SMTP_HOST: the name does not resolve (a typo, or no network)"
    if isinstance(cause, ConnectionRefusedError) or isinstance(err, ConnectionRefusedError):
        return "Check MAILER_SMTP_PORT: nothing listens there (submission is 587 or 465)"
    if isinstance(err, aiosmtplib.SMTPConnectTimeoutError):
        return ("No greeting came: check MAILER_SMTP_SECURITY and MAILER_SMTP_PORT (port 465 "
                "wants tls, 587 starttls), or a firewall blocking the port")
    return "Check MAILER_SMTP_HOST and MAILER_SMTP_PORT (in .env or the environment)"


def _cannot_connect(s: SmtpSettings, err: Exception) -> str:
    """What failed, and the settings that decide where mailer connects to."""
    usual = DEFAULT_PORTS[s.security]
    pairing = f"; MAILER_SMTP_SECURITY={s.security} usually goes with port {usual}" \
        if s.port != usual else ""
    # "Connection refused" rather than aiosmtplib's sentence that repeats host and port
    errnos = [e.errno for e in (err, err.__cause__) if isinstance(e, OSError) and e.errno]
    reason = os.strerror(errnos[0]) if errnos else clean(str(err))
    return (f"Cannot connect to the SMTP server {s.host}:{s.port}: {reason.rstrip('.')}. "
            f"{connect_hint(err)}{pairing}.")
