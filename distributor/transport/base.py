"""The mail transport interface: bytes in, the relay's reply out, or a TransportError."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Envelope:
    sender: str
    recipient: str
    data: bytes


class MailTransport(Protocol):
    def connect(self) -> None:
        """Open the connection now, ahead of the first message; raises TransportError."""
        ...

    def send(self, envelope: Envelope) -> str:
        """Transmit one message; return the relay's acceptance reply or raise TransportError."""
        ...

    def close(self) -> None: ...
