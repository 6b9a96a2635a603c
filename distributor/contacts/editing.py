"""Changing one contact or outlet by hand: its fields, and the embargo flags a press officer keeps.

An edit goes through the importer's checks and its way of storing a contact: the contact's
current record with the changes applied is checked whole, as a row of a file would be, and
then upserted, so an edited contact is stored exactly as an imported one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from distributor.audit import record_action
from distributor.contacts.addresses import lenient_email_key
from distributor.contacts.records import (
    BEAT_SEPARATOR,
    COLUMNS,
    ContactRow,
    RowProblem,
    canonical_column,
    validate_record,
)
from distributor.contacts.upsert import forgotten_keys, upsert_contacts
from distributor.errors import DistributorError, NotFoundError, Worded
from distributor.models import Contact, ContactBeat, Outlet
from distributor.segments.fields import ATTRIBUTE_PREFIX, fold
from distributor.suppression import is_suppressed
from distributor.visible_text import HiddenCharacterError, check_visible
from distributor.vocabulary import LegalBasis

EDITABLE_FIELDS = (*COLUMNS, f"{ATTRIBUTE_PREFIX}NAME")
# The fields whose values the audit trail holds. The others are named there without their
# values: the address and the name are personal data, and so may be the free text of the
# source and of attributes (a mobile number, say).
VALUES_FOR_THE_RECORD = frozenset(
    {
        "outlet",
        "role",
        "beats",
        "region",
        "country",
        "language",
        "media_type",
        "time_zone",
        "legal_basis",
        "embargo_vetted",
        "embargo_breaker",
    }
)


class ContactEditRefusedError(DistributorError):
    """An edit that would leave the contact invalid or clash with another; nothing changed.

    `problems` says what is wrong with each field to blame, by its name (a form shows each
    beside its field); it is empty when no one field is to blame.
    """

    def __init__(self, message: str, *, problems: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.problems = dict(problems or {})


def get_contact(session: Session, email: str) -> Contact:
    """The contact with this address in any spelling; forgotten people are not found."""
    key = lenient_email_key(email)
    contact = session.scalar(
        select(Contact).where(Contact.email_key == key, Contact.forgotten_at.is_(None))
    )
    if contact is not None:
        return contact
    if key and forgotten_keys(session, [key]):
        raise NotFoundError(
            f"no contact with the address {email.strip()}: its owner asked to be forgotten, "
            "so nothing about them is held (only a hash that keeps the address suppressed)"
        )
    raise NotFoundError(f"no contact with the address {email.strip()}; import it first")


def get_outlet(session: Session, name: str) -> Outlet:
    outlet = session.scalar(select(Outlet).where(Outlet.name_key == fold(name)))
    if outlet is None:
        raise NotFoundError(
            f"no outlet named {name.strip()!r}; outlets come with their journalists on import"
        )
    return outlet


def set_contact_flags(
    session: Session,
    *,
    email: str,
    now: datetime,
    embargo_vetted: bool | None = None,
    embargo_breaker: bool | None = None,
) -> Contact:
    """Set or clear a journalist's embargo flags; None leaves a flag as it is."""
    contact = get_contact(session, email)
    before = _flags(contact)
    if embargo_vetted is not None:
        contact.embargo_vetted = embargo_vetted
    if embargo_breaker is not None:
        contact.embargo_breaker = embargo_breaker
    contact.updated_at = now
    session.flush()
    after = _flags(contact)
    _record_edit(
        session,
        "contact.edited",
        f"contact {contact.id}",
        changed=[k for k in after if before[k] != after[k]],
        before=before,
        after=after,
        now=now,
    )
    return contact


def set_outlet_flags(
    session: Session,
    *,
    name: str,
    now: datetime,
    embargo_vetted: bool | None = None,
    embargo_breaker: bool | None = None,
) -> Outlet:
    """Set or clear an outlet's embargo flags: they apply to every journalist there."""
    outlet = get_outlet(session, name)
    before = _flags(outlet)
    if embargo_vetted is not None:
        outlet.embargo_vetted = embargo_vetted
    if embargo_breaker is not None:
        outlet.embargo_breaker = embargo_breaker
    outlet.updated_at = now
    session.flush()
    after = _flags(outlet)
    _record_edit(
        session,
        "outlet.edited",
        f"outlet {outlet.id} ({outlet.name})",
        changed=[k for k in after if before[k] != after[k]],
        before=before,
        after=after,
        now=now,
    )
    return outlet


def _flags(holder: Contact | Outlet) -> dict[str, object]:
    return {"embargo_vetted": holder.embargo_vetted, "embargo_breaker": holder.embargo_breaker}


