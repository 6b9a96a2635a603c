"""The audience as it stands at the lift: a send's deliveries brought up to date when it is armed.

Scheduling counts the audience and writes one pending delivery per recipient, but press
offices keep editing their lists until the last minute, and "send to the crime list at
09:00" means the list as it stands at 09:00. When the tick arms a send, inside the same
transaction that moves it to ARMED (so only one scheduler ever does it), contacts who joined
a chosen list or now match a chosen segment get a pending delivery in new batches, and the
pending deliveries of contacts no longer chosen are cancelled with the reason.

Who counts as chosen depends on the kind of send (see audience_rules.py). A suppressed
contact who is still on the list keeps its delivery: the claim ends it as `suppressed`,
which says more than "removed".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.orm import Session

from distributor.audience_rules import (
    LEFT_DETAIL,
    PREBRIEFED_DETAIL,
    audience_rule,
    prebriefed_ids,
)
from distributor.models import Delivery, DeliveryEvent, Send, SendBatch
from distributor.prebriefs import supersede_unsent_prebriefs
from distributor.states import DeliveryState, SendKind

__all__ = ["JOINED_DETAIL", "LEFT_DETAIL", "AudienceChange", "refresh_audience"]

log = logging.getLogger(__name__)

JOINED_DETAIL = "joined the audience before the lift"


@dataclass(frozen=True, slots=True)
class AudienceChange:
    joined: int
    left: int
    total: int  # deliveries that may still go out: pending ones after the change


def refresh_audience(
    session: Session, *, send_id: int, now: datetime, batch_size: int
) -> AudienceChange:
    """Add the contacts who joined since scheduling and cancel those who left; one statement
    each, set-based, so that it costs about what scheduling costs at any audience size."""
    send = session.get_one(Send, send_id)
    rule = audience_rule(session, send)
    left = 0
    if send.kind is SendKind.PUBLIC:
        supersede_unsent_prebriefs(session, public_send_id=send_id, now=now)
        left += _cancel_pending(
            session,
            send_id=send_id,
            which=Delivery.contact_id.in_(prebriefed_ids(send_id, in_flight=True)),
            detail=PREBRIEFED_DETAIL,
            now=now,
        )
    left += _cancel_pending(
        session,
        send_id=send_id,
        which=Delivery.contact_id.not_in(rule.kept),
        detail=rule.left_detail,
        now=now,
    )
    joined = _add_joiners(
        session, send_id=send_id, chosen=rule.chosen, now=now, batch_size=batch_size
    )
    total = (
        session.scalar(
            select(func.count()).where(
                Delivery.send_id == send_id, Delivery.state == DeliveryState.PENDING
            )
        )
        or 0
    )
    session.execute(
        update(Send)
        .where(Send.id == send_id)
        .values(armed_recipients=total, joined_at_arming=joined, left_at_arming=left)
    )
    if joined or left:
        log.info(
            "audience refreshed at arming: %d joined, %d left, %d to send",
            joined,
            left,
            total,
            extra={"send_id": send_id},
        )
    return AudienceChange(joined=joined, left=left, total=total)


def _cancel_pending(
    session: Session,
    *,
    send_id: int,
    which: ColumnElement[bool],
    detail: str,
    now: datetime,
) -> int:
    cancelled = len(
        session.scalars(
            update(Delivery)
            .where(
                Delivery.send_id == send_id,
                Delivery.state == DeliveryState.PENDING,
                Delivery.first_claimed_at.is_(None),
                which,
            )
            .values(
                state=DeliveryState.CANCELLED,
                finished_at=now,
                next_attempt_at=None,
                error=detail,
            )
            .returning(Delivery.id)
        ).all()
    )
    if cancelled:
        _record(
            session,
            and_(
                Delivery.send_id == send_id,
                Delivery.state == DeliveryState.CANCELLED,
                Delivery.error == detail,
                Delivery.finished_at == now,
            ),
            state=DeliveryState.CANCELLED,
            detail=detail,
            now=now,
        )
    return cancelled


def _add_joiners(
    session: Session,
    *,
    send_id: int,
    chosen: Select[int],
    now: datetime,
    batch_size: int,
) -> int:
    first_new_batch = (
        session.scalar(select(func.max(SendBatch.batch_no)).where(SendBatch.send_id == send_id))
        or 0
    ) + 1
    candidates = chosen.subquery()
    joiners = (
        select(candidates.c.id)
        .where(
            ~exists().where(
                and_(Delivery.send_id == send_id, Delivery.contact_id == candidates.c.id)
            )
        )
        .subquery()
    )
    numbered = select(
        literal(send_id),
        joiners.c.id,
        first_new_batch
        + (func.row_number(type_=Integer).over(order_by=joiners.c.id) - 1) // batch_size,
        literal(DeliveryState.PENDING.value),
        literal(0),
    )
    joined = len(
        session.scalars(
            insert(Delivery)
            .from_select(["send_id", "contact_id", "batch_no", "state", "attempts"], numbered)
            .returning(Delivery.id)
        ).all()
    )
    if not joined:
        return 0
    new_batches = and_(Delivery.send_id == send_id, Delivery.batch_no >= first_new_batch)
    session.execute(
        insert(SendBatch).from_select(
            ["send_id", "batch_no"],
            select(Delivery.send_id, Delivery.batch_no).where(new_batches).distinct(),
        )
    )
    _record(session, new_batches, state=DeliveryState.PENDING, detail=JOINED_DETAIL, now=now)
    return joined


def _record(
    session: Session,
    which: ColumnElement[bool],
    *,
    state: DeliveryState,
    detail: str,
    now: datetime,
) -> None:
    session.execute(
        insert(DeliveryEvent).from_select(
            ["delivery_id", "at", "state", "detail"],
            select(
                Delivery.id,
                literal(now, DeliveryEvent.at.type),
                literal(state.value),
                literal(detail),
            ).where(which),
        )
    )
