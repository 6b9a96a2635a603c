"""Importing contacts held in memory: the API tests and the demo build audiences with.

Files go through `distributor.contacts.importing.import_contacts_file`, which streams; this
module checks a CSV held in memory, or rows built in code, with the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from sqlalchemy.orm import Session

from distributor.contacts.addresses import normalise_email
from distributor.contacts.importing import (
    FORGOTTEN_NOTICE,
    ImportReport,
    NoValidRowError,
    record_import,
)
from distributor.contacts.reading import read_csv
from distributor.contacts.records import ContactRow, RowProblem, validate_record
from distributor.contacts.upsert import (
    DEFAULT_CHUNK,
    existing_keys,
    forgotten_keys,
    upsert_contacts,
)
from distributor.errors import ImportRejectedError

__all__ = [
    "ContactRow",
    "ImportReport",
    "ParsedContacts",
    "import_contacts",
    "normalise_email",
    "parse_contacts_csv",
]

# The columns rows built in code provide (the rest keep their stored values on update).
LEGACY_COLUMNS = frozenset({"email", "name", "outlet"})


@dataclass(slots=True)
class ParsedContacts:
    rows: list[ContactRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    columns: frozenset[str] = LEGACY_COLUMNS
    ignored_columns: tuple[str, ...] = ()
    description: str = ""  # how the CSV was read, as ImportReport.description


def parse_contacts_csv(stream: TextIO, *, source: str = "") -> ParsedContacts:
    """Check every row; problems name the line a row starts on (the header is line 1)."""
    reading = read_csv(stream)
    parsed = ParsedContacts(problems=list(reading.header_problems), description=reading.description)
    if reading.header_problems:
        return parsed
    first_line_of: dict[str, int] = {}
    for item in reading.records:
        if item.record is None:
            parsed.problems.append(f"line {item.line}: {item.problem}")
            continue
        try:
            row = validate_record(item.line, item.record, default_source=source)
        except RowProblem as exc:
            parsed.problems.append(f"line {item.line}: {exc}")
            continue
        first = first_line_of.setdefault(row.key, row.line)
        if first != row.line:
            parsed.problems.append(
                f"line {row.line}: {str(item.record['email']).strip()!r} is the same address as "
                f"line {first} (addresses are compared without regard to letter case)"
            )
            continue
        parsed.rows.append(row)
    parsed.columns = frozenset(reading.columns)
    parsed.ignored_columns = tuple(sorted(reading.ignored_columns))
    return parsed


def import_contacts(
    session: Session, parsed: ParsedContacts, *, now: datetime, skip_invalid: bool = False
) -> ImportReport:
    """Upsert the parsed rows keyed on the address; refuses everything if any row was bad.

    With skip_invalid the valid rows are stored, unless there is none: then nothing is.
    """
    if parsed.problems and not skip_invalid:
        raise ImportRejectedError(parsed.problems)
    if parsed.problems and not parsed.rows:
        raise NoValidRowError(parsed.problems)
    # The last row for an address wins, as a later line of a file would.
    rows = list({row.key: row for row in parsed.rows}.values())
    created = updated = 0
    forgotten: list[str] = []
    for start in range(0, len(rows), DEFAULT_CHUNK):
        chunk: Sequence[ContactRow] = rows[start : start + DEFAULT_CHUNK]
        keys = [row.key for row in chunk]
        gone = forgotten_keys(session, keys)
        forgotten.extend(f"line {r.line}: {FORGOTTEN_NOTICE}" for r in chunk if r.key in gone)
        chunk = [row for row in chunk if row.key not in gone]
        existing = existing_keys(session, [row.key for row in chunk])
        upsert_contacts(session, chunk, columns=parsed.columns, now=now)
        updated += len(existing)
        created += len(chunk) - len(existing)
    report = ImportReport(
        created=created,
        updated=updated,
        skipped=list(parsed.problems),
        forgotten=forgotten,
        ignored_columns=parsed.ignored_columns,
        problem_count=len(parsed.problems),
        description=parsed.description,
    )
    record_import(session, report, origin="contacts held in memory", now=now)
    return report
