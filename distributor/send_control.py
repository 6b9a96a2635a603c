"""An admin's hands on a send in flight: pause it, resume it, put deliveries back in line."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from distributor.audit import record_action
from distributor.database import rows_affected
from distributor.errors import InvalidStateError
from distributor.models import Delivery, DeliveryEvent, Send, SendBatch
from distributor.scheduling import get_send
from distributor.states import DeliveryState, SendState

log = logging.getLogger(__name__)

RETRYABLE = (DeliveryState.FAILED, DeliveryState.BOUNCED)
IDS_A_STATEMENT = 5000


def pause_send(session: Session, *, send_id: int, now: datetime) -> None:
    """Stop further claims at once; within half a second each worker finishes the message in
    flight on each connection and hands the rest of what it claimed back."""
    send = get_send(session, send_id)
    old_state = send.state
    result = session.execute(
        update(Send)
        .where(Send.id == send_id, Send.state.in_([SendState.SCHEDULED, SendState.ARMED]))
        .values(state=SendState.PAUSED, paused_at=now, hold_reason="paused by an admin")
    )
    if rows_affected(result) != 1:
        raise InvalidStateError(
            f"send {send_id} is {old_state.value}; only a scheduled or armed send can be paused"
        )
    record_action(
        session,
        "send.paused",
        f"send {send_id}",
        at=now,
        release_id=send.release_id,
        before={"state": old_state},
        after={"state": SendState.PAUSED},
    )
    log.info("send paused", extra={"send_id": send_id})


def resume_send(session: Session, *, send_id: int, now: datetime, arm_lead: timedelta) -> SendState:
    """Carry on with a paused or held send, however late it now is; returns its new state."""
    send = get_send(session, send_id)
    old_state = send.state
    if old_state not in (SendState.PAUSED, SendState.HELD):
        raise InvalidStateError(
            f"send {send_id} is {old_state.value}; only a paused or held send can be resumed"
        )
    # Before the arming window it waits as scheduled; inside it, the tick arms it at once.
    new_state = SendState.ARMED if send.embargo_at <= now + arm_lead else SendState.SCHEDULED
    result = session.execute(
        update(Send)
        .where(Send.id == send_id, Send.state == old_state)
        .values(
            state=new_state,
            resumed_at=now,
            hold_reason=None,
            armed_at=send.armed_at or (now if new_state is SendState.ARMED else None),
        )
    )
    if rows_affected(result) != 1:
        raise InvalidStateError(
            f"send {send_id} changed meanwhile; look again with `status`",
            on_page=f"send {send_id} changed meanwhile; look at it again",
        )
    _requeue_batches(session, send_id)
    record_action(
        session,
        "send.resumed",
        f"send {send_id}",
        at=now,
        release_id=send.release_id,
        before={"state": old_state},
        after={"state": new_state},
    )
    log.info("send resumed (%s)", new_state.value, extra={"send_id": send_id})
    return new_state


def retry_deliveries(
    session: Session,
    *,
    send_id: int,
    states: Sequence[DeliveryState] = RETRYABLE,
    now: datetime,
    delivery_ids: Collection[int] | None = None,
) -> int:
    """Put failed or bounced deliveries of a send back in line, with a new retry window;
    with `delivery_ids`, only those of them (the ones that failed for one reason, say).

    Suppressed addresses stay suppressed: the claim checks the list again before sending.
    """
    send = get_send(session, send_id)
    chosen = [DeliveryState(s) for s in states]
    if not chosen or any(s not in RETRYABLE for s in chosen):
        raise InvalidStateError("only failed and bounced deliveries can be retried")
    if send.state is SendState.CANCELLED:
        raise InvalidStateError(f"send {send_id} was cancelled; schedule the release again")
    retry = (
        update(Delivery)
        .where(Delivery.send_id == send_id, Delivery.state.in_(chosen))
        .values(
            state=DeliveryState.PENDING,
            first_claimed_at=None,
            next_attempt_at=None,
            finished_at=None,
            error=None,
        )
        .returning(Delivery.id)
    )
    if delivery_ids is None:
        ids = list(session.scalars(retry))
    else:
        # A few thousand ids a statement: the databases bound the parameters of one.
        chosen_ids = sorted(delivery_ids)
        ids = [
            i
            for start in range(0, len(chosen_ids), IDS_A_STATEMENT)
            for i in session.scalars(
                retry.where(Delivery.id.in_(chosen_ids[start : start + IDS_A_STATEMENT]))
            )
        ]
    if not ids:
        return 0
    session.execute(
        insert(DeliveryEvent),
        [
            {
                "delivery_id": i,
                "at": now,
                "state": DeliveryState.PENDING,
                "detail": "put back in line by an admin",
            }
            for i in sorted(ids)
        ],
    )
    old_state = send.state
    if old_state is SendState.COMPLETED:
        # Late on purpose: the lateness rule must not hold it.
        session.execute(
            update(Send)
            .where(Send.id == send_id, Send.state == SendState.COMPLETED)
            .values(state=SendState.ARMED, completed_at=None, resumed_at=now)
        )
    _requeue_batches(session, send_id)
    reopened = old_state is SendState.COMPLETED
    record_action(
        session,
        "deliveries.retried",
        f"send {send_id}",
        at=now,
        release_id=send.release_id,
        before={"state": old_state} if reopened else None,
        after={
            "deliveries": len(ids),
            "of_states": sorted(set(chosen)),
            **({"state": SendState.ARMED} if reopened else {}),
        },
    )
    log.info("%d deliveries put back in line", len(ids), extra={"send_id": send_id})
    return len(ids)


def _requeue_batches(session: Session, send_id: int) -> None:
    """Let the next tick queue the send's free batches at once, not after the redispatch wait."""
    session.execute(
        update(SendBatch)
        .where(SendBatch.send_id == send_id, SendBatch.lease_owner.is_(None))
        .values(queued_at=None)
    )
