"""One SMTP connection on an event loop, so a worker can keep many busy at once.

A relay far away costs a round trip for every exchange, so each message is sent in as few
as the relay allows: with CHUNKING (RFC 3030) and PIPELINING (RFC 2920) one round trip
(MAIL, RCPT and `BDAT n LAST` with the message in one write); with PIPELINING alone two
(MAIL, RCPT, DATA together, then the body); with neither, one per command. The message is
never pipelined past its own final reply, so a worker that dies holds at most one message
whose acceptance it has not yet recorded, per connection.

Errors mean what they mean for `SMTPTransport`: `RelayUnavailableError` when the relay
could not be reached or refused to begin, a `TransportError` with the reply's code
otherwise (temporary for 4xx and for a connection lost mid-transaction).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from dataclasses import dataclass

import idna

from distributor.errors import RelayUnavailableError, TransportError
from distributor.transport.base import Envelope
from distributor.transport.wire import (
    NeedsSMTPUTF8,
    crlf_message,
    data_payload,
    envelope_address,
)

REPLY_LINE_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class RelayAddress:
    host: str
    port: int
    implicit_tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0


class _Lost(Exception):
    """The connection closed or timed out."""


class AsyncSMTPConnection:
    def __init__(self, relay: RelayAddress, *, local_name: str = "localhost") -> None:
        self.relay = relay
        self._local_name = local_name
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.extensions: set[str] = set()
        self.transactions = 0  # messages this connection has carried
        # A message whose MAIL, RCPT and DATA are written but whose replies are not yet read.
        self._announced: Envelope | None = None
        self.round_trips = 0

    @property
    def is_open(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    def _where(self) -> str:
        return f"{self.relay.host}:{self.relay.port}"

    async def open(self) -> None:
        """Connect, read the greeting, say EHLO, and STARTTLS and AUTH where configured."""
        relay = self.relay
        try:
            context = ssl.create_default_context() if relay.implicit_tls else None
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(
                    relay.host, relay.port, ssl=context, limit=REPLY_LINE_LIMIT
                ),
                relay.timeout,
            )
            code, text = await self._reply()
            if code != 220:
                raise RelayUnavailableError(
                    f"the mail relay {self._where()} refused the connection: {code} {text}",
                    code=code,
                )
            await self._ehlo()
            if relay.starttls:
                await self._command(b"STARTTLS\r\n", expect=220)
                assert self._writer is not None
                await self._writer.start_tls(ssl.create_default_context())
                await self._ehlo()
            if relay.username:
                token = base64.b64encode(
                    f"\0{relay.username}\0{relay.password or ''}".encode()
                ).decode("ascii")
                await self._command(f"AUTH PLAIN {token}\r\n".encode(), expect=235)
        except (OSError, _Lost, TimeoutError, ssl.SSLError) as exc:
            self.abort()
            raise RelayUnavailableError(
                f"cannot connect to the mail relay {self._where()}: {exc or type(exc).__name__}"
            ) from exc
        except TransportError as exc:
            self.abort()
            if isinstance(exc, RelayUnavailableError):
                raise
            raise RelayUnavailableError(str(exc), code=exc.code) from exc

    async def _ehlo(self) -> None:
        assert self._writer is not None
        self._writer.write(f"EHLO {self._local_name}\r\n".encode("ascii"))
        code, text = await self._reply()
        if code != 250:
            raise RelayUnavailableError(
                f"the mail relay {self._where()} refused EHLO: {code} {text}", code=code
            )
        self.extensions = {
            line.split(" ", 1)[0].upper() for line in text.splitlines()[1:] if line.strip()
        }

    async def _command(self, line: bytes, *, expect: int) -> str:
        assert self._writer is not None
        self._writer.write(line)
        code, text = await self._reply()
        if code != expect:
            raise TransportError(
                f"the mail relay {self._where()} answered {code} {text}",
                code=code,
                temporary=400 <= code < 500,
            )
        return text

    async def _reply(self) -> tuple[int, str]:
        """One (possibly multi-line) reply; raises _Lost when the connection ends."""
        assert self._reader is not None
        lines = []
        while True:
            try:
                # asyncio.timeout, not wait_for: no task is made for each line read.
                async with asyncio.timeout(self.relay.timeout):
                    raw = await self._reader.readline()
            except (TimeoutError, OSError, ValueError) as exc:
                raise _Lost(str(exc) or type(exc).__name__) from exc
            if not raw.endswith(b"\n"):
                raise _Lost("the relay closed the connection")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if len(line) < 3 or not line[:3].isdigit():
                raise _Lost(f"not an SMTP reply: {line[:80]!r}")
            lines.append(line[4:])
            if len(line) == 3 or line[3] != "-":
                return int(line[:3]), "\n".join(lines)

    async def send(self, envelope: Envelope, *, then: Envelope | None = None) -> str:
        """One mail transaction; the relay's acceptance reply, or a TransportError.

        With `then`, the next message's MAIL, RCPT and DATA ride with this message's end
        (PIPELINING across messages, RFC 2920), so a message costs one round trip; the
        caller must send `then` next on this connection, or close it. Its final dot goes
        only when `send(then)` is called, after the caller has recorded this outcome.
        """
        if self._announced is not None and self._announced is not envelope:
            # Another message's DATA is open on this connection; only closing ends it
            # without delivering an empty message.
            self.abort()
        if fresh := not self.is_open:  # opened for this message, not kept from the last
            await self.open()
        try:
            return await self._transaction(envelope, fresh=fresh, then=then)
        except _HungUpEarly as early:
            # The relay closed a kept connection before this message began: a new one may
            # safely carry it.
            self.abort()
            if early.fresh:
                raise RelayUnavailableError(
                    f"the mail relay {self._where()} closed the connection: {early}",
                    code=early.code,
                ) from early
        await self.open()
        try:
            return await self._transaction(envelope, fresh=True, then=then)
        except _HungUpEarly as early:
            self.abort()
            raise RelayUnavailableError(
                f"the mail relay {self._where()} closed the connection: {early}", code=early.code
            ) from early

    def _envelope_commands(self, envelope: Envelope) -> tuple[bytes, bytes]:
        smtputf8 = "SMTPUTF8" in self.extensions
        try:
            sender = envelope_address(envelope.sender, smtputf8=smtputf8)
            recipient = envelope_address(envelope.recipient, smtputf8=smtputf8)
        except (NeedsSMTPUTF8, idna.IDNAError) as exc:
            raise TransportError(f"cannot address the message: {exc}") from exc
        utf8 = smtputf8 and not (sender + recipient).isascii()  # RFC 6531: any address
        mail = b"MAIL FROM:" + sender + (b" SMTPUTF8" if utf8 else b"")
        return mail + b"\r\n", b"RCPT TO:" + recipient + b"\r\n"

    async def _transaction(self, envelope: Envelope, *, fresh: bool, then: Envelope | None) -> str:
        assert self._writer is not None
        announced = self._announced is envelope
        self._announced = None
        mail, rcpt = self._envelope_commands(envelope)
        pipelining = "PIPELINING" in self.extensions
        chunking = "CHUNKING" in self.extensions and pipelining
        if chunking and not announced and self._reader is not None:
            # The message goes in the same write as its envelope, so a connection that the
            # relay already closed while idle must be noticed first, not after the write.
            await asyncio.sleep(0)
            if self._reader.at_eof():
                raise _HungUpEarly("the relay closed the idle connection", fresh=fresh)
        replies: list[tuple[int, str]] = []
        try:
            if chunking:
                body = crlf_message(envelope.data)
                self._writer.write(mail + rcpt + b"BDAT %d LAST\r\n" % len(body) + body)
                await self._collect(replies, 3)
            elif pipelining:
                if announced:  # written with the previous message's end; replies under way
                    await self._collect(replies, 3, counted=False)
                else:
                    self._writer.write(mail + rcpt + b"DATA\r\n")
                    await self._collect(replies, 3)
            else:
                for command in (mail, rcpt, b"DATA\r\n"):
                    self._writer.write(command)
                    await self._collect(replies, 1)
                    if replies[-1][0] >= 400:
                        break
        except _Lost as exc:
            first = replies[0] if replies else None
            if chunking and (first is None or first[0] != 421):
                # The whole message went out: the relay may have kept it. Like a message
                # lost after DATA, it is tried again later rather than at once.
                self.abort()
                raise TransportError(
                    f"connection to {self._where()} lost during the transaction: {exc}",
                    temporary=True,
                ) from exc
            if first is not None:
                raise _HungUpEarly(f"{first[0]} {first[1]}", fresh=fresh, code=first[0]) from exc
            raise _HungUpEarly(str(exc), fresh=fresh) from exc
        mail_code, mail_text = replies[0]
        if mail_code == 421:
            raise _HungUpEarly(f"{mail_code} {mail_text}", fresh=fresh, code=mail_code)
        self.transactions += 1
        try:
            return await self._finish(
                replies, envelope, chunking=chunking, then=then if pipelining else None
            )
        except _Lost as exc:
            self.abort()
            raise TransportError(
                f"connection to {self._where()} lost during the transaction: {exc}",
                temporary=True,
            ) from exc

    async def _finish(
        self,
        replies: list[tuple[int, str]],
        envelope: Envelope,
        *,
        chunking: bool,
        then: Envelope | None,
    ) -> str:
        assert self._writer is not None
        (mail_code, mail_text), rest = replies[0], replies[1:]
        rcpt_code, rcpt_text = rest[0] if rest else (0, "")
        last_code, last_text = rest[1] if len(rest) > 1 else (0, "")
        if mail_code != 250 or rcpt_code not in (250, 251):
            if not chunking and last_code == 354:
                # A relay that took DATA after refusing the envelope gets an empty message
                # with no recipient, which it must discard.
                self._writer.write(b".\r\n")
                await self._reply()
            await self._reset()
            if mail_code != 250:
                raise _refused("sender", mail_code, mail_text)
            raise _refused("recipient", rcpt_code, rcpt_text)
        if chunking:
            if last_code != 250:
                await self._reset()
                raise _refused("message", last_code, last_text)
            return f"{last_code} {last_text}"
        if last_code != 354:
            await self._reset()
            raise _refused("message", last_code, last_text)
        payload = data_payload(envelope.data)
        announce = b""
        if then is not None and "CHUNKING" not in self.extensions:
            try:
                mail, rcpt = self._envelope_commands(then)
                announce = mail + rcpt + b"DATA\r\n"
            except TransportError:
                announce = b""  # sent on its own, where the error is reported
        self._writer.write(payload + announce)
        if announce:
            self._announced = then
        code, text = await self._reply()
        self.round_trips += 1
        if code != 250:
            # The transaction is over either way; with the next one under way, no RSET.
            if not announce:
                await self._reset()
            raise _refused("message", code, text)
        return f"{code} {text}"

    async def _collect(
        self, replies: list[tuple[int, str]], count: int, *, counted: bool = True
    ) -> None:
        """Read `count` replies into `replies`, keeping those read before a loss."""
        for _ in range(count):
            replies.append(await self._reply())
        if counted:
            self.round_trips += 1

    async def _reset(self) -> None:
        assert self._writer is not None
        self._writer.write(b"RSET\r\n")
        try:
            await self._reply()
        except _Lost:
            self.abort()

    def abort(self) -> None:
        self._announced = None
        if self._writer is not None:
            self._writer.transport.abort()
        self._reader = self._writer = None

    async def close(self) -> None:
        if not self.is_open or self._announced is not None:
            self.abort()
            return
        assert self._writer is not None
        with contextlib.suppress(_Lost, OSError, TimeoutError):
            self._writer.write(b"QUIT\r\n")
            await asyncio.wait_for(self._reply(), 2.0)
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            self._writer.close()
            await asyncio.wait_for(self._writer.wait_closed(), 2.0)
        self._reader = self._writer = None


class _HungUpEarly(Exception):
    """The relay closed before it saw anything of the current message."""

    def __init__(self, detail: str, *, fresh: bool, code: int | None = None) -> None:
        super().__init__(detail)
        self.fresh = fresh
        self.code = code


def _refused(what: str, code: int, text: str) -> TransportError:
    return TransportError(
        f"relay refused the {what}: {code} {text}", code=code, temporary=400 <= code < 500
    )