def _record_edit(
    session: Session,
    action: str,
    target: str,
    *,
    changed: Sequence[str],
    before: Mapping[str, object],
    after: Mapping[str, object],
    now: datetime,
    detail: str = "",
) -> None:
    """Name every changed field, with its values only where they are not personal data."""
    if not changed:
        return
    shown = [f for f in changed if f in VALUES_FOR_THE_RECORD]
    record_action(
        session,
        action,
        target,
        at=now,
        before={f: before[f] for f in shown},
        after={f: after[f] for f in shown},
        detail=f"changed: {', '.join(changed)}{detail}",
    )


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class ContactEdit:
    email: str  # the address after the edit
    changes: list[FieldChange]
    # The outlet set did not exist: the edit created it.
    created_outlet: str | None = None
    # Consequences worth a second look, such as a suppression left on the old address.
    notices: list[str] = field(default_factory=list)


def edit_contact(
    session: Session, *, email: str, assignments: Sequence[tuple[str, str]], now: datetime
) -> ContactEdit:
    """Set fields of one contact, given as (field, value) pairs written as in a contacts file.

    The whole contact is checked as the import checks a row; a refusal changes nothing.
    `attributes.NAME` sets one attribute (an empty value removes it); `attributes` replaces
    them all with a JSON object; `beats` replaces every beat.
    """
    contact = get_contact(session, email)
    changes = _canonical_assignments(assignments)
    hidden = _hidden_characters(changes)
    stored = _stored_record(session, contact)
    if hidden:
        # In the words every field that holds one is refused with; the other fields checked.
        visible = {c: v for c, v in changes.items() if c not in hidden}
        raise ContactEditRefusedError(
            next(iter(hidden.values())),
            problems={**_problems_by_field(stored, visible, contact.legal_basis), **hidden},
        )
    record = _with_changes(stored, changes)
    try:
        row = validate_record(0, record, default_legal_basis=contact.legal_basis)
    except RowProblem as problem:
        raise ContactEditRefusedError(
            f"cannot change {contact.email}: {problem}; nothing was changed",
            problems=_problems_by_field(stored, changes, contact.legal_basis),
        ) from None
    if row.key != contact.email_key:
        _check_new_address(session, row, old=contact.email)
    edited = _record_of(row)
    differences = _differences(stored, edited)
    if not differences:
        return ContactEdit(email=contact.email, changes=[])
    created_outlet = (
        row.outlet
        if row.outlet
        and session.scalar(select(Outlet.id).where(Outlet.name_key == fold(row.outlet))) is None
        else None
    )
    notices = _address_notices(session, old=contact.email, new=row.email)
    if row.key != contact.email_key:
        # Re-key first, so that the upsert below finds this contact under its new address.
        contact.email_key = row.key
        contact.email = row.email
        session.flush()
    upsert_contacts(session, [row], columns=COLUMNS, now=now)
    _record_edit(
        session,
        "contact.edited",
        f"contact {contact.id}",
        changed=[c.field for c in differences],
        before=stored,
        after=edited,
        now=now,
        detail=f"; the outlet {created_outlet!r} is new" if created_outlet else "",
    )
    session.expire(contact)
    return ContactEdit(
        email=row.email, changes=differences, created_outlet=created_outlet, notices=notices
    )


def _canonical_assignments(assignments: Sequence[tuple[str, str]]) -> dict[str, str]:
    changes: dict[str, str] = {}
    for written, value in assignments:
        column = canonical_column(written)
        if column is None:
            raise ContactEditRefusedError(
                f"{written.strip()!r} is not a field of a contact; the fields are "
                f"{', '.join(EDITABLE_FIELDS)}"
            )
        if column in changes:
            raise ContactEditRefusedError(f"the {column} is set twice; set each field once")
        changes[column] = value
    whole = "attributes" in changes
    if whole and any(c.startswith(ATTRIBUTE_PREFIX) for c in changes):
        raise ContactEditRefusedError(
            "set either all attributes (attributes={...}) or single ones (attributes.NAME=...), "
            "not both at once"
        )
    if "legal_basis" in changes and not changes["legal_basis"].strip():
        # The import reads an empty legal basis as the default; an edit must say which.
        raise ContactEditRefusedError("the legal_basis cannot be emptied; name the new one")
    return changes


def _hidden_characters(changes: dict[str, str]) -> dict[str, str]:
    """Each field whose new value holds a character that would not show, and which."""
    hidden = {}
    for column, value in changes.items():
        try:
            check_visible(value, field=column)
        except HiddenCharacterError as exc:
            hidden[column] = str(exc)
    return hidden


