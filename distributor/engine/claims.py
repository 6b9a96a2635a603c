"""Claiming deliveries: one conditional UPDATE per chunk, the only way a delivery is sent.

A claim moves deliveries that are due (pending, or deferred whose next attempt has come) to
`sending`. It succeeds only while the send is armed, its embargo has passed by the
database's clock, and the claiming worker holds the batch's lease, all checked in the same
statement. So the embargo and a cancellation or pause are checked at the moment of the
claim, and no two workers can ever hold the same delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    case,
    exists,
    false,
    func,
    insert,
    not_,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session, aliased

from distributor.audience_rules import (
    NOT_PREBRIEFED_DETAIL,
    NOT_VETTED_DETAIL,
    prebriefed_ids,
    vetted_for_embargoes,
)
from distributor.engine.dbclock import DatabaseClock
from distributor.engine.dispatch import BatchRef
from distributor.message import Recipient
from distributor.models import Contact, Delivery, DeliveryEvent, Outlet, Release, Send, SendBatch
from distributor.states import DeliveryState, SendKind, SendState
from distributor.suppression import contact_is_suppressed

# Core, not ORM, inserts for the history rows: the ORM's bulk path costs several times more
# per row, and this runs for every message sent.
EVENTS = cast(Table, DeliveryEvent.__table__)

SUPPRESSED_DETAIL = "not sent: the address is on the suppression list or was forgotten"
CLAIMABLE = (DeliveryState.PENDING, DeliveryState.DEFERRED)


@dataclass(frozen=True, slots=True)
class SendSnapshot:
    send_id: int
    state: SendState
    embargo_at: datetime  # when this send may go out
    release: Release
    kind: SendKind = SendKind.PUBLIC
    # The release's embargo, the public send's: what a pre-brief or a notice announces.
    release_embargo_at: datetime | None = None
    embargo_zone: str = "UTC"


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    recipient: Recipient
    attempt: int  # 1 for the first attempt
    # Start of the retry window.
    first_claimed_at: datetime

    @property
    def delivery_id(self) -> int:
        return self.recipient.delivery_id


def load_send(session: Session, send_id: int) -> SendSnapshot | None:
    row = session.execute(
        select(Send, Release).join(Release, Release.id == Send.release_id).where(Send.id == send_id)
    ).first()
    if row is None:
        return None
    send, release = row
    release_embargo_at = send.embargo_at
    if send.parent_send_id is not None:
        release_embargo_at = (
            session.scalar(select(Send.embargo_at).where(Send.id == send.parent_send_id))
            or send.embargo_at
        )
    return SendSnapshot(
        send.id,
        send.state,
        send.embargo_at,
        release,
        kind=send.kind,
        release_embargo_at=release_embargo_at,
        embargo_zone=send.embargo_zone,
    )


def is_due(now: datetime) -> ColumnElement[bool]:
    """Deliveries that a worker may take now: never tried, or deferred until now or earlier."""
    return Delivery.state.in_(CLAIMABLE) & or_(
        Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now
    )


def send_is_live(send_id: int, clock: DatabaseClock) -> ColumnElement[bool]:
    return exists().where(
        Send.id == send_id, Send.state == SendState.ARMED, Send.embargo_at <= clock.sql_now()
    )


def holds_lease(batch: BatchRef, owner: str, clock: DatabaseClock) -> ColumnElement[bool]:
    return exists().where(
        SendBatch.send_id == batch.send_id,
        SendBatch.batch_no == batch.batch_no,
        SendBatch.lease_owner == owner,
        SendBatch.lease_expires_at > clock.sql_now(),
    )


def claim_deliveries(
    session: Session,
    *,
    batch: BatchRef,
    owner: str,
    clock: DatabaseClock,
    now: datetime,
    limit: int,
) -> list[ClaimedDelivery]:
    """Claim up to `limit` due deliveries of the batch; `now` is the database's time."""
    live = send_is_live(batch.send_id, clock)
    rule = _rule_of(session, batch.send_id)
    while True:
        candidates = _candidates(session, batch=batch, now=now, limit=limit, rule=rule)
        if not candidates:
            return []
        # Someone may have unsubscribed since the audience was resolved: never send to them;
        # nor the embargoed copy to someone no longer vetted for it (a breach, say).
        suppressed = _end_unsendable(
            session,
            [c[0] for c in candidates if c[5] is True],
            live=live,
            now=now,
            state=DeliveryState.SUPPRESSED,
            detail=SUPPRESSED_DETAIL,
        ) + _end_unsendable(
            session,
            [c[0] for c in candidates if c[5] is None],
            live=live,
            now=now,
            state=DeliveryState.CANCELLED,
            detail=rule.refused_detail,
        )
        # A chunk of nothing but unsendable addresses is not the end of the batch: read on.
        if suppressed == 0 or len(candidates) > suppressed:
            break
    claimed = {
        delivery_id: (attempts, first, claimed_at)
        for delivery_id, attempts, first, claimed_at in session.execute(
            update(Delivery)
            .where(
                Delivery.id.in_([c[0] for c in candidates if c[5] is False]),
                is_due(now),
                live,
                holds_lease(batch, owner, clock),
            )
            .values(
                state=DeliveryState.SENDING,
                # Stamped by the same statement that checked the embargo: never before it.
                claimed_at=clock.sql_now(),
                first_claimed_at=func.coalesce(Delivery.first_claimed_at, clock.sql_now()),
                attempts=Delivery.attempts + 1,
                lease_owner=owner,
                next_attempt_at=None,
            )
            .returning(
                Delivery.id, Delivery.attempts, Delivery.first_claimed_at, Delivery.claimed_at
            )
        )
    }
    if claimed:
        session.execute(
            insert(EVENTS),
            [
                {
                    "delivery_id": i,
                    "at": claimed[i][2] or now,
                    "state": DeliveryState.SENDING,
                    "detail": owner,
                }
                for i in sorted(claimed)
            ],
        )
    return [
        ClaimedDelivery(
            Recipient(delivery_id=i, email=email, name=name, outlet=outlet, time_zone=zone),
            attempt=claimed[i][0],
            first_claimed_at=claimed[i][1] or now,
        )
        for i, email, name, outlet, zone, _ in candidates
        if i in claimed
    ]


