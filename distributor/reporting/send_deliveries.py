"""A send's deliveries a page at a time, in the order they were scheduled, optionally only
those in some states: who, where each stands, and what the relay last said."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from distributor.models import Contact, Delivery, Outlet
from distributor.scheduling import get_send
from distributor.states import DeliveryState


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    delivery_id: int
    email: str
    name: str
    outlet: str
    state: DeliveryState
    attempts: int
    claimed_at: datetime | None
    finished_at: datetime | None
    next_attempt_at: datetime | None
    smtp_code: int | None
    smtp_reply: str | None
    error: str | None


def send_deliveries(
    session: Session,
    send_id: int,
    states: Sequence[DeliveryState],
    *,
    offset: int,
    limit: int,
) -> tuple[int, list[DeliveryRow]]:
    """How many deliveries of the send are in `states` (all, if none), and `limit` of them
    from `offset`; NotFoundError for a send that does not exist."""
    get_send(session, send_id)
    chosen = [Delivery.send_id == send_id]
    if states:
        chosen.append(Delivery.state.in_(list(states)))
    total = session.scalar(select(func.count()).select_from(Delivery).where(*chosen)) or 0
    rows = session.execute(
        select(Delivery, Contact.email, Contact.name, func.coalesce(Outlet.name, ""))
        .join(Contact, Contact.id == Delivery.contact_id)
        .outerjoin(Outlet, Outlet.id == Contact.outlet_id)
        .where(*chosen)
        .order_by(Delivery.id)
        .offset(offset)
        .limit(limit)
    )
    return total, [
        DeliveryRow(
            delivery_id=d.id,
            email=email,
            name=name,
            outlet=outlet,
            state=d.state,
            attempts=d.attempts,
            claimed_at=d.claimed_at,
            finished_at=d.finished_at,
            next_attempt_at=d.next_attempt_at,
            smtp_code=d.smtp_code,
            smtp_reply=d.smtp_reply,
            error=d.error,
        )
        for d, email, name, outlet in rows
    ]
