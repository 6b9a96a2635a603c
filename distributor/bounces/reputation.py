"""The reputation guard: a send whose hard bounces or spam complaints pass their limit
pauses itself, and says why, before it harms the sending domain's standing.

The limits default to what mailbox providers publish: Gmail asks bulk senders to keep
complaints under 0.3 % of delivered messages, and a hard-bounce rate over 5 % is a common
sign of an old list. Rates are of the send's delivered messages (those the relay accepted,
bounced later or not), and are judged only once enough have been delivered to mean
something.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from distributor.bounces.kinds import BounceKind
from distributor.logs import log_ids
from distributor.models import Bounce, Delivery, Send
from distributor.send_control import pause_send
from distributor.states import DeliveryState, SendState

log = logging.getLogger(__name__)

DELIVERED = (DeliveryState.SENT, DeliveryState.BOUNCED)
PAUSABLE = (SendState.SCHEDULED, SendState.ARMED)


@dataclass(frozen=True, slots=True)
class ReputationLimits:
    bounce_rate: float = 0.05
    complaint_rate: float = 0.003
    # Below this many delivered messages a rate says little (one bounce in ten is 10 %).
    minimum_delivered: int = 100


@dataclass(frozen=True, slots=True)
class SendReputation:
    send_id: int
    delivered: int
    hard_bounced: int
    complaints: int

    @property
    def bounce_rate(self) -> float:
        return self.hard_bounced / self.delivered if self.delivered else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.delivered if self.delivered else 0.0


def send_reputation(session: Session, send_id: int) -> SendReputation:
    counts = dict(
        session.execute(
            select(Delivery.state, func.count())
            .where(Delivery.send_id == send_id, Delivery.state.in_(DELIVERED))
            .group_by(Delivery.state)
        ).all()
    )
    complaints = session.scalar(
        select(func.count(func.distinct(Bounce.delivery_id))).where(
            Bounce.send_id == send_id, Bounce.kind == BounceKind.COMPLAINT
        )
    )
    return SendReputation(
        send_id=send_id,
        delivered=sum(counts.values()),
        hard_bounced=counts.get(DeliveryState.BOUNCED, 0),
        complaints=int(complaints or 0),
    )


def limit_passed(reputation: SendReputation, limits: ReputationLimits) -> str | None:
    """Which limit the send passed, in words; None while it is within its limits."""
    if reputation.delivered < max(limits.minimum_delivered, 1):
        return None
    if reputation.bounce_rate > limits.bounce_rate:
        return (
            f"{_percent(reputation.bounce_rate)} of delivered messages bounced hard "
            f"({reputation.hard_bounced} of {reputation.delivered}; limit "
            f"{_percent(limits.bounce_rate, exact=True)})"
        )
    if reputation.complaint_rate > limits.complaint_rate:
        return (
            f"{_percent(reputation.complaint_rate)} of delivered messages were reported as spam "
            f"({reputation.complaints} of {reputation.delivered}; limit "
            f"{_percent(limits.complaint_rate, exact=True)})"
        )
    return None


def hold_reason(send_id: int, passed: str) -> str:
    """What `status` shows after "paused: "."""
    return (
        f"{passed}, so the reputation guard paused it; look at `distributor bounces list "
        f"--send {send_id}`, then `distributor send resume {send_id}` or cancel it"
    )


def guard_send(
    session: Session, *, send_id: int, limits: ReputationLimits, now: datetime
) -> str | None:
    """Pause the send if a limit is passed; returns the reason when it paused it.

    A send that an admin resumed after a pause is left running: they have seen the reason
    and decided. A send that has finished has nothing left to pause; the log says so.
    """
    passed = limit_passed(send_reputation(session, send_id), limits)
    if passed is None:
        return None
    send = session.get(Send, send_id)
    ids = log_ids(send_id=send_id)
    if send is None or send.state not in PAUSABLE:
        if send is not None and send.state is not SendState.PAUSED:
            log.warning("send is %s, with %s", send.state.value, passed, extra=ids)
        return None
    if (
        send.paused_at is not None
        and send.resumed_at is not None
        and send.resumed_at >= send.paused_at
    ):
        log.warning(
            "%s, but an admin resumed the send after a pause: left running",
            passed,
            extra=ids,
        )
        return None
    reason = hold_reason(send_id, passed)
    pause_send(session, send_id=send_id, now=now)
    session.execute(
        update(Send)
        .where(Send.id == send_id, Send.state == SendState.PAUSED)
        .values(hold_reason=reason)
    )
    log.warning("send paused by the reputation guard: %s", passed, extra=ids)
    return reason


def _percent(rate: float, *, exact: bool = False) -> str:
    """6.1 %, 0.35 % (two decimals below one per cent, to compare with 0.3 %); a limit as
    given (5 %, 0.3 %)."""
    percent = rate * 100
    if exact:
        return f"{percent:g} %"
    return f"{percent:.2f} %" if percent < 1 else f"{percent:.1f} %"
