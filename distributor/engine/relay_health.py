"""The relay's health, shared by every worker and scheduler through the database.

When a worker cannot reach the relay a few times running, it records an outage; until the
outage's retry time the scheduler hands no batch to any worker, and the wait doubles with
each outage in a row. The first message the relay accepts again clears it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from distributor.engine.dispatch import BatchRef
from distributor.engine.leases import hand_back
from distributor.models import RelayHealth

ROW_ID = 1
LONGEST_OUTAGE_WAIT = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class RelayState:
    consecutive_outages: int
    retry_after: datetime | None
    last_error: str | None

    def is_resting(self, now: datetime) -> bool:
        return self.retry_after is not None and self.retry_after > now


HEALTHY = RelayState(0, None, None)


def relay_state(session: Session) -> RelayState:
    row = session.get(RelayHealth, ROW_ID)
    if row is None:
        return HEALTHY
    return RelayState(row.consecutive_outages, row.retry_after, row.last_error)


def record_outage(
    session: Session, *, now: datetime, error: str, first_wait: timedelta
) -> datetime:
    """Count an outage and return when the relay may be tried again."""
    row = session.scalar(select(RelayHealth).where(RelayHealth.id == ROW_ID).with_for_update())
    if row is None:
        row = RelayHealth(id=ROW_ID, consecutive_outages=0)
        session.add(row)
    row.consecutive_outages += 1
    wait = min(first_wait * 2 ** (row.consecutive_outages - 1), LONGEST_OUTAGE_WAIT)
    row.retry_after = now + wait * random.uniform(1.0, 1.2)
    row.last_error = error[:1000]
    row.changed_at = now
    session.flush()
    return row.retry_after


def record_recovery(session: Session, *, now: datetime) -> None:
    session.execute(
        update(RelayHealth)
        .where(RelayHealth.id == ROW_ID, RelayHealth.consecutive_outages > 0)
        .values(consecutive_outages=0, retry_after=None, changed_at=now)
    )


def rest_the_relay(
    session: Session,
    *,
    now: datetime,
    error: str,
    first_wait: timedelta,
    batches: list[BatchRef],
    owner: str,
) -> tuple[datetime, int]:
    """Record an outage and hand this worker's claimed deliveries back until the relay may be
    tried again, without charging them an attempt; returns that time and how many."""
    retry_at = record_outage(session, now=now, error=error, first_wait=first_wait)
    handed_back = sum(
        hand_back(
            session,
            batch=batch,
            owner=owner,
            now=now,
            retry_at=retry_at,
            detail=f"relay unavailable, not counted as an attempt: {error}",
        )
        for batch in batches
    )
    return retry_at, handed_back
