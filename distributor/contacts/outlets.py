"""The outlets directory: each outlet with its embargo flags and how many journalists work
there, found by part of its name, a page at a time."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from distributor.models import Contact, Outlet
from distributor.segments.fields import fold, tidy


@dataclass(frozen=True, slots=True)
class OutletEntry:
    name: str
    journalists: int
    embargo_vetted: bool
    embargo_breaker: bool


@dataclass(frozen=True, slots=True)
class OutletPage:
    outlets: list[OutletEntry]
    total: int


def find_outlets(session: Session, *, text: str = "", offset: int, limit: int) -> OutletPage:
    """Outlets whose name contains `text` (any letter case), by name; forgotten people do
    not count as journalists."""
    needle = fold(tidy(text))
    matching = Outlet.name_key.contains(needle, autoescape=True) if needle else true()
    total = session.scalar(select(func.count()).select_from(Outlet).where(matching)) or 0
    journalists = (
        select(Contact.outlet_id, func.count().label("n"))
        .where(Contact.forgotten_at.is_(None), Contact.outlet_id.is_not(None))
        .group_by(Contact.outlet_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Outlet.name,
            func.coalesce(journalists.c.n, 0),
            Outlet.embargo_vetted,
            Outlet.embargo_breaker,
        )
        .outerjoin(journalists, journalists.c.outlet_id == Outlet.id)
        .where(matching)
        .order_by(Outlet.name_key)
        .offset(offset)
        .limit(limit)
    )
    return OutletPage(
        outlets=[OutletEntry(name, n, vetted, breaker) for name, n, vetted, breaker in rows],
        total=total,
    )
