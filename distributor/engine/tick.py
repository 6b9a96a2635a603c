"""The scheduler tick: the database says what is due, the broker only carries it.

Every step is a conditional UPDATE, so any number of schedulers may tick at once, and a
broker message that gets lost is simply dispatched again on a later tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session, sessionmaker

from distributor.database import rows_affected
from distributor.dispatch import BatchDispatcher, BatchRef
from distributor.models import Delivery, Send
from distributor.states import UNFINISHED_DELIVERY_STATES, DeliveryState, SendState


@dataclass(frozen=True, slots=True)
class SchedulerPolicy:
    arm_lead: timedelta
    redispatch_after: timedelta
    # Batches reach workers this long before the embargo, so that loading the send, rendering
    # and connecting to the relay are done when it lifts; workers then wait for the instant.
    prepare_ahead: timedelta = timedelta(seconds=2)


@dataclass(frozen=True, slots=True)
class TickReport:
    armed: list[int]
    dispatched: list[BatchRef]
    completed: list[int]


def arm_due_sends(session: Session, *, now: datetime, lead: timedelta) -> list[int]:
    """Move scheduled sends whose embargo is within `lead` to ARMED; returns their ids."""
    due = session.scalars(
        select(Send.id)
        .where(Send.state == SendState.SCHEDULED, Send.embargo_at <= now + lead)
        .order_by(Send.id)  # one lock order for every scheduler, so none can deadlock another
    ).all()
    armed = []
    for send_id in due:
        claimed = session.execute(
            update(Send)
            .where(Send.id == send_id, Send.state == SendState.SCHEDULED)
            .values(state=SendState.ARMED, armed_at=now)
        )
        if rows_affected(claimed) == 1:
            armed.append(send_id)
    return armed


def claim_batches_to_dispatch(
    session: Session, *, now: datetime, redispatch_after: timedelta
) -> list[tuple[BatchRef, datetime]]:
    """Batches of armed sends with pending work that no broker message carries (or one that
    has lain idle too long). Marks them dispatched; the caller then queues them."""
    stale = now - redispatch_after
    undispatched = (Delivery.dispatched_at.is_(None)) | (Delivery.dispatched_at < stale)
    candidates = session.execute(
        select(Delivery.send_id, Delivery.batch_no, Send.embargo_at)
        .join(Send, Send.id == Delivery.send_id)
        .where(
            Send.state == SendState.ARMED,
            Delivery.state == DeliveryState.PENDING,
            undispatched,
        )
        .group_by(Delivery.send_id, Delivery.batch_no, Send.embargo_at)
        .order_by(Delivery.send_id, Delivery.batch_no)
    ).all()
    claimed = []
    for send_id, batch_no, embargo_at in candidates:
        result = session.execute(
            update(Delivery)
            .where(
                Delivery.send_id == send_id,
                Delivery.batch_no == batch_no,
                Delivery.state == DeliveryState.PENDING,
                undispatched,
            )
            .values(dispatched_at=now)
        )
        if rows_affected(result):
            claimed.append((BatchRef(send_id, batch_no), embargo_at))
    return claimed


def complete_finished_sends(session: Session, *, now: datetime) -> list[int]:
    unfinished = exists().where(
        Delivery.send_id == Send.id, Delivery.state.in_(UNFINISHED_DELIVERY_STATES)
    )
    ids = session.scalars(
        select(Send.id)
        .where(Send.state == SendState.ARMED, Send.embargo_at <= now, ~unfinished)
        .order_by(Send.id)
    ).all()
    done = []
    for send_id in ids:
        result = session.execute(
            update(Send)
            .where(Send.id == send_id, Send.state == SendState.ARMED, ~unfinished)
            .values(state=SendState.COMPLETED, completed_at=now)
        )
        if rows_affected(result) == 1:
            done.append(send_id)
    return done


def tick(
    sessions: sessionmaker[Session],
    dispatcher: BatchDispatcher,
    *,
    now: datetime,
    policy: SchedulerPolicy,
) -> TickReport:
    with sessions.begin() as session:
        armed = arm_due_sends(session, now=now, lead=policy.arm_lead)
    with sessions.begin() as session:
        to_dispatch = claim_batches_to_dispatch(
            session, now=now, redispatch_after=policy.redispatch_after
        )
    # Queued only after the claim committed: a crash in between leaves the batches marked,
    # and the redispatch rule picks them up again later.
    for batch, embargo_at in to_dispatch:
        dispatcher.dispatch(batch, not_before=max(embargo_at - policy.prepare_ahead, now))
    with sessions.begin() as session:
        completed = complete_finished_sends(session, now=now)
    return TickReport(
        armed=armed, dispatched=[batch for batch, _ in to_dispatch], completed=completed
    )
