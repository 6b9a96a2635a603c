"""Writing contacts back out as CSV or JSON, streamed, in the shape the importer reads.

An exported file imported into an empty database gives the same contacts again.

A CSV export is opened in spreadsheets, where a cell such as =HYPERLINK(...) in a name that
came from outside would run as a formula. Such cells get a ' in front, which spreadsheets
show as text and the importer removes again (`reading.protect_cell`, `unprotect_cell`); a
raw export writes every cell as stored.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any, TextIO

from sqlalchemy import ColumnElement, Select, String, func, select, type_coerce
from sqlalchemy.orm import Session

from distributor.contacts.reading import FileFormat, protect_cell
from distributor.contacts.records import BEAT_SEPARATOR, COLUMNS
from distributor.models import Contact, ContactBeat, Outlet
from distributor.segments.compiler import compile_filter, contacts_with_outlets
from distributor.segments.syntax import Filter

# An export has every column an import reads, so it imports back as it was.
EXPORT_COLUMNS = COLUMNS
STREAM_CHUNK = 2_000


def _beats_of_contact() -> ColumnElement[str]:
    return (
        select(func.aggregate_strings(ContactBeat.beat, BEAT_SEPARATOR))
        .where(ContactBeat.contact_id == Contact.id)
        .scalar_subquery()
    )


def _export_query(where: Filter | None) -> Select[*tuple[Any, ...]]:
    query: Select[*tuple[Any, ...]] = (
        select(
            Contact.email,
            Contact.name,
            func.coalesce(Outlet.name, ""),
            Contact.role,
            _beats_of_contact(),
            Contact.region,
            Contact.country,
            Contact.language,
            type_coerce(Contact.media_type, String()),
            Contact.time_zone,
            type_coerce(Contact.legal_basis, String()),
            Contact.source,
            Contact.embargo_vetted,
            Contact.embargo_breaker,
            Contact.attributes,
        )
        .select_from(contacts_with_outlets())
        .where(Contact.forgotten_at.is_(None))
        .order_by(Contact.email_key)
    )
    if where is not None:
        query = query.where(compile_filter(where))
    return query


def iter_contacts(session: Session, *, where: Filter | None = None) -> Iterator[dict[str, Any]]:
    """Every contact (not forgotten), in address order, as the importer's columns."""
    rows = session.execute(_export_query(where).execution_options(yield_per=STREAM_CHUNK))
    for row in rows:
        record = dict(zip(EXPORT_COLUMNS, row, strict=True))
        record["beats"] = sorted(record["beats"].split(BEAT_SEPARATOR)) if record["beats"] else []
        record["media_type"] = record["media_type"] or ""
        record["time_zone"] = record["time_zone"] or ""
        record["embargo_vetted"] = bool(record["embargo_vetted"])
        record["embargo_breaker"] = bool(record["embargo_breaker"])
        record["attributes"] = dict(sorted((record["attributes"] or {}).items()))
        yield record


def export_contacts(
    session: Session,
    stream: TextIO,
    *,
    file_format: FileFormat,
    where: Filter | None = None,
    raw: bool = False,
) -> int:
    """Write contacts to `stream`; returns how many. JSON is an array, one contact a line.

    CSV cells that would run as formulas are protected unless `raw`.
    """
    records = iter_contacts(session, where=where)
    if file_format is FileFormat.JSON:
        return _write_json(records, stream)
    return _write_csv(records, stream, raw=raw)


def _write_csv(records: Iterator[dict[str, Any]], stream: TextIO, *, raw: bool) -> int:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for record in records:
        record["beats"] = f"{BEAT_SEPARATOR} ".join(record["beats"])
        record["embargo_vetted"] = "true" if record["embargo_vetted"] else "false"
        record["embargo_breaker"] = "true" if record["embargo_breaker"] else "false"
        attributes = record["attributes"]
        record["attributes"] = json.dumps(attributes, ensure_ascii=False) if attributes else ""
        cells = (record[column] for column in EXPORT_COLUMNS)
        writer.writerow(cells if raw else (_protected(cell) for cell in cells))
        count += 1
    return count


def _protected(cell: object) -> object:
    return protect_cell(cell) if isinstance(cell, str) else cell


def _write_json(records: Iterator[dict[str, Any]], stream: TextIO) -> int:
    count = 0
    stream.write("[")
    for record in records:
        stream.write(",\n" if count else "\n")
        stream.write(json.dumps(record, ensure_ascii=False))
        count += 1
    stream.write("\n]\n" if count else "]\n")
    return count
