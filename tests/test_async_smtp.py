"""AsyncSMTPConnection against real relays: aiosmtpd (no PIPELINING), Postfix's smtp-sink
(PIPELINING), and the chunking test relay with PIPELINING and CHUNKING, with one of them, or
with CHUNKING alone (which the connection must not use without PIPELINING).

Each relay must receive every message byte for byte, in as many round trips as its
extensions allow, and every failure must mean what it means for `SMTPTransport`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from distributor.demo import free_port
from distributor.errors import RelayUnavailableError, TransportError
from distributor.transport.async_smtp import AsyncSMTPConnection, RelayAddress
from distributor.transport.base import Envelope
from distributor.transport.smtp import relay_address_from_url
from tests.support.chunking_smtp import ChunkingSMTPServer
from tests.support.faulty_smtp import FaultySMTPServer
from tests.support.latency_proxy import LatencyProxy
from tests.support.silent_smtp import SilentServer

T = TypeVar("T")
SENDER = "press@example.org"
RTT_MS = 40
SMTP_SINK = next(
    (p for p in (shutil.which("smtp-sink"), "/usr/sbin/smtp-sink") if p and os.access(p, os.X_OK)),
    None,
)
DUMP_MARK = "=== message ==="


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def connection(port: int, *, timeout: float = 5.0) -> AsyncSMTPConnection:
    return AsyncSMTPConnection(RelayAddress("127.0.0.1", port, timeout=timeout))


def mail(recipient: str, body: str = "Embargoed until nine.") -> Envelope:
    data = f"From: {SENDER}\r\nTo: {recipient}\r\nSubject: Release\r\n\r\n{body}\r\n"
    return Envelope(SENDER, recipient, data.encode())


# -- the relays ------------------------------------------------------------------------------


class Relay(Protocol):
    kind: str
    port: int
    round_trips: int  # per message, as the relay's extensions allow

    def delivered(self, count: int) -> list[tuple[str, bytes]]:
        """(recipient, message) for the first `count` messages, waiting for them to arrive;
        line ends as the relay keeps them."""
        ...

    def as_kept(self, message: bytes) -> bytes:
        """A message as sent with CRLF line ends, as the relay keeps it."""
        ...

    def hang_up(self) -> None:
        """Close every open connection from the relay's side."""
        ...

    @property
    def connections(self) -> int | None: ...


class ServerRelay:
    """aiosmtpd (the faulty relay, with no fault set) or the chunking relay, in-process."""

    def __init__(self, kind: str, server: FaultySMTPServer | ChunkingSMTPServer) -> None:
        self.kind, self.server, self.port = kind, server, server.port
        pipelining = isinstance(server, ChunkingSMTPServer) and server.pipelining
        chunking = pipelining and isinstance(server, ChunkingSMTPServer) and server.chunking
        # Without PIPELINING: MAIL, RCPT, DATA and the content, each waiting for its reply.
        self.round_trips = 1 if chunking else 2 if pipelining else 4

    def delivered(self, count: int) -> list[tuple[str, bytes]]:
        return [(r.recipient, r.data) for r in self.server.wait_for(count, timeout=5)[:count]]

    def as_kept(self, message: bytes) -> bytes:
        return message

    def hang_up(self) -> None:
        if isinstance(self.server, ChunkingSMTPServer):
            self.server.hang_up()
        else:
            self.server.stop()
            self.server.start()

    @property
    def connections(self) -> int:
        return self.server.connections


