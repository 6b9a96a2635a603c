"""Static media lists: create them, put contacts on them and take them off."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, func, insert, literal, select
from sqlalchemy.orm import Session

from distributor.audit import record_action
from distributor.contacts.addresses import lenient_email_key
from distributor.contacts.records import column_width
from distributor.errors import DistributorError, NotFoundError
from distributor.models import Contact, ListMembership, MediaList, SendList
from distributor.segments.compiler import matching_contact_ids
from distributor.segments.parser import parse_filter
from distributor.segments.store import filter_for_the_record, refuse_deleting_an_audience
from distributor.visible_text import check_visible

MAX_LIST_NAME_LENGTH = column_width(MediaList, "name")


def create_list(session: Session, name: str, *, now: datetime) -> MediaList:
    name = name.strip()
    if not name:
        raise DistributorError("a media list needs a name")
    check_visible(name, field="list name")
    if len(name) > MAX_LIST_NAME_LENGTH:
        raise DistributorError(
            f"the list name is {len(name)} characters long; keep it to {MAX_LIST_NAME_LENGTH}"
        )
    if session.scalar(select(MediaList).where(MediaList.name == name)) is not None:
        raise DistributorError(f"a media list named {name!r} exists already")
    media_list = MediaList(name=name, created_at=now)
    session.add(media_list)
    session.flush()
    record_action(session, "list.created", _named(media_list), at=now, after={"name": name})
    return media_list


def _named(media_list: MediaList) -> str:
    return f"list {media_list.id} ({media_list.name})"


def get_lists(session: Session, names: Sequence[str]) -> list[MediaList]:
    found = {m.name: m for m in session.scalars(select(MediaList).where(MediaList.name.in_(names)))}
    missing = [name for name in names if name not in found]
    if missing:
        named = f"no media list named {', '.join(repr(n) for n in missing)}"
        raise NotFoundError(
            f"{named}; see `distributor lists show` for the lists there are", on_page=named
        )
    return [found[name] for name in names]


def add_to_list(session: Session, list_name: str, emails: Sequence[str]) -> int:
    """Put existing contacts on a list; returns how many were newly added."""
    (media_list,) = get_lists(session, [list_name])
    # The same key the import gives an address, so any spelling of a mailbox finds it.
    given = {_key(email): email.strip() for email in emails}
    contacts = dict(
        session.execute(
            select(Contact.email_key, Contact.id).where(Contact.email_key.in_(given))
        ).all()
    )
    unknown = sorted(given[key] for key in given.keys() - contacts.keys())
    if unknown:
        raise NotFoundError(
            f"no contact with the address(es) {', '.join(unknown)}; import them first"
        )
    already = set(
        session.scalars(
            select(ListMembership.contact_id).where(ListMembership.list_id == media_list.id)
        )
    )
    new = [cid for cid in contacts.values() if cid not in already]
    session.add_all(ListMembership(list_id=media_list.id, contact_id=cid) for cid in new)
    session.flush()
    if new:
        # Counts only: who was added is personal data, and the list itself shows it.
        record_action(
            session,
            "list.members_added",
            _named(media_list),
            after={"added": len(new), "already_on": len(contacts) - len(new)},
        )
    return len(new)


def _key(email: str) -> str:
    return lenient_email_key(email)


def add_matching_to_list(session: Session, list_name: str, filter_text: str) -> int:
    """Put every contact a filter matches now on a static list; returns how many were new."""
    (media_list,) = get_lists(session, [list_name])
    already = select(ListMembership.contact_id).where(ListMembership.list_id == media_list.id)
    matching = matching_contact_ids(parse_filter(filter_text)).where(Contact.id.not_in(already))
    new = session.scalar(select(func.count()).select_from(matching.subquery())) or 0
    session.execute(
        insert(ListMembership).from_select(
            ["list_id", "contact_id"],
            matching.with_only_columns(literal(media_list.id), Contact.id),
        )
    )
    if new:
        record_action(
            session,
            "list.members_added",
            _named(media_list),
            after={"added": new, "matching": filter_for_the_record(filter_text)},
        )
    return new


def remove_from_list(session: Session, list_name: str, emails: Sequence[str]) -> int:
    """Take contacts off a list; returns how many were on it."""
    (media_list,) = get_lists(session, [list_name])
    keys = [_key(email) for email in emails]
    on_list = select(Contact.id).where(Contact.email_key.in_(keys))
    members = cast(Table, ListMembership.__table__)
    removed = session.scalars(
        delete(members)
        .where(members.c.list_id == media_list.id, members.c.contact_id.in_(on_list))
        .returning(members.c.contact_id)
    ).all()
    if removed:
        record_action(
            session, "list.members_removed", _named(media_list), after={"removed": len(removed)}
        )
    return len(removed)


def check_list_deletable(session: Session, list_name: str) -> MediaList:
    """The list, if no send was addressed to it; else why it is kept."""
    (media_list,) = get_lists(session, [list_name])
    refuse_deleting_an_audience(
        session,
        f"the list {list_name!r}",
        select(SendList.send_id).where(SendList.list_id == media_list.id),
        meanwhile="Taking contacts off it takes them out of the sends not yet sent too",
        instead="take its contacts off instead if it is no longer wanted",
    )
    return media_list


def list_size(session: Session, media_list: MediaList) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(ListMembership)
            .where(ListMembership.list_id == media_list.id)
        )
        or 0
    )


def delete_list(session: Session, list_name: str) -> None:
    """Delete a list no send was addressed to; its contacts stay in the database."""
    media_list = check_list_deletable(session, list_name)
    record_action(
        session,
        "list.deleted",
        _named(media_list),
        before={"name": media_list.name, "members": list_size(session, media_list)},
    )
    session.delete(media_list)
    session.flush()


@dataclass(frozen=True, slots=True)
class ListChanges:
    added_to: list[str]
    taken_off: list[str]


def set_contact_lists(
    session: Session, email: str, list_names: Sequence[str], *, among: Sequence[str]
) -> ListChanges:
    """Put one contact on exactly the named lists of those `among`: the lists a person was
    shown to choose from, so that a list made meanwhile is left as it is."""
    key = _key(email)
    current = set(
        session.scalars(
            select(MediaList.name)
            .join(ListMembership, ListMembership.list_id == MediaList.id)
            .join(Contact, Contact.id == ListMembership.contact_id)
            .where(Contact.email_key == key)
        )
    )
    wanted = {media_list.name for media_list in get_lists(session, sorted(set(list_names)))}
    considered = set(among) | wanted
    added_to = sorted(wanted - current)
    taken_off = sorted((current & considered) - wanted)
    for name in added_to:
        add_to_list(session, name, [email])
    for name in taken_off:
        remove_from_list(session, name, [email])
    return ListChanges(added_to=added_to, taken_off=taken_off)


def list_members(session: Session, list_name: str) -> list[tuple[str, str]]:
    """The address and name of everyone on a list, in address order."""
    (media_list,) = get_lists(session, [list_name])
    rows = session.execute(
        select(Contact.email, Contact.name)
        .join(ListMembership, ListMembership.contact_id == Contact.id)
        .where(ListMembership.list_id == media_list.id)
        .order_by(Contact.email_key)
    )
    return [(email, name) for email, name in rows]


def list_sizes(session: Session) -> list[tuple[str, int]]:
    rows = session.execute(
        select(MediaList.name, func.count(ListMembership.contact_id))
        .outerjoin(ListMembership, ListMembership.list_id == MediaList.id)
        .group_by(MediaList.name)
        .order_by(MediaList.name)
    )
    return list(rows)
