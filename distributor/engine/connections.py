"""One lane's connection to the relay, as the sending lanes see it.

The real one is `AsyncSMTPConnection`; a blocking `MailTransport` (the in-memory one in
tests, the local catcher) can stand in as a single connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from distributor.transport import Envelope, MailTransport


class Connection(Protocol):
    async def open(self) -> None: ...

    async def send(self, envelope: Envelope, *, then: Envelope | None = None) -> str:
        """Send `envelope`; `then`, if given, is announced to go next (one round trip)."""
        ...

    async def close(self) -> None: ...


ConnectionFactory = Callable[[], Connection]


class BlockingConnection:
    """A blocking MailTransport as one lane's connection (tests, the local catcher)."""

    def __init__(self, transport: MailTransport) -> None:
        self._transport = transport

    async def open(self) -> None:
        self._transport.connect()

    async def send(self, envelope: Envelope, *, then: Envelope | None = None) -> str:
        return self._transport.send(envelope)

    async def close(self) -> None:
        self._transport.close()  # the next message reconnects
