"""What a press officer does to a send: schedule it under embargo, or cancel it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, insert, literal, select, update
from sqlalchemy.orm import Session, aliased

from distributor.acting import actor_of
from distributor.approvals import first_state
from distributor.audience import (
    audience_ids,
    choose_audience,
    materialise_deliveries,
    member_ids,
)
from distributor.audience_rules import audience_rule
from distributor.audit import record_action
from distributor.database import rows_affected
from distributor.errors import InvalidEmbargoError, InvalidStateError, NotFoundError
from distributor.models import Delivery, DeliveryEvent, Send, SendList, SendSegment
from distributor.prebriefs import PrebriefRequest, ScheduledPrebrief, add_prebrief
from distributor.releases import check_release_for_sending, get_release
from distributor.states import ACTIVE_SEND_STATES, DeliveryState, SendKind, SendState

# A contact with a delivery of the release in one of these states has it, or will have it.
REPEATED_STATES = (
    DeliveryState.PENDING,
    DeliveryState.SENDING,
    DeliveryState.SENT,
    DeliveryState.DEFERRED,
)


@dataclass(frozen=True, slots=True)
class ScheduledSend:
    send_id: int
    # An estimate: the audience is resolved again from the lists when the send is armed.
    recipients: int
    embargo_at: datetime
    # On a chosen list or segment, but suppressed or forgotten: they will not be sent it.
    left_out: int = 0
    prebrief: ScheduledPrebrief | None = None
    state: SendState = SendState.SCHEDULED


def schedule_send(
    session: Session,
    *,
    release_id: int,
    list_names: Sequence[str] = (),
    segment_names: Sequence[str] = (),
    embargo_at: datetime,
    embargo_zone: str,
    now: datetime,
    batch_size: int,
    again: bool = False,
    prebrief: PrebriefRequest | None = None,
) -> ScheduledSend:
    """Create the send and one pending delivery per distinct contact in the chosen audience.

    The audience is the union of the lists and segments, minus suppressed addresses, as it
    stands now; arming brings it up to date just before the lift. A contact who already has
    this release (sent, or waiting in another send) is refused unless `again` is given.
    With `prebrief`, vetted journalists of the audience get the embargoed copy first.
    """
    if embargo_at.tzinfo is None:
        raise InvalidEmbargoError("the embargo instant must be timezone-aware")
    if embargo_at <= now:
        raise InvalidEmbargoError(f"the embargo {embargo_at:%Y-%m-%d %H:%M:%S} UTC is in the past")
    # A template error surfaces now, naming template and line, never first at the embargo.
    check_release_for_sending(
        session, release_id=release_id, embargo_at=embargo_at, embargo_zone=embargo_zone
    )
    release = get_release(session, release_id)
    choice = choose_audience(session, list_names=list_names, segment_names=segment_names)
    send = Send(
        release_id=release.id,
        state=first_state(release),
        embargo_at=embargo_at,
        embargo_zone=embargo_zone,
        created_at=now,
        scheduled_by=actor_of(session).label,
    )
    session.add(send)
    session.flush()
    session.add_all(SendList(send_id=send.id, list_id=m.id) for m in choice.lists)
    session.add_all(SendSegment(send_id=send.id, segment_id=s.id) for s in choice.segments)
    recipients = materialise_deliveries(
        session, send_id=send.id, recipients=audience_ids(choice), batch_size=batch_size
    )
    if recipients == 0:
        raise NotFoundError(
            "the chosen lists and segments have no contacts that may be mailed "
            "(suppressed addresses are left out); add contacts before scheduling"
        )
    if not again:
        _refuse_repeats(session, send_id=send.id, release_id=release.id)
    send.estimated_recipients = recipients
    left_out = (
        session.scalar(select(func.count()).select_from(member_ids(choice).subquery())) or 0
    ) - recipients
    _record_events(session, send_id=send.id, state=DeliveryState.PENDING, at=now)
    briefed = None
    if prebrief is not None:
        briefed = add_prebrief(
            session, public=send, request=prebrief, now=now, batch_size=batch_size
        )
        _record_events(session, send_id=briefed.send_id, state=DeliveryState.PENDING, at=now)
    record_action(
        session,
        "send.scheduled",
        f"send {send.id}",
        at=now,
        release_id=release.id,
        after={
            "state": send.state,
            "embargo_at": embargo_at,
            "embargo_zone": embargo_zone,
            "lists": sorted(m.name for m in choice.lists),
            "segments": sorted(s.name for s in choice.segments),
            "recipients": recipients,
            "again": again,
            "prebrief_send": briefed.send_id if briefed else None,
            "prebrief_at": briefed.at if briefed else None,
        },
    )
    return ScheduledSend(
        send_id=send.id,
        recipients=recipients,
        embargo_at=embargo_at,
        left_out=left_out,
        prebrief=briefed,
        state=send.state,
    )


def _refuse_repeats(session: Session, *, send_id: int, release_id: int) -> None:
    earlier = aliased(Delivery)
    repeats = (
        session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(
                Delivery.send_id == send_id,
                exists().where(
                    earlier.contact_id == Delivery.contact_id,
                    earlier.send_id != send_id,
                    earlier.state.in_(REPEATED_STATES),
                    earlier.send_id.in_(
                        select(Send.id).where(
                            Send.release_id == release_id,
                            Send.kind.in_([SendKind.PUBLIC, SendKind.PREBRIEF]),
                        )
                    ),
                ),
            )
        )
        or 0
    )
    if repeats:
        already = (
            f"{repeats} contact(s) of this audience already have release {release_id}, sent or "
            "waiting in another send; nothing was scheduled. Cancel the other send first, or "
        )
        raise InvalidStateError(
            f"{already}pass --again to send it to them a second time",
            on_page=f"{already}choose to also send it to those who already have it",
        )


def open_child_send(
    session: Session,
    *,
    parent: Send,
    kind: SendKind,
    release_id: int,
    now: datetime,
    batch_size: int,
    state: SendState = SendState.SCHEDULED,
) -> tuple[Send, int]:
    """A send of `kind` under the public send `parent`, due now, with one pending delivery
    per contact its audience rule chooses; returns it and how many it goes to."""
    send = Send(
        release_id=release_id,
        kind=kind,
        parent_send_id=parent.id,
        state=state,
        scheduled_by=actor_of(session).label,
        embargo_at=now,
        embargo_zone=parent.embargo_zone,
        created_at=now,
    )
    session.add(send)
    session.flush()
    count = materialise_deliveries(
        session,
        send_id=send.id,
        recipients=audience_rule(session, send).chosen,
        batch_size=batch_size,
    )
    send.estimated_recipients = count
    _record_events(session, send_id=send.id, state=DeliveryState.PENDING, at=now)
    return send, count


def _record_events(
    session: Session,
    *,
    send_id: int,
    state: DeliveryState,
    at: datetime,
    only_state: DeliveryState | None = None,
) -> None:
    chosen = select(Delivery.id, literal(at, DeliveryEvent.at.type), literal(state.value)).where(
        Delivery.send_id == send_id
    )
    if only_state is not None:
        chosen = chosen.where(Delivery.state == only_state)
    session.execute(insert(DeliveryEvent).from_select(["delivery_id", "at", "state"], chosen))


def get_send(session: Session, send_id: int) -> Send:
    send = session.get(Send, send_id)
    if send is None:
        raise NotFoundError(
            f"no send with id {send_id}; see `distributor status`",
            on_page=f"no send with id {send_id}",
        )
    return send


def cancel_send(session: Session, *, send_id: int, now: datetime) -> int:
    """Cancel a send that has not gone out; returns how many deliveries were cancelled.

    Deliveries a worker has already claimed finish; everything still pending stops here,
    and workers check the send's state again before every claim.
    """
    send = get_send(session, send_id)
    cancelled = session.execute(
        update(Send)
        .where(Send.id == send_id, Send.state.in_(ACTIVE_SEND_STATES))
        .values(state=SendState.CANCELLED, cancelled_at=now)
    )
    if rows_affected(cancelled) != 1:
        raise InvalidStateError(
            f"send {send_id} is {send.state.value} and can no longer be cancelled"
        )
    record_action(
        session,
        "send.cancelled",
        f"send {send_id}",
        at=now,
        release_id=send.release_id,
        before={"state": send.state},
        after={"state": SendState.CANCELLED},
    )
    result = session.execute(
        update(Delivery)
        .where(
            Delivery.send_id == send_id,
            Delivery.state.in_([DeliveryState.PENDING, DeliveryState.DEFERRED]),
        )
        .values(state=DeliveryState.CANCELLED, finished_at=now, next_attempt_at=None)
    )
    # No delivery of an active send was cancelled before, so these are exactly the ones just hit.
    _record_events(
        session,
        send_id=send_id,
        state=DeliveryState.CANCELLED,
        at=now,
        only_state=DeliveryState.CANCELLED,
    )
    return rows_affected(result)


def cancel_release(session: Session, *, release_id: int, now: datetime) -> dict[int, int]:
    """Cancel every send of a release that has not gone out; maps send id to deliveries stopped."""
    get_release(session, release_id)
    active = session.scalars(
        select(Send.id)
        .where(Send.release_id == release_id, Send.state.in_(ACTIVE_SEND_STATES))
        # The public send first: the lock order of claims, moves and ticks. Locked, so that
        # none completes between this list and its cancellation.
        .order_by(Send.id)
        .with_for_update()
    ).all()
    if not active:
        raise InvalidStateError(
            f"release {release_id} has no scheduled send to cancel; see `distributor status`",
            on_page=f"release {release_id} has no scheduled send to cancel",
        )
    return {send_id: cancel_send(session, send_id=send_id, now=now) for send_id in active}
