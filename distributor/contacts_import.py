"""Reading a contacts CSV with a report of every bad row, and importing it all or nothing."""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from distributor.errors import ImportRejectedError
from distributor.models import Contact

REQUIRED_COLUMNS = ("email", "name")
OPTIONAL_COLUMNS = ("outlet",)
# The length of the name and outlet columns in the database.
MAX_TEXT_LENGTH = 200


@dataclass(frozen=True, slots=True)
class ContactRow:
    line: int
    email: str
    name: str
    outlet: str

    @property
    def key(self) -> str:
        return self.email.lower()


@dataclass(slots=True)
class ParsedContacts:
    rows: list[ContactRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ImportReport:
    created: int
    updated: int
    skipped: list[str]


def normalise_email(raw: str) -> str:
    """The address as email-validator normalises it; raises EmailNotValidError."""
    return validate_email(raw.strip(), check_deliverability=False).normalized


def parse_contacts_csv(stream: TextIO) -> ParsedContacts:
    """Validate every row; problems name the line a row starts on (the header is line 1)."""
    parsed = ParsedContacts()
    reader = csv.reader(stream)
    try:
        header = [name.strip().lower() for name in next(reader, [])]
    except csv.Error as exc:
        parsed.problems.append(f"line 1: cannot read the header: {exc}")
        return parsed
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        found = ", ".join(header) if header else "no header at all"
        parsed.problems.append(
            f"line 1: missing column(s) {', '.join(missing)} (found: {found}); "
            f"the header needs {', '.join(REQUIRED_COLUMNS)}"
        )
        return parsed
    repeated = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if header.count(c) > 1]
    if repeated:
        parsed.problems.extend(
            f"line 1: the column {column} appears more than once; keep only one"
            for column in repeated
        )
        return parsed
    first_line_of: dict[str, int] = {}
    while True:
        # A quoted field may span lines: a row is reported by the line it starts on.
        line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            parsed.problems.append(f"line {line}: cannot read the file from here on: {exc}")
            break
        if not fields:
            continue  # a blank line
        if len(fields) > len(header):
            parsed.problems.append(f"line {line}: more fields than the header has columns")
            continue
        record = dict(zip(header, fields, strict=False))
        raw_email = record.get("email", "").strip()
        if not raw_email:
            parsed.problems.append(f"line {line}: the email is empty")
            continue
        try:
            email = normalise_email(raw_email)
        except EmailNotValidError as exc:
            parsed.problems.append(f"line {line}: {raw_email!r} is not a valid address: {exc}")
            continue
        name, outlet = _clean(record.get("name", "")), _clean(record.get("outlet", ""))
        problem = _text_problem("name", name) or _text_problem("outlet", outlet)
        if problem:
            parsed.problems.append(f"line {line}: {problem}")
            continue
        row = ContactRow(line=line, email=email, name=name, outlet=outlet)
        if row.key in first_line_of:
            parsed.problems.append(
                f"line {line}: {raw_email!r} is the same address as line {first_line_of[row.key]}"
                " (addresses are compared without regard to letter case)"
            )
            continue
        first_line_of[row.key] = line
        parsed.rows.append(row)
    return parsed


def _clean(value: str) -> str:
    """Surrounding space dropped, and any run of spaces or line breaks inside made one space."""
    return " ".join(value.split())


def _text_problem(column: str, value: str) -> str | None:
    control = next((ch for ch in value if unicodedata.category(ch) == "Cc"), None)
    if control is not None:
        return f"the {column} contains a control character ({control!r}); remove it"
    if len(value) > MAX_TEXT_LENGTH:
        return f"the {column} is {len(value)} characters long; keep it to {MAX_TEXT_LENGTH}"
    return None


def import_contacts(
    session: Session, parsed: ParsedContacts, *, now: datetime, skip_invalid: bool = False
) -> ImportReport:
    """Upsert the parsed rows keyed on the address; refuses everything if any row was bad."""
    if parsed.problems and not skip_invalid:
        raise ImportRejectedError(parsed.problems)
    existing = _existing_by_key(session, (row.key for row in parsed.rows))
    created = updated = 0
    for row in parsed.rows:
        contact = existing.get(row.key)
        if contact is None:
            session.add(
                Contact(
                    email=row.email,
                    email_key=row.key,
                    name=row.name,
                    outlet=row.outlet,
                    created_at=now,
                    updated_at=now,
                )
            )
            created += 1
        else:
            contact.email, contact.name, contact.outlet = row.email, row.name, row.outlet
            contact.updated_at = now
            updated += 1
    session.flush()
    return ImportReport(created=created, updated=updated, skipped=list(parsed.problems))


def _existing_by_key(session: Session, keys: Iterable[str]) -> dict[str, Contact]:
    found: dict[str, Contact] = {}
    key_list = list(keys)
    for start in range(0, len(key_list), 500):
        chunk = key_list[start : start + 500]
        for contact in session.scalars(select(Contact).where(Contact.email_key.in_(chunk))):
            found[contact.email_key] = contact
    return found
