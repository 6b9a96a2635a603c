"""The deliveries of one group of the report's "not delivered, by reason": those a retry of
that group puts back in line, and no others."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from distributor.models import Delivery
from distributor.reporting.failure_reasons import NO_REASON, without_addresses
from distributor.states import DeliveryState
from distributor.status import reason_group

# A group's reason: the first 80 characters of what the relay said, each address in it
# replaced by a stand-in that may be longer than the address.
MAX_REASON = 400


def group_delivery_ids(
    session: Session, *, send_id: int, state: DeliveryState, reason: str
) -> list[int]:
    """The send's deliveries in `state` whose reason the report groups as `reason`."""
    rows = session.execute(
        select(Delivery.id, reason_group()).where(
            Delivery.send_id == send_id, Delivery.state == state
        )
    )
    # Grouped as reasons_not_delivered groups them, so that the two never disagree.
    return [
        delivery_id
        for delivery_id, text in rows
        if (without_addresses(text) if text else NO_REASON) == reason
    ]
