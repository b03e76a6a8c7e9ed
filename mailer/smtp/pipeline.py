"""SMTP PIPELINING (RFC 2920) on an aiosmtplib connection, which has none of its own.

With a server that offers PIPELINING in its EHLO reply, MAIL FROM, RCPT TO and
DATA go out in one write and their three replies are read back in order.  The
content transfer may be the first "command" of a group (RFC 2920 3.1), so the
final dot of one message goes out together with the next message's MAIL, RCPT
and DATA: one round trip a message.  The content is never sent before DATA's
354 has arrived.

aiosmtplib's protocol keeps at most one parsed reply and drops what arrives
before that one is picked up, which loses the second reply of a group when
two come in separate packets.  `PipeliningProtocol` keeps every byte while a
group is read; at all other times it is aiosmtplib's protocol unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import aiosmtplib
from aiosmtplib.protocol import (
    COMMAND_INJECTION_REGEX,
    MAX_LINE_LENGTH,
    SMTPProtocol,
)
from aiosmtplib.response import SMTPResponse

# The replies of a group (three) are a few hundred bytes; a server that sends more
# before they are complete is broken or hostile, and is cut off.
MAX_GROUP_BYTES = 4 * MAX_LINE_LENGTH


class PipeliningProtocol(SMTPProtocol):
    """aiosmtplib's protocol, which keeps every reply while a group is read."""

    _collecting = False
    _arrived: asyncio.Event | None = None

    def data_received(self, data: bytes) -> None:
        if not self._collecting:
            super().data_received(data)
            return
        self._buffer.extend(data)
        if len(self._buffer) > MAX_GROUP_BYTES and isinstance(self.transport, asyncio.Transport):
            del self._buffer[:]
            self.transport.abort()  # connection_lost wakes the reader
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._wake()

    def _wake(self) -> None:
        if self._arrived is not None:
            self._arrived.set()

    async def group(self, commands: Sequence[bytes], timeout: float,
                    first_timeout: float | None = None) -> Group:
        """Write `commands` (each without its CRLF) at once and read their replies
        in order, until all have come, the connection closed, a reply was not
        SMTP, or `timeout` s passed since the last reply (`first_timeout` for
        the first: a final dot may take the server longer)."""
        for command in commands:
            if COMMAND_INJECTION_REGEX.search(command):
                raise ValueError("Command contains a prohibited control character")
        if self._command_lock is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        async with self._command_lock:  # nothing else may read while the group is out
            self._collecting, self._arrived = True, asyncio.Event()
            try:
                self.write(b"".join(c + b"\r\n" for c in commands))
                return await self._replies(len(commands), timeout, first_timeout)
            finally:
                self._collecting, self._arrived = False, None

    async def _replies(self, count: int, timeout: float, first_timeout: float | None) -> Group:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout if first_timeout is None else first_timeout)
        replies: list[SMTPResponse] = []
        while len(replies) < count:
            try:
                reply = self._read_response_from_buffer()
            except aiosmtplib.SMTPResponseException as err:
                return Group(tuple(replies), unusable=err.message)
            if reply is not None:
                replies.append(reply)
                deadline = loop.time() + timeout
                continue
            if self.transport is None:
                return Group(tuple(replies), closed=True)
            assert self._arrived is not None
            self._arrived.clear()
            try:  # not wait_for: on 3.11 it runs the wait as a task of its own
                async with asyncio.timeout_at(deadline):
                    await self._arrived.wait()
            except TimeoutError:
                return Group(tuple(replies), timed_out=True)
        if self._buffer:  # more than was asked: the server does not keep to the group
            return Group(tuple(replies), unusable="a reply to no command")
        return Group(tuple(replies))


@dataclass(frozen=True, slots=True)
class Group:
    """The replies of a pipelined group, in order; fewer than its commands when
    the connection `closed`, the time ran out first (`timed_out`) or what came
    was not an SMTP reply (`unusable`, why; also a reply to no command)."""

    replies: tuple[SMTPResponse, ...]
    closed: bool = False
    timed_out: bool = False
    unusable: str = ""


def pipelined_protocol(smtp: aiosmtplib.SMTP) -> PipeliningProtocol | None:
    """The connection's protocol, ready for groups, when the server offers
    PIPELINING; None otherwise (then commands go one at a time)."""
    protocol = smtp.protocol
    if protocol is None or not smtp.supports_extension("pipelining"):
        return None
    if not isinstance(protocol, PipeliningProtocol):
        # aiosmtplib builds its protocol inside connect(); the subclass only adds
        # behaviour while a group is read, and has no state of its own to set up
        protocol.__class__ = PipeliningProtocol
    assert isinstance(protocol, PipeliningProtocol)
    return protocol
