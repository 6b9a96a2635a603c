"""Building contacts for tests through the importer's own checks, so they are stored as real."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from distributor.contacts.records import COLUMNS, ContactRow, validate_record
from distributor.contacts_import import ImportReport, ParsedContacts, import_contacts
from distributor.models import Contact, Outlet

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
ALL_COLUMNS = frozenset(COLUMNS)


def contact(email: str, line: int = 2, **fields: object) -> ContactRow:
    """A checked contact row, as the line of a file with these columns would give it."""
    return validate_record(line, {"email": email, **fields})


def store(session: Session, rows: Sequence[ContactRow], *, now: datetime = NOW) -> ImportReport:
    return import_contacts(session, ParsedContacts(rows=list(rows), columns=ALL_COLUMNS), now=now)


def clear_contacts(session: Session) -> None:
    session.execute(delete(Contact))
    session.execute(delete(Outlet))
