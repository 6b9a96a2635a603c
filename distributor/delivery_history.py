"""One recipient's deliveries and everything that happened to each, relay replies included."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from distributor.contacts.editing import get_contact
from distributor.models import Delivery, DeliveryEvent, Release, Send
from distributor.states import DeliveryState


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    at: datetime
    state: DeliveryState
    detail: str | None


@dataclass(frozen=True, slots=True)
class DeliveryHistory:
    delivery_id: int
    send_id: int
    headline: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None
    smtp_code: int | None
    smtp_reply: str | None
    error: str | None
    events: list[HistoryEvent]


def recipient_history(
    session: Session, *, email: str, send_id: int | None = None
) -> list[DeliveryHistory]:
    contact = get_contact(session, email)
    query = (
        select(Delivery, Release.headline)
        .join(Send, Send.id == Delivery.send_id)
        .join(Release, Release.id == Send.release_id)
        .where(Delivery.contact_id == contact.id)
        .order_by(Delivery.id)
    )
    if send_id is not None:
        query = query.where(Delivery.send_id == send_id)
    rows = session.execute(query).all()
    events: dict[int, list[HistoryEvent]] = {d.id: [] for d, _ in rows}
    for event in session.scalars(
        select(DeliveryEvent)
        .where(DeliveryEvent.delivery_id.in_(list(events)))
        .order_by(DeliveryEvent.at, DeliveryEvent.id)
    ):
        events[event.delivery_id].append(HistoryEvent(event.at, event.state, event.detail))
    return [
        DeliveryHistory(
            delivery_id=d.id,
            send_id=d.send_id,
            headline=headline,
            state=d.state,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at,
            smtp_code=d.smtp_code,
            smtp_reply=d.smtp_reply,
            error=d.error,
            events=events[d.id],
        )
        for d, headline in rows
    ]
