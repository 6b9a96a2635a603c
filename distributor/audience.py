"""Who a send goes to: the union of lists and segments, minus suppressions, once per address.

Everything here is one set-based statement over `contacts`: a contact is chosen when it
is on any chosen list or matches any chosen segment, so each address is chosen once however
many lists it is on (addresses are unique per contact). Suppressed and forgotten contacts are
left out here, and the claim checks the suppression list again at the moment of sending.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    exists,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.orm import Session

from distributor.errors import NotFoundError
from distributor.lists import get_lists
from distributor.models import (
    Contact,
    Delivery,
    ListMembership,
    MediaList,
    Outlet,
    Segment,
    SendBatch,
)
from distributor.segments.compiler import compile_filter, contacts_with_outlets
from distributor.segments.parser import parse_filter
from distributor.segments.store import get_segments
from distributor.segments.syntax import Filter
from distributor.states import DeliveryState
from distributor.suppression import contact_is_suppressed

STREAM_CHUNK = 2_000


@dataclass(frozen=True, slots=True)
class AudienceChoice:
    """The lists and segments a press officer chose, looked up."""

    lists: tuple[MediaList, ...]
    segments: tuple[Segment, ...]

    @property
    def filters(self) -> tuple[Filter, ...]:
        return tuple(parse_filter(s.filter_text) for s in self.segments)


@dataclass(frozen=True, slots=True)
class AudienceMember:
    contact_id: int
    email: str
    name: str
    outlet: str


def choose_audience(
    session: Session, *, list_names: Sequence[str] = (), segment_names: Sequence[str] = ()
) -> AudienceChoice:
    """Look the lists and segments up by name; at least one of either is needed."""
    if not list_names and not segment_names:
        raise NotFoundError(
            "choose at least one media list or segment to send to (--to LIST, --segment NAME)",
            on_page="choose at least one media list or segment to send to",
        )
    lists = get_lists(session, list(dict.fromkeys(list_names))) if list_names else []
    segments = get_segments(session, list(dict.fromkeys(segment_names))) if segment_names else []
    return AudienceChoice(lists=tuple(lists), segments=tuple(segments))


def audience_ids(choice: AudienceChoice) -> Select[int]:
    """SELECT the id of every contact the send goes to, each once."""
    return select(Contact.id).select_from(contacts_with_outlets()).where(_chosen(choice))


def member_ids(choice: AudienceChoice) -> Select[int]:
    """SELECT every contact on a chosen list or matching a chosen segment, suppressed or not."""
    return select(Contact.id).select_from(contacts_with_outlets()).where(_on_chosen(choice))


def _on_chosen(choice: AudienceChoice) -> ColumnElement[bool]:
    chosen = [compile_filter(f) for f in choice.filters]
    if choice.lists:
        chosen.append(
            exists().where(
                ListMembership.contact_id == Contact.id,
                ListMembership.list_id.in_([m.id for m in choice.lists]),
            )
        )
    return or_(*chosen)


def _chosen(choice: AudienceChoice) -> ColumnElement[bool]:
    return and_(_on_chosen(choice), not_(contact_is_suppressed()))


def count_audience(session: Session, choice: AudienceChoice) -> int:
    return session.scalar(select(func.count()).select_from(audience_ids(choice).subquery())) or 0


def stream_audience(session: Session, choice: AudienceChoice) -> Iterator[AudienceMember]:
    """Every recipient in address order, fetched from the server in chunks, never all at once."""
    # One pass over contacts, not a join back to the ids: a server-side cursor makes
    # PostgreSQL favour fast-start plans, and a re-join then degrades badly.
    rows = session.execute(
        select(Contact.id, Contact.email, Contact.name, func.coalesce(Outlet.name, ""))
        .select_from(contacts_with_outlets())
        .where(_chosen(choice))
        .order_by(Contact.email_key)
        .execution_options(yield_per=STREAM_CHUNK)
    )
    for contact_id, email, name, outlet in rows:
        yield AudienceMember(contact_id=contact_id, email=email, name=name, outlet=outlet)


def materialise_deliveries(
    session: Session, *, send_id: int, recipients: Select[int], batch_size: int
) -> int:
    """INSERT one pending delivery per recipient (a SELECT of contact ids, each once) in
    numbered batches; returns how many."""
    audience = recipients.subquery()
    numbered = select(
        literal(send_id),
        audience.c.id,
        (func.row_number(type_=Integer).over(order_by=audience.c.id) - 1) // batch_size,
        literal(DeliveryState.PENDING.value),
        literal(0),
    )
    session.execute(
        insert(Delivery).from_select(
            ["send_id", "contact_id", "batch_no", "state", "attempts"], numbered
        )
    )
    session.execute(
        insert(SendBatch).from_select(
            ["send_id", "batch_no"],
            select(Delivery.send_id, Delivery.batch_no)
            .where(Delivery.send_id == send_id)
            .distinct(),
        )
    )
    # Counted, not taken from the INSERT's rowcount: SQLAlchemy does not keep the rowcount of
    # an INSERT ... SELECT, and on PostgreSQL it reads back as -1.
    return session.scalar(select(func.count()).where(Delivery.send_id == send_id)) or 0
