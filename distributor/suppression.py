"""The suppression list: addresses that are never mailed again, whatever list they are on.

Entries are matched by a keyed hash of the address, so an entry still works after the
person was forgotten and only the hash is left. The audience is resolved without suppressed
addresses, and every delivery is checked again at the moment it is claimed for sending.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from email_validator import EmailNotValidError
from sqlalchemy import ColumnElement, Table, delete, exists, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from distributor.actors import Actor, require_admin
from distributor.audit import record_action
from distributor.contacts.addresses import address_hash, lenient_email_key, normalise_email
from distributor.errors import DistributorError, InvalidAddressError
from distributor.hash_key import installation_secret
from distributor.models import Contact, Suppression
from distributor.vocabulary import SuppressionReason

__all__ = [
    "SuppressionEntry",
    "SuppressionReason",
    "contact_is_suppressed",
    "hash_of",
    "insert_suppression",
    "is_suppressed",
    "lift_suppression",
    "list_suppressions",
    "suppress",
]

MAX_SOURCE_LENGTH = 200
# Reports from mail systems name a mailbox that was mailed, even one email-validator would
# refuse ("Broken..Address@example.com"): such an address must still never be mailed again.
REPORTED_BY_MAIL_SYSTEMS = frozenset({SuppressionReason.HARD_BOUNCED, SuppressionReason.COMPLAINED})


@dataclass(frozen=True, slots=True)
class SuppressionEntry:
    # None once the person was forgotten: only the hash of the address is left.
    email: str | None
    reason: SuppressionReason
    source: str
    note: str
    created_at: datetime
    forgotten_at: datetime | None


def hash_of(session: Session, email: str) -> str:
    """The keyed hash suppressions are matched by, for any spelling of an address."""
    return address_hash(lenient_email_key(email), secret=installation_secret(session))


def suppress(
    session: Session,
    *,
    email: str,
    reason: SuppressionReason,
    source: str,
    now: datetime,
    note: str = "",
) -> bool:
    """Never mail this address again; True when newly suppressed, False if it already was.

    Idempotent: the first entry for an address stays as it was (reason, source and time).
    A new entry is recorded in the audit trail by its id: the address stays out of it.
    """
    suppression_id = insert_suppression(
        session, email=email, reason=reason, source=source, now=now, note=note
    )
    if suppression_id is None:
        return False
    record_action(
        session,
        "suppression.added",
        f"suppression {suppression_id}",
        at=now,
        after={"reason": reason, "source": _tidy_source(source)},
    )
    return True


def insert_suppression(
    session: Session,
    *,
    email: str,
    reason: SuppressionReason,
    source: str,
    now: datetime,
    note: str = "",
) -> int | None:
    """Suppress as `suppress` does, returning the new entry's id (None if it already was),
    and record nothing: for a caller that records the larger action this is part of, such
    as an unsubscribe or an erasure."""
    source = _tidy_source(source)
    if not source:
        raise DistributorError(
            "a suppression needs a source (who or what asked for it, e.g. 'one-click unsubscribe')"
        )
    key = lenient_email_key(email)
    if not key:
        raise DistributorError("a suppression needs an address; none was given")
    _check_address(session, email, key=key, reason=reason)
    values = {
        "address_hash": address_hash(key, secret=installation_secret(session)),
        "email_key": key,
        "reason": reason,
        "source": source,
        "note": note.strip(),
        "created_at": now,
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = cast(Table, Suppression.__table__)
    # No conflict target: a clash on the hash or on the plain address both mean "already".
    # Told by RETURNING, not the rowcount, which some drivers do not give for an upsert.
    inserted: int | None = session.execute(
        insert(table).values(values).on_conflict_do_nothing().returning(table.c.id)
    ).scalar()
    return inserted


def _tidy_source(source: str) -> str:
    return " ".join(source.split())[:MAX_SOURCE_LENGTH]


def _check_address(session: Session, email: str, *, key: str, reason: SuppressionReason) -> None:
    """Refuse what is not an address, so that a typing mistake is not kept as an entry
    while the address meant stays unsuppressed."""
    local, at, domain = key.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in key):
        raise InvalidAddressError(
            f"{email.strip()!r} is not an email address: give it as name@domain; "
            "nothing was suppressed"
        )
    if reason in REPORTED_BY_MAIL_SYSTEMS:
        return
    try:
        normalise_email(email)
    except EmailNotValidError as exc:
        # An address already held stays suppressible, whatever the validator says now.
        if session.scalar(select(exists().where(Contact.email_key == key))):
            return
        raise InvalidAddressError(
            f"{email.strip()!r} is not a valid email address ({exc}); nothing was suppressed"
        ) from None


def is_suppressed(session: Session, email: str) -> bool:
    """Whether the address is on the suppression list, even if its owner was forgotten."""
    digest = hash_of(session, email)
    return bool(session.scalar(select(exists().where(Suppression.address_hash == digest))))


def contact_is_suppressed() -> ColumnElement[bool]:
    """A SQL condition on `contacts`: the contact must not be mailed.

    Either its address is on the list, or the person was forgotten (their row is kept only
    so that send history adds up; the address left with the erased data).
    """
    return or_(
        exists().where(Suppression.email_key == Contact.email_key),
        Contact.forgotten_at.is_not(None),
    )


def lift_suppression(session: Session, *, email: str, actor: Actor) -> bool:
    """Take an address off the suppression list (admins only); False if it was not on it."""
    require_admin(actor, action="remove an address from the suppression list")
    digest = hash_of(session, email)
    table = cast(Table, Suppression.__table__)
    removed = session.execute(
        delete(table)
        .where(table.c.address_hash == digest)
        .returning(table.c.id, table.c.reason, table.c.source)
    ).first()
    if removed is None:
        return False
    record_action(
        session,
        "suppression.lifted",
        f"suppression {removed.id}",
        before={"reason": removed.reason, "source": removed.source},
    )
    return True


def list_suppressions(
    session: Session, *, reason: SuppressionReason | None = None
) -> Sequence[SuppressionEntry]:
    """Every entry, newest first; forgotten people appear without an address."""
    query = select(Suppression).order_by(Suppression.created_at.desc(), Suppression.id.desc())
    if reason is not None:
        query = query.where(Suppression.reason == reason)
    return [
        SuppressionEntry(
            email=s.email_key,
            reason=s.reason,
            source=s.source,
            note=s.note,
            created_at=s.created_at,
            forgotten_at=s.forgotten_at,
        )
        for s in session.scalars(query)
    ]
