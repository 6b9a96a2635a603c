"""Moving, lifting and withdrawing an embargo, up to the last second before the lift.

The database holds the embargo and workers check it at every claim, so changing it is a
matter of changing the row, safely:

- a send moved out of the arming window goes back to `scheduled` (workers waiting for the
  old time see it within half a second and stand down; the tick arms it again for the new
  time); moved within the window it stays armed, and waiting workers follow the new time;
- batches queued to the broker for the old time are queued again for the new one (a message
  for the old time that arrives later finds nothing due);
- a pre-brief that can no longer go out before the new lift is cancelled;
- journalists who already hold the embargoed copy get a notice at once, on the queue that
  bulk sends cannot hold up: moved, or withdrawn. Lifting early needs no extra notice: the
  lift notice itself moves to the new lift.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from distributor.audit import record_action
from distributor.errors import InvalidEmbargoError, InvalidStateError
from distributor.models import Delivery, Send, SendBatch
from distributor.prebriefs import MIN_PREBRIEF_LEAD
from distributor.releases.store import get_release
from distributor.scheduling import cancel_release, cancel_send, open_child_send
from distributor.states import ACTIVE_SEND_STATES, SendKind, SendState

log = logging.getLogger(__name__)

# Sends that follow the public send's embargo.
FOLLOWERS = (SendKind.PUBLIC, SendKind.LIFT_NOTICE)


@dataclass(frozen=True, slots=True)
class EmbargoChange:
    release_id: int
    embargo_at: datetime
    embargo_zone: str
    moved_sends: list[int] = field(default_factory=list)
    cancelled_prebriefs: list[int] = field(default_factory=list)
    # The notice send to those who hold the embargoed copy, and how many it goes to.
    notice_send_id: int | None = None
    notified: int = 0


def move_embargo(
    session: Session,
    *,
    release_id: int,
    embargo_at: datetime,
    embargo_zone: str,
    now: datetime,
    arm_lead: timedelta,
    batch_size: int,
) -> EmbargoChange:
    """Move the release's embargo to a new instant in the future; tell the pre-briefed."""
    if embargo_at.tzinfo is None:
        raise InvalidEmbargoError("the new embargo must be timezone-aware")
    if embargo_at <= now:
        raise InvalidEmbargoError(
            f"the new embargo {embargo_at:%Y-%m-%d %H:%M:%S} UTC is in the past; to let the "
            "release out now, use `release lift`"
        )
    before = _active_public_send(session, release_id)
    old_embargo, old_zone = before.embargo_at, before.embargo_zone
    change = _retime(
        session,
        release_id=release_id,
        embargo_at=embargo_at,
        embargo_zone=embargo_zone,
        now=now,
        arm_lead=arm_lead,
    )
    record_action(
        session,
        "embargo.moved",
        f"release {release_id}",
        at=now,
        release_id=release_id,
        before={"embargo_at": old_embargo, "embargo_zone": old_zone},
        after={"embargo_at": embargo_at, "embargo_zone": embargo_zone},
        detail=f"sends {', '.join(map(str, change.moved_sends))}",
    )
    notice_id, notified = _notify(
        session,
        public_id=change.moved_sends[0],
        kind=SendKind.MOVE_NOTICE,
        now=now,
        batch_size=batch_size,
    )
    return EmbargoChange(
        release_id=release_id,
        embargo_at=embargo_at,
        embargo_zone=embargo_zone,
        moved_sends=change.moved_sends,
        cancelled_prebriefs=change.cancelled_prebriefs,
        notice_send_id=notice_id,
        notified=notified,
    )


def lift_embargo(
    session: Session, *, release_id: int, now: datetime, arm_lead: timedelta
) -> EmbargoChange:
    """Lift the embargo now: the public send and the lift notice go at once."""
    public = _active_public_send(session, release_id)
    if public.state == SendState.AWAITING_APPROVAL:
        raise InvalidStateError(
            f"send {public.id} of release {release_id} awaits approval, and nothing of it may "
            "go out before that; have it approved (`release approve`), then lift the embargo"
        )
    old_embargo = public.embargo_at
    change = _retime(
        session,
        release_id=release_id,
        embargo_at=now,
        embargo_zone=public.embargo_zone,
        now=now,
        arm_lead=arm_lead,
    )
    record_action(
        session,
        "embargo.lifted",
        f"release {release_id}",
        at=now,
        release_id=release_id,
        before={"embargo_at": old_embargo},
        after={"embargo_at": now},
    )
    return change


def withdraw_release(
    session: Session, *, release_id: int, now: datetime, batch_size: int
) -> tuple[dict[int, int], EmbargoChange]:
    """Cancel every send of the release that has not gone out, and tell those who hold the
    embargoed copy not to publish. Returns the deliveries stopped per send, and the notice."""
    public = session.scalar(
        select(Send)
        .where(Send.release_id == release_id, Send.kind == SendKind.PUBLIC)
        .order_by(Send.id.desc())
        .limit(1)
    )
    stopped = cancel_release(session, release_id=release_id, now=now)
    notice_id, notified = (
        _notify(
            session,
            public_id=public.id,
            kind=SendKind.WITHDRAW_NOTICE,
            now=now,
            batch_size=batch_size,
        )
        if public is not None
        else (None, 0)
    )
    record_action(
        session,
        "release.withdrawn",
        f"release {release_id}",
        at=now,
        release_id=release_id,
        after={"cancelled_sends": sorted(stopped), "notice_send": notice_id},
    )
    change = EmbargoChange(
        release_id=release_id,
        embargo_at=public.embargo_at if public else now,
        embargo_zone=public.embargo_zone if public else "UTC",
        notice_send_id=notice_id,
        notified=notified,
    )
    return stopped, change


