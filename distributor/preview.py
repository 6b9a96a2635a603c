"""Preview and test copies of a release: the real message, built as a send would, marked TEST.

A preview is written to files (the .eml exactly as a journalist would receive it, and the
HTML part with its pictures embedded so a browser shows them); a test copy goes by SMTP to
addresses the press officer names. Neither creates a send or a delivery.

Their unsubscribe links are test links (see distributor.unsubscribes): a colleague who
follows one in a copy personalised as a real journalist changes nothing.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

from sqlalchemy.orm import Session

from distributor.contacts.editing import get_contact
from distributor.embargo import DEFAULT_MAX_AHEAD, resolve_embargo
from distributor.mail.builder import MessageBuilder, Recipient
from distributor.models import Outlet
from distributor.releases.store import upcoming_embargo
from distributor.rendering.embargo_notice import EmbargoNotice
from distributor.transport import Envelope, MailTransport

SAMPLE_RECIPIENT = Recipient(
    delivery_id=0,
    email="journalist@example.com",
    name="Sample Journalist",
    outlet="Example News",
    time_zone=None,
)


@dataclass(frozen=True, slots=True)
class Preview:
    eml: bytes
    html: str  # the HTML part with cid: pictures as data: URLs, for a browser
    text: str
    subject: str
    warnings: list[str]


def preview_notice(
    session: Session,
    *,
    release_id: int,
    embargo: str | None,
    zone: str | None,
    now: datetime,
    max_ahead: timedelta = DEFAULT_MAX_AHEAD,
) -> EmbargoNotice | None:
    """The embargo to show: as given, else the release's next send's, else none."""
    if embargo:
        at = resolve_embargo(embargo, zone or "", now=now, max_ahead=max_ahead)
        return EmbargoNotice(at=at, zone_name=zone or "")
    upcoming = upcoming_embargo(session, release_id)
    return EmbargoNotice(at=upcoming[0], zone_name=upcoming[1]) if upcoming else None


def recipient_for(session: Session, email: str | None) -> Recipient:
    """The stored contact with that address, personalised as they would see it; else a sample."""
    if not email:
        return SAMPLE_RECIPIENT
    contact = get_contact(session, email)
    outlet = session.get(Outlet, contact.outlet_id) if contact.outlet_id else None
    return Recipient(
        delivery_id=0,
        email=contact.email,
        name=contact.name,
        outlet=outlet.name if outlet else "",
        time_zone=contact.time_zone,
    )


def _parts(data: bytes) -> tuple[str, str, dict[str, tuple[str, bytes]]]:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    html = text = ""
    images: dict[str, tuple[str, bytes]] = {}
    for part in message.walk():
        if not isinstance(part, EmailMessage) or part.is_multipart():
            continue
        if part.get_content_type() == "text/html" and not html:
            html = part.get_content()
        elif part.get_content_type() == "text/plain" and not text:
            text = part.get_content()
        elif part["Content-ID"]:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                images[part["Content-ID"].strip("<>")] = (part.get_content_type(), payload)
    return html, text, images


def browser_html(data: bytes) -> str:
    """The message's HTML part with every cid: picture inlined as a data: URL."""
    html, _, images = _parts(data)
    for content_id, (content_type, payload) in images.items():
        encoded = base64.b64encode(payload).decode("ascii")
        html = html.replace(f"cid:{content_id}", f"data:{content_type};base64,{encoded}")
    return html


def make_preview(builder: MessageBuilder, recipient: Recipient) -> Preview:
    data = builder.build(recipient)
    _, text, _ = _parts(data)
    message = message_from_bytes(data, policy=policy.default)
    return Preview(
        eml=data,
        html=browser_html(data),
        text=text,
        subject=str(message["Subject"]),
        warnings=list(builder.rendered.warnings),
    )


def send_test_copies(
    builder: MessageBuilder,
    *,
    addresses: list[str],
    personalise_as: Recipient,
    transport: MailTransport,
) -> list[tuple[str, str]]:
    """One test copy to each address, personalised as `personalise_as`; (address, reply)."""
    replies = []
    for address in addresses:
        recipient = Recipient(
            delivery_id=0,
            email=address,
            name=personalise_as.name,
            outlet=personalise_as.outlet,
            time_zone=personalise_as.time_zone,
        )
        data = builder.build(recipient)
        reply = transport.send(
            Envelope(sender=builder.envelope_sender(recipient), recipient=address, data=data)
        )
        replies.append((address, reply))
    return replies