def _problems_by_field(
    stored: dict[str, object], changes: dict[str, str], legal_basis: LegalBasis
) -> dict[str, str]:
    """What is wrong with each change on its own: the stored contact is valid, so a change
    that fails alone is to blame for its own problem."""
    try:
        validate_record(0, stored, default_legal_basis=legal_basis)
    except RowProblem:
        return {}  # stored before today's checks: no one change is to blame
    problems = {}
    for column, value in changes.items():
        try:
            alone = _with_changes(stored, {column: value})
            validate_record(0, alone, default_legal_basis=legal_basis)
        except RowProblem as problem:
            problems[column] = str(problem)
    return problems


def _stored_record(session: Session, contact: Contact) -> dict[str, object]:
    """The contact as a record of a contacts file, each value as the importer reads it."""
    outlet = session.get(Outlet, contact.outlet_id) if contact.outlet_id else None
    beats = session.scalars(select(ContactBeat.beat).where(ContactBeat.contact_id == contact.id))
    return {
        "email": contact.email,
        "name": contact.name,
        "outlet": outlet.name if outlet else "",
        "role": contact.role,
        "beats": sorted(beats),
        "region": contact.region,
        "country": contact.country,
        "language": contact.language,
        "media_type": contact.media_type.value if contact.media_type else "",
        "time_zone": contact.time_zone or "",
        "legal_basis": contact.legal_basis.value,
        "source": contact.source,
        "embargo_vetted": contact.embargo_vetted,
        "embargo_breaker": contact.embargo_breaker,
        "attributes": dict(contact.attributes or {}),
    }


def _with_changes(stored: dict[str, object], changes: dict[str, str]) -> dict[str, object]:
    record = dict(stored)
    attributes = dict(cast(dict[str, str], stored["attributes"]))
    for column, value in changes.items():
        if column.startswith(ATTRIBUTE_PREFIX):
            name = column[len(ATTRIBUTE_PREFIX) :]
            if value.strip():
                attributes[name] = value
            else:
                attributes.pop(name, None)
        else:
            record[column] = value
    if "attributes" not in changes:
        record["attributes"] = attributes
    return record


def _record_of(row: ContactRow) -> dict[str, object]:
    """A checked row in the form `_stored_record` gives, so that the two compare."""
    return {
        "email": row.email,
        "name": row.name,
        "outlet": row.outlet,
        "role": row.role,
        "beats": sorted(row.beats),
        "region": row.region,
        "country": row.country,
        "language": row.language,
        "media_type": row.media_type.value if row.media_type else "",
        "time_zone": row.time_zone or "",
        "legal_basis": row.legal_basis.value,
        "source": row.source,
        "embargo_vetted": row.embargo_vetted,
        "embargo_breaker": row.embargo_breaker,
        "attributes": row.attributes,
    }


def _check_new_address(session: Session, row: ContactRow, *, old: str) -> None:
    owner = session.scalar(select(Contact.id).where(Contact.email_key == row.key))
    if owner is not None:
        taken = "another contact has that address; edit or forget that contact first"
        raise ContactEditRefusedError(
            f"cannot change {old} to {row.email}: {taken}", problems={"email": taken}
        )
    if forgotten_keys(session, [row.key]):
        forgotten = (
            "the owner of that address asked to be forgotten, and it may not be stored again"
        )
        raise ContactEditRefusedError(
            f"cannot change {old} to {row.email}: {forgotten}", problems={"email": forgotten}
        )


def _differences(old: dict[str, object], new: dict[str, object]) -> list[FieldChange]:
    changes: list[FieldChange] = []
    for column in COLUMNS:
        if column == "attributes":
            continue
        if old[column] != new[column]:
            changes.append(FieldChange(column, _shown(old[column]), _shown(new[column])))
    old_attributes = cast(dict[str, str], old["attributes"])
    new_attributes = cast(dict[str, str], new["attributes"])
    for name in sorted(old_attributes.keys() | new_attributes.keys()):
        before, after = old_attributes.get(name, ""), new_attributes.get(name, "")
        if before != after:
            changes.append(FieldChange(f"{ATTRIBUTE_PREFIX}{name}", before, after))
    return changes


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return f"{BEAT_SEPARATOR} ".join(value)
    return str(value)


def _address_notices(session: Session, *, old: str, new: str) -> list[str]:
    if lenient_email_key(old) == lenient_email_key(new):
        return []
    if is_suppressed(session, old) and not is_suppressed(session, new):
        stays = f"{old} stays on the suppression list but {new} is not on it"
        return [
            Worded(
                f"{stays}: add it with `distributor suppressions add {new}` if the person must "
                "still not be mailed",
                on_page=f"{stays}: add {new} to the suppression list too if the person must "
                "still not be mailed",
            )
        ]
    return []
