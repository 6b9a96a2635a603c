"""What the API answers about contacts and outlets, and about an imported file."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from distributor.contacts.importing import ImportReport
from distributor.contacts.lookup import ContactDetail, FoundContact
from distributor.contacts.outlets import OutletEntry
from distributor.states import DeliveryState
from distributor.vocabulary import SuppressionReason
from distributor.web.problems import FieldProblem, row_problems

FILE_POINTER = "#/file"


class FoundContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    email: str
    name: str
    outlet: str
    role: str
    country: str
    suppressed: bool = Field(description="On the suppression list: found, but never mailed.")


class OutletFactsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    embargo_vetted: bool
    embargo_breaker: bool


class SuppressionFactsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    reason: SuppressionReason
    source: str
    note: str
    since: datetime


class RecentDeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    delivery_id: int
    send_id: int
    release_id: int
    headline: str
    state: DeliveryState
    embargo_at: datetime
    claimed_at: datetime | None
    finished_at: datetime | None
    smtp_code: int | None
    smtp_reply: str | None
    error: str | None


class ContactOut(BaseModel):
    """One journalist in full, as `distributor contacts show` prints them."""

    model_config = ConfigDict(from_attributes=True)

    email: str
    name: str
    outlet: OutletFactsOut | None = Field(
        description="The outlet, with its own embargo flags (they apply to all there)."
    )
    role: str
    beats: list[str]
    region: str
    country: str
    language: str
    media_type: str | None
    time_zone: str | None
    legal_basis: str
    source: str
    embargo_vetted: bool
    embargo_breaker: bool
    attributes: dict[str, str]
    created_at: datetime
    updated_at: datetime
    lists: list[str]
    suppression: SuppressionFactsOut | None
    deliveries: list[RecentDeliveryOut] = Field(
        description="The most recently scheduled deliveries to the contact, newest first."
    )
    deliveries_total: int


class OutletOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    journalists: int
    embargo_vetted: bool
    embargo_breaker: bool


class ImportOut(BaseModel):
    """What importing a file did, or (a dry run) would do."""

    created: int = Field(description="New contacts.")
    updated: int = Field(description="Contacts already held, updated from the file.")
    dry_run: bool = Field(description="True when nothing was stored.")
    read_as: str = Field(description="How the file was read: its format and separator.")
    skipped: list[FieldProblem] = Field(
        description="Rows left out for their problems (with skip_invalid), each by its line."
    )
    skipped_total: int
    forgotten: list[str] = Field(
        description="Rows left out because their owner asked to be forgotten."
    )
    ignored_columns: list[str]


def found_contact_out(found: FoundContact) -> FoundContactOut:
    return FoundContactOut.model_validate(found)


def contact_out(detail: ContactDetail) -> ContactOut:
    return ContactOut.model_validate(detail)


def outlet_out(entry: OutletEntry) -> OutletOut:
    return OutletOut.model_validate(entry)


def import_out(report: ImportReport) -> ImportOut:
    return ImportOut(
        created=report.created,
        updated=report.updated,
        dry_run=report.dry_run,
        read_as=report.description,
        skipped=row_problems(report.skipped, pointer=FILE_POINTER),
        skipped_total=report.problem_count,
        forgotten=report.forgotten,
        ignored_columns=list(report.ignored_columns),
    )
