"""Turning a rendered release and one recipient into the bytes of one email."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from distributor.clock import Clock
from distributor.rendering import RenderedRelease


@dataclass(frozen=True, slots=True)
class Recipient:
    delivery_id: int
    email: str
    name: str
    outlet: str = ""
    # IANA zone of the journalist, when known, for showing the embargo in their local time.
    time_zone: str | None = None


@dataclass(frozen=True, slots=True)
class Sender:
    address: str
    display_name: str
    message_id_domain: str


def message_id_for(delivery_id: int, send_id: int, domain: str) -> str:
    """Stable per delivery, so a retry of the same delivery reuses it."""
    return f"<delivery.{send_id}.{delivery_id}@{domain}>"


def one_line(text: str) -> str:
    """Text made safe for a header: line breaks and other control characters become spaces.

    A name or headline that came with a line break (a quoted CSV field, a pasted title) must
    not be able to start a header of its own, and the journalist should still get the release.
    """
    cleaned = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    return " ".join(cleaned.split())


class MessageBuilder:
    """Builds per-recipient messages from one send's rendered content."""

    def __init__(self, *, rendered: RenderedRelease, sender: Sender, send_id: int, clock: Clock):
        self._rendered = rendered
        self._sender = sender
        self._send_id = send_id
        self._clock = clock

    def build(self, recipient: Recipient) -> bytes:
        message = EmailMessage(policy=policy.SMTP)
        message["From"] = Address(
            one_line(self._sender.display_name), addr_spec=self._sender.address
        )
        message["To"] = Address(one_line(recipient.name), addr_spec=recipient.email)
        message["Subject"] = one_line(self._rendered.subject)
        message["Date"] = format_datetime(self._clock.now())
        message["Message-ID"] = message_id_for(
            recipient.delivery_id, self._send_id, self._sender.message_id_domain
        )
        message.set_content(self._rendered.text)
        message.add_alternative(self._rendered.html, subtype="html")
        return message.as_bytes()
