"""Where each send stands, for the press officer and the admin: counts by state, the next
retry, the oldest waiting delivery, failures grouped by reason, and why a send is held."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, func, literal_column, select
from sqlalchemy.orm import Session

from distributor.models import Bounce, Delivery, Release, Send
from distributor.states import DeliveryState, SendKind, SendState


@dataclass(frozen=True, slots=True)
class SendStatus:
    send_id: int
    release_id: int
    headline: str
    state: SendState
    embargo_at: datetime
    embargo_zone: str
    counts: dict[DeliveryState, int]
    first_sent_at: datetime | None
    last_sent_at: datetime | None
    hold_reason: str | None = None
    next_retry_at: datetime | None = None
    # The delivery that has waited longest (pending or deferred) and since when.
    oldest_waiting_since: datetime | None = None
    failures_by_reason: list[tuple[str, int]] = field(default_factory=list)
    # The audience counted at scheduling, and as resolved at arming (None until armed).
    estimated_recipients: int | None = None
    armed_recipients: int | None = None
    joined_at_arming: int | None = None
    left_at_arming: int | None = None
    kind: SendKind = SendKind.PUBLIC
    # The public send a pre-brief or a notice belongs to.
    parent_send_id: int | None = None
    scheduled_by: str | None = None
    # What came back to the return path, by kind ("hard", "soft", "complaint", ...).
    came_back: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def send_statuses(
    session: Session, send_id: int | None = None, *, with_phases: bool = False
) -> list[SendStatus]:
    """Every send, or one; with `with_phases`, one and its pre-briefs and notices after it."""
    query = select(Send, Release.headline).join(Release, Release.id == Send.release_id)
    if send_id is not None:
        query = query.where(
            (Send.id == send_id) | (Send.parent_send_id == send_id)
            if with_phases
            else Send.id == send_id
        )
    sends = session.execute(query.order_by(Send.id)).all()
    if not sends:
        return []
    ids = [send.id for send, _ in sends]
    counts: dict[int, dict[DeliveryState, int]] = {i: {} for i in ids}
    for sid, state, n in session.execute(
        select(Delivery.send_id, Delivery.state, func.count())
        .where(Delivery.send_id.in_(ids))
        .group_by(Delivery.send_id, Delivery.state)
    ):
        counts[sid][state] = n
    timings = {
        sid: (first, last)
        for sid, first, last in session.execute(
            select(Delivery.send_id, func.min(Delivery.finished_at), func.max(Delivery.finished_at))
            .where(Delivery.send_id.in_(ids), Delivery.state == DeliveryState.SENT)
            .group_by(Delivery.send_id)
        )
    }
    waiting = {
        sid: (next_retry, oldest)
        for sid, next_retry, oldest in session.execute(
            select(
                Delivery.send_id,
                func.min(Delivery.next_attempt_at),
                func.min(func.coalesce(Delivery.claimed_at, Send.embargo_at)),
            )
            .join(Send, Send.id == Delivery.send_id)
            .where(
                Delivery.send_id.in_(ids),
                Delivery.state.in_([DeliveryState.PENDING, DeliveryState.DEFERRED]),
            )
            .group_by(Delivery.send_id)
        )
    }
    failures: dict[int, list[tuple[str, int]]] = {i: [] for i in ids}
    for sid, reason, n in session.execute(
        select(Delivery.send_id, reason_group(), func.count())
        .where(
            Delivery.send_id.in_(ids),
            Delivery.state.in_(
                [DeliveryState.FAILED, DeliveryState.BOUNCED, DeliveryState.DEFERRED]
            ),
        )
        .group_by(Delivery.send_id, reason_group())
        .order_by(func.count().desc())
    ):
        failures[sid].append((reason or "no reason recorded", n))
    came_back: dict[int, dict[str, int]] = {i: {} for i in ids}
    for bounced_send, kind, n in session.execute(
        select(Bounce.send_id, Bounce.kind, func.count())
        .where(Bounce.send_id.in_(ids))
        .group_by(Bounce.send_id, Bounce.kind)
    ):
        if bounced_send is not None:
            came_back[bounced_send][kind.value] = n
    return [
        SendStatus(
            send_id=send.id,
            release_id=send.release_id,
            headline=headline,
            state=send.state,
            embargo_at=send.embargo_at,
            embargo_zone=send.embargo_zone,
            counts=counts[send.id],
            first_sent_at=timings.get(send.id, (None, None))[0],
            last_sent_at=timings.get(send.id, (None, None))[1],
            hold_reason=send.hold_reason
            if send.state in (SendState.HELD, SendState.PAUSED)
            else None,
            scheduled_by=send.scheduled_by,
            came_back=came_back[send.id],
            next_retry_at=waiting.get(send.id, (None, None))[0],
            oldest_waiting_since=waiting.get(send.id, (None, None))[1],
            failures_by_reason=failures[send.id][:10],
            estimated_recipients=send.estimated_recipients,
            armed_recipients=send.armed_recipients,
            joined_at_arming=send.joined_at_arming,
            left_at_arming=send.left_at_arming,
            kind=send.kind,
            parent_send_id=send.parent_send_id,
        )
        for send, headline in sends
    ]


def reason_group() -> ColumnElement[str]:
    """Failures grouped by what the relay said: its code and the first words of the reason."""
    # Literal SQL, not bound parameters: PostgreSQL must see the same expression in the
    # select list and the GROUP BY.
    text = func.coalesce(Delivery.error, Delivery.smtp_reply, literal_column("''"))
    return func.substr(text, literal_column("1"), literal_column("80"))
