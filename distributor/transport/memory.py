"""A transport that keeps messages in a list, for tests of the sending logic."""

from __future__ import annotations

from collections.abc import Callable

from distributor.errors import TransportError
from distributor.transport.base import Envelope


class InMemoryTransport:
    def __init__(
        self, *, refuse: Callable[[Envelope], TransportError | None] | None = None
    ) -> None:
        self.sent: list[Envelope] = []
        self.closed = False
        self.connected = False
        self._refuse = refuse

    def connect(self) -> None:
        self.connected = True

    def send(self, envelope: Envelope) -> str:
        if self._refuse is not None and (error := self._refuse(envelope)) is not None:
            raise error
        self.sent.append(envelope)
        return f"250 queued as memory-{len(self.sent)}"

    def close(self) -> None:
        self.closed = True
