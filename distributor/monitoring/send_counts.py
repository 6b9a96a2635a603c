"""How far each send has got: its deliveries by state, its complaints, its bounce and
complaint rates and the relay's last replies, counted for many sends at once.

One set of queries behind the alerts, the metrics and the admin pages, so that a send's
progress and reputation read the same wherever an admin looks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from distributor.bounces.kinds import BounceKind
from distributor.bounces.reputation import DELIVERED, SendReputation
from distributor.engine.outcomes import EVENTS
from distributor.models import Bounce, Delivery
from distributor.states import DeliveryState

# The classes of the relay's final replies: accepted, try again later, refused.
REPLY_CLASSES = ("2xx", "4xx", "5xx")


def reply_class(code: int | None) -> str | None:
    """'2xx', '4xx' or '5xx'; None for no reply or an intermediate one."""
    if code is None:
        return None
    name = f"{code // 100}xx"
    return name if name in REPLY_CLASSES else None


def deliveries_by_state(
    session: Session, send_ids: Sequence[int]
) -> dict[int, dict[DeliveryState, int]]:
    """Each send's deliveries by state, in one grouped query (a send with none: {})."""
    counts: dict[int, dict[DeliveryState, int]] = {i: {} for i in send_ids}
    if not send_ids:
        return counts
    for send_id, state, n in session.execute(
        select(Delivery.send_id, Delivery.state, func.count())
        .where(Delivery.send_id.in_(send_ids))
        .group_by(Delivery.send_id, Delivery.state)
    ):
        counts[send_id][state] = int(n)
    return counts


def complaints_by_send(session: Session, send_ids: Sequence[int]) -> dict[int, int]:
    """Deliveries of each send that a recipient reported as spam (each counted once)."""
    if not send_ids:
        return {}
    return {
        send_id: int(n)
        for send_id, n in session.execute(
            select(Bounce.send_id, func.count(func.distinct(Bounce.delivery_id)))
            .where(Bounce.send_id.in_(send_ids), Bounce.kind == BounceKind.COMPLAINT)
            .group_by(Bounce.send_id)
        )
        if send_id is not None
    }


def reputation_of(
    send_id: int, by_state: Mapping[DeliveryState, int], complaints: int
) -> SendReputation:
    """The figures the reputation guard (bounces/reputation.py) judges a send by."""
    return SendReputation(
        send_id=send_id,
        delivered=sum(by_state.get(state, 0) for state in DELIVERED),
        hard_bounced=by_state.get(DeliveryState.BOUNCED, 0),
        complaints=complaints,
    )


def send_reputations(session: Session, send_ids: Sequence[int]) -> list[SendReputation]:
    """The reputation guard's figures for many sends at once, in the order given."""
    counts = deliveries_by_state(session, send_ids)
    complaints = complaints_by_send(session, send_ids)
    return [reputation_of(i, counts[i], complaints.get(i, 0)) for i in send_ids]


def last_reply_classes(session: Session, send_ids: Sequence[int]) -> dict[str, int]:
    """Deliveries of these sends by the class of the relay's last reply to them (a delivery
    keeps only its last reply)."""
    classes = dict.fromkeys(REPLY_CLASSES, 0)
    if not send_ids:
        return classes
    for code, n in session.execute(
        select(Delivery.smtp_code, func.count())
        .where(Delivery.send_id.in_(send_ids), Delivery.smtp_code.is_not(None))
        .group_by(Delivery.smtp_code)
    ):
        name = reply_class(code)
        if name is not None:
            classes[name] += int(n)
    return classes


def replies_since(session: Session, send_ids: Sequence[int], *, since: datetime) -> dict[str, int]:
    """Every reply of the relay to these sends' messages since `since`, by class, from the
    history: a message deferred and then accepted counts one 4xx and one 2xx."""
    classes = dict.fromkeys(REPLY_CLASSES, 0)
    if not send_ids:
        return classes
    code = EVENTS.c.smtp_code
    for reply_code, n in session.execute(
        select(code, func.count())
        .select_from(EVENTS.join(Delivery, Delivery.id == EVENTS.c.delivery_id))
        .where(Delivery.send_id.in_(send_ids), EVENTS.c.at >= since, code.is_not(None))
        .group_by(code)
    ):
        name = reply_class(reply_code)
        if name is not None:
            classes[name] += int(n)
    return classes
