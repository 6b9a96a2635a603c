"""One send's messages: everything shared prepared once, each recipient's joined from bytes.

Per send (in `MessageBuilder.__init__` and, lazily, per variant): the release is rendered
and its CSS inlined (`PreparedRelease`), the MIME body is encoded with gaps for personal
values, and the headers every message shares are written. Per recipient (`build`): the To
header, Date, Message-ID, an unsubscribe token, the personal values quoted-printable
encoded, and one `b"".join`.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import time
from dataclasses import dataclass
from email.utils import format_datetime
from typing import TYPE_CHECKING

from distributor.clock import Clock
from distributor.mail.dkim import (
    CanonicalParts,
    DkimSigner,
    RelaxedBodyTemplate,
    canonical_field,
)
from distributor.mail.headers import (
    address_header,
    ascii_address,
    ascii_domain,
    fold,
    one_line,
    phrase,
    require_one_line,
    unstructured,
)
from distributor.mail.mime import (
    HTML_SPECIAL,
    MimeBody,
    encode_personal,
    mime_body,
    new_boundary_seed,
)
from distributor.mail.unsubscribe import UnsubscribeLinks
from distributor.mail.verp import VerpAddresses
from distributor.rendering.personal import (
    EMAIL,
    LOCAL_EMBARGO,
    NAME,
    OUTLET,
    UNSUBSCRIBE_URL,
    Variant,
)
from distributor.visible_text import strip_hidden

if TYPE_CHECKING:
    from datetime import datetime

    from distributor.rendering.render import PreparedRelease


MIME_VERSION = b"MIME-Version: 1.0\r\n"
ONE_CLICK = b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"


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
    reply_to: str = ""  # empty: the sender's address
    list_id: str = ""  # empty: releases.<message_id_domain>
    list_name: str = ""  # the List-Id's description; empty: the display name


@dataclass(frozen=True, slots=True)
class BuiltMessage:
    data: bytes
    envelope_sender: str


def message_id_for(delivery_id: int, send_id: int, domain: str) -> str:
    """Stable per delivery, so a retry of the same delivery reuses it."""
    return f"<delivery.{send_id}.{delivery_id}@{domain}>"


@dataclass(frozen=True, slots=True)
class _EncodedVariant:
    subject: bytes
    mime: MimeBody
    gaps: frozenset[tuple[str, bool]]
    # Only when signing: what the signature hashes that every message shares.
    dkim: _SharedCanonical | None


@dataclass(frozen=True, slots=True)
class _SharedCanonical:
    fields: dict[bytes, bytes]  # relaxed lines of the fields every message has the same
    body: RelaxedBodyTemplate


class MessageBuilder:
    """Builds per-recipient messages from one send's prepared release."""

    def __init__(
        self,
        *,
        rendered: PreparedRelease,
        sender: Sender,
        send_id: int,
        clock: Clock,
        unsubscribe: UnsubscribeLinks,
        bounces: VerpAddresses | None = None,
        dkim: DkimSigner | None = None,
    ) -> None:
        self._rendered = rendered
        self._send_id = send_id
        self._clock = clock
        self._unsubscribe = unsubscribe
        self._bounces = bounces
        self._dkim = dkim
        self._sender_address = ascii_address(sender.address)
        self._message_id_domain = ascii_domain(
            require_one_line(sender.message_id_domain, what="Message-ID domain")
        )
        self._boundary_seed = new_boundary_seed()
        self._variants: dict[Variant, _EncodedVariant] = {}
        self._encoded_files: dict[str, bytes] = {}
        self._issued_at = int(clock.now().timestamp())
        self._date_second = -1
        self._date_header = b""
        list_id = require_one_line(
            sender.list_id or f"releases.{sender.message_id_domain}", what="List-Id"
        )
        list_name = sender.list_name or sender.display_name
        self._shared_from = address_header("From", sender.display_name, sender.address)
        self._shared_reply_to = address_header(
            "Reply-To", sender.display_name, sender.reply_to or sender.address
        )
        self._shared_list_id = fold("List-Id", [*phrase(list_name), f"<{ascii_domain(list_id)}>"])

    def signing_with(self, dkim: DkimSigner | None) -> MessageBuilder:
        """The same send's builder signing with `dkim` instead (to compare signers)."""
        twin = copy.copy(self)
        twin._dkim = dkim
        twin._variants = {}
        return twin

    # Per send, once per variant ----------------------------------------------------------

    @property
    def rendered(self) -> PreparedRelease:
        return self._rendered

    def _encoded(self, variant: Variant) -> _EncodedVariant:
        encoded = self._variants.get(variant)
        if encoded is None:
            rendered = self._rendered.variant(variant)
            mime = mime_body(
                rendered,
                attachments=self._rendered.attachments,
                boundary_seed=self._boundary_seed,
                encoded_files=self._encoded_files,
            )
            # Releases stored before hidden characters were refused may still hold them; a
            # Subject must read as what it says.
            subject = fold("Subject", unstructured(strip_hidden(one_line(rendered.subject))))
            encoded = self._variants[variant] = _EncodedVariant(
                subject=subject,
                mime=mime,
                gaps=mime.body.distinct_gaps,
                dkim=self._shared_canonical(subject, mime) if self._dkim else None,
            )
        return encoded

    def _shared_canonical(self, subject: bytes, mime: MimeBody) -> _SharedCanonical:
        shared = (
            self._shared_from,
            self._shared_reply_to,
            subject,
            self._shared_list_id,
            ONE_CLICK,
            MIME_VERSION,
            mime.content_type,
        )
        return _SharedCanonical(
            fields=dict(map(canonical_field, shared)), body=RelaxedBodyTemplate(mime.body.pieces)
        )

    def prepare_every_variant(self) -> None:
        """Render and encode every variant now (before the embargo, for a send), so that no
        recipient waits for it after the lift."""
        embargo_choices = [(False, False)]
        if self._rendered.notice is not None:
            embargo_choices += [(True, False), (True, True)]
        for (embargoed, local), named, with_outlet in itertools.product(
            embargo_choices, (True, False), (True, False)
        ):
            self._encoded(Variant(embargoed, local, named, with_outlet))

    # Per recipient -----------------------------------------------------------------------

    def _date(self, now: datetime) -> bytes:
        second = int(now.timestamp())
        if second != self._date_second:
            self._date_second = second
            self._date_header = f"Date: {format_datetime(now)}\r\n".encode("ascii")
        return self._date_header

    def _message_id(self, recipient: Recipient) -> str:
        if self._rendered.test:
            # Test copies are not deliveries: each gets an id of its own.
            return f"<test.{secrets.token_hex(8)}.{time.time_ns()}@{self._message_id_domain}>"
        return message_id_for(recipient.delivery_id, self._send_id, self._message_id_domain)

    def envelope_sender(self, recipient: Recipient) -> str:
        """The SMTP MAIL FROM for this recipient: a VERP address when bounces are tracked."""
        if self._bounces is None or self._rendered.test:
            return self._sender_address
        return self._bounces.address(send_id=self._send_id, delivery_id=recipient.delivery_id)

    def build(self, recipient: Recipient) -> bytes:
        now = self._clock.now()
        name = one_line(recipient.name)
        outlet = one_line(recipient.outlet)
        address = ascii_address(recipient.email)
        notice = self._rendered.notice
        embargoed = notice is not None and notice.is_embargoed(now)
        local = notice.in_zone_of(recipient.time_zone) if embargoed and notice else ""
        encoded = self._encoded(Variant(embargoed, bool(local), bool(name), bool(outlet)))
        token = self._unsubscribe.tokens.issue(
            email=recipient.email, send_id=self._send_id, issued_at=self._issued_at
        )
        https = self._unsubscribe.https(token)
        mailto = self._unsubscribe.mailto(token)
        values = {
            NAME: name,
            OUTLET: outlet,
            EMAIL: recipient.email,
            LOCAL_EMBARGO: local,
            UNSUBSCRIBE_URL: https or mailto,
        }

        body = encoded.mime.body
        personal: dict[tuple[str, bool], bytes] = {}
        for slot, html in encoded.gaps:
            if (slot, html) not in personal:
                value = values[slot]
                text = encode_personal(value, html=False)
                same = HTML_SPECIAL.isdisjoint(value)
                personal[slot, False] = text
                personal[slot, True] = text if same else encode_personal(value, html=True)

        filled = [personal[gap] for gap in body.gaps]
        if https:
            unsubscribe = f"List-Unsubscribe: <{https}>,\r\n <{mailto}>\r\n".encode("ascii")
            one_click = ONE_CLICK
        else:
            unsubscribe = f"List-Unsubscribe: <{mailto}>\r\n".encode("ascii")
            one_click = b""
        to = fold("To", [*phrase(name), f"<{address}>"])
        date = self._date(now)
        message_id = f"Message-ID: {self._message_id(recipient)}\r\n".encode("ascii")
        data = b"".join(
            (
                self._shared_from,
                self._shared_reply_to,
                to,
                encoded.subject,
                date,
                message_id,
                self._shared_list_id,
                unsubscribe,
                one_click,
                MIME_VERSION,
                encoded.mime.content_type,
                b"\r\n",
                body.join(filled),
            )
        )
        if self._dkim is None or encoded.dkim is None:
            return data
        fields = dict(encoded.dkim.fields)
        for raw in (to, date, message_id, unsubscribe):
            field_name, line = canonical_field(raw)
            fields[field_name] = line
        if not one_click:
            del fields[b"list-unsubscribe-post"]
        return self._dkim.sign(
            data, canonical=CanonicalParts(fields, encoded.dkim.body.body_hash(filled))
        )

    def build_message(self, recipient: Recipient) -> BuiltMessage:
        """The bytes and the envelope sender of one recipient's message."""
        return BuiltMessage(
            data=self.build(recipient), envelope_sender=self.envelope_sender(recipient)
        )
