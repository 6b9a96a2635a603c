"""The mail transport contract, held by the in-memory transport and by real SMTP alike."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from distributor.errors import ConfigurationError, TransportError
from distributor.transport import (
    Envelope,
    InMemoryTransport,
    MailTransport,
    SMTPTransport,
    transport_from_url,
)
from distributor.transport.wire import NeedsSMTPUTF8, data_payload, envelope_address
from tests.support.smtp import RecordingSMTPServer


def message(recipient: str, subject: str = "Embargoed") -> Envelope:
    data = (
        f"From: press@example.org\r\nTo: {recipient}\r\nSubject: {subject}\r\n\r\n"
        "Body line one.\r\n.A line that starts with a dot.\r\n"
    ).encode()
    return Envelope(sender="press@example.org", recipient=recipient, data=data)


def count_connections(server: RecordingSMTPServer) -> list[str]:
    """Each SMTP connection greets with EHLO once; keep every greeting the server sees."""
    greetings: list[str] = []

    async def handle_EHLO(
        server_: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        greetings.append(hostname)
        session.host_name = hostname  # what aiosmtpd does itself when no hook is set
        return responses

    server.handler.handle_EHLO = handle_EHLO  # type: ignore[attr-defined]
    return greetings


def refuse_like_the_recording_server(envelope: Envelope) -> TransportError | None:
    if "refuse" in envelope.recipient:
        return TransportError(
            "relay refused the recipient: 550 5.1.1 No such mailbox here", code=550
        )
    return None


@dataclass
class Harness:
    transport: MailTransport
    delivered: Callable[[], list[tuple[str, bytes]]]
    connections: list[str] | None = field(default=None)


@pytest.fixture(params=["memory", "smtp"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "memory":
        memory = InMemoryTransport(refuse=refuse_like_the_recording_server)
        yield Harness(memory, lambda: [(e.recipient, e.data) for e in memory.sent])
        return
    server: RecordingSMTPServer = request.getfixturevalue("smtp_server")
    connections = count_connections(server)
    smtp = SMTPTransport("127.0.0.1", server.port, timeout=10)
    try:
        yield Harness(smtp, lambda: [(r.recipient, r.data) for r in server.received], connections)
    finally:
        smtp.close()


def test_an_accepted_message_returns_the_relays_250_reply(harness: Harness) -> None:
    reply = harness.transport.send(message("alice@news.example.com"))

    assert reply.startswith("250")
    ((recipient, data),) = harness.delivered()
    assert recipient == "alice@news.example.com"
    assert b"Subject: Embargoed" in data
    assert b".A line that starts with a dot." in data


def test_a_refused_recipient_raises_a_permanent_550_and_the_next_message_still_goes(
    harness: Harness,
) -> None:
    harness.transport.send(message("first@news.example.com"))

    with pytest.raises(TransportError) as refused:
        harness.transport.send(message("refuse-me@news.example.com"))

    assert refused.value.code == 550
    assert refused.value.temporary is False
    assert "550" in str(refused.value)
    reply = harness.transport.send(message("bob@news.example.com"))
    assert reply.startswith("250")
    assert [r for r, _ in harness.delivered()] == [
        "first@news.example.com",
        "bob@news.example.com",
    ]
    if harness.connections is not None:
        assert len(harness.connections) == 1, "the refusal cost a new connection"


def test_many_messages_share_one_connection(harness: Harness) -> None:
    recipients = [f"reporter{i}@news.example.com" for i in range(8)]

    replies = [harness.transport.send(message(r, f"Number {i}")) for i, r in enumerate(recipients)]

    assert all(r.startswith("250") for r in replies)
    delivered = harness.delivered()
    assert [r for r, _ in delivered] == recipients
    assert all(f"Subject: Number {i}".encode() in d for i, (_, d) in enumerate(delivered))
    if harness.connections is not None:
        assert len(harness.connections) == 1


def test_after_close_the_transport_can_send_again(harness: Harness) -> None:
    harness.transport.send(message("before@news.example.com"))
    harness.transport.close()

    assert harness.transport.send(message("after@news.example.com")).startswith("250")
    assert [r for r, _ in harness.delivered()] == [
        "before@news.example.com",
        "after@news.example.com",
    ]
    if harness.connections is not None:
        assert len(harness.connections) == 2


class HangUp:
    """Lets a test close, from the relay's side, the connection its last message came on."""

    def __init__(self, server: RecordingSMTPServer) -> None:
        self._last: tuple[asyncio.AbstractEventLoop, Any] | None = None
        original = server.handler.handle_DATA

        async def handle_DATA(server_: Any, session: Any, envelope: Any) -> str:
            self._last = (asyncio.get_running_loop(), server_)
            return await original(server_, session, envelope)

        server.handler.handle_DATA = handle_DATA  # type: ignore[method-assign, assignment]

    def now(self) -> None:
        assert self._last is not None, "no message arrived yet"
        loop, protocol = self._last

        async def close() -> None:
            protocol.transport.close()

        asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=5)


def test_a_connection_the_relay_closed_is_reopened_for_the_next_message(
    smtp_server: RecordingSMTPServer,
) -> None:
    # Relays close idle connections, or after so many messages; nothing is lost by that.
    connections = count_connections(smtp_server)
    hang_up = HangUp(smtp_server)
    transport = SMTPTransport("127.0.0.1", smtp_server.port, timeout=5)
    try:
        transport.send(message("first@news.example.com"))
        hang_up.now()

        reply = transport.send(message("second@news.example.com"))
    finally:
        transport.close()

    assert reply.startswith("250")
    assert [r.recipient for r in smtp_server.received] == [
        "first@news.example.com",
        "second@news.example.com",
    ]
    assert len(connections) == 2


