"""The data protection duties: erase a person, show everything held on them, find stale data.

Erasing keeps two things: the contact's row, emptied of personal data, so that send history
still adds up; and a suppression entry holding only a keyed hash of the address, so that a
later import or list can never bring the person back into mailings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from email_validator import EmailNotValidError
from sqlalchemy import ColumnElement, Row, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from distributor.actors import Actor
from distributor.audit import record_action
from distributor.contacts.addresses import lenient_email_key, normalise_email
from distributor.errors import DistributorError, InvalidAddressError
from distributor.models import (
    Bounce,
    Contact,
    ContactBeat,
    Delivery,
    DeliveryEvent,
    ListMembership,
    MediaList,
    Outlet,
    Release,
    Send,
    Suppression,
)
from distributor.states import DeliveryState
from distributor.suppression import SuppressionReason, hash_of, insert_suppression

ERASED = "[erased]"
FORGOTTEN_DETAIL = "not sent: the person asked to be forgotten"
# A look back further than this is a typing mistake (and, far enough, before the year 1).
MAX_MONTHS = 1200


@dataclass(frozen=True, slots=True)
class ForgetReport:
    had_contact: bool
    deliveries_stopped: int


def forget(session: Session, *, email: str, actor: Actor, now: datetime) -> ForgetReport:
    """Erase everything held about an address, keeping only the hash that keeps it suppressed."""
    key = lenient_email_key(email)
    if not key:
        raise DistributorError("give the address of the person to forget")
    _check_address(session, email, key=key)
    # Recorded below as part of the erasure, not as a suppression of its own.
    insert_suppression(
        session,
        email=key,
        reason=SuppressionReason.DO_NOT_CONTACT,
        source=f"erasure request, by {actor.label}",
        note="the person asked to be forgotten",
        now=now,
    )
    digest = hash_of(session, key)
    # The plain address leaves the suppression list too: only the hash is kept.
    suppression_id = session.scalars(
        update(Suppression)
        .where(Suppression.address_hash == digest)
        .values(email_key=None, forgotten_at=now)
        .returning(Suppression.id)
    ).first()
    contact = session.scalar(select(Contact).where(Contact.email_key == key))
    _scrub_bounces(session, key=key, contact_id=contact.id if contact else None)
    if contact is None:
        _record_forgetting(session, None, suppression_id=suppression_id, stopped=0, now=now)
        return ForgetReport(had_contact=False, deliveries_stopped=0)
    stopped = _stop_pending(session, contact.id, now=now)
    _scrub_delivery_texts(session, contact_id=contact.id, address=contact.email)
    session.execute(delete(ContactBeat).where(ContactBeat.contact_id == contact.id))
    session.execute(delete(ListMembership).where(ListMembership.contact_id == contact.id))
    session.execute(
        update(Contact)
        .where(Contact.id == contact.id)
        .values(
            email="",
            # Unique and not an address, so the real address is free of it.
            email_key=f"forgotten:{contact.id}",
            name="",
            outlet_id=None,
            role="",
            region="",
            country="",
            language="",
            media_type=None,
            time_zone=None,
            attributes={},
            source="",
            embargo_vetted=False,
            embargo_breaker=False,
            forgotten_at=now,
            updated_at=now,
        )
    )
    _record_forgetting(session, contact.id, suppression_id=suppression_id, stopped=stopped, now=now)
    session.expire(contact)
    return ForgetReport(had_contact=True, deliveries_stopped=stopped)


def _record_forgetting(
    session: Session,
    contact_id: int | None,
    *,
    suppression_id: int | None,
    stopped: int,
    now: datetime,
) -> None:
    """The erasure, named by the contact's id (the emptied row keeps it) and never by the
    address, so that the trail holds nothing the erasure had to remove."""
    record_action(
        session,
        "contact.forgotten",
        f"contact {contact_id}" if contact_id is not None else "one address",
        at=now,
        after={
            "forgotten": True,
            "suppression": suppression_id,
            "deliveries_stopped": stopped,
        },
        detail="" if contact_id is not None else "no contact held the address; it is suppressed",
    )


def _bounces_about(key: str, contact_id: int | None) -> ColumnElement[bool]:
    """Reports that name the address, or came back about one of the contact's deliveries."""
    about = func.lower(Bounce.recipient) == key
    if contact_id is None:
        return about
    return or_(
        about,
        Bounce.delivery_id.in_(select(Delivery.id).where(Delivery.contact_id == contact_id)),
    )


