"""Storing checked contacts: INSERT ... ON CONFLICT DO UPDATE keyed on the address, in chunks.

Only the columns a file provides are updated on an existing contact, so importing a file of
addresses and names never wipes the beats someone entered before.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    Integer,
    String,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy import cast as cast_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from distributor.contacts.addresses import address_hash
from distributor.contacts.records import ContactRow
from distributor.hash_key import installation_secret
from distributor.models import Contact, ContactBeat, Outlet, Suppression
from distributor.segments.fields import fold

# Columns of a file and the contact columns they set ("outlet" and "beats" are special).
_PLAIN_COLUMNS = (
    "name",
    "role",
    "region",
    "country",
    "language",
    "media_type",
    "time_zone",
    "legal_basis",
    "source",
    "embargo_vetted",
    "embargo_breaker",
    "attributes",
)
DEFAULT_CHUNK = 1_000


def _dialect_insert(session: Session) -> Callable[..., Any]:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def existing_keys(session: Session, keys: Sequence[str]) -> set[str]:
    """Which of these address keys belong to a contact already."""
    return set(session.scalars(select(Contact.email_key).where(Contact.email_key.in_(keys))))


def forgotten_keys(session: Session, keys: Iterable[str]) -> set[str]:
    """Which of these address keys belong to people who asked to be forgotten."""
    secret = installation_secret(session)
    by_hash = {address_hash(key, secret=secret): key for key in keys}
    found = session.scalars(
        select(Suppression.address_hash).where(
            Suppression.address_hash.in_(list(by_hash)), Suppression.forgotten_at.is_not(None)
        )
    )
    return {by_hash[h] for h in found}


def upsert_contacts(
    session: Session, rows: Sequence[ContactRow], *, columns: Iterable[str], now: datetime
) -> dict[str, int]:
    """Insert or update one chunk of rows with distinct keys; returns their ids by key."""
    if not rows:
        return {}
    provided = set(columns)
    outlet_ids = _outlet_ids(session, rows, now=now) if "outlet" in provided else {}
    columns_of_rows: dict[str, list[Any]] = {
        "email": [row.email for row in rows],
        "email_key": [row.key for row in rows],
        "name": [row.name for row in rows],
        "outlet_id": [outlet_ids.get(fold(row.outlet)) for row in rows],
        "role": [row.role for row in rows],
        "region": [row.region for row in rows],
        "country": [row.country for row in rows],
        "language": [row.language for row in rows],
        "media_type": [row.media_type.value if row.media_type else None for row in rows],
        "time_zone": [row.time_zone for row in rows],
        "legal_basis": [row.legal_basis.value for row in rows],
        "source": [row.source for row in rows],
        "embargo_vetted": [row.embargo_vetted for row in rows],
        "embargo_breaker": [row.embargo_breaker for row in rows],
        "attributes": [row.attributes for row in rows],
    }
    # The newest spelling of the address wins; the mailbox stays one contact.
    updated = ["email", "updated_at", *(c for c in _PLAIN_COLUMNS if c in provided)]
    if "outlet" in provided:
        updated.append("outlet_id")
    if session.get_bind().dialect.name == "postgresql":
        ids = _upsert_postgresql(session, columns_of_rows, updated=updated, now=now)
    else:
        ids = _upsert_sqlite(session, columns_of_rows, updated=updated, now=now)
    if "beats" in provided:
        _replace_beats(session, rows, ids)
    return ids


def _upsert_sqlite(
    session: Session, columns: dict[str, list[Any]], *, updated: list[str], now: datetime
) -> dict[str, int]:
    contacts = cast(Table, Contact.__table__)
    names = list(columns)
    values = [
        {**dict(zip(names, row, strict=True)), "created_at": now, "updated_at": now}
        for row in zip(*columns.values(), strict=True)
    ]
    insert_rows = sqlite.insert(contacts)
    statement = insert_rows.on_conflict_do_update(
        index_elements=[contacts.c.email_key],
        set_={column: insert_rows.excluded[column] for column in updated},
    ).returning(contacts.c.email_key, contacts.c.id)
    # Core executemany: SQLAlchemy compiles once and batches rows into multi-row INSERTs.
    return {key: id_ for key, id_ in session.execute(statement, values)}


# The element type each column travels in as a PostgreSQL array (attributes as JSON text).
_ARRAY_TYPES: dict[str, Any] = {
    "outlet_id": Integer,
    "embargo_vetted": Boolean,
    "embargo_breaker": Boolean,
}


def _upsert_postgresql(
    session: Session, columns: dict[str, list[Any]], *, updated: list[str], now: datetime
) -> dict[str, int]:
    """One INSERT ... SELECT FROM unnest(arrays): a short statement whatever the chunk size.

    A multi-row VALUES list of a thousand rows is a 17,000-parameter statement that the
    driver parses afresh every time; one array per column is a few parameters.
    """
    contacts = cast(Table, Contact.__table__)
    names = list(columns)
    params = {name: values for name, values in columns.items()}
    params["attributes"] = [json.dumps(a, ensure_ascii=False) for a in columns["attributes"]]
    unnested = (
        func.unnest(*(bindparam(n, type_=ARRAY(_ARRAY_TYPES.get(n, String))) for n in names))
        .table_valued(*names)
        .render_derived(name="incoming")
    )
    created = literal(now, type_=contacts.c.created_at.type)
    rows = select(
        *(cast_(unnested.c[n], JSON) if n == "attributes" else unnested.c[n] for n in names),
        created,
        created,
    )
    insert_rows = postgresql.insert(contacts).from_select(
        [*names, "created_at", "updated_at"], rows
    )
    statement = insert_rows.on_conflict_do_update(
        index_elements=[contacts.c.email_key],
        set_={column: insert_rows.excluded[column] for column in updated},
    ).returning(contacts.c.email_key, contacts.c.id)
    return {key: id_ for key, id_ in session.execute(statement, params)}


def _outlet_ids(session: Session, rows: Sequence[ContactRow], *, now: datetime) -> dict[str, int]:
    names: dict[str, str] = {}
    for row in rows:
        if row.outlet:
            names.setdefault(fold(row.outlet), row.outlet)
    if not names:
        return {}
    outlets = cast(Table, Outlet.__table__)
    # An outlet keeps the spelling it was first stored with.
    session.execute(
        _dialect_insert(session)(outlets).on_conflict_do_nothing(
            index_elements=[outlets.c.name_key]
        ),
        [
            {"name": name, "name_key": key, "created_at": now, "updated_at": now}
            for key, name in names.items()
        ],
    )
    found = session.execute(
        select(Outlet.name_key, Outlet.id).where(Outlet.name_key.in_(list(names)))
    )
    return {key: outlet_id for key, outlet_id in found}


def _replace_beats(session: Session, rows: Sequence[ContactRow], ids: dict[str, int]) -> None:
    session.execute(delete(ContactBeat).where(ContactBeat.contact_id.in_(list(ids.values()))))
    beats = [{"contact_id": ids[row.key], "beat": beat} for row in rows for beat in row.beats]
    if not beats:
        return
    table = cast(Table, ContactBeat.__table__)
    if session.get_bind().dialect.name == "postgresql":
        # One statement with two array parameters, not one statement per beat.
        pairs = select(
            func.unnest(bindparam("contact_ids", type_=ARRAY(Integer))),
            func.unnest(bindparam("beats", type_=ARRAY(String))),
        )
        session.execute(
            insert(table).from_select(["contact_id", "beat"], pairs),
            {"contact_ids": [b["contact_id"] for b in beats], "beats": [b["beat"] for b in beats]},
        )
    else:
        session.execute(insert(table), beats)


def refresh_statistics(session: Session) -> None:
    """Let PostgreSQL plan with the new row counts straight away after a bulk import.

    Without it the planner believes the tables are still nearly empty until autovacuum
    runs, and picks nested loops for the next audience. ANALYZE inside the transaction
    counts the rows it inserted; SQLite's planner does not need this.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE contacts, contact_beats, outlets"))
