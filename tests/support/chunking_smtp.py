"""An in-process SMTP relay offering PIPELINING (RFC 2920) and CHUNKING (RFC 3030).

aiosmtpd offers neither and Postfix's smtp-sink no CHUNKING: this relay takes `BDAT n LAST`,
can withdraw any extension, refuse or defer chosen recipients, and cut or close connections.
It records accepted mail exactly like `RecordingSMTPServer`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

from distributor.demo import free_port
from tests.support.smtp import Received

HOST = "127.0.0.1"
UNICODE_REFUSED = "553 5.6.7 Must declare SMTPUTF8 to send unicode address"


def _address(arg: str, prefix: str) -> str | None:
    """The address in `FROM:<a@b> PARAMS` or `TO:<a@b>`, without brackets; None if malformed."""
    rest = arg[len(prefix) :].strip() if arg.upper().startswith(prefix) else ""
    if rest.startswith("<"):
        return rest[1 : rest.find(">")] if rest.find(">") > 0 else None
    return rest.split(" ", 1)[0] or None


class _Session:
    """One connection: its commands are read, and answered, strictly in order."""

    def __init__(
        self, relay: ChunkingSMTPServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.relay, self.reader, self.writer = relay, reader, writer
        self.buffer = bytearray()
        self.messages = 0
        self.reset()

    def reset(self) -> None:
        self.mail_from: str | None = None
        self.smtputf8 = False
        self.recipients: list[str] = []
        self.chunks: list[bytes] = []

    async def take(self, size: int | None = None) -> bytes | None:
        """The next line (size None) or `size` bytes; None once the client has gone."""
        while True:
            end = size if size is not None else self.buffer.find(b"\n") + 1
            if end <= len(self.buffer) and (end > 0 or size is not None):
                break
            data = await self.reader.read(65536)
            if not data:
                return None
            self.buffer += data
        taken = bytes(self.buffer[:end])
        del self.buffer[:end]
        return taken

    def say(self, *lines: str) -> None:
        text = "".join(f"{line[:3]}-{line[4:]}\r\n" for line in lines[:-1])
        self.writer.write(f"{text}{lines[-1]}\r\n".encode())

    async def run(self) -> None:
        self.say(f"220 {self.relay.hostname} ESMTP test relay")
        while (raw := await self.take()) is not None:
            if self.buffer and not self.relay.pipelining:
                self.relay._bump("unrequested")
            command = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            self.relay._log(command)
            verb, _, arg = command.partition(" ")
            if not await self.answer(verb.upper(), arg.strip()):
                break
            await self.writer.drain()

    async def answer(self, verb: str, arg: str) -> bool:
        """Answer one command; False ends the connection."""
        relay = self.relay
        if verb in ("EHLO", "HELO"):
            offered = {"PIPELINING": relay.pipelining, "CHUNKING": relay.chunking}
            offered |= {"8BITMIME": relay.eightbitmime, "SMTPUTF8": relay.smtputf8}
            names = [name for name, on in offered.items() if on] + ["ENHANCEDSTATUSCODES"]
            self.reset()
            self.say(f"250 {relay.hostname}", *(f"250 {n}" for n in names if verb == "EHLO"))
        elif verb == "MAIL":
            address, limit = _address(arg, "FROM:"), relay.messages_per_connection
            smtputf8 = relay.smtputf8 and "SMTPUTF8" in arg.upper().split()[1:]
            if limit is not None and self.messages >= limit:
                self.say("421 4.7.0 Too many messages on this connection, closing")
                return False
            if self.mail_from is not None:
                self.say("503 5.5.1 Error: nested MAIL command")
            elif address is None:
                self.say("501 5.5.4 Syntax: MAIL FROM:<address>")
            elif not address.isascii() and not smtputf8:
                self.say(UNICODE_REFUSED)
            else:
                self.mail_from, self.smtputf8 = address, smtputf8
                self.say("250 2.1.0 Ok")
        elif verb == "RCPT":
            address = _address(arg, "TO:")
            if self.mail_from is None:
                self.say("503 5.5.1 Error: need MAIL command")
            elif address is None:
                self.say("501 5.5.4 Syntax: RCPT TO:<address>")
            elif not address.isascii() and not self.smtputf8:
                self.say(UNICODE_REFUSED)
            elif verdict := relay._verdict(address):
                self.say(verdict)
            else:
                self.recipients.append(address)
                self.say("250 2.1.5 Ok")
        elif verb == "DATA":
            if self.mail_from is None or self.chunks:
                self.say("503 5.5.1 Error: need MAIL command, or BDAT was used")
            elif not self.recipients:
                self.say("554 5.5.1 Error: no valid recipients")
            else:
                self.say("354 End data with <CR><LF>.<CR><LF>")
                while (line := await self.take()) != b".\r\n":
                    if line is None:
                        return False
                    self.chunks.append(line[1:] if line.startswith(b".") else line)
                return self.accept()
        elif verb == "BDAT" and relay.chunking:
            words = arg.upper().split()
            if not words or not words[0].isdigit() or words[1:] not in ([], ["LAST"]):
                self.say("501 5.5.4 Syntax: BDAT size [LAST]")
                return False  # without the size, the next command cannot be found
            if (chunk := await self.take(int(words[0]))) is None:
                return False
            if self.mail_from is None:
                self.say("503 5.5.1 Error: need MAIL command")
            elif not self.recipients:
                self.say("554 5.5.1 Error: no valid recipients")  # RFC 3030: read, then refused
            elif words[1:]:
                self.chunks.append(chunk)
                return self.accept()
            else:
                self.chunks.append(chunk)
                self.say(f"250 2.0.0 {len(chunk)} octets received")
        elif verb in ("RSET", "NOOP"):
            if verb == "RSET":
                self.reset()
            self.say("250 2.0.0 Ok")
        elif verb == "QUIT":
            self.say("221 2.0.0 Bye")
            return False
        else:
            self.say("502 5.5.2 Error: command not recognized")
        return True

    def accept(self) -> bool:
        """The content arrived whole: keep it, or hang up without a reply when told to."""
        if self.relay._take_cut():
            return False
        assert self.mail_from is not None
        data = b"".join(self.chunks)
        self.relay._record(self.mail_from, self.recipients, data)
        self.messages += 1
        self.reset()
        self.say(f"250 2.0.0 Ok: {len(data)} octets queued")
        return True


class ChunkingSMTPServer:
    """A listener on 127.0.0.1 with its own thread; settings and faults may change as it runs."""

    def __init__(
        self,
        *,
        pipelining: bool = True,
        chunking: bool = True,
        eightbitmime: bool = True,
        smtputf8: bool = True,
        messages_per_connection: int | None = None,  # then 421 to MAIL, and hang up
        port: int | None = None,
        hostname: str = "relay.test",
    ) -> None:
        self.pipelining, self.chunking = pipelining, chunking
        self.eightbitmime, self.smtputf8 = eightbitmime, smtputf8
        self.messages_per_connection = messages_per_connection
        self.hostname = hostname
        self._port = port if port is not None else free_port()
        self._lock = threading.Condition()
        self._received: list[Received] = []
        self._commands: list[str] = []
        self._rejected: set[str] = set()
        self._deferrals: dict[str, int] = {}
        self._cuts = 0
        self._counts: Counter[str] = Counter()
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Listen on the port (the same one after a stop); returns once it accepts."""
        if self._thread is not None:
            raise RuntimeError("the chunking SMTP server is already running")
        ready, failure = threading.Event(), list[Exception]()
        self._thread = threading.Thread(target=self._serve, args=(ready, failure), daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread = None
            raise failure[0]

    def _serve(self, ready: threading.Event, failure: list[Exception]) -> None:
        loop = asyncio.new_event_loop()
        listen = asyncio.start_server(self._connected, HOST, self._port, reuse_address=True)
        try:
            server = loop.run_until_complete(listen)
        except Exception as error:
            failure.append(error)
            loop.close()
            ready.set()
            return
        self._loop = loop
        ready.set()
        loop.run_forever()
        loop.run_until_complete(self._shutdown(server))
        loop.close()

    async def _shutdown(self, server: asyncio.Server) -> None:
        server.close()
        self._abort_all()
        pending = asyncio.all_tasks() - {asyncio.current_task()}
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await server.wait_closed()

    def stop(self) -> None:
        """Close the listener and every connection; a no-op when already stopped."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread = self._loop = None

    def __enter__(self) -> ChunkingSMTPServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._bump("connections")
        self._writers.add(writer)
        asyncio.get_running_loop().create_task(self._session(reader, writer))

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _Session(self, reader, writer).run()
        except OSError:
            pass  # the client reset the connection
        finally:
            self._writers.discard(writer)
            writer.close()

    def _abort_all(self, done: threading.Event | None = None) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if done is not None:
            done.set()

    def hang_up(self) -> None:
        """Close every open connection from the relay's side now, as an idle timeout does."""
        if self._loop is not None:
            done = threading.Event()
            self._loop.call_soon_threadsafe(self._abort_all, done)
            done.wait(5)

    # -- faults ------------------------------------------------------------------------

    def reject_recipient(self, address: str) -> None:
        """Answer every RCPT TO for `address` with 550 5.1.1."""
        with self._lock:
            self._rejected.add(address.lower())

    def defer_recipient(self, address: str, *, times: int = 1) -> None:
        """Answer the next `times` RCPT TO for `address` with 451 4.3.0, then accept it."""
        with self._lock:
            self._deferrals[address.lower()] = times

    def cut_after_content(self, times: int = 1) -> None:
        """Read the next `times` messages whole, then hang up instead of replying."""
        with self._lock:
            self._cuts = times

    def _verdict(self, address: str) -> str | None:
        key = address.lower()
        with self._lock:
            if key in self._rejected:
                return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
            if self._deferrals.get(key, 0) > 0:
                self._deferrals[key] -= 1
                return "451 4.3.0 Try again later"
        return None

    def _take_cut(self) -> bool:
        with self._lock:
            self._cuts, cut = max(self._cuts - 1, 0), self._cuts > 0
        return cut

    def _bump(self, counter: str) -> None:
        with self._lock:
            self._counts[counter] += 1

    def _log(self, command: str) -> None:
        with self._lock:
            self._commands.append(command)

    def _record(self, mail_from: str, recipients: list[str], data: bytes) -> None:
        arrived = time.time()
        with self._lock:
            self._received += [Received(arrived, mail_from, r, data) for r in recipients]
            self._lock.notify_all()

    # -- observations ------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"smtp://{HOST}:{self._port}"

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        with self._lock:
            return self._counts["connections"]

    @property
    def unrequested_pipelining(self) -> int:
        """Commands that came with more input behind them while PIPELINING was not offered."""
        with self._lock:
            return self._counts["unrequested"]

    @property
    def commands(self) -> list[str]:
        """Every command line received, in order, over all connections (no message content)."""
        with self._lock:
            return list(self._commands)

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def wait_for(self, count: int, *, timeout: float) -> list[Received]:
        """Wait until at least `count` messages arrived; returns them all."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._received) < count:
                if (remaining := deadline - time.monotonic()) <= 0:
                    raise AssertionError(f"{len(self._received)} of {count} messages arrived")
                self._lock.wait(remaining)
            return list(self._received)
