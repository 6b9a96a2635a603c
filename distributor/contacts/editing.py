"""Changing one contact or outlet by hand: the embargo flags a press officer keeps."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from distributor.contacts.addresses import lenient_email_key
from distributor.errors import NotFoundError
from distributor.models import Contact, Outlet
from distributor.segments.fields import fold


def get_contact(session: Session, email: str) -> Contact:
    """The contact with this address in any spelling; forgotten people are not found."""
    contact = session.scalar(select(Contact).where(Contact.email_key == lenient_email_key(email)))
    if contact is None:
        raise NotFoundError(f"no contact with the address {email.strip()}; import it first")
    return contact


def get_outlet(session: Session, name: str) -> Outlet:
    outlet = session.scalar(select(Outlet).where(Outlet.name_key == fold(name)))
    if outlet is None:
        raise NotFoundError(
            f"no outlet named {name.strip()!r}; outlets come with their journalists on import"
        )
    return outlet


def set_contact_flags(
    session: Session,
    *,
    email: str,
    now: datetime,
    embargo_vetted: bool | None = None,
    embargo_breaker: bool | None = None,
) -> Contact:
    """Set or clear a journalist's embargo flags; None leaves a flag as it is."""
    contact = get_contact(session, email)
    if embargo_vetted is not None:
        contact.embargo_vetted = embargo_vetted
    if embargo_breaker is not None:
        contact.embargo_breaker = embargo_breaker
    contact.updated_at = now
    session.flush()
    return contact


def set_outlet_flags(
    session: Session,
    *,
    name: str,
    now: datetime,
    embargo_vetted: bool | None = None,
    embargo_breaker: bool | None = None,
) -> Outlet:
    """Set or clear an outlet's embargo flags: they apply to every journalist there."""
    outlet = get_outlet(session, name)
    if embargo_vetted is not None:
        outlet.embargo_vetted = embargo_vetted
    if embargo_breaker is not None:
        outlet.embargo_breaker = embargo_breaker
    outlet.updated_at = now
    session.flush()
    return outlet
