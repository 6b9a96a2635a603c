"""A daily quota of messages for the whole installation, and holding what is over it.

Every message takes one unit of the day's quota from the pacing store before it goes
(a worker takes a few units at a time and gives back what it did not use). The day is the
UTC day by the store's clock. When the day's units are spent, the send's deliveries that
are due now are held as `deferred` until the next day begins, with the reason on each, so
`distributor status` shows how many wait and until when; the scheduler then queues nothing
of the send until then. Held deliveries are charged no attempt, and their retry window
starts when the quota lets them go, so the hold never expires them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import and_, case, false, insert, or_, update
from sqlalchemy.orm import Session

from distributor.engine.claims import is_due
from distributor.engine.dispatch import BatchRef
from distributor.engine.leases import EVENTS
from distributor.models import Delivery
from distributor.states import DeliveryState

DAY_SECONDS = 86_400


def quota_day(now_seconds: float) -> int:
    """The UTC day (days since the epoch) that an instant in Unix seconds falls in."""
    return int(now_seconds // DAY_SECONDS)


def day_starts(day: int) -> datetime:
    return datetime.fromtimestamp(day * DAY_SECONDS, UTC)


def next_day_starts(now_seconds: float) -> datetime:
    return day_starts(quota_day(now_seconds) + 1)


def hold_reason(quota: int, until: datetime) -> str:
    return f"daily quota of {quota} messages reached: held until {until:%Y-%m-%d %H:%M} UTC"


def hold_for_quota(
    session: Session,
    *,
    send_id: int,
    batches: list[BatchRef],
    owner: str,
    now: datetime,
    until: datetime,
    quota: int,
) -> int:
    """Hold every delivery of the send that is due now, and those this worker claimed in its
    batches, as deferred until `until`; returns how many."""
    reason = hold_reason(quota, until)
    mine = or_(
        false(),
        *(
            and_(
                Delivery.batch_no == batch.batch_no,
                Delivery.state == DeliveryState.SENDING,
                Delivery.lease_owner == owner,
            )
            for batch in batches
            if batch.send_id == send_id
        ),
    )
    claimed = Delivery.state == DeliveryState.SENDING
    ids = session.scalars(
        update(Delivery)
        .where(Delivery.send_id == send_id, or_(is_due(now), mine))
        .values(
            state=DeliveryState.DEFERRED,
            # a claim charged an attempt that never went to the relay
            attempts=case((claimed, Delivery.attempts - 1), else_=Delivery.attempts),
            next_attempt_at=until,
            # the retry window starts when the quota lets the delivery go
            first_claimed_at=until,
            error=reason,
        )
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    ).all()
    if ids:
        session.execute(
            insert(EVENTS),
            [
                {"delivery_id": i, "at": now, "state": DeliveryState.DEFERRED, "detail": reason}
                for i in sorted(ids)
            ],
        )
    return len(ids)