def _scrub_bounces(session: Session, *, key: str, contact_id: int | None) -> None:
    """What came back keeps its kind, status and outcome; the address and the headers
    (a reply's From, for one) go."""
    session.execute(
        update(Bounce)
        .where(_bounces_about(key, contact_id))
        .values(recipient=None, headers=None)
        .execution_options(synchronize_session=False)
    )


def _check_address(session: Session, email: str, *, key: str) -> None:
    """Refuse what is not an address: erasing it would keep a meaningless entry and report
    success while the person meant is still held. A stored contact is always erasable."""
    try:
        normalise_email(email)
    except EmailNotValidError as exc:
        if session.scalar(select(exists().where(Contact.email_key == key))):
            return
        raise InvalidAddressError(
            f"{email.strip()!r} is not an email address ({exc}): give the address of the "
            "person to forget, as name@domain; nothing was erased"
        ) from None


def _stop_pending(session: Session, contact_id: int, *, now: datetime) -> int:
    stopped = session.scalars(
        update(Delivery)
        .where(Delivery.contact_id == contact_id, Delivery.state == DeliveryState.PENDING)
        .values(state=DeliveryState.SUPPRESSED, finished_at=now)
        .returning(Delivery.id)
    ).all()
    for delivery_id in stopped:
        session.add(
            DeliveryEvent(
                delivery_id=delivery_id,
                at=now,
                state=DeliveryState.SUPPRESSED,
                detail=FORGOTTEN_DETAIL,
            )
        )
    session.flush()
    return len(stopped)


def _scrub_delivery_texts(session: Session, *, contact_id: int, address: str) -> None:
    """Relay replies often quote the address ("550 <ann@...>: no such user"): erase it there."""
    pattern = re.compile(re.escape(address), re.IGNORECASE)
    deliveries = session.scalars(select(Delivery).where(Delivery.contact_id == contact_id)).all()
    for delivery in deliveries:
        if delivery.smtp_reply:
            delivery.smtp_reply = pattern.sub(ERASED, delivery.smtp_reply)
        if delivery.error:
            delivery.error = pattern.sub(ERASED, delivery.error)
    events = session.scalars(
        select(DeliveryEvent)
        .join(Delivery, Delivery.id == DeliveryEvent.delivery_id)
        .where(Delivery.contact_id == contact_id, DeliveryEvent.detail.is_not(None))
    ).all()
    for event in events:
        event.detail = pattern.sub(ERASED, event.detail or "")
    session.flush()


def export_personal_data(session: Session, *, email: str) -> dict[str, Any]:
    """Everything held about one address, as plain JSON-ready data (a subject access request)."""
    key = lenient_email_key(email)
    digest = hash_of(session, key)
    suppression = session.scalar(select(Suppression).where(Suppression.address_hash == digest))
    contact = session.scalar(select(Contact).where(Contact.email_key == key))
    data: dict[str, Any] = {"address_asked_about": email.strip(), "contact": None}
    if suppression is not None:
        data["suppression"] = {
            "reason": suppression.reason.value,
            "source": suppression.source,
            "note": suppression.note,
            "since": suppression.created_at.isoformat(),
            "forgotten_at": _iso(suppression.forgotten_at),
            "address_kept": suppression.email_key is not None,
        }
    else:
        data["suppression"] = None
    if contact is None:
        return data
    outlet = session.get(Outlet, contact.outlet_id) if contact.outlet_id else None
    data["contact"] = {
        "email": contact.email,
        "name": contact.name,
        "outlet": outlet.name if outlet else "",
        "role": contact.role,
        "beats": sorted(
            session.scalars(select(ContactBeat.beat).where(ContactBeat.contact_id == contact.id))
        ),
        "region": contact.region,
        "country": contact.country,
        "language": contact.language,
        "media_type": contact.media_type.value if contact.media_type else None,
        "time_zone": contact.time_zone,
        "attributes": contact.attributes,
        "source": contact.source,
        "legal_basis": contact.legal_basis.value,
        "embargo_vetted": contact.embargo_vetted,
        "embargo_breaker": contact.embargo_breaker,
        "created_at": contact.created_at.isoformat(),
        "updated_at": contact.updated_at.isoformat(),
    }
    data["lists"] = sorted(
        session.scalars(
            select(MediaList.name)
            .join(ListMembership, ListMembership.list_id == MediaList.id)
            .where(ListMembership.contact_id == contact.id)
        )
    )
    data["deliveries"] = [_delivery(row) for row in _deliveries(session, contact.id)]
    data["bounces"] = [
        {
            "received_at": b.received_at.isoformat(),
            "kind": b.kind.value,
            "send_id": b.send_id,
            "status": b.status,
            "diagnostic": b.diagnostic,
            "outcome": b.outcome,
            "recipient": b.recipient,
            "headers": b.headers,
        }
        for b in session.scalars(
            select(Bounce).where(_bounces_about(key, contact.id)).order_by(Bounce.id)
        )
    ]
    return data


