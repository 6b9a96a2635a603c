"""Pre-briefs: the embargoed copy, before the lift, to journalists vetted for embargoed material.

A pre-brief is a send of its own (kind `prebrief`) under the public send, going out at its
own hour, to the vetted part of the public audience (see audience_rules.py), marked with the
embargo banner because it is built before the lift. Unless the organisation turns it off, a
lift notice (kind `lift_notice`) goes at the lift to everyone the pre-brief reached, and the
public send leaves them out, so nobody gets the release twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from distributor.audience import choose_audience, materialise_deliveries
from distributor.audience_rules import audience_rule
from distributor.errors import InvalidEmbargoError, NotFoundError
from distributor.models import (
    Delivery,
    DeliveryEvent,
    Organisation,
    Release,
    Send,
    SendList,
    SendSegment,
)
from distributor.states import DeliveryState, SendKind

# Time enough for the pre-brief to be sent and recorded before the public send is armed.
MIN_PREBRIEF_LEAD = timedelta(minutes=5)
SUPERSEDED_DETAIL = "the embargoed copy had not gone out by the lift: the public send takes over"


@dataclass(frozen=True, slots=True)
class PrebriefRequest:
    at: datetime
    list_names: Sequence[str] = field(default=())
    segment_names: Sequence[str] = field(default=())
    # How long before the lift it must go out, at the latest.
    min_lead: timedelta = MIN_PREBRIEF_LEAD


@dataclass(frozen=True, slots=True)
class ScheduledPrebrief:
    send_id: int
    recipients: int
    at: datetime
    lift_notice_send_id: int | None


def add_prebrief(
    session: Session, *, public: Send, request: PrebriefRequest, now: datetime, batch_size: int
) -> ScheduledPrebrief:
    """Schedule the pre-brief (and the lift notice) of a public send just scheduled."""
    _check_time(request.at, public=public, now=now, min_lead=request.min_lead)
    prebrief = Send(
        release_id=public.release_id,
        kind=SendKind.PREBRIEF,
        parent_send_id=public.id,
        state=public.state,  # awaits approval with it, where approval is needed
        embargo_at=max(request.at, now),
        embargo_zone=public.embargo_zone,
        created_at=now,
    )
    session.add(prebrief)
    session.flush()
    if request.list_names or request.segment_names:
        narrowed = choose_audience(
            session, list_names=request.list_names, segment_names=request.segment_names
        )
        session.add_all(SendList(send_id=prebrief.id, list_id=m.id) for m in narrowed.lists)
        session.add_all(
            SendSegment(send_id=prebrief.id, segment_id=s.id) for s in narrowed.segments
        )
        session.flush()
    recipients = materialise_deliveries(
        session,
        send_id=prebrief.id,
        recipients=audience_rule(session, prebrief).chosen,
        batch_size=batch_size,
    )
    if recipients == 0:
        raise NotFoundError(
            "nobody in this audience may have the embargoed copy: only contacts vetted for "
            "embargoed material (theirs or their outlet's flag, see `contacts flag`) who never "
            "broke an embargo do; nothing was scheduled",
            on_page="nobody in this audience may have the embargoed copy: only contacts vetted "
            "for embargoed material (theirs or their outlet's flag) who never broke an embargo "
            "do; nothing was scheduled",
        )
    prebrief.estimated_recipients = recipients
    notice_id = None
    if _lift_notice_wanted(session, public.release_id):
        notice = Send(
            release_id=public.release_id,
            kind=SendKind.LIFT_NOTICE,
            parent_send_id=public.id,
            state=public.state,  # awaits approval with it, where approval is needed
            embargo_at=public.embargo_at,
            embargo_zone=public.embargo_zone,
            created_at=now,
            estimated_recipients=recipients,
        )
        session.add(notice)
        session.flush()
        notice_id = notice.id
    return ScheduledPrebrief(
        send_id=prebrief.id,
        recipients=recipients,
        at=prebrief.embargo_at,
        lift_notice_send_id=notice_id,
    )


def _check_time(at: datetime, *, public: Send, now: datetime, min_lead: timedelta) -> None:
    if at.tzinfo is None:
        raise InvalidEmbargoError("the pre-brief time must be timezone-aware")
    if at < now - timedelta(minutes=1):
        past = f"the pre-brief time {at:%Y-%m-%d %H:%M} UTC is in the past"
        raise InvalidEmbargoError(
            f"{past}; use --prebrief-now to send it at once",
            on_page=f"{past}; choose to pre-brief now to send it at once",
        )
    if max(at, now) > public.embargo_at - min_lead:
        minutes = min_lead.total_seconds() / 60
        raise InvalidEmbargoError(
            f"the pre-brief must go out at least {minutes:g} minutes before the embargo lifts "
            f"({public.embargo_at:%Y-%m-%d %H:%M} UTC), so that it is delivered before the "
            "public send starts"
        )


def _lift_notice_wanted(session: Session, release_id: int) -> bool:
    wanted = session.scalar(
        select(Organisation.lift_notice)
        .join(Release, Release.organisation_id == Organisation.id)
        .where(Release.id == release_id)
    )
    return wanted is None or bool(wanted)


def supersede_unsent_prebriefs(session: Session, *, public_send_id: int, now: datetime) -> int:
    """At the public send's arming: embargoed copies not yet out are cancelled, and those
    journalists get the public release instead (never both)."""
    ids = session.scalars(
        update(Delivery)
        .where(
            Delivery.send_id.in_(
                select(Send.id).where(
                    Send.parent_send_id == public_send_id, Send.kind == SendKind.PREBRIEF
                )
            ),
            Delivery.state.in_([DeliveryState.PENDING, DeliveryState.DEFERRED]),
        )
        .values(
            state=DeliveryState.CANCELLED,
            finished_at=now,
            next_attempt_at=None,
            error=SUPERSEDED_DETAIL,
        )
        .returning(Delivery.id)
    ).all()
    if ids:
        session.execute(
            insert(DeliveryEvent),
            [
                {
                    "delivery_id": i,
                    "at": now,
                    "state": DeliveryState.CANCELLED,
                    "detail": SUPERSEDED_DETAIL,
                }
                for i in sorted(ids)
            ],
        )
    return len(ids)
