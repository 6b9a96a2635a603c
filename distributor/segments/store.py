"""Saved segments: check a filter, preview what it matches, save it under a name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session

from distributor.actors import Actor
from distributor.audit import record_action
from distributor.errors import (
    DistributorError,
    InvalidFilterError,
    InvalidStateError,
    NotFoundError,
)
from distributor.models import Contact, Release, Segment, Send, SendSegment
from distributor.segments.compiler import matching_contact_ids
from distributor.segments.fields import ATTRIBUTE_PREFIX
from distributor.segments.parser import parse_filter
from distributor.segments.syntax import And, Condition, Filter, Not, Or, render
from distributor.states import ACTIVE_SEND_STATES, SendState
from distributor.suppression import contact_is_suppressed

DEFAULT_SAMPLE_SIZE = 10
# Releases a refusal to delete an audience names; the others are counted.
MAX_RELEASES_NAMED = 3
# Filter fields whose values are personal data, besides every attributes.NAME.
PERSONAL_FIELDS = frozenset({"email", "name"})
WITHHELD = "[withheld]"


@dataclass(frozen=True, slots=True)
class SampleContact:
    email: str
    name: str


@dataclass(frozen=True, slots=True)
class SegmentPreview:
    """What a filter matches now: shown before a segment is saved."""

    count: int
    sample: list[SampleContact]
    # How many of those are on the suppression list: they match, but will not be mailed.
    suppressed: int = 0


def preview_filter(
    session: Session, filter_text: str, *, sample_size: int = DEFAULT_SAMPLE_SIZE
) -> SegmentPreview:
    """The number of contacts the filter matches and the first few; raises InvalidFilterError."""
    matching = matching_contact_ids(parse_filter(filter_text))
    count = session.scalar(select(func.count()).select_from(matching.subquery())) or 0
    suppressed = matching.where(contact_is_suppressed()).subquery()
    suppressed_count = session.scalar(select(func.count()).select_from(suppressed)) or 0
    sample = session.execute(
        matching.with_only_columns(Contact.email, Contact.name)
        .order_by(Contact.email_key)
        .limit(sample_size)
    ).all()
    return SegmentPreview(
        count=count,
        sample=[SampleContact(e, n) for e, n in sample],
        suppressed=suppressed_count,
    )


def save_segment(
    session: Session,
    *,
    name: str,
    filter_text: str,
    actor: Actor,
    now: datetime,
    replace: bool = False,
) -> Segment:
    """Save a filter under a name; the filter must parse. `replace` changes an existing one."""
    name = " ".join(name.split())
    if not name:
        raise DistributorError("a segment needs a name")
    parse_filter(filter_text)
    segment = session.scalar(select(Segment).where(Segment.name == name))
    if segment is not None and not replace:
        exists = f"a segment named {name!r} exists already"
        raise DistributorError(
            f"{exists}; pass --replace to change its filter",
            on_page=f"{exists}; choose to replace its filter, or save it under another name",
        )
    created = segment is None
    if segment is None:
        segment = Segment(name=name, created_by=actor.label, created_at=now)
        session.add(segment)
    old_filter = None if created else segment.filter_text
    segment.filter_text = filter_text.strip()
    segment.updated_at = now
    session.flush()
    if segment.filter_text != old_filter:
        record_action(
            session,
            "segment.saved",
            f"segment {segment.id} ({segment.name})",
            at=now,
            before=None if old_filter is None else {"filter": filter_for_the_record(old_filter)},
            after={"filter": filter_for_the_record(segment.filter_text)},
        )
    return segment


def filter_for_the_record(filter_text: str) -> str:
    """A filter as the audit trail may hold it: as written, unless it compares an address, a
    name or a free-form attribute (a phone number, say) with a value; then in canonical form
    with those values withheld, as personal data stays out of the trail."""
    try:
        tree = parse_filter(filter_text)
    except InvalidFilterError:
        return f"{WITHHELD} (a filter that no longer reads)"
    withheld = _withholding_personal_values(tree)
    return filter_text.strip() if withheld == tree else render(withheld)


def _withholding_personal_values(node: Filter) -> Filter:
    if isinstance(node, And):
        return And(tuple(_withholding_personal_values(p) for p in node.parts))
    if isinstance(node, Or):
        return Or(tuple(_withholding_personal_values(p) for p in node.parts))
    if isinstance(node, Not):
        return Not(_withholding_personal_values(node.part))
    personal = node.field in PERSONAL_FIELDS or node.field.startswith(ATTRIBUTE_PREFIX)
    if not personal or not node.values:
        return node
    return Condition(node.field, node.operator, tuple(WITHHELD for _ in node.values))


def get_segments(session: Session, names: Sequence[str]) -> list[Segment]:
    found = {s.name: s for s in session.scalars(select(Segment).where(Segment.name.in_(names)))}
    missing = [name for name in names if name not in found]
    if missing:
        named = f"no segment named {', '.join(repr(n) for n in missing)}"
        raise NotFoundError(
            f"{named}; see `distributor segments show` for the segments there are", on_page=named
        )
    return [found[name] for name in names]


def list_segments(session: Session) -> list[Segment]:
    return list(session.scalars(select(Segment).order_by(Segment.name)))


def check_segment_deletable(session: Session, *, name: str) -> Segment:
    """The segment, if no send was addressed to it; else why it is kept."""
    (segment,) = get_segments(session, [name])
    refuse_deleting_an_audience(
        session,
        f"the segment {name!r}",
        select(SendSegment.send_id).where(SendSegment.segment_id == segment.id),
        meanwhile="Changing its filter changes who the sends not yet sent go to",
        instead="save a new segment under another name instead",
    )
    return segment


def delete_segment(session: Session, *, name: str) -> None:
    """Delete a segment no send was addressed to (those are kept as the send's record)."""
    segment = check_segment_deletable(session, name=name)
    record_action(
        session,
        "segment.deleted",
        f"segment {segment.id} ({segment.name})",
        before={"filter": filter_for_the_record(segment.filter_text)},
    )
    session.delete(segment)
    session.flush()


def refuse_deleting_an_audience(
    session: Session,
    audience: str,
    send_ids: Select[int],
    *,
    meanwhile: str,
    instead: str,
) -> None:
    """Refuse to delete a list or a segment that sends were addressed to, naming their
    releases: first those not yet sent, whose audience it still is."""
    sends = session.execute(
        select(Send.release_id, Release.headline, Send.id, Send.state, Send.embargo_at)
        .join(Release, Release.id == Send.release_id)
        .where(Send.id.in_(send_ids))
        .order_by(Send.embargo_at, Send.id)
    ).all()
    if not sends:
        return
    waiting = [send for send in sends if send.state in ACTIVE_SEND_STATES]
    if waiting:
        raise InvalidStateError(
            f"{audience} is the audience of {_releases_named(waiting)}, not yet sent: the "
            f"audiences of sends are kept for their record, so it cannot be deleted. {meanwhile}"
        )
    raise InvalidStateError(
        f"{audience} was the audience of {_releases_named(sends)} and is kept for their "
        f"record; {instead}"
    )


AddressedSend = Row[int, str, int, SendState, datetime]


def _releases_named(sends: Sequence[AddressedSend]) -> str:
    by_release: dict[int, list[AddressedSend]] = {}
    for send in sends:
        by_release.setdefault(send.release_id, []).append(send)
    named = []
    for release_id, its_sends in list(by_release.items())[:MAX_RELEASES_NAMED]:
        first = its_sends[0]
        numbers = ", ".join(str(send.id) for send in its_sends)
        state = first.state.value.replace("_", " ")
        named.append(
            f"release {release_id} “{first.headline}” (send{'s' if len(its_sends) > 1 else ''} "
            f"{numbers}, {state}, embargo {first.embargo_at:%Y-%m-%d %H:%M} UTC)"
        )
    more = len(by_release) - MAX_RELEASES_NAMED
    if more > 0:
        named.append(f"{more} more release{'s' if more > 1 else ''}")
    return named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"
