"""What did not go, grouped by what the relay said: failures and bounces (which a person
may put back in line) apart from deferrals (which the workers retry by themselves)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from distributor.models import Delivery
from distributor.send_control import RETRYABLE
from distributor.states import DeliveryState
from distributor.status import reason_group

NOT_DELIVERED = (DeliveryState.FAILED, DeliveryState.BOUNCED, DeliveryState.DEFERRED)
MAX_GROUPS = 20
# Anything shaped like an address, with or without its angle brackets.
ADDRESS = re.compile(r"<?[^\s<>@]+@[^\s<>@]+\.[^\s<>@]*[^\s<>@.:;,]>?")
ADDRESS_STANDIN = "<recipient>"
NO_REASON = "no reason recorded"


@dataclass(frozen=True, slots=True)
class ReasonGroup:
    state: DeliveryState
    # The reason as `distributor status` groups it: the first 80 characters of the error
    # or of the relay's reply.
    reason: str
    count: int
    # For deferrals: the soonest next attempt among them.
    next_attempt_at: datetime | None

    @property
    def retryable(self) -> bool:
        return self.state in RETRYABLE


def without_addresses(reason: str) -> str:
    """The reason with any address in it replaced: relays quote the recipient ("550 5.1.1
    <ann@example.com>: no such user"), which would make each failure a group of its own."""
    return ADDRESS.sub(ADDRESS_STANDIN, reason)


def reasons_not_delivered(session: Session, send_id: int) -> list[ReasonGroup]:
    """The send's failed, bounced and deferred deliveries by state and reason, largest first."""
    reason = reason_group()
    rows = session.execute(
        select(Delivery.state, reason, func.count(), func.min(Delivery.next_attempt_at))
        .where(Delivery.send_id == send_id, Delivery.state.in_(NOT_DELIVERED))
        .group_by(Delivery.state, reason)
    )
    counts: dict[tuple[DeliveryState, str], int] = {}
    soonest: dict[tuple[DeliveryState, str], datetime] = {}
    for state, text, count, next_attempt in rows:
        key = (state, without_addresses(text) if text else NO_REASON)
        counts[key] = counts.get(key, 0) + count
        if state is DeliveryState.DEFERRED and next_attempt is not None:
            soonest[key] = min(next_attempt, soonest.get(key, next_attempt))
    largest = sorted(counts.items(), key=lambda item: (-item[1], item[0][0], item[0][1]))
    return [
        ReasonGroup(state=key[0], reason=key[1], count=count, next_attempt_at=soonest.get(key))
        for key, count in largest[:MAX_GROUPS]
    ]
