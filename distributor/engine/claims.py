"""The database side of sending: claiming deliveries and recording what became of them.

A claim is one conditional UPDATE (pending to sending) that also requires the send to be
armed and its embargo to have passed, so the embargo and a cancellation are checked at the
moment of the claim, and no two workers can ever hold the same delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, Row, Table, bindparam, exists, func, insert, select, update
from sqlalchemy.orm import Session

from distributor.message import Recipient
from distributor.models import Contact, Delivery, DeliveryEvent, Outlet, Release, Send
from distributor.states import DeliveryState, SendState
from distributor.suppression import contact_is_suppressed

# Core, not ORM, inserts for the history rows: the ORM's bulk path costs several times more
# per row, and this runs for every message sent.
EVENTS = cast(Table, DeliveryEvent.__table__)


@dataclass(frozen=True, slots=True)
class SendSnapshot:
    send_id: int
    state: SendState
    embargo_at: datetime
    release: Release


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery_id: int
    state: DeliveryState
    # When the relay accepted or refused this message, not when the chunk was recorded.
    at: datetime
    smtp_reply: str | None = None
    error: str | None = None


SUPPRESSED_DETAIL = "not sent: the address is on the suppression list or was forgotten"
REPLY_LIMIT = 500  # the smtp_reply column's width; relays may answer at greater length


def load_send(session: Session, send_id: int) -> SendSnapshot | None:
    row = session.execute(
        select(Send, Release).join(Release, Release.id == Send.release_id).where(Send.id == send_id)
    ).first()
    if row is None:
        return None
    send, release = row
    return SendSnapshot(send.id, send.state, send.embargo_at, release)


def claim_deliveries(
    session: Session, *, send_id: int, batch_no: int, now: datetime, limit: int
) -> list[Recipient]:
    send_is_live = exists().where(
        Send.id == send_id, Send.state == SendState.ARMED, Send.embargo_at <= now
    )
    while True:
        candidates = _candidates(session, send_id=send_id, batch_no=batch_no, limit=limit)
        if not candidates:
            return []
        # Someone may have unsubscribed since the audience was resolved: never send to them.
        suppressed = _suppress(
            session, [c[0] for c in candidates if c[5]], send_is_live=send_is_live, now=now
        )
        # A chunk of nothing but suppressed addresses is not the end of the batch: read on.
        if suppressed == 0 or len(candidates) > suppressed:
            break
    claimed_ids = set(
        session.scalars(
            update(Delivery)
            .where(
                Delivery.id.in_([c[0] for c in candidates if not c[5]]),
                Delivery.state == DeliveryState.PENDING,
                send_is_live,
            )
            .values(state=DeliveryState.SENDING, claimed_at=now, attempts=Delivery.attempts + 1)
            .returning(Delivery.id)
        )
    )
    if claimed_ids:
        session.execute(
            insert(EVENTS),
            [
                {"delivery_id": i, "at": now, "state": DeliveryState.SENDING}
                for i in sorted(claimed_ids)
            ],
        )
    return [
        Recipient(delivery_id=i, email=email, name=name, outlet=outlet, time_zone=zone)
        for i, email, name, outlet, zone, _ in candidates
        if i in claimed_ids
    ]


def _candidates(
    session: Session, *, send_id: int, batch_no: int, limit: int
) -> Sequence[Row[int, str, str, str, str | None, bool]]:
    return session.execute(
        select(
            Delivery.id,
            Contact.email,
            Contact.name,
            func.coalesce(Outlet.name, ""),
            Contact.time_zone,
            contact_is_suppressed(),
        )
        .join(Contact, Contact.id == Delivery.contact_id)
        .outerjoin(Outlet, Outlet.id == Contact.outlet_id)
        .where(
            Delivery.send_id == send_id,
            Delivery.batch_no == batch_no,
            Delivery.state == DeliveryState.PENDING,
        )
        .order_by(Delivery.id)
        .limit(limit)
        .with_for_update(of=Delivery, skip_locked=True)
    ).all()


def _suppress(
    session: Session, ids: list[int], *, send_is_live: ColumnElement[bool], now: datetime
) -> int:
    """Mark these pending deliveries suppressed, with their events; returns how many."""
    if not ids:
        return 0
    suppressed_ids = session.scalars(
        update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.state == DeliveryState.PENDING, send_is_live)
        .values(state=DeliveryState.SUPPRESSED, finished_at=now)
        .returning(Delivery.id)
    ).all()
    if suppressed_ids:
        session.execute(
            insert(EVENTS),
            [
                {
                    "delivery_id": i,
                    "at": now,
                    "state": DeliveryState.SUPPRESSED,
                    "detail": SUPPRESSED_DETAIL,
                }
                for i in sorted(suppressed_ids)
            ],
        )
    return len(suppressed_ids)


def record_outcomes(session: Session, outcomes: Sequence[Outcome]) -> None:
    if not outcomes:
        return
    delivery = cast(Table, Delivery.__table__)
    session.execute(
        update(delivery)
        .where(delivery.c.id == bindparam("delivery_id"), delivery.c.state == "sending")
        .values(
            state=bindparam("new_state"),
            finished_at=bindparam("at"),
            smtp_reply=bindparam("reply"),
            error=bindparam("failure"),
        ),
        [
            {
                "delivery_id": o.delivery_id,
                "new_state": o.state.value,
                "at": o.at,
                "reply": o.smtp_reply[:REPLY_LIMIT] if o.smtp_reply else None,
                "failure": o.error,
            }
            for o in outcomes
        ],
    )
    session.execute(
        insert(EVENTS),
        [
            {
                "delivery_id": o.delivery_id,
                "at": o.at,
                "state": o.state,
                "detail": o.smtp_reply or o.error,
            }
            for o in outcomes
        ],
    )
