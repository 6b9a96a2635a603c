"""Who each kind of send goes to, as SQL over contacts, read when the send is armed.

- public: the chosen lists and segments, except those who already had the embargoed copy
  (they get the lift notice instead);
- pre-brief: the public audience (narrowed by the pre-brief's own lists, if any), only those
  vetted for embargoed material (the contact or its outlet), never an embargo breaker;
- notices: those who had the embargoed copy, or whose copy is going out at that moment;
- correction: everyone who received the release, embargoed copy or public.

Suppressed and forgotten contacts are left out of every audience; one still on a list keeps
a delivery that the claim ends as `suppressed`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, func, not_, or_, select
from sqlalchemy.orm import Session, aliased

from distributor.audience import AudienceChoice, audience_ids, member_ids
from distributor.models import (
    Contact,
    Delivery,
    MediaList,
    Outlet,
    Segment,
    Send,
    SendList,
    SendSegment,
)
from distributor.segments.compiler import contacts_with_outlets
from distributor.states import DeliveryState, SendKind
from distributor.suppression import contact_is_suppressed

LEFT_DETAIL = "removed from the audience before the lift"
PREBRIEFED_DETAIL = "had the embargoed copy: gets the lift notice instead"
NOT_VETTED_DETAIL = "no longer vetted for embargoed copies (or marked an embargo breaker)"
NOT_PREBRIEFED_DETAIL = "did not receive the embargoed copy"


@dataclass(frozen=True, slots=True)
class AudienceRule:
    # The contacts to deliver to (each once, none suppressed).
    chosen: Select[int]
    # Contacts whose pending delivery stays; the rest are cancelled with `left_detail`.
    kept: Select[int]
    left_detail: str


def choice_of_send(session: Session, send_id: int) -> AudienceChoice:
    """The lists and segments a send was addressed to, as they stand now."""
    lists = session.scalars(
        select(MediaList)
        .join(SendList, SendList.list_id == MediaList.id)
        .where(SendList.send_id == send_id)
        .order_by(MediaList.id)
    ).all()
    segments = session.scalars(
        select(Segment)
        .join(SendSegment, SendSegment.segment_id == Segment.id)
        .where(SendSegment.send_id == send_id)
        .order_by(Segment.id)
    ).all()
    return AudienceChoice(lists=tuple(lists), segments=tuple(segments))


def vetted_for_embargoes() -> ColumnElement[bool]:
    """On `contacts` joined to their outlet: may receive embargoed material now."""
    return and_(
        or_(Contact.embargo_vetted, func.coalesce(Outlet.embargo_vetted, False)),
        not_(Contact.embargo_breaker),
        not_(func.coalesce(Outlet.embargo_breaker, False)),
    )


def prebriefed_ids(public_send_id: int, *, in_flight: bool = False) -> Select[int]:
    """Contacts who were sent (accepted by the relay) the embargoed copy of this send; with
    `in_flight`, also those whose copy is being sent this moment."""
    states = [DeliveryState.SENT, DeliveryState.SENDING] if in_flight else [DeliveryState.SENT]
    prebrief = aliased(Send)
    return (
        select(Delivery.contact_id)
        .join(prebrief, prebrief.id == Delivery.send_id)
        .where(
            prebrief.parent_send_id == public_send_id,
            prebrief.kind == SendKind.PREBRIEF,
            Delivery.state.in_(states),
        )
    )


def recipients_of_release(release_id: int) -> Select[int]:
    """Contacts who were sent the release itself: embargoed copy or public."""
    return (
        select(Delivery.contact_id)
        .join(Send, Send.id == Delivery.send_id)
        .where(
            Send.release_id == release_id,
            Send.kind.in_([SendKind.PUBLIC, SendKind.PREBRIEF]),
            Delivery.state == DeliveryState.SENT,
        )
    )


def _unsuppressed(ids: Select[int]) -> Select[int]:
    return (
        select(Contact.id)
        .where(Contact.id.in_(ids), not_(contact_is_suppressed()))
        .order_by(Contact.id)
    )


def audience_rule(session: Session, send: Send) -> AudienceRule:
    if send.kind is SendKind.PUBLIC:
        choice = choice_of_send(session, send.id)
        prebriefed = prebriefed_ids(send.id, in_flight=True)
        chosen = audience_ids(choice).where(Contact.id.not_in(prebriefed))
        kept = member_ids(choice).where(Contact.id.not_in(prebriefed))
        return AudienceRule(chosen, kept, LEFT_DETAIL)
    parent_id = send.parent_send_id
    if parent_id is None:
        raise ValueError(f"send {send.id} ({send.kind.value}) has no public send")
    if send.kind is SendKind.PREBRIEF:
        everyone = choice_of_send(session, parent_id)
        narrowed = choice_of_send(session, send.id)
        chosen = audience_ids(everyone).where(vetted_for_embargoes())
        kept = member_ids(everyone).where(vetted_for_embargoes())
        if narrowed.lists or narrowed.segments:
            chosen = chosen.where(Contact.id.in_(member_ids(narrowed)))
            kept = kept.where(Contact.id.in_(member_ids(narrowed)))
        return AudienceRule(chosen, kept, NOT_VETTED_DETAIL)
    if send.kind is SendKind.CORRECTION:
        original = session.get_one(Send, parent_id).release_id
        received = recipients_of_release(original)
        return AudienceRule(_unsuppressed(received), _all_of(received), LEFT_DETAIL)
    # Whoever the public send leaves out as pre-briefed hears of the lift, the move or the
    # withdrawal: a copy going out this moment counts as received by both.
    prebriefed = prebriefed_ids(parent_id, in_flight=True)
    return AudienceRule(_unsuppressed(prebriefed), _all_of(prebriefed), NOT_PREBRIEFED_DETAIL)


def _all_of(ids: Select[int]) -> Select[int]:
    return select(Contact.id).select_from(contacts_with_outlets()).where(Contact.id.in_(ids))
