"""The scheduler tick: the database says what is due, the broker only carries it.

Every step is a conditional UPDATE, so any number of schedulers may tick at once, and a
broker message that gets lost is simply queued again on a later tick. `now` is the
database's time, read by the caller at the start of the tick.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, case, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from distributor.audience_refresh import refresh_audience
from distributor.bounces.reputation import ReputationLimits, guard_send
from distributor.database import rows_affected
from distributor.engine.claims import EVENTS, is_due
from distributor.engine.dispatch import BatchDispatcher, BatchRef
from distributor.engine.leases import Takeover, take_over_expired_batches
from distributor.engine.relay_health import relay_state
from distributor.models import Delivery, Send, SendBatch
from distributor.states import UNFINISHED_DELIVERY_STATES, DeliveryState, SendKind, SendState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SchedulerPolicy:
    arm_lead: timedelta
    redispatch_after: timedelta
    # Batches reach workers this long before the embargo, so that loading the send, rendering
    # and connecting to the relay are done when it lifts; workers then wait for the instant.
    prepare_ahead: timedelta = timedelta(seconds=2)
    # A send that nothing sent within this long after its embargo waits for an admin.
    max_lateness: timedelta = timedelta(minutes=15)
    # Deferred deliveries still failing this long after their first attempt fail for good.
    retry_window: timedelta = timedelta(hours=2)
    # Deliveries per batch for contacts who join the audience between scheduling and arming.
    batch_size: int = 500
    # A send whose hard bounces pass these limits pauses itself (the relay's 5xx answers;
    # bounces and complaints that come back later are judged as they are processed).
    reputation: ReputationLimits = field(default_factory=ReputationLimits)


@dataclass(frozen=True, slots=True)
class TickReport:
    armed: list[int]
    dispatched: list[BatchRef]
    completed: list[int]
    held: list[int] = field(default_factory=list)
    takeovers: list[Takeover] = field(default_factory=list)
    expired: int = 0
    relay_resting: bool = False
    # Sends the reputation guard paused in this tick.
    guarded: list[int] = field(default_factory=list)


def hold_late_sends(session: Session, *, now: datetime, max_lateness: timedelta) -> list[int]:
    """Hold sends whose embargo passed more than `max_lateness` ago with nothing sent.

    That happens only when nothing was running at the lift; news that late should go out
    only when an admin says so.
    """
    started = exists().where(Delivery.send_id == Send.id, Delivery.first_claimed_at.is_not(None))
    late = and_(
        Send.state.in_([SendState.SCHEDULED, SendState.ARMED]),
        Send.embargo_at < now - max_lateness,
        Send.resumed_at.is_(None),
        ~started,
    )
    ids = session.scalars(select(Send.id).where(late).order_by(Send.id)).all()
    held = []
    minutes = max_lateness.total_seconds() / 60
    for send_id in ids:
        result = session.execute(
            update(Send)
            .where(Send.id == send_id, late)
            .values(
                state=SendState.HELD,
                held_at=now,
                hold_reason=(
                    f"nothing was sent within {minutes:g} minutes of the embargo (no scheduler or "
                    f"worker was running); send it late with `distributor send resume "
                    f"{send_id}`, or cancel it"
                ),
            )
        )
        if rows_affected(result) == 1:
            held.append(send_id)
            log.warning(
                "send held: missed its embargo by over %g min", minutes, extra={"send_id": send_id}
            )
    return held


def arm_due_sends(
    session: Session, *, now: datetime, lead: timedelta, batch_size: int = 500
) -> list[int]:
    """Move scheduled sends whose embargo is within `lead` to ARMED, with their audience as
    it stands now (in the same transaction, so only the scheduler that armed it resolves it);
    returns their ids."""
    due = session.scalars(
        select(Send.id)
        .where(Send.state == SendState.SCHEDULED, Send.embargo_at <= now + lead)
        # Pre-briefs first: a public send armed in the same tick then supersedes what the
        # pre-brief could not send in time, rather than the pre-brief adding, after it,
        # journalists the public send already has. One order for every scheduler, so none
        # can deadlock another.
        .order_by(case((Send.kind == SendKind.PREBRIEF, 0), else_=1), Send.id)
    ).all()
    armed = []
    for send_id in due:
        claimed = session.execute(
            update(Send)
            .where(Send.id == send_id, Send.state == SendState.SCHEDULED)
            .values(state=SendState.ARMED, armed_at=now)
        )
        if rows_affected(claimed) == 1:
            refresh_audience(session, send_id=send_id, now=now, batch_size=batch_size)
            armed.append(send_id)
            log.info("send armed", extra={"send_id": send_id})
    return armed


def expire_stale_deferrals(session: Session, *, now: datetime, window: timedelta) -> int:
    """Fail deferred deliveries whose retry window has closed (the sender's check catches
    most at the failure itself; this catches those handed back while the relay was down)."""
    stale = and_(
        Delivery.state == DeliveryState.DEFERRED,
        Delivery.first_claimed_at < now - window,
        Delivery.send_id.in_(select(Send.id).where(Send.state == SendState.ARMED)),
    )
    hours = window.total_seconds() / 3600
    detail = f"expired: not delivered within {hours:g} h of the first attempt"
    ids = session.scalars(
        update(Delivery)
        .where(stale)
        .values(
            state=DeliveryState.FAILED,
            finished_at=now,
            next_attempt_at=None,
            error=func.coalesce(Delivery.error + "; ", "") + detail,
        )
        .returning(Delivery.id)
    ).all()
    if ids:
        session.execute(
            insert(EVENTS),
            [
                {"delivery_id": i, "at": now, "state": DeliveryState.FAILED, "detail": detail}
                for i in sorted(ids)
            ],
        )
    return len(ids)


@dataclass(frozen=True, slots=True)
class QueuedBatch:
    batch: BatchRef
    embargo_at: datetime
    urgent: bool  # a notice: on the queue that bulk sends cannot hold up


def claim_batches_to_dispatch(
    session: Session, *, now: datetime, redispatch_after: timedelta
) -> list[QueuedBatch]:
    """Batches of armed sends with due work that no live worker holds and no recent broker
    message carries. Marks them queued; the caller then queues them."""
    free = and_(
        SendBatch.lease_owner.is_(None),
        or_(SendBatch.queued_at.is_(None), SendBatch.queued_at < now - redispatch_after),
    )
    has_due_work = exists().where(
        Delivery.send_id == SendBatch.send_id,
        Delivery.batch_no == SendBatch.batch_no,
        is_due(now),
    )
    candidates = session.execute(
        select(SendBatch.send_id, SendBatch.batch_no, Send.embargo_at, Send.kind)
        .join(Send, Send.id == SendBatch.send_id)
        .where(Send.state == SendState.ARMED, free, has_due_work)
        .order_by(SendBatch.send_id, SendBatch.batch_no)
    ).all()
    claimed = []
    for send_id, batch_no, embargo_at, kind in candidates:
        result = session.execute(
            update(SendBatch)
            .where(SendBatch.send_id == send_id, SendBatch.batch_no == batch_no, free)
            .values(queued_at=now)
        )
        if rows_affected(result):
            claimed.append(QueuedBatch(BatchRef(send_id, batch_no), embargo_at, kind.is_notice))
    return claimed


def unmark_batches(session: Session, batches: list[BatchRef], *, queued_at: datetime) -> None:
    for batch in batches:
        session.execute(
            update(SendBatch)
            .where(
                SendBatch.send_id == batch.send_id,
                SendBatch.batch_no == batch.batch_no,
                SendBatch.queued_at == queued_at,
            )
            .values(queued_at=None)
        )


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
            log.info("send completed", extra={"send_id": send_id})
    return done


def tick(
    sessions: sessionmaker[Session],
    dispatcher: BatchDispatcher,
    *,
    now: datetime,
    policy: SchedulerPolicy,
) -> TickReport:
    with sessions.begin() as session:
        held = hold_late_sends(session, now=now, max_lateness=policy.max_lateness)
        armed = arm_due_sends(session, now=now, lead=policy.arm_lead, batch_size=policy.batch_size)
    with sessions.begin() as session:
        takeovers = take_over_expired_batches(session, now=now)
        expired = expire_stale_deferrals(session, now=now, window=policy.retry_window)
    for takeover in takeovers:
        log.warning(
            "lease of %s expired; %d deliveries taken over",
            takeover.dead_owner,
            takeover.deliveries,
            extra={"send_id": takeover.batch.send_id, "batch_no": takeover.batch.batch_no},
        )
    with sessions.begin() as session:
        resting = relay_state(session).is_resting(now)
        to_dispatch = (
            []
            if resting
            else claim_batches_to_dispatch(
                session, now=now, redispatch_after=policy.redispatch_after
            )
        )
    # Queued only after the claim committed: a crash in between leaves the batches marked,
    # and the redispatch rule picks them up again later.
    for done, queued in enumerate(to_dispatch):
        try:
            dispatcher.dispatch(
                queued.batch,
                not_before=max(queued.embargo_at - policy.prepare_ahead, now),
                urgent=queued.urgent,
            )
        except Exception:
            # The broker is out of reach: unmark what it did not take, so that the next tick
            # queues it again rather than waiting out the redispatch interval.
            with sessions.begin() as session:
                unmark_batches(session, [q.batch for q in to_dispatch[done:]], queued_at=now)
            raise
    with sessions.begin() as session:
        completed = complete_finished_sends(session, now=now)
    with sessions.begin() as session:
        guarded = guard_bouncing_sends(session, now=now, limits=policy.reputation)
    return TickReport(
        armed=armed,
        dispatched=[q.batch for q in to_dispatch],
        completed=completed,
        held=held,
        takeovers=takeovers,
        expired=expired,
        relay_resting=resting,
        guarded=guarded,
    )


def guard_bouncing_sends(session: Session, *, now: datetime, limits: ReputationLimits) -> list[int]:
    """Pause armed sends whose hard bounces passed the limit; returns their ids.

    Only armed sends with a bounce and no earlier resume by an admin are looked at, so a
    tick of a healthy send costs one indexed lookup.
    """
    bouncing = session.scalars(
        select(Send.id).where(
            Send.state == SendState.ARMED,
            Send.resumed_at.is_(None),
            exists().where(Delivery.send_id == Send.id, Delivery.state == DeliveryState.BOUNCED),
        )
    ).all()
    return [
        send_id
        for send_id in bouncing
        if guard_send(session, send_id=send_id, limits=limits, now=now) is not None
    ]
