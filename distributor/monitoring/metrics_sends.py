"""What the database says about deliveries and sends, read at scrape time for /metrics.

Workers record every outcome in `deliveries` and a history row in `delivery_events` before
their next message goes, so these figures are the same whichever process sent, however
many Celery children came and went, and always agree with the deliveries table. The
message counters count history rows: a delivery retried by an admin after a failure counts
once as failed and once as sent. The relay's replies are counted from the same rows, each
of which keeps its attempt's reply code: every reply, a deferral tried again included.

Figures per send are given for the sends being watched: those that may still send, and
those that finished or were due within the last day (at most MAX_WATCHED_SENDS, the newest),
so that the number of series stays bounded however many sends the database holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from distributor.bounces.reputation import SendReputation
from distributor.engine.outcomes import EVENTS
from distributor.models import Delivery, Send
from distributor.monitoring.send_counts import (
    REPLY_CLASSES,
    complaints_by_send,
    deliveries_by_state,
    reply_class,
    reputation_of,
)
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
    # Deliveries put back in line because the worker holding their batch stopped renewing
    # its lease.
    taken_over: int
    # The relay's replies to every attempt by class (2xx, 4xx, 5xx), from the history rows
    # that keep one (those written since migration 0012).
    replies: dict[str, int]


def delivery_totals(session: Session) -> DeliveryTotals:
    """Counts of history rows by state, of lease takeovers and of replies by class, in one
    pass over the table."""
    events = EVENTS.c
    # By code rather than by class: relays answer with a handful of codes, and a grouping
    # on the bare column reads the same on every database.
    rows = session.execute(
        select(
            events.state,
            events.smtp_code,
            func.count(),
            func.sum(case((events.detail.like(TAKEOVER_DETAIL), 1), else_=0)),
        ).group_by(events.state, events.smtp_code)
    ).all()
    transitions: dict[DeliveryState, int] = {}
    replies = dict.fromkeys(REPLY_CLASSES, 0)
    for state, code, n, _ in rows:
        transitions[state] = transitions.get(state, 0) + int(n)
        name = reply_class(code)
        if name is not None:
            replies[name] += int(n)
    return DeliveryTotals(
        transitions=transitions,
        taken_over=sum(int(t or 0) for *_, t in rows),
        replies=replies,
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
    counts = deliveries_by_state(session, send_ids)
    timings = {
        send_id: (first, last)
        for send_id, first, last in session.execute(
            select(Delivery.send_id, func.min(Delivery.finished_at), func.max(Delivery.finished_at))
            .where(Delivery.send_id.in_(send_ids), Delivery.state == DeliveryState.SENT)
            .group_by(Delivery.send_id)
        )
    }
    complaints = complaints_by_send(session, send_ids)
    figures = []
    for send_id, kind, state, embargo_at in sends:
        first, last = timings.get(send_id, (None, None))
        figures.append(
            SendFigures(
                send_id=send_id,
                kind=kind,
                state=state,
                embargo_at=embargo_at,
                deliveries=counts[send_id],
                first_sent_at=first,
                last_sent_at=last,
                reputation=reputation_of(send_id, counts[send_id], complaints.get(send_id, 0)),
            )
        )
    return figures