def test_a_relay_closing_the_connection_with_421_is_reconnected_to(
    smtp_server: RecordingSMTPServer,
) -> None:
    connections = count_connections(smtp_server)
    mails_on: dict[int, int] = {}

    async def handle_MAIL(
        server_: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        # At most two messages per connection, as some relays do.
        mails_on[id(session)] = mails_on.get(id(session), 0) + 1
        if mails_on[id(session)] > 2:
            return "421 4.7.0 Too many messages on this connection, closing"
        envelope.mail_from = address
        return "250 OK"

    smtp_server.handler.handle_MAIL = handle_MAIL  # type: ignore[attr-defined]
    transport = SMTPTransport("127.0.0.1", smtp_server.port, timeout=5)
    recipients = [f"desk{i}@news.example.com" for i in range(5)]
    try:
        replies = [transport.send(message(r)) for r in recipients]
    finally:
        transport.close()

    assert all(r.startswith("250") for r in replies)
    assert [r.recipient for r in smtp_server.received] == recipients
    assert len(connections) == 3


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_relay_that_is_down_is_a_temporary_error_naming_it() -> None:
    port = unused_port()
    transport = SMTPTransport("127.0.0.1", port, timeout=5)

    with pytest.raises(TransportError) as down:
        transport.send(message("alice@news.example.com"))

    assert down.value.temporary is True
    assert f"127.0.0.1:{port}" in str(down.value)
    transport.close()


def test_a_relay_that_does_not_offer_starttls_is_not_used_in_plain_text(
    smtp_server: RecordingSMTPServer,
) -> None:
    transport = transport_from_url(f"{smtp_server.url}?starttls=true", timeout=5)

    with pytest.raises(TransportError) as refused:
        transport.send(message("alice@news.example.com"))

    assert refused.value.temporary is True
    assert smtp_server.received == []
    transport.close()


def test_a_url_builds_a_transport_that_sends(smtp_server: RecordingSMTPServer) -> None:
    transport = transport_from_url(smtp_server.url, timeout=5)
    try:
        assert (transport.host, transport.port) == ("127.0.0.1", smtp_server.port)
        assert transport.send(message("alice@news.example.com")).startswith("250")
    finally:
        transport.close()
    assert [r.recipient for r in smtp_server.received] == ["alice@news.example.com"]


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("smtp://relay.example.org", "relay.example.org", 25),
        ("smtps://relay.example.org", "relay.example.org", 465),
        ("smtp://relay.example.org:587?starttls=true", "relay.example.org", 587),
        ("smtp://user:p%40ss@relay.example.org:2525", "relay.example.org", 2525),
    ],
)
def test_good_urls_name_the_host_and_default_port(url: str, host: str, port: int) -> None:
    transport = transport_from_url(url)
    assert (transport.host, transport.port) == (host, port)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "relay.example.org:25",
        "http://relay.example.org",
        "smtp://",
        "smtp:///no-host",
        "smtp://relay.example.org:twenty-five",
        "smtp://relay.example.org:70000",
        "smtp://relay.example.org:0",
        "smtp://relay.example.org:587?starttls=ture",
    ],
)
def test_bad_urls_are_refused_with_a_message_naming_them(url: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        transport_from_url(url)
    assert repr(url) in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "smtp://press:s3cret-pass@relay.example.org:none",
        "http://press:s3cret-pass@relay.example.org",
    ],
)
def test_a_refused_url_does_not_show_its_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        transport_from_url(url)
    assert "s3cret-pass" not in str(refused.value)
    assert "press:***@relay.example.org" in str(refused.value)


def test_envelope_addresses_with_idn_domains_reach_the_relay_in_ascii(
    smtp_server: RecordingSMTPServer,
) -> None:
    transport = SMTPTransport("127.0.0.1", smtp_server.port, timeout=5)
    try:
        transport.send(Envelope("press@example.org", "zoe@bücher.example", b"Subject: x\r\n\r\nhi"))
        # This relay offers SMTPUTF8, so a non-ASCII local part may go as it is.
        transport.send(Envelope("press@example.org", "zoë@example.com", b"Subject: y\r\n\r\n"))
    finally:
        transport.close()
    first, second = smtp_server.wait_for(2, timeout=5)
    assert first.recipient == "zoe@xn--bcher-kva.example"
    assert second.recipient == "zoë@example.com"


def test_a_non_ascii_local_part_without_smtputf8_is_refused_by_name() -> None:
    assert (
        envelope_address("desk@bücher.example", smtputf8=False) == b"<desk@xn--bcher-kva.example>"
    )
    with pytest.raises(NeedsSMTPUTF8, match="SMTPUTF8"):
        envelope_address("zoë@example.com", smtputf8=False)
    assert data_payload(b".a\r\nb\nc") == b"..a\r\nb\r\nc\r\n.\r\n"


def test_message_lines_starting_with_a_dot_arrive_intact(
    smtp_server: RecordingSMTPServer,
) -> None:
    body = b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\nlast line without end"
    transport = SMTPTransport("127.0.0.1", smtp_server.port, timeout=5)
    try:
        transport.send(Envelope("press@example.org", "desk@news.example.com", body))
    finally:
        transport.close()
    (received,) = smtp_server.wait_for(1, timeout=5)
    assert received.data.replace(b"\r\n", b"\n").rstrip(b"\n") == body.replace(b"\r\n", b"\n")
