"""Counts of deliveries by state, for the press officer and the admin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from distributor.models import Delivery, Release, Send
from distributor.states import DeliveryState, SendState


@dataclass(frozen=True, slots=True)
class SendStatus:
    send_id: int
    release_id: int
    headline: str
    state: SendState
    embargo_at: datetime
    embargo_zone: str
    counts: dict[DeliveryState, int]
    first_sent_at: datetime | None
    last_sent_at: datetime | None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def send_statuses(session: Session, send_id: int | None = None) -> list[SendStatus]:
    query = select(Send, Release.headline).join(Release, Release.id == Send.release_id)
    if send_id is not None:
        query = query.where(Send.id == send_id)
    sends = session.execute(query.order_by(Send.id)).all()
    if not sends:
        return []
    ids = [send.id for send, _ in sends]
    counts: dict[int, dict[DeliveryState, int]] = {i: {} for i in ids}
    for sid, state, n in session.execute(
        select(Delivery.send_id, Delivery.state, func.count())
        .where(Delivery.send_id.in_(ids))
        .group_by(Delivery.send_id, Delivery.state)
    ):
        counts[sid][state] = n
    timings = {
        sid: (first, last)
        for sid, first, last in session.execute(
            select(Delivery.send_id, func.min(Delivery.finished_at), func.max(Delivery.finished_at))
            .where(Delivery.send_id.in_(ids), Delivery.state == DeliveryState.SENT)
            .group_by(Delivery.send_id)
        )
    }
    return [
        SendStatus(
            send_id=send.id,
            release_id=send.release_id,
            headline=headline,
            state=send.state,
            embargo_at=send.embargo_at,
            embargo_zone=send.embargo_zone,
            counts=counts[send.id],
            first_sent_at=timings.get(send.id, (None, None))[0],
            last_sent_at=timings.get(send.id, (None, None))[1],
        )
        for send, headline in sends
    ]