@dataclass(frozen=True, slots=True)
class _ClaimRule:
    # Contacts who may not have this message now (None: anyone may).
    refused: ColumnElement[bool] | None = None
    refused_detail: str = NOT_VETTED_DETAIL
    # Contacts whose earlier message of the release is going out this moment: theirs waits.
    waiting: ColumnElement[bool] | None = None


def _rule_of(session: Session, send_id: int) -> _ClaimRule:
    """Who a send's claim leaves out, by its kind: the embargoed copy goes only to the
    vetted; a notice only to one who holds the copy, and after it (a withdrawal that arrives
    before the copy it withdraws is a withdrawal missed)."""
    kind, parent_id = session.execute(
        select(Send.kind, Send.parent_send_id).where(Send.id == send_id)
    ).one()
    if kind is SendKind.PREBRIEF:
        return _ClaimRule(refused=not_(vetted_for_embargoes()))
    if not kind.is_notice or parent_id is None:
        return _ClaimRule()
    earlier = aliased(Delivery)
    in_flight = exists().where(
        earlier.contact_id == Delivery.contact_id,
        earlier.state == DeliveryState.SENDING,
        earlier.send_id != send_id,
        earlier.send_id.in_(select(Send.id).where(Send.parent_send_id == parent_id)),
    )
    return _ClaimRule(
        refused=Delivery.contact_id.not_in(prebriefed_ids(parent_id)),
        refused_detail=NOT_PREBRIEFED_DETAIL,
        waiting=in_flight,
    )


def _candidates(
    session: Session, *, batch: BatchRef, now: datetime, limit: int, rule: _ClaimRule
) -> Sequence[Row[int, str, str, str, str | None, bool | None]]:
    """Due deliveries; the last column is True for a suppressed address, None for one that
    may not have this message, False for one to send to."""
    unsendable = case(
        (contact_is_suppressed(), true()),
        *([(rule.refused, null())] if rule.refused is not None else []),
        else_=false(),
    )
    waits = [not_(rule.waiting)] if rule.waiting is not None else []
    return session.execute(
        select(
            Delivery.id,
            Contact.email,
            Contact.name,
            func.coalesce(Outlet.name, ""),
            Contact.time_zone,
            unsendable,
        )
        .join(Contact, Contact.id == Delivery.contact_id)
        .outerjoin(Outlet, Outlet.id == Contact.outlet_id)
        .where(
            Delivery.send_id == batch.send_id,
            Delivery.batch_no == batch.batch_no,
            is_due(now),
            *waits,
        )
        .order_by(Delivery.id)
        .limit(limit)
        .with_for_update(of=Delivery, skip_locked=True)
    ).all()


def _end_unsendable(
    session: Session,
    ids: list[int],
    *,
    live: ColumnElement[bool],
    now: datetime,
    state: DeliveryState,
    detail: str,
) -> int:
    """End these due deliveries unsent, with their events; returns how many."""
    if not ids:
        return 0
    ended = session.scalars(
        update(Delivery)
        .where(Delivery.id.in_(ids), is_due(now), live)
        .values(state=state, finished_at=now, next_attempt_at=None, error=detail)
        .returning(Delivery.id)
    ).all()
    if ended:
        session.execute(
            insert(EVENTS),
            [
                {"delivery_id": i, "at": now, "state": state, "detail": detail}
                for i in sorted(ended)
            ],
        )
    return len(ended)


@dataclass(frozen=True, slots=True)
class AnnouncedEmbargo:
    """The release's embargo as a pre-brief or a notice announces it."""

    at: datetime
    zone: str


def lock_announced_embargo(session: Session, send_id: int) -> AnnouncedEmbargo | None:
    """The embargo a pre-brief or notice announces, as it stands now; None for a public send.

    Read before the claim, under a share lock on the public send: a move waits for this
    claim to commit (and then finds its messages in flight, whose journalists it tells), or
    this claim waits for the move (and builds its messages with the new time). Taken before
    the deliveries' row locks, in the order the tick and a move take them.
    """
    parent_id = session.scalar(select(Send.parent_send_id).where(Send.id == send_id))
    if parent_id is None:
        return None
    row = session.execute(
        select(Send.embargo_at, Send.embargo_zone)
        .where(Send.id == parent_id)
        .with_for_update(read=True)
    ).first()
    return AnnouncedEmbargo(row[0], row[1]) if row else None


def seconds_until_embargo(session: Session, send_id: int, clock: DatabaseClock) -> float | None:
    """How long the database says the embargo is still away; None once the send is not armed."""
    row = session.execute(
        select(Send.state, Send.embargo_at, clock.sql_now()).where(Send.id == send_id)
    ).first()
    if row is None or row[0] is not SendState.ARMED:
        return None
    return max((row[1] - row[2]).total_seconds(), 0.0)
