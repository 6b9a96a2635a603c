"""The misbehaving servers of the chaos tests do what they promise, over real sockets."""

from __future__ import annotations

import base64
import os
import smtplib
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from tests.support.faulty_smtp import FaultySMTPServer
from tests.support.latency_proxy import LatencyProxy
from tests.support.private_redis import PrivateRedis
from tests.support.silent_smtp import SilentServer

T = TypeVar("T")

SENDER = "press@distributor.test"
MESSAGE = b"Subject: Embargoed\r\n\r\nNot before the embargo.\r\n"


def poll(attempt: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Retry `attempt` until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while True:
        result = attempt()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.01)


def read_until_closed(port: int, timeout: float = 2.0) -> bytes:
    """Everything the server sends on a fresh connection before it hangs up."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
        return received


def connect(port: int) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", port, timeout=2)


@pytest.fixture
def relay() -> Iterator[FaultySMTPServer]:
    with FaultySMTPServer() as server:
        yield server


# -- FaultySMTPServer --------------------------------------------------------------------


def test_busy_relay_greets_with_421_and_hangs_up_then_accepts(relay: FaultySMTPServer) -> None:
    deadline = time.monotonic() + 0.4
    relay.busy_until(deadline)

    assert read_until_closed(relay.port) == b"421 4.3.2 Service temporarily unavailable\r\n"
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        connect(relay.port)
    assert refused.value.smtp_code == 421

    def try_send() -> dict[str, tuple[int, bytes]] | None:
        try:
            with connect(relay.port) as client:
                return client.sendmail(SENDER, ["desk@news.test"], MESSAGE)
        except smtplib.SMTPConnectError:
            return None

    assert poll(try_send, timeout=5, what="acceptance after the busy spell") == {}
    assert time.monotonic() >= deadline
    assert [r.recipient for r in relay.wait_for(1, timeout=2)] == ["desk@news.test"]
    assert relay.connections >= 4


def test_busy_for_zero_ends_a_busy_spell(relay: FaultySMTPServer) -> None:
    relay.busy_for(60)
    assert read_until_closed(relay.port).startswith(b"421 ")
    relay.busy_for(0)
    with connect(relay.port) as client:
        assert client.noop()[0] == 250


def test_deferred_recipient_gets_451_twice_then_is_accepted(relay: FaultySMTPServer) -> None:
    relay.defer_recipient("Editor@Daily.test", times=2)
    replies = []
    for _ in range(3):
        with connect(relay.port) as client:
            client.ehlo()
            client.mail(SENDER)
            code, text = client.rcpt("editor@daily.test")
            replies.append((code, text))
            if code == 250:
                client.data(MESSAGE)

    assert replies[:2] == [(451, b"4.3.0 Try again later")] * 2
    assert replies[2][0] == 250
    assert relay.attempts("editor@daily.test") == 3
    assert [r.recipient for r in relay.wait_for(1, timeout=2)] == ["editor@daily.test"]


def test_rejected_recipient_gets_550_user_unknown(relay: FaultySMTPServer) -> None:
    relay.reject_recipient("gone@courier.test")
    with connect(relay.port) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail(SENDER, ["gone@courier.test"], MESSAGE)
        assert client.sendmail(SENDER, ["here@courier.test"], MESSAGE) == {}

    code, text = refused.value.recipients["gone@courier.test"]
    assert code == 550
    assert text == b"5.1.1 <gone@courier.test>: Recipient address rejected: User unknown"
    assert relay.attempts("gone@courier.test") == 1
    assert [r.recipient for r in relay.wait_for(1, timeout=2)] == ["here@courier.test"]


def test_stopped_relay_refuses_and_comes_back_on_the_same_port(relay: FaultySMTPServer) -> None:
    port = relay.port
    session = connect(port)
    assert session.noop()[0] == 250
    for _ in range(3):
        relay.stop()
        with pytest.raises(smtplib.SMTPServerDisconnected):
            session.noop()
        session.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()

        relay.start()
        assert relay.port == port
        session = connect(port)
        assert session.sendmail(SENDER, ["wire@agency.test"], MESSAGE) == {}
    session.quit()
    assert len(relay.wait_for(3, timeout=2)) == 3


def test_connections_beyond_the_limit_get_421_and_are_closed() -> None:
    with FaultySMTPServer(max_connections=2) as relay:
        first, second = connect(relay.port), connect(relay.port)
        assert first.noop()[0] == 250 and second.noop()[0] == 250

        assert read_until_closed(relay.port) == b"421 4.7.0 Too many connections\r\n"
        assert relay.connections == 3
        assert second.noop()[0] == 250

        first.quit()

        def try_connect() -> smtplib.SMTP | None:
            try:
                return connect(relay.port)
            except smtplib.SMTPConnectError:
                return None

        third = poll(try_connect, timeout=5, what="a free connection slot")
        assert third.noop()[0] == 250
        third.quit()
        second.quit()


# -- SilentServer ------------------------------------------------------------------------


def test_silent_server_never_greets_so_the_client_times_out() -> None:
    with SilentServer() as silent:
        assert silent.url == f"smtp://127.0.0.1:{silent.port}"
        started = time.perf_counter()
        # smtplib reports the read timeout on the greeting as a disconnection.
        with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
            smtplib.SMTP("127.0.0.1", silent.port, timeout=1)
        assert 0.9 <= time.perf_counter() - started < 5
        assert silent.wait_for_connections(1, timeout=2) == 1

        held = socket.create_connection(("127.0.0.1", silent.port), timeout=2)
        silent.wait_for_connections(2, timeout=2)
    with held:
        # stop() let go of the connection without ever writing to it.
        assert held.recv(1) == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", silent.port), timeout=2).close()


# -- PrivateRedis ------------------------------------------------------------------------


def test_private_redis_forgets_everything_across_a_restart() -> None:
    with PrivateRedis() as broker:
        assert broker.port != 6379
        assert broker.url == f"redis://127.0.0.1:{broker.port}/0"
        with broker.client() as client:
            client.set("embargo", "held")
            assert client.get("embargo") == b"held"

        broker.restart()

        with broker.client() as client:
            assert client.ping()
            assert client.get("embargo") is None
        port = broker.port
    assert not broker.ping()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


# -- LatencyProxy ------------------------------------------------------------------------


def test_latency_proxy_adds_the_rtt_and_passes_a_large_message_intact(
    relay: FaultySMTPServer,
) -> None:
    rtt_ms = 80
    with LatencyProxy("127.0.0.1", relay.port, rtt_ms) as proxy:
        assert proxy.smtp_url == f"smtp://127.0.0.1:{proxy.port}"
        with connect(proxy.port) as client:
            round_trips = []
            for _ in range(3):
                started = time.perf_counter()
                assert client.noop()[0] == 250
                round_trips.append(time.perf_counter() - started)
            assert statistics.median(round_trips) >= rtt_ms / 1000 * 0.95
            assert statistics.median(round_trips) < rtt_ms / 1000 * 3

            body = base64.encodebytes(os.urandom(768 * 1024)).replace(b"\n", b"\r\n")
            message = b"Subject: Big release\r\n\r\n" + body
            assert len(message) > 1_000_000
            assert client.sendmail(SENDER, ["bulk@wire.test"], message) == {}

        [arrived] = relay.wait_for(1, timeout=5)
        assert arrived.data == message
        assert proxy.connections == 1
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()


def test_latency_proxy_resets_clients_while_the_target_is_down() -> None:
    with SilentServer() as placeholder:
        dead_port = placeholder.port
    with LatencyProxy("127.0.0.1", dead_port, 20) as proxy:
        with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionResetError)):
            smtplib.SMTP("127.0.0.1", proxy.port, timeout=2)
        assert proxy.connections == 1


def test_latency_proxy_passes_a_half_close_on_and_the_reply_still_comes_back() -> None:
    # Given a server that answers only once its client has finished sending
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def answer_after_eof() -> None:
        conn, _ = listener.accept()
        with conn:
            while chunk := conn.recv(65536):
                received.append(chunk)
            conn.sendall(b"got %d bytes" % sum(map(len, received)))

    server = threading.Thread(target=answer_after_eof, daemon=True)
    server.start()
    # When a client sends through the proxy and shuts down its sending side
    with (
        LatencyProxy("127.0.0.1", listener.getsockname()[1], 10) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as client,
    ):
        client.sendall(b"x" * 300_000)
        client.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := client.recv(65536):
            reply += chunk

    # Then the server saw the end of the data, and its answer reached the client, followed
    # by the end of the connection
    server.join(timeout=5)
    listener.close()
    assert reply == b"got 300000 bytes"
