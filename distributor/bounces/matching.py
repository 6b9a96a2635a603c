"""Which delivery a report is about: by the VERP address it came back to, which carries a
MAC, and only failing that by a Message-ID of ours, checked against the recipient.

A Message-ID is not signed, so anyone could name a delivery with one; it is trusted only
when the report's original recipient is that delivery's address. An address in the form of
our VERP addresses whose MAC is wrong is forged: the report is rejected, not matched by
any other means.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from distributor.bounces.report import BounceReport
from distributor.contacts.addresses import lenient_email_key
from distributor.mail.headers import ascii_domain
from distributor.mail.verp import PATTERN, VerpAddresses
from distributor.models import Contact, Delivery

OUR_MESSAGE_ID = re.compile(r"^<?delivery\.(\d{1,18})\.(\d{1,18})@([^>\s]+)>?$")


@dataclass(frozen=True, slots=True)
class Matched:
    delivery_id: int
    send_id: int
    contact_id: int
    # The address the delivery went to; None once the person was forgotten.
    email: str | None
    how: str
    # The VERP address it came back to, when it was matched by one.
    verp_address: str | None = None


@dataclass(frozen=True, slots=True)
class Unmatched:
    reason: str
    verp_address: str | None = None
    forged: bool = False


Match = Matched | Unmatched


def verp_domain(verp: VerpAddresses) -> str:
    """The bounce domain, as VERP addresses spell it (lower-case ASCII)."""
    return verp.address(send_id=0, delivery_id=0).rpartition("@")[2]


def is_forged(address: str, verp: VerpAddresses) -> bool:
    """In the form of our VERP addresses, for our domain, but with a MAC that is wrong."""
    return _looks_like_ours(address, verp_domain(verp)) and verp.parse(address) is None


def find_delivery(
    session: Session,
    report: BounceReport,
    *,
    verp: VerpAddresses,
    message_id_domain: str,
    envelope_recipients: Sequence[str] = (),
) -> Match:
    domain = verp_domain(verp)
    candidates = (*envelope_recipients, *report.addressed_to, *report.return_paths)
    for address in dict.fromkeys(a.strip().strip("<>").lower() for a in candidates):
        if not _looks_like_ours(address, domain):
            continue
        target = verp.parse(address)
        if target is None:
            return Unmatched(
                f"forged bounce address {address}: its MAC is wrong, so it was not made "
                "here; rejected",
                verp_address=address,
                forged=True,
            )
        found = _delivery(
            session,
            target.delivery_id,
            target.send_id,
            how="by its VERP address",
            verp_address=address,
        )
        if found is None:
            return Unmatched(
                f"the bounce address names delivery {target.delivery_id} of send "
                f"{target.send_id}, which no longer exists",
                verp_address=address,
            )
        return found
    return _by_message_id(session, report, message_id_domain=message_id_domain)


def _looks_like_ours(address: str, domain: str) -> bool:
    match = PATTERN.match(address.strip().strip("<>").lower())
    return match is not None and match.group(4) == domain


def _by_message_id(session: Session, report: BounceReport, *, message_id_domain: str) -> Match:
    pointer = OUR_MESSAGE_ID.match(report.original_message_id or "")
    if pointer is None or pointer.group(3).lower() != ascii_domain(message_id_domain):
        return Unmatched("no bounce address of ours and no Message-ID of ours in it")
    send_id, delivery_id = int(pointer.group(1)), int(pointer.group(2))
    found = _delivery(
        session,
        delivery_id,
        send_id,
        how="by the Message-ID of ours it returns, its recipient checked",
    )
    if found is None:
        return Unmatched(
            f"returns the Message-ID of delivery {delivery_id} of send {send_id}, which does "
            "not exist"
        )
    reported = {lenient_email_key(r) for r in report.recipients}
    if found.email is None or lenient_email_key(found.email) not in reported:
        return Unmatched(
            f"returns the Message-ID of delivery {delivery_id}, but not that delivery's "
            "address as its recipient: not trusted"
        )
    return found


def _delivery(
    session: Session,
    delivery_id: int,
    send_id: int,
    *,
    how: str,
    verp_address: str | None = None,
) -> Matched | None:
    row = session.execute(
        select(
            Delivery.id, Delivery.send_id, Delivery.contact_id, Contact.email, Contact.forgotten_at
        )
        .join(Contact, Contact.id == Delivery.contact_id)
        .where(Delivery.id == delivery_id, Delivery.send_id == send_id)
    ).first()
    if row is None:
        return None
    return Matched(
        delivery_id=row.id,
        send_id=row.send_id,
        contact_id=row.contact_id,
        email=None if row.forgotten_at is not None or not row.email else row.email,
        how=how,
        verp_address=verp_address,
    )
