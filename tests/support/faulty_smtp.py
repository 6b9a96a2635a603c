"""An in-process SMTP relay that misbehaves on demand, for the send engine's chaos tests.

It records accepted mail exactly like `RecordingSMTPServer`, and can be told, while it
runs, to turn connections away with 421, defer or reject chosen recipients, cap the
number of simultaneous connections, or go down and come back on the same port.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiosmtpd.smtp import SMTP

from distributor.demo import free_port
from tests.support.smtp import Received, RecordingHandler

HOST = "127.0.0.1"
BUSY_REPLY = "421 4.3.2 Service temporarily unavailable"
TOO_MANY_REPLY = "421 4.7.0 Too many connections"
DEFER_REPLY = "451 4.3.0 Try again later"


def _normalise(address: str) -> str:
    return address.strip().strip("<>").lower()


class _Faults:
    """What the relay should do wrong right now; shared by the test thread and the loop."""

    def __init__(self, max_connections: int | None) -> None:
        self.lock = threading.Lock()
        self.busy_deadline = -math.inf
        self.deferrals: dict[str, int] = {}
        self.rejected: set[str] = set()
        self.attempts: Counter[str] = Counter()
        self.max_connections = max_connections
        self.accepted = 0
        self.open = 0

    def admit(self) -> str | None:
        """Count a new TCP connection; the 421 reply that turns it away, if any."""
        with self.lock:
            self.accepted += 1
            if time.monotonic() < self.busy_deadline:
                return BUSY_REPLY
            if self.max_connections is not None and self.open >= self.max_connections:
                return TOO_MANY_REPLY
            self.open += 1
            return None

    def closed(self) -> None:
        with self.lock:
            self.open -= 1

    def all_closed(self) -> None:
        with self.lock:
            self.open = 0

    def rcpt_verdict(self, address: str) -> str | None:
        """The failure reply for this RCPT TO, or None to accept it normally."""
        key = _normalise(address)
        with self.lock:
            self.attempts[key] += 1
            if key in self.rejected:
                return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
            remaining = self.deferrals.get(key, 0)
            if remaining > 0:
                self.deferrals[key] = remaining - 1
                return DEFER_REPLY
            return None


@dataclass
class FaultyHandler(RecordingHandler):
    faults: _Faults = field(default_factory=lambda: _Faults(None))

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        verdict = self.faults.rcpt_verdict(address)
        if verdict is not None:
            return verdict
        return await super().handle_RCPT(server, session, envelope, address, options)


class _Refusal(asyncio.Protocol):
    """Answers a fresh connection with one 421 line instead of the 220 greeting, then hangs up.

    aiosmtpd has no hook before its greeting, so the decision is taken when the listener
    asks for a protocol for the accepted socket.
    """

    def __init__(self, reply: str) -> None:
        self._reply = reply

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(self._reply.encode("ascii") + b"\r\n")
        # close() flushes the reply before the FIN.
        transport.close()


class _CountedSMTP(SMTP):
    """aiosmtpd's session, telling the relay when the connection goes away."""

    def __init__(self, faults: _Faults, sessions: _OpenSessions, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._faults = faults
        self._sessions = sessions
        self._socket_transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._socket_transport = transport
        self._sessions.add(transport)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            if self._socket_transport is not None:
                self._sessions.discard(self._socket_transport)
            self._faults.closed()


class _OpenSessions:
    """Transports of live SMTP sessions (loop thread only), so stop() can cut them."""

    def __init__(self) -> None:
        self._transports: set[asyncio.BaseTransport] = set()

    def add(self, transport: asyncio.BaseTransport) -> None:
        self._transports.add(transport)

    def discard(self, transport: asyncio.BaseTransport) -> None:
        self._transports.discard(transport)

    def abort_all(self) -> None:
        for transport in list(self._transports):
            if isinstance(transport, asyncio.Transport):
                transport.abort()
            else:
                transport.close()
        self._transports.clear()


async def _shutdown(server: asyncio.Server, sessions: _OpenSessions) -> None:
    server.close()
    # Let connections accepted just before the listener closed finish being set up
    # (cancelling that step makes asyncio log an error in debug mode), then cut and
    # cancel until nothing is left.
    for _ in range(3):
        await asyncio.sleep(0)
    while True:
        sessions.abort_all()
        pending = asyncio.all_tasks() - {asyncio.current_task()}
        if not pending:
            break
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    await server.wait_closed()


class FaultySMTPServer:
    """A real SMTP listener on 127.0.0.1 whose failures a test switches on and off.

    Faults can be changed from any thread while it runs. `stop()` closes the listener and
    cuts every open session (clients then get connection refused); `start()` binds the
    same port again, as often as needed.
    """

    def __init__(self, *, max_connections: int | None = None, port: int | None = None) -> None:
        self._faults = _Faults(max_connections)
        self.handler = FaultyHandler(faults=self._faults)
        self._port = port if port is not None else free_port()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Listen on the port (the same one after a stop); returns once it accepts."""
        if self._thread is not None:
            raise RuntimeError("the faulty SMTP server is already running")
        ready = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(
            target=self._serve, args=(ready, failure), name=f"faulty-smtp-{self._port}"
        )
        thread.daemon = True
        thread.start()
        if not ready.wait(10):
            raise TimeoutError(f"the faulty SMTP server on port {self._port} did not start")
        if failure:
            thread.join()
            raise failure[0]
        self._thread = thread

    def stop(self) -> None:
        """Close the listener and every open session; a no-op when already stopped."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._thread = None
        self._loop = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def __enter__(self) -> FaultySMTPServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        sessions = _OpenSessions()

        def protocol() -> asyncio.BaseProtocol:
            refusal = self._faults.admit()
            if refusal is not None:
                return _Refusal(refusal)
            return _CountedSMTP(
                self._faults,
                sessions,
                self.handler,
                hostname="localhost",
                enable_SMTPUTF8=True,
                loop=loop,
            )

        try:
            server = loop.run_until_complete(
                loop.create_server(protocol, host=HOST, port=self._port, reuse_address=True)
            )
        except BaseException as error:
            failure.append(error)
            loop.close()
            ready.set()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(_shutdown(server, sessions))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._faults.all_closed()

    # -- faults ----------------------------------------------------------------------------

    def busy_until(self, monotonic_deadline: float) -> None:
        """Greet every new connection with 421 until `time.monotonic()` reaches the deadline."""
        with self._faults.lock:
            self._faults.busy_deadline = monotonic_deadline

    def busy_for(self, seconds: float) -> None:
        """Greet new connections with 421 for `seconds` from now; 0 ends a busy spell."""
        self.busy_until(time.monotonic() + seconds if seconds > 0 else -math.inf)

    def defer_recipient(self, address: str, *, times: int = 1) -> None:
        """Answer the next `times` RCPT TO for `address` with 451, then accept it."""
        with self._faults.lock:
            self._faults.deferrals[_normalise(address)] = times

    def reject_recipient(self, address: str) -> None:
        """Answer every RCPT TO for `address` with 550 5.1.1 (user unknown)."""
        with self._faults.lock:
            self._faults.rejected.add(_normalise(address))

    def accept_recipient(self, address: str) -> None:
        """Forget any deferral or rejection set for `address`."""
        key = _normalise(address)
        with self._faults.lock:
            self._faults.rejected.discard(key)
            self._faults.deferrals.pop(key, None)

    @property
    def max_connections(self) -> int | None:
        with self._faults.lock:
            return self._faults.max_connections

    @max_connections.setter
    def max_connections(self, limit: int | None) -> None:
        """Connections beyond `limit` open at once are greeted with 421 4.7.0 and closed."""
        with self._faults.lock:
            self._faults.max_connections = limit

    # -- observations ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"smtp://{HOST}:{self.port}"

    @property
    def connections(self) -> int:
        """TCP connections accepted so far, including those turned away with 421."""
        with self._faults.lock:
            return self._faults.accepted

    @property
    def open_connections(self) -> int:
        """SMTP sessions open right now (turned-away connections are not counted)."""
        with self._faults.lock:
            return self._faults.open

    def attempts(self, recipient: str) -> int:
        """How many RCPT TO commands named this address, whatever the answer."""
        with self._faults.lock:
            return self._faults.attempts[_normalise(recipient)]

    @property
    def received(self) -> list[Received]:
        with self.handler.changed:
            return list(self.handler.received)

    def wait_for(self, count: int, *, timeout: float) -> list[Received]:
        """Wait until at least `count` messages arrived; returns them all."""
        deadline = time.monotonic() + timeout
        with self.handler.changed:
            while len(self.handler.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"only {len(self.handler.received)} of {count} messages arrived "
                        f"within {timeout} s"
                    )
                self.handler.changed.wait(remaining)
            return list(self.handler.received)
