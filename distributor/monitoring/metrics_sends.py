"""What the database says about deliveries and sends, read at scrape time for /metrics.

Workers record every outcome in `deliveries` and a history row in `delivery_events` before
their next message goes, so these figures are the same whichever process sent, however
many Celery children came and went, and always agree with the deliveries table. The
message counters count history rows: a delivery retried by an admin after a failure counts
once as failed and once as sent.

Figures per send are given for the sends being watched: those that may still send, and
those that finished or were due within the last day (at most MAX_WATCHED_SENDS, the newest),
so that the number of series stays bounded however many sends the database holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from distributor.bounces.kinds import BounceKind
from distributor.bounces.reputation import DELIVERED, SendReputation
from distributor.models import Bounce, Delivery, DeliveryEvent, Send
from distributor.states import ACTIVE_SEND_STATES, DeliveryState, SendKind, SendState

WATCH_WINDOW = timedelta(hours=24)
MAX_WATCHED_SENDS = 100
# The history row that engine.leases.take_over_expired_batches writes for each delivery a
# dead worker held: "lease of <worker> expired: ...".
TAKEOVER_DETAIL = "lease of % expired%"
# Sends in these states whose embargo passed with deliveries never tried are behind it.
LIVE_SEND_STATES = (SendState.ARMED, SendState.HELD)


@dataclass(frozen=True, slots=True)
class DeliveryTotals:
    # History rows into each state since the database began: messages the relay accepted
    # (sent), deferred, failed and bounced.
    transitions: dict[DeliveryState, int]
    # Deliveries put back in line because the worker holding them stopped renewing its lease.
    taken_over: int


def delivery_totals(session: Session) -> DeliveryTotals:
    """Counts of history rows by state, and of lease takeovers, in one pass over the table."""
    rows = session.execute(
        select(
            DeliveryEvent.state,
            func.count(),
            func.sum(case((DeliveryEvent.detail.like(TAKEOVER_DETAIL), 1), else_=0)),
        ).group_by(DeliveryEvent.state)
    ).all()
    return DeliveryTotals(
        transitions={state: int(n) for state, n, _ in rows},
        taken_over=sum(int(t or 0) for _, _, t in rows),
    )


def sends_by_state(session: Session) -> dict[SendState, int]:
    counted = dict(session.execute(select(Send.state, func.count()).group_by(Send.state)).all())
    return {state: int(counted.get(state, 0)) for state in SendState}


@dataclass(frozen=True, slots=True)
class SendFigures:
    send_id: int
    kind: SendKind
    state: SendState
    embargo_at: datetime
    deliveries: dict[DeliveryState, int]
    first_sent_at: datetime | None
    last_sent_at: datetime | None
    reputation: SendReputation

    @property
    def first_delivery_seconds(self) -> float | None:
        """From the embargo to the first message the relay accepted."""
        if self.first_sent_at is None:
            return None
        return (self.first_sent_at - self.embargo_at).total_seconds()

    @property
    def last_delivery_seconds(self) -> float | None:
        """From the embargo to the last message the relay accepted so far."""
        if self.last_sent_at is None:
            return None
        return (self.last_sent_at - self.embargo_at).total_seconds()

    def lag_seconds(self, now: datetime) -> float:
        """How far behind its embargo the send is: the time since the embargo while some of
        its deliveries have still not been tried; 0 when none wait (or it is not live)."""
        waiting = self.deliveries.get(DeliveryState.PENDING, 0)
        if self.state not in LIVE_SEND_STATES or self.embargo_at >= now or not waiting:
            return 0.0
        return (now - self.embargo_at).total_seconds()


def watched_send_ids(session: Session, *, now: datetime) -> list[int]:
    since = now - WATCH_WINDOW
    return list(
        session.scalars(
            select(Send.id)
            .where(
                or_(
                    Send.state.in_(ACTIVE_SEND_STATES),
                    Send.embargo_at >= since,
                    Send.completed_at >= since,
                    Send.cancelled_at >= since,
                )
            )
            .order_by(Send.id.desc())
            .limit(MAX_WATCHED_SENDS)
        )
    )


def send_figures(session: Session, send_ids: list[int]) -> list[SendFigures]:
    """Deliveries by state, the first and last acceptance, and the bounce and complaint
    rates (as the reputation guard counts them) of each of these sends."""
    if not send_ids:
        return []
    sends = session.execute(
        select(Send.id, Send.kind, Send.state, Send.embargo_at)
        .where(Send.id.in_(send_ids))
        .order_by(Send.id)
    ).all()
    counts: dict[int, dict[DeliveryState, int]] = {i: {} for i in send_ids}
    for counted_send, delivery_state, n in session.execute(
        select(Delivery.send_id, Delivery.state, func.count())
        .where(Delivery.send_id.in_(send_ids))
        .group_by(Delivery.send_id, Delivery.state)
    ):
        counts[counted_send][delivery_state] = int(n)
    timings = {
        send_id: (first, last)
        for send_id, first, last in session.execute(
            select(Delivery.send_id, func.min(Delivery.finished_at), func.max(Delivery.finished_at))
            .where(Delivery.send_id.in_(send_ids), Delivery.state == DeliveryState.SENT)
            .group_by(Delivery.send_id)
        )
    }
    complaints = dict(
        session.execute(
            select(Bounce.send_id, func.count(func.distinct(Bounce.delivery_id)))
            .where(Bounce.send_id.in_(send_ids), Bounce.kind == BounceKind.COMPLAINT)
            .group_by(Bounce.send_id)
        ).all()
    )
    figures = []
    for send_id, kind, state, embargo_at in sends:
        by_state = counts[send_id]
        first, last = timings.get(send_id, (None, None))
        figures.append(
            SendFigures(
                send_id=send_id,
                kind=kind,
                state=state,
                embargo_at=embargo_at,
                deliveries=by_state,
                first_sent_at=first,
                last_sent_at=last,
                reputation=SendReputation(
                    send_id=send_id,
                    delivered=sum(by_state.get(s, 0) for s in DELIVERED),
                    hard_bounced=by_state.get(DeliveryState.BOUNCED, 0),
                    complaints=int(complaints.get(send_id) or 0),
                ),
            )
        )
    return figures


def reply_classes(session: Session, send_ids: list[int]) -> dict[str, int]:
    """Deliveries of these sends by the class of the relay's last reply to them (2xx, 4xx,
    5xx). Only the last reply of each delivery is kept in the database."""
    classes = {"2xx": 0, "4xx": 0, "5xx": 0}
    if not send_ids:
        return classes
    for code, n in session.execute(
        select(Delivery.smtp_code, func.count())
        .where(Delivery.send_id.in_(send_ids), Delivery.smtp_code.is_not(None))
        .group_by(Delivery.smtp_code)
    ):
        name = f"{(code or 0) // 100}xx"
        if name in classes:
            classes[name] += int(n)
    return classes
