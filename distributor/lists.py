"""Static media lists: create them and put contacts on them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from email_validator import EmailNotValidError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from distributor.contacts_import import normalise_email
from distributor.errors import DistributorError, NotFoundError
from distributor.models import Contact, ListMembership, MediaList


def create_list(session: Session, name: str, *, now: datetime) -> MediaList:
    name = name.strip()
    if not name:
        raise DistributorError("a media list needs a name")
    if session.scalar(select(MediaList).where(MediaList.name == name)) is not None:
        raise DistributorError(f"a media list named {name!r} exists already")
    media_list = MediaList(name=name, created_at=now)
    session.add(media_list)
    session.flush()
    return media_list


def get_lists(session: Session, names: Sequence[str]) -> list[MediaList]:
    found = {m.name: m for m in session.scalars(select(MediaList).where(MediaList.name.in_(names)))}
    missing = [name for name in names if name not in found]
    if missing:
        raise NotFoundError(
            f"no media list named {', '.join(repr(n) for n in missing)}; "
            "see `distributor lists show` for the lists there are"
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
    return len(new)


def _key(email: str) -> str:
    try:
        return normalise_email(email).lower()
    except EmailNotValidError:
        return email.strip().lower()


def list_sizes(session: Session) -> list[tuple[str, int]]:
    rows = session.execute(
        select(MediaList.name, func.count(ListMembership.contact_id))
        .outerjoin(ListMembership, ListMembership.list_id == MediaList.id)
        .group_by(MediaList.name)
        .order_by(MediaList.name)
    )
    return list(rows)