def _deliveries(session: Session, contact_id: int) -> Iterator[Row[*tuple[Any, ...]]]:
    yield from session.execute(
        select(
            Delivery.send_id,
            Release.id,
            Release.headline,
            Delivery.state,
            Delivery.claimed_at,
            Delivery.finished_at,
            Delivery.smtp_reply,
            Delivery.error,
        )
        .join(Send, Send.id == Delivery.send_id)
        .join(Release, Release.id == Send.release_id)
        .where(Delivery.contact_id == contact_id)
        .order_by(Delivery.send_id)
    )


def _delivery(row: Row[*tuple[Any, ...]]) -> dict[str, Any]:
    send_id, release_id, headline, state, claimed_at, finished_at, reply, error = row
    return {
        "send_id": send_id,
        "release_id": release_id,
        "headline": headline,
        "state": state.value,
        "claimed_at": _iso(claimed_at),
        "finished_at": _iso(finished_at),
        "smtp_reply": reply,
        "error": error,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


@dataclass(frozen=True, slots=True)
class StaleContact:
    email: str
    name: str
    outlet: str
    created_at: datetime
    # The last time a release to them was accepted by the relay; None if never.
    last_mailed_at: datetime | None


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the 31st may become the 30th)."""
    if not 0 <= months <= MAX_MONTHS:
        raise DistributorError(
            f"{months} months is not a period to look back over: give 0 to {MAX_MONTHS}"
        )
    month_index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    days_in_month = (
        datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=moment.tzinfo)
        - datetime(year, month, 1, tzinfo=moment.tzinfo)
    ).days
    return moment.replace(year=year, month=month, day=min(moment.day, days_in_month))


def not_mailed_since(session: Session, *, months: int, now: datetime) -> Iterator[StaleContact]:
    """Contacts not mailed for `months` months (nor added since): candidates for review."""
    cutoff = months_before(now, months)
    last_sent = (
        select(Delivery.contact_id, func.max(Delivery.finished_at).label("last_mailed_at"))
        .where(Delivery.state == DeliveryState.SENT)
        .group_by(Delivery.contact_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Contact.email,
            Contact.name,
            func.coalesce(Outlet.name, ""),
            Contact.created_at,
            last_sent.c.last_mailed_at,
        )
        .outerjoin(Outlet, Outlet.id == Contact.outlet_id)
        .outerjoin(last_sent, last_sent.c.contact_id == Contact.id)
        .where(
            Contact.forgotten_at.is_(None),
            Contact.created_at < cutoff,
            or_(last_sent.c.last_mailed_at.is_(None), last_sent.c.last_mailed_at < cutoff),
        )
        # Never mailed first, then the longest unmailed.
        .order_by(
            last_sent.c.last_mailed_at.is_not(None),
            last_sent.c.last_mailed_at,
            Contact.email_key,
        )
        .execution_options(yield_per=1_000)
    )
    for email, name, outlet, created_at, last_mailed_at in rows:
        yield StaleContact(email, name, outlet, created_at, last_mailed_at)
