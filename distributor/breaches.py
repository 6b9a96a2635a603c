"""Embargo breaches: recorded, and the breaker kept away from embargoed copies.

A breach marks the journalist (and, when the outlet published, the outlet) an embargo
breaker: no pre-brief reaches them again, at the claim as much as at arming, until an admin
clears the flag. Both are written to `breach_records`, which is only ever added to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from distributor.actors import Actor, require_admin
from distributor.audit import record_action
from distributor.contacts.editing import get_contact, get_outlet
from distributor.errors import DistributorError
from distributor.models import BreachRecord, Contact, Outlet
from distributor.releases.store import get_release

BREACH = "breach"
CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class RecordedBreach:
    record_id: int
    email: str
    outlet: str | None  # the outlet marked too, if asked


def record_breach(
    session: Session,
    *,
    email: str,
    release_id: int,
    actor: Actor,
    now: datetime,
    outlet_too: bool = False,
    note: str = "",
) -> RecordedBreach:
    """Record that this journalist broke the release's embargo, and mark them a breaker."""
    get_release(session, release_id)
    contact = get_contact(session, email)
    outlet = _outlet_of(session, contact) if outlet_too else None
    was_breaker = contact.embargo_breaker
    contact.embargo_breaker = True
    contact.updated_at = now
    if outlet is not None:
        outlet.embargo_breaker = True
    record = BreachRecord(
        action=BREACH,
        contact_id=contact.id,
        outlet_id=outlet.id if outlet else None,
        release_id=release_id,
        at=now,
        recorded_by=actor.label,
        note=" ".join(note.split()),
    )
    session.add(record)
    session.flush()
    record_action(
        session,
        "breach.recorded",
        f"contact {contact.id}",
        at=now,
        release_id=release_id,
        before={"embargo_breaker": was_breaker},
        after={
            "embargo_breaker": True,
            "outlet_marked": outlet.name if outlet else None,
            "breach_record": record.id,
        },
        detail=record.note,
    )
    return RecordedBreach(record.id, contact.email, outlet.name if outlet else None)


def clear_breaker(
    session: Session,
    *,
    actor: Actor,
    now: datetime,
    email: str | None = None,
    outlet_name: str | None = None,
    note: str = "",
) -> BreachRecord:
    """Clear a journalist's or an outlet's breaker flag (admins only), on the record."""
    require_admin(actor, action="clear an embargo breaker flag")
    if (email is None) == (outlet_name is None):
        raise DistributorError("name the journalist's address or the outlet (--outlet NAME)")
    contact = get_contact(session, email) if email is not None else None
    outlet = get_outlet(session, outlet_name) if outlet_name is not None else None
    flagged = contact.embargo_breaker if contact else bool(outlet and outlet.embargo_breaker)
    if not flagged:
        who = contact.email if contact else outlet.name if outlet else ""
        raise DistributorError(f"{who} is not marked an embargo breaker; nothing to clear")
    if contact is not None:
        contact.embargo_breaker = False
        contact.updated_at = now
    if outlet is not None:
        outlet.embargo_breaker = False
    record = BreachRecord(
        action=CLEARED,
        contact_id=contact.id if contact else None,
        outlet_id=outlet.id if outlet else None,
        at=now,
        recorded_by=actor.label,
        note=" ".join(note.split()),
    )
    session.add(record)
    session.flush()
    record_action(
        session,
        "breach.cleared",
        _named(contact, outlet),
        at=now,
        before={"embargo_breaker": True},
        after={"embargo_breaker": False, "breach_record": record.id},
        detail=record.note,
    )
    return record


def breach_history(session: Session, *, contact_id: int) -> list[BreachRecord]:
    return list(
        session.scalars(
            select(BreachRecord)
            .where(BreachRecord.contact_id == contact_id)
            .order_by(BreachRecord.id)
        )
    )


def _outlet_of(session: Session, contact: Contact) -> Outlet:
    outlet = session.get(Outlet, contact.outlet_id) if contact.outlet_id else None
    if outlet is None:
        raise DistributorError(
            f"{contact.email} has no outlet to mark; leave out --outlet, or set the outlet "
            "with `contacts edit`"
        )
    return outlet


def _named(contact: Contact | None, outlet: Outlet | None) -> str:
    """A journalist by their contact's id (never the address), an outlet by id and name."""
    if contact is not None:
        return f"contact {contact.id}"
    return f"outlet {outlet.id} ({outlet.name})" if outlet is not None else "no one"
