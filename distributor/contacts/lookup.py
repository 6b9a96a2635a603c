"""Finding contacts and reading one whole: its fields, lists, suppression and last deliveries."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from distributor.contacts.editing import get_contact
from distributor.errors import DistributorError
from distributor.models import (
    Contact,
    ContactBeat,
    Delivery,
    ListMembership,
    MediaList,
    Outlet,
    Release,
    Send,
    Suppression,
)
from distributor.segments.compiler import compile_filter, contacts_with_outlets
from distributor.segments.fields import fold, tidy
from distributor.segments.parser import parse_filter
from distributor.states import DeliveryState
from distributor.suppression import contact_is_suppressed, hash_of
from distributor.vocabulary import SuppressionReason

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 1_000
DELIVERIES_SHOWN = 10
# SQLite's own lower() folds ASCII only; this one is Python's, registered per connection.
_SQLITE_LOWER = "distributor_lower"


@dataclass(frozen=True, slots=True)
class OutletFacts:
    name: str
    # The outlet's own flags: each applies to every journalist there.
    embargo_vetted: bool
    embargo_breaker: bool


@dataclass(frozen=True, slots=True)
class SuppressionFacts:
    reason: SuppressionReason
    source: str
    note: str
    since: datetime


@dataclass(frozen=True, slots=True)
class RecentDelivery:
    delivery_id: int
    send_id: int
    release_id: int
    headline: str
    state: DeliveryState
    embargo_at: datetime
    claimed_at: datetime | None
    finished_at: datetime | None
    smtp_code: int | None
    smtp_reply: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class ContactDetail:
    """Everything a press officer looks up about one journalist."""

    email: str
    name: str
    outlet: OutletFacts | None
    role: str
    beats: list[str]
    region: str
    country: str
    language: str
    media_type: str | None
    time_zone: str | None
    legal_basis: str
    source: str
    # The journalist's own flags; the outlet's apply besides (see `outlet`).
    embargo_vetted: bool
    embargo_breaker: bool
    attributes: dict[str, str]
    created_at: datetime
    updated_at: datetime
    lists: list[str]
    suppression: SuppressionFacts | None
    # The most recently scheduled first, at most DELIVERIES_SHOWN of deliveries_total.
    deliveries: list[RecentDelivery]
    deliveries_total: int


def contact_detail(
    session: Session, email: str, *, deliveries_shown: int = DELIVERIES_SHOWN
) -> ContactDetail:
    """One contact in full; raises NotFoundError for an unknown or forgotten address."""
    contact = get_contact(session, email)
    outlet = session.get(Outlet, contact.outlet_id) if contact.outlet_id else None
    return ContactDetail(
        email=contact.email,
        name=contact.name,
        outlet=OutletFacts(outlet.name, outlet.embargo_vetted, outlet.embargo_breaker)
        if outlet
        else None,
        role=contact.role,
        beats=sorted(
            session.scalars(select(ContactBeat.beat).where(ContactBeat.contact_id == contact.id))
        ),
        region=contact.region,
        country=contact.country,
        language=contact.language,
        media_type=contact.media_type.value if contact.media_type else None,
        time_zone=contact.time_zone,
        legal_basis=contact.legal_basis.value,
        source=contact.source,
        embargo_vetted=contact.embargo_vetted,
        embargo_breaker=contact.embargo_breaker,
        attributes=dict(sorted((contact.attributes or {}).items())),
        created_at=contact.created_at,
        updated_at=contact.updated_at,
        lists=list(
            session.scalars(
                select(MediaList.name)
                .join(ListMembership, ListMembership.list_id == MediaList.id)
                .where(ListMembership.contact_id == contact.id)
                .order_by(MediaList.name)
            )
        ),
        suppression=_suppression(session, contact.email),
        deliveries=_recent_deliveries(session, contact.id, limit=deliveries_shown),
        deliveries_total=session.scalar(
            select(func.count()).where(Delivery.contact_id == contact.id)
        )
        or 0,
    )


def _suppression(session: Session, email: str) -> SuppressionFacts | None:
    # Matched by hash, as the sending path matches it: any spelling of the address counts.
    entry = session.scalar(
        select(Suppression).where(Suppression.address_hash == hash_of(session, email))
    )
    if entry is None:
        return None
    return SuppressionFacts(entry.reason, entry.source, entry.note, entry.created_at)


def _recent_deliveries(session: Session, contact_id: int, *, limit: int) -> list[RecentDelivery]:
    rows = session.execute(
        select(Delivery, Send.release_id, Release.headline, Send.embargo_at)
        .join(Send, Send.id == Delivery.send_id)
        .join(Release, Release.id == Send.release_id)
        .where(Delivery.contact_id == contact_id)
        .order_by(Delivery.id.desc())
        .limit(limit)
    )
    return [
        RecentDelivery(
            delivery_id=d.id,
            send_id=d.send_id,
            release_id=release_id,
            headline=headline,
            state=d.state,
            embargo_at=embargo_at,
            claimed_at=d.claimed_at,
            finished_at=d.finished_at,
            smtp_code=d.smtp_code,
            smtp_reply=d.smtp_reply,
            error=d.error,
        )
        for d, release_id, headline, embargo_at in rows
    ]


@dataclass(frozen=True, slots=True)
class FoundContact:
    email: str
    name: str
    outlet: str
    role: str
    country: str
    # On the suppression list: found, but never mailed.
    suppressed: bool


@dataclass(frozen=True, slots=True)
class SearchPage:
    total: int
    page: int
    per_page: int
    offset: int
    contacts: list[FoundContact]

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


def search_contacts(
    session: Session,
    *,
    text: str | None = None,
    matching: str | None = None,
    per_page: int = DEFAULT_PER_PAGE,
    page: int = 1,
    offset: int | None = None,
    everyone: bool = False,
) -> SearchPage:
    """Contacts whose name, address or outlet contains `text` (any letter case) and that
    match the filter `matching`, in address order, one page of them; with `everyone`, no
    text and no filter list every contact.

    `offset` counts contacts to skip and wins over `page`. Forgotten people are never found.
    """
    needle = tidy(text or "")
    if not needle and not (matching or "").strip() and not everyone:
        raise DistributorError(
            "give TEXT to look for in names, addresses and outlets, or --matching FILTER, or both"
        )
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise DistributorError(f"show between 1 and {MAX_PER_PAGE} contacts a page")
    if page < 1 or (offset is not None and offset < 0):
        raise DistributorError("pages count from 1, and an offset must not be negative")
    skip = offset if offset is not None else (page - 1) * per_page
    conditions: list[ColumnElement[bool]] = [Contact.forgotten_at.is_(None)]
    if needle:
        conditions.append(_contains_text(session, needle))
    if matching and matching.strip():
        conditions.append(compile_filter(parse_filter(matching)))
    found = (
        select(
            Contact.email,
            Contact.name,
            func.coalesce(Outlet.name, ""),
            Contact.role,
            Contact.country,
            contact_is_suppressed(),
        )
        .select_from(contacts_with_outlets())
        .where(and_(*conditions))
    )
    total = session.scalar(select(func.count()).select_from(found.subquery())) or 0
    rows = session.execute(found.order_by(Contact.email_key).offset(skip).limit(per_page))
    return SearchPage(
        total=total,
        page=skip // per_page + 1,
        per_page=per_page,
        offset=skip,
        contacts=[
            FoundContact(email, name, outlet, role, country, bool(suppressed))
            for email, name, outlet, role, country, suppressed in rows
        ],
    )


def _contains_text(session: Session, needle: str) -> ColumnElement[bool]:
    """The needle within the address, the outlet or the name; % and _ stand for themselves.

    Addresses and outlet names are stored folded by Python, so only the needle is folded for
    them; names are stored as written and lowered on both sides.
    """
    return or_(
        Contact.email_key.contains(needle.lower(), autoescape=True),
        Outlet.name_key.contains(fold(needle), autoescape=True),
        _lowered(session, Contact.name).contains(needle.lower(), autoescape=True),
    )


def _lowered(session: Session, column: Any) -> ColumnElement[str]:
    """The column in lower case beyond ASCII too, on either database.

    PostgreSQL's lower() follows the database's character type (every UTF-8 locale folds
    "Å" to "å"); SQLite's folds ASCII only, so Python's own is lent to the connection.
    """
    if session.get_bind().dialect.name != "sqlite":
        return func.lower(column)
    sqlite_connection = session.connection().connection.driver_connection
    assert sqlite_connection is not None
    sqlite_connection.create_function(_SQLITE_LOWER, 1, _lower_or_none, deterministic=True)
    return getattr(func, _SQLITE_LOWER)(column)  # type: ignore[no-any-return]


def _lower_or_none(value: str | None) -> str | None:
    return value.lower() if value is not None else None