def _active_public_send(session: Session, release_id: int) -> Send:
    get_release(session, release_id)
    public = session.scalar(
        select(Send)
        .where(
            Send.release_id == release_id,
            Send.kind == SendKind.PUBLIC,
            Send.state.in_(ACTIVE_SEND_STATES),
        )
        .order_by(Send.id)
        .limit(1)
        .with_for_update()
    )
    if public is None:
        raise InvalidStateError(
            f"release {release_id} has no send waiting for its embargo; see `distributor "
            "release show`"
        )
    return public


def _retime(
    session: Session,
    *,
    release_id: int,
    embargo_at: datetime,
    embargo_zone: str,
    now: datetime,
    arm_lead: timedelta,
) -> EmbargoChange:
    public = _active_public_send(session, release_id)
    # The lift notice says the embargo has lifted: once any of it is claimed, the lift has
    # happened for those journalists as surely as a public message would have.
    lifted_sends = select(Send.id).where(
        (Send.id == public.id)
        | ((Send.parent_send_id == public.id) & (Send.kind == SendKind.LIFT_NOTICE))
    )
    started = session.scalar(
        select(
            exists().where(
                Delivery.send_id.in_(lifted_sends), Delivery.first_claimed_at.is_not(None)
            )
        )
    )
    if started:
        raise InvalidStateError(
            f"send {public.id} of release {release_id} has started going out: its embargo "
            "has passed and can no longer be moved"
        )
    followers = session.scalars(
        select(Send)
        .where(
            (Send.id == public.id)
            | (
                (Send.parent_send_id == public.id)
                & Send.kind.in_(FOLLOWERS)
                & Send.state.in_(ACTIVE_SEND_STATES)
            )
        )
        .order_by(Send.id)
        .with_for_update()
    ).all()
    for send in followers:
        _set_time(session, send, embargo_at=embargo_at, zone=embargo_zone, now=now, lead=arm_lead)
    cancelled = []
    prebriefs = session.scalars(
        select(Send).where(
            Send.parent_send_id == public.id,
            Send.kind == SendKind.PREBRIEF,
            Send.state.in_(ACTIVE_SEND_STATES),
        )
    ).all()
    for prebrief in prebriefs:
        if prebrief.embargo_at > embargo_at - MIN_PREBRIEF_LEAD and not _has_gone_out(
            session, prebrief.id
        ):
            cancel_send(session, send_id=prebrief.id, now=now)
            cancelled.append(prebrief.id)
        elif prebrief.embargo_zone != embargo_zone:
            prebrief.embargo_zone = embargo_zone
    log.info(
        "embargo moved to %s",
        embargo_at.isoformat(),
        extra={"send_id": public.id, "release_id": release_id},
    )
    return EmbargoChange(
        release_id=release_id,
        embargo_at=embargo_at,
        embargo_zone=embargo_zone,
        moved_sends=[s.id for s in followers],
        cancelled_prebriefs=cancelled,
    )


def _set_time(
    session: Session, send: Send, *, embargo_at: datetime, zone: str, now: datetime, lead: timedelta
) -> None:
    send.embargo_at = embargo_at
    send.embargo_zone = zone
    if send.state is SendState.ARMED and embargo_at > now + lead:
        send.state = SendState.SCHEDULED
        send.armed_at = None
    elif send.state is SendState.HELD:
        # Held for missing its embargo; a new embargo is a new start.
        send.state = SendState.SCHEDULED
        send.held_at = None
        send.hold_reason = None
    # Broker messages carry the old time: queue every batch no worker holds again.
    session.execute(
        update(SendBatch)
        .where(SendBatch.send_id == send.id, SendBatch.lease_owner.is_(None))
        .values(queued_at=None)
    )


def _has_gone_out(session: Session, send_id: int) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(Delivery.send_id == send_id, Delivery.first_claimed_at.is_not(None))
            )
        )
    )


def _notify(
    session: Session, *, public_id: int, kind: SendKind, now: datetime, batch_size: int
) -> tuple[int | None, int]:
    """A notice send, due now, to those who hold the embargoed copy; none if nobody does."""
    public = session.get_one(Send, public_id)
    notice, count = open_child_send(
        session,
        parent=public,
        kind=kind,
        release_id=public.release_id,
        now=now,
        batch_size=batch_size,
    )
    if count == 0:
        session.delete(notice)
        session.flush()
        return None, 0
    log.info("%s to %d journalist(s)", kind.value, count, extra={"send_id": notice.id})
    return notice.id, count