class SinkRelay:
    """Postfix's smtp-sink, dumping every message to a file (with LF line ends, unstuffed)."""

    kind = "smtp-sink"
    round_trips = 2

    def __init__(self) -> None:
        assert SMTP_SINK is not None
        self.port = free_port()
        # smtp-sink writes the dump after giving up root: a folder anyone may write to.
        self.folder = Path(tempfile.mkdtemp(prefix="smtp-sink-"))
        self.folder.chmod(0o777)
        self.dump = self.folder / "dump"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert SMTP_SINK is not None
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        argv = [SMTP_SINK, *user, "-D", str(self.dump), "-S", DUMP_MARK + "\\n"]
        self._process = subprocess.Popen(
            [*argv, f"127.0.0.1:{self.port}", "100"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as probe:
                    if probe.recv(512).startswith(b"220"):
                        probe.sendall(b"QUIT\r\n")
                        return
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=5)
            self._process = None

    def hang_up(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _messages(self) -> list[tuple[str, bytes]]:
        if not self.dump.exists():
            return []
        found = []
        for part in self.dump.read_bytes().split(DUMP_MARK.encode() + b"\n")[1:]:
            # smtp-sink's own headers, ending with its three-line Received header.
            lines = part.split(b"\n")
            (recipient,) = [ln[len(b"X-Rcpt-Args: ") :] for ln in lines if ln.startswith(b"X-R")]
            received = next(i for i, ln in enumerate(lines) if ln.startswith(b"Received: "))
            message = b"\n".join(lines[received + 3 :])
            assert message.endswith(b"\n\n"), "a message ends with a line end and an empty line"
            found.append((recipient.decode().strip("<>"), message[:-1]))
        return found

    def delivered(self, count: int) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + 5
        size = -1
        while True:
            # The whole dump, once it holds `count` messages and has stopped growing.
            now = self.dump.stat().st_size if self.dump.exists() else 0
            if now == size and len(found := self._messages()) >= count:
                return found[:count]
            assert time.monotonic() < deadline, f"{len(self._messages())} of {count} arrived"
            size = now
            time.sleep(0.05)

    def as_kept(self, message: bytes) -> bytes:
        return message.replace(b"\r\n", b"\n")

    @property
    def connections(self) -> None:
        return None


KINDS = ["aiosmtpd", "smtp-sink", "pipelining+chunking", "pipelining-only", "chunking-only"]
CHUNKING_RELAY_FLAGS: dict[str, dict[str, Any]] = {
    "pipelining+chunking": {"pipelining": True, "chunking": True},
    "pipelining-only": {"pipelining": True, "chunking": False},
    "chunking-only": {"pipelining": False, "chunking": True},
}


def start_relay(kind: str) -> Relay:
    if kind == "smtp-sink":
        if SMTP_SINK is None:
            pytest.skip("Postfix's smtp-sink is not installed")
        sink = SinkRelay()
        sink.start()
        return sink
    server: FaultySMTPServer | ChunkingSMTPServer
    if kind == "aiosmtpd":
        server = FaultySMTPServer()
    else:
        server = ChunkingSMTPServer(**CHUNKING_RELAY_FLAGS[kind])
    server.start()
    return ServerRelay(kind, server)


def stop_relay(relay: Relay) -> None:
    if isinstance(relay, SinkRelay):
        relay.remove()
    elif isinstance(relay, ServerRelay):
        relay.server.stop()


@pytest.fixture(params=KINDS)
def relay(request: pytest.FixtureRequest) -> Iterator[Relay]:
    started = start_relay(request.param)
    yield started
    stop_relay(started)


@pytest.fixture(params=[k for k in KINDS if k != "smtp-sink"])
def faulty_relay(request: pytest.FixtureRequest) -> Iterator[ServerRelay]:
    """A relay that can refuse or defer chosen recipients."""
    started = start_relay(request.param)
    assert isinstance(started, ServerRelay)
    yield started
    stop_relay(started)


@pytest.fixture(params=list(CHUNKING_RELAY_FLAGS))
def chunking_relay(request: pytest.FixtureRequest) -> Iterator[ChunkingSMTPServer]:
    with ChunkingSMTPServer(**CHUNKING_RELAY_FLAGS[request.param]) as server:
        yield server


# -- the test relay itself -------------------------------------------------------------------


def test_the_chunking_relay_answers_pipelined_bdat_as_rfc_3030_says() -> None:
    conversation = [
        (b"EHLO client.test\r\n", "250"),
        # Two chunks, pipelined with the envelope; a refused recipient is left out.
        (b"MAIL FROM:<a@example.org>\r\nRCPT TO:<gone@example.org>\r\n", "250 550"),
        (b"RCPT TO:<b@example.org>\r\nBDAT 5\r\n.one\nBDAT 7 LAST\r\n\r\ntwo\r\n", "250 250 250"),
        # Every recipient refused: the chunk is read, then refused; the transaction stays
        # open until RSET.
        (
            b"MAIL FROM:<a@example.org>\r\nRCPT TO:<gone@example.org>\r\nBDAT 3 LAST\r\nabc",
            "250 550 554",
        ),
        (b"MAIL FROM:<a@example.org>\r\n", "503"),
        (b"RSET\r\nNOOP\r\nQUIT\r\n", "250 250 221"),
    ]
    with ChunkingSMTPServer() as server:
        server.reject_recipient("gone@example.org")
        client = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        with client, client.makefile("rb") as replies:
            assert replies.readline().startswith(b"220")
            for sent, expected in conversation:
                client.sendall(sent)
                codes: list[str] = []
                while len(codes) < len(expected.split()):
                    line = replies.readline()
                    assert line, f"the relay hung up after {codes}"
                    if line[3:4] == b" ":
                        codes.append(line[:3].decode())
                assert " ".join(codes) == expected, sent
        (received,) = server.wait_for(1, timeout=5)

    assert (received.mail_from, received.recipient) == ("a@example.org", "b@example.org")
    assert received.data == b".one\n\r\ntwo\r\n"  # BDAT content is taken as it is
    assert server.connections == 1


# -- the bytes that arrive -------------------------------------------------------------------

# (recipient, message as given, recipient as the relay sees it, message as sent with CRLF)
MESSAGES = [
    (
        "desk@news.example.com",
        b"Subject: Plain\r\n\r\nOne line.\r\nAnother line.\r\n",
        "desk@news.example.com",
        b"Subject: Plain\r\n\r\nOne line.\r\nAnother line.\r\n",
    ),
    (
        "dots@news.example.com",
        b"Subject: Dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\n...\r\nafter a lone dot\r\n",
        "dots@news.example.com",
        b"Subject: Dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\n...\r\nafter a lone dot\r\n",
    ),
    (
        "noend@news.example.com",
        b"Subject: No end\r\n\r\nthe last line has no line end",
        "noend@news.example.com",
        b"Subject: No end\r\n\r\nthe last line has no line end\r\n",
    ),
    (
        "bare@news.example.com",
        b"Subject: Bare LF\n\nfirst\nsecond\n",
        "bare@news.example.com",
        b"Subject: Bare LF\r\n\r\nfirst\r\nsecond\r\n",
    ),
    (
        "utf8@news.example.com",
        "Subject: 8bit\r\n\r\nGrüße aus Köln: “quoted” ✓\r\n.Überschrift\r\n".encode(),
        "utf8@news.example.com",
        "Subject: 8bit\r\n\r\nGrüße aus Köln: “quoted” ✓\r\n.Überschrift\r\n".encode(),
    ),
    (
        "zoe@bücher.example",
        b"Subject: IDN\r\n\r\nhello\r\n",
        "zoe@xn--bcher-kva.example",
        b"Subject: IDN\r\n\r\nhello\r\n",
    ),
    (
        "first-dot@news.example.com",
        b".the very first line starts with a dot\r\n\r\nbody\r\n",
        "first-dot@news.example.com",
        b".the very first line starts with a dot\r\n\r\nbody\r\n",
    ),
]


def test_every_relay_receives_each_message_byte_for_byte_over_one_connection(
    relay: Relay,
) -> None:
    async def scenario() -> tuple[list[str], int, int]:
        smtp = connection(relay.port)
        try:
            replies = [await smtp.send(Envelope(SENDER, to, data)) for to, data, _, _ in MESSAGES]
            return replies, smtp.round_trips, smtp.transactions
        finally:
            await smtp.close()

    replies, round_trips, transactions = run(scenario())

    assert all(reply.startswith("250") for reply in replies)
    assert relay.delivered(len(MESSAGES)) == [
        (seen_as, relay.as_kept(sent)) for _, _, seen_as, sent in MESSAGES
    ]
    assert transactions == len(MESSAGES)
    assert round_trips == relay.round_trips * len(MESSAGES)
    if relay.connections is not None:
        assert relay.connections == 1


def test_each_message_costs_the_round_trips_its_relays_extensions_allow(relay: Relay) -> None:
    count = 3

    async def scenario(port: int) -> tuple[float, float]:
        smtp = connection(port)
        try:
            await smtp.open()
            started = time.perf_counter()
            for i in range(count):
                await smtp.send(mail(f"reporter{i}@news.example.com"))
            elapsed = time.perf_counter() - started
            return elapsed / count, smtp.round_trips / smtp.transactions
        finally:
            await smtp.close()

    with LatencyProxy("127.0.0.1", relay.port, RTT_MS) as proxy:
        per_message, round_trips = run(scenario(proxy.port))

    if relay.round_trips >= 3:
        assert round_trips >= 3
    else:
        assert round_trips == relay.round_trips
    # Every round trip takes at least the RTT; loopback and CPU time add a few milliseconds.
    rtt = RTT_MS / 1000
    assert round_trips * rtt * 0.95 <= per_message <= (round_trips + 1) * rtt
    assert len(relay.delivered(count)) == count


def test_without_pipelining_chunking_is_not_used_and_nothing_is_pipelined() -> None:
    async def scenario(port: int) -> None:
        smtp = connection(port)
        try:
            for i in range(3):
                await smtp.send(mail(f"desk{i}@news.example.com"))
        finally:
            await smtp.close()

    with ChunkingSMTPServer(pipelining=False, chunking=True) as server:
        run(scenario(server.port))
        assert len(server.wait_for(3, timeout=5)) == 3
        verbs = [command.split(" ", 1)[0] for command in server.commands]

    assert "BDAT" not in verbs
    assert verbs.count("DATA") == 3
    assert server.unrequested_pipelining == 0


def test_with_both_extensions_each_message_is_one_bdat_last() -> None:
    async def scenario(port: int) -> None:
        smtp = connection(port)
        try:
            for i in range(2):
                await smtp.send(mail(f"desk{i}@news.example.com"))
        finally:
            await smtp.close()

    with ChunkingSMTPServer() as server:
        run(scenario(server.port))
        received = server.wait_for(2, timeout=5)
        commands = server.commands

    bdats = [command for command in commands if command.startswith("BDAT")]
    assert bdats == [f"BDAT {len(r.data)} LAST" for r in received]
    assert not any(command.startswith("DATA") for command in commands)


# -- refusals --------------------------------------------------------------------------------


def test_a_refused_recipient_is_a_permanent_550_and_the_next_message_still_goes(
    faulty_relay: ServerRelay,
) -> None:
    faulty_relay.server.reject_recipient("gone@news.example.com")

    async def scenario() -> TransportError:
        smtp = connection(faulty_relay.port)
        try:
            await smtp.send(mail("first@news.example.com"))
            with pytest.raises(TransportError) as refused:
                await smtp.send(mail("gone@news.example.com"))
            assert (await smtp.send(mail("after@news.example.com"))).startswith("250")
            return refused.value
        finally:
            await smtp.close()

    refused = run(scenario())

    assert not isinstance(refused, RelayUnavailableError)
    assert refused.code == 550
    assert refused.temporary is False
    assert "550" in str(refused)
    delivered = faulty_relay.delivered(2)
    assert [to for to, _ in delivered] == ["first@news.example.com", "after@news.example.com"]
    assert faulty_relay.connections == 1, "the refusal cost a new connection"
    server = faulty_relay.server
    if isinstance(server, ChunkingSMTPServer):
        commands = server.commands
        after = commands[next(i for i, c in enumerate(commands) if "gone@" in c) :]
        # With PIPELINING, DATA or BDAT went along with the refused RCPT and was refused in
        # turn; then RSET ended the transaction.
        content = "BDAT" if server.pipelining and server.chunking else "DATA"
        expected = [content, "RSET"] if server.pipelining else ["RSET"]
        assert [c.split(" ", 1)[0] for c in after[1 : 1 + len(expected)]] == expected


def test_a_deferred_recipient_is_temporary_and_goes_when_tried_again(
    faulty_relay: ServerRelay,
) -> None:
    faulty_relay.server.defer_recipient("busy@news.example.com", times=1)

    async def scenario() -> TransportError:
        smtp = connection(faulty_relay.port)
        try:
            with pytest.raises(TransportError) as deferred:
                await smtp.send(mail("busy@news.example.com"))
            assert (await smtp.send(mail("busy@news.example.com"))).startswith("250")
            return deferred.value
        finally:
            await smtp.close()

    deferred = run(scenario())

    assert not isinstance(deferred, RelayUnavailableError)
    assert deferred.code == 451
    assert deferred.temporary is True
    assert [to for to, _ in faulty_relay.delivered(1)] == ["busy@news.example.com"]
    assert faulty_relay.connections == 1


def test_a_non_ascii_local_part_goes_as_smtputf8(chunking_relay: ChunkingSMTPServer) -> None:
    async def scenario() -> str:
        smtp = connection(chunking_relay.port)
        try:
            return await smtp.send(Envelope(SENDER, "zoë@example.com", b"Subject: y\r\n\r\nhi\r\n"))
        finally:
            await smtp.close()

    assert run(scenario()).startswith("250")
    (received,) = chunking_relay.wait_for(1, timeout=5)
    assert received.recipient == "zoë@example.com"


def test_a_non_ascii_local_part_without_smtputf8_is_refused_before_anything_is_sent() -> None:
    async def scenario(port: int) -> TransportError:
        smtp = connection(port)
        try:
            with pytest.raises(TransportError) as refused:
                await smtp.send(Envelope(SENDER, "zoë@example.com", b"Subject: y\r\n\r\nhi\r\n"))
            assert (await smtp.send(mail("desk@news.example.com"))).startswith("250")
            return refused.value
        finally:
            await smtp.close()

    with ChunkingSMTPServer(smtputf8=False) as server:
        refused = run(scenario(server.port))
        (received,) = server.wait_for(1, timeout=5)
        commands = server.commands

    assert "SMTPUTF8" in str(refused)
    assert refused.temporary is False
    assert received.recipient == "desk@news.example.com"
    assert not any("zo" in command for command in commands)


# -- the relay unavailable, or the connection lost -------------------------------------------


def test_a_relay_that_answers_421_at_the_greeting_is_unavailable() -> None:
    async def scenario(port: int) -> tuple[RelayUnavailableError, bool]:
        smtp = connection(port)
        with pytest.raises(RelayUnavailableError) as busy:
            await smtp.send(mail("desk@news.example.com"))
        return busy.value, smtp.is_open

    with FaultySMTPServer() as server:
        server.busy_for(30)
        unavailable, still_open = run(scenario(server.port))
        assert server.received == []

    assert unavailable.code == 421
    assert unavailable.temporary is True
    assert "421" in str(unavailable)
    assert still_open is False


def test_a_relay_that_is_down_is_unavailable_and_named() -> None:
    port = free_port()

    async def scenario() -> RelayUnavailableError:
        with pytest.raises(RelayUnavailableError) as down:
            await connection(port).send(mail("desk@news.example.com"))
        return down.value

    down = run(scenario())

    assert down.temporary is True
    assert f"127.0.0.1:{port}" in str(down)


def test_a_relay_url_gives_the_address_to_send_to_and_starttls_is_never_skipped() -> None:
    async def scenario(url: str) -> str:
        smtp = AsyncSMTPConnection(relay_address_from_url(url, timeout=5))
        try:
            return await smtp.send(mail("desk@news.example.com"))
        finally:
            await smtp.close()

    with ChunkingSMTPServer() as server:
        assert run(scenario(server.url)).startswith("250")
        # This relay does not offer STARTTLS: nothing may go in plain text.
        with pytest.raises(RelayUnavailableError):
            run(scenario(f"{server.url}?starttls=true"))
        assert [r.recipient for r in server.received] == ["desk@news.example.com"]
        assert "STARTTLS" in server.commands


def test_a_relay_that_never_answers_is_unavailable_once_the_timeout_passes() -> None:
    async def scenario(port: int) -> float:
        smtp = connection(port, timeout=0.5)
        started = time.perf_counter()
        with pytest.raises(RelayUnavailableError):
            await smtp.send(mail("desk@news.example.com"))
        return time.perf_counter() - started

    with SilentServer() as silent:
        elapsed = run(scenario(silent.port))

    assert 0.45 <= elapsed < 1.0


def test_a_connection_the_relay_closed_while_idle_is_reopened_for_the_next_message(
    relay: Relay,
) -> None:
    async def scenario() -> str:
        smtp = connection(relay.port)
        try:
            await smtp.send(mail("before@news.example.com"))
            await asyncio.to_thread(relay.hang_up)
            await asyncio.sleep(0.05)  # the relay's FIN arrives while the connection is idle
            return await smtp.send(mail("after@news.example.com"))
        finally:
            await smtp.close()

    assert run(scenario()).startswith("250")

    recipients = [to for to, _ in relay.delivered(2)]
    assert recipients == ["before@news.example.com", "after@news.example.com"]
    if relay.connections is not None:
        assert relay.connections == 2


def test_a_relay_that_closes_with_421_after_some_messages_is_reconnected_to(
    chunking_relay: ChunkingSMTPServer,
) -> None:
    chunking_relay.messages_per_connection = 2
    recipients = [f"desk{i}@news.example.com" for i in range(5)]

    async def scenario() -> list[str]:
        smtp = connection(chunking_relay.port)
        try:
            return [await smtp.send(mail(to)) for to in recipients]
        finally:
            await smtp.close()

    assert all(reply.startswith("250") for reply in run(scenario()))
    assert [r.recipient for r in chunking_relay.wait_for(5, timeout=5)] == recipients
    assert chunking_relay.connections == 3


def test_a_connection_opened_ahead_and_closed_while_idle_is_reopened_for_the_first_message(
    chunking_relay: ChunkingSMTPServer,
) -> None:
    # Connections are opened before the embargo lifts; the relay may close them meanwhile.
    async def scenario() -> str:
        smtp = connection(chunking_relay.port)
        try:
            await smtp.open()
            chunking_relay.hang_up()
            await asyncio.sleep(0.05)
            return await smtp.send(mail("first@news.example.com"))
        finally:
            await smtp.close()

    assert run(scenario()).startswith("250")
    assert [r.recipient for r in chunking_relay.wait_for(1, timeout=5)] == [
        "first@news.example.com"
    ]
    assert chunking_relay.connections == 2


def test_a_relay_that_refuses_a_new_connection_with_421_is_unavailable_at_once(
    chunking_relay: ChunkingSMTPServer,
) -> None:
    async def scenario() -> RelayUnavailableError:
        smtp = connection(chunking_relay.port)
        try:
            await smtp.send(mail("first@news.example.com"))
            await smtp.close()
            chunking_relay.messages_per_connection = 0  # 421 to every MAIL from now on
            with pytest.raises(RelayUnavailableError) as refused:
                await smtp.send(mail("second@news.example.com"))
            return refused.value
        finally:
            await smtp.close()

    run(scenario())

    # The connection was opened for this message: the 421 is the relay's answer, not a
    # kept connection gone stale, so no second connection is tried.
    assert chunking_relay.connections == 2


def test_a_421_to_mail_is_reported_with_its_code_and_text(
    chunking_relay: ChunkingSMTPServer,
) -> None:
    chunking_relay.messages_per_connection = 0

    async def scenario() -> RelayUnavailableError:
        with pytest.raises(RelayUnavailableError) as refused:
            await connection(chunking_relay.port).send(mail("desk@news.example.com"))
        return refused.value

    refused = run(scenario())

    assert refused.code == 421
    assert "Too many messages" in str(refused)


def test_a_connection_lost_mid_transaction_is_a_temporary_error_and_not_retried(
    chunking_relay: ChunkingSMTPServer,
) -> None:

    async def scenario() -> TransportError:
        smtp = connection(chunking_relay.port)
        try:
            await smtp.send(mail("first@news.example.com"))
            chunking_relay.cut_after_content()
            with pytest.raises(TransportError) as lost:
                await smtp.send(mail("cut@news.example.com"))
            assert chunking_relay.connections == 1, "the message went again on a new connection"
            # The next message opens a new connection.
            assert (await smtp.send(mail("next@news.example.com"))).startswith("250")
            return lost.value
        finally:
            await smtp.close()

    lost = run(scenario())

    assert type(lost) is TransportError
    assert lost.temporary is True
    assert [r.recipient for r in chunking_relay.wait_for(2, timeout=5)] == [
        "first@news.example.com",
        "next@news.example.com",
    ]
    assert chunking_relay.connections == 2


# -- many connections, and closing them ------------------------------------------------------


def test_many_connections_to_one_relay_deliver_every_message_exactly_once(relay: Relay) -> None:
    connections, per_connection = 20, 5

    async def one(number: int) -> list[str]:
        smtp = connection(relay.port)
        try:
            return [
                await smtp.send(mail(f"c{number}m{i}@news.example.com"))
                for i in range(per_connection)
            ]
        finally:
            await smtp.close()

    async def scenario() -> list[list[str]]:
        return await asyncio.gather(*(one(n) for n in range(connections)))

    replies = run(scenario())

    assert all(reply.startswith("250") for some in replies for reply in some)
    total = connections * per_connection
    delivered = relay.delivered(total)
    time.sleep(0.1)
    assert len(relay.delivered(total)) == total  # and nothing more arrives
    counts = Counter(to for to, _ in delivered)
    assert len(counts) == total
    assert set(counts.values()) == {1}
    for to, data in delivered:
        assert relay.as_kept(f"To: {to}\r\n".encode()) in data
    if relay.connections is not None:
        assert relay.connections == connections


def test_close_says_quit_once_and_can_be_called_again(chunking_relay: ChunkingSMTPServer) -> None:
    async def scenario() -> None:
        never_opened = connection(chunking_relay.port)
        await never_opened.close()
        smtp = connection(chunking_relay.port)
        await smtp.send(mail("before@news.example.com"))
        await smtp.close()
        assert not smtp.is_open
        await smtp.close()
        # Closed, the connection opens again for the next message.
        await smtp.send(mail("after@news.example.com"))
        chunking_relay.hang_up()
        await asyncio.sleep(0.05)
        await asyncio.wait_for(smtp.close(), 1)  # a relay that already hung up

    run(scenario())

    assert chunking_relay.commands.count("QUIT") == 1
    assert chunking_relay.connections == 2
    assert len(chunking_relay.wait_for(2, timeout=5)) == 2


def test_close_is_clean_with_every_relay(relay: Relay) -> None:
    async def scenario() -> None:
        smtp = connection(relay.port)
        await smtp.send(mail("desk@news.example.com"))
        await asyncio.wait_for(smtp.close(), 1)
        await smtp.close()
        assert not smtp.is_open

    run(scenario())
    assert len(relay.delivered(1)) == 1


def test_pipelining_across_messages_costs_one_round_trip_each() -> None:
    # A relay with PIPELINING but no CHUNKING: the next message's envelope rides with the
    # end of the one before.
    with ChunkingSMTPServer(pipelining=True, chunking=False) as server:
        server.reject_recipient("gone@news.example.com")
        recipients = [f"desk{i}@news.example.com" for i in range(8)]
        recipients.insert(4, "gone@news.example.com")
        envelopes = [mail(r) for r in recipients]

        async def scenario() -> tuple[list[str], AsyncSMTPConnection]:
            smtp = connection(server.port)
            outcomes = []
            for envelope, following in zip(envelopes, [*envelopes[1:], None], strict=True):
                try:
                    outcomes.append(await smtp.send(envelope, then=following))
                except TransportError as refused:
                    outcomes.append(f"refused {refused.code}")
            await smtp.close()
            return outcomes, smtp

        outcomes, smtp = run(scenario())

        assert outcomes[4] == "refused 550"
        assert sum(o.startswith("250") for o in outcomes) == 8
        received = server.wait_for(8, timeout=5)
        assert sorted(r.recipient for r in received) == sorted(
            r for r in recipients if not r.startswith("gone")
        )
        # one round trip a message, plus the RSET after the refusal and the first envelope
        assert smtp.round_trips <= len(envelopes) + 2
        assert server.connections == 1


def test_an_announced_message_is_never_delivered_when_the_sender_stops() -> None:
    with ChunkingSMTPServer(pipelining=True, chunking=False) as server:

        async def scenario() -> None:
            smtp = connection(server.port)
            await smtp.send(mail("first@news.example.com"), then=mail("second@news.example.com"))
            # The worker is told to stop before the announced message goes: closing must not
            # finish it as an empty message.
            await smtp.close()

        run(scenario())
        time.sleep(0.2)
        assert [r.recipient for r in server.received] == ["first@news.example.com"]
