"""What the API answers, as JSON models: the core's own records, field for field."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from distributor.accounts.users import Account
from distributor.approvals import Approval
from distributor.releases.overview import ReleaseDetail, ReleaseSummary
from distributor.status import SendStatus


class InputModel(BaseModel):
    """A request body. Text holding a NUL character is refused, naming its field, whatever
    the database (PostgreSQL's text cannot hold one, SQLite's would keep it)."""

    @field_validator("*", mode="after")
    @classmethod
    def _without_nul(cls, value: Any) -> Any:
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise ValueError("holds a NUL character (\\u0000), which text may not hold")
        return value


class ReleaseSummaryOut(BaseModel):
    release_id: int
    headline: str
    state: str = Field(description="draft, or the most pressing state of its sends.")
    embargo_at: datetime | None
    embargo_zone: str | None
    embargo_local: str | None
    sent: int
    recipients: int
    sends: int
    created_at: datetime
    edited_at: datetime | None


class FailureCount(BaseModel):
    reason: str
    count: int


class SendStatusOut(BaseModel):
    send_id: int
    release_id: int
    headline: str
    kind: str
    state: str
    embargo_at: datetime
    embargo_zone: str
    counts: dict[str, int] = Field(description="Deliveries by state.")
    total: int
    first_sent_at: datetime | None
    last_sent_at: datetime | None
    hold_reason: str | None
    next_retry_at: datetime | None
    oldest_waiting_since: datetime | None
    failures_by_reason: list[FailureCount]
    estimated_recipients: int | None
    armed_recipients: int | None
    joined_at_arming: int | None
    left_at_arming: int | None
    parent_send_id: int | None
    scheduled_by: str | None


class SendOut(SendStatusOut):
    phases: list[SendStatusOut] = Field(
        description="The send's pre-brief, notices and corrections, if any."
    )


class AssetOut(BaseModel):
    kind: str
    filename: str
    content_type: str
    size: int
    alt: str | None


class ReleaseDetailOut(ReleaseSummaryOut):
    dateline: str
    standfirst: str
    body: str
    body_format: str
    notes_to_editors: str
    template: str
    organisation: str | None
    quotes: list[dict[str, Any]]
    press_contacts: list[dict[str, Any]]
    links: list[dict[str, Any]]
    assets: list[AssetOut]
    send_statuses: list[SendStatusOut]


class ApproveIn(InputModel):
    note: str = Field("", max_length=2000, description="A word for the record.")


class ApprovalOut(BaseModel):
    release_id: int
    version: int
    send_ids: list[int]


class AccountOut(BaseModel):
    email: str
    display_name: str
    role: str
    time_zone: str


def summary_out(s: ReleaseSummary) -> ReleaseSummaryOut:
    return ReleaseSummaryOut(
        release_id=s.release_id,
        headline=s.headline,
        state=s.state,
        embargo_at=s.embargo_at,
        embargo_zone=s.embargo_zone,
        embargo_local=s.embargo_local or None,
        sent=s.sent,
        recipients=s.recipients,
        sends=s.sends,
        created_at=s.created_at,
        edited_at=s.edited_at,
    )


def send_status_out(s: SendStatus) -> SendStatusOut:
    return SendStatusOut(
        send_id=s.send_id,
        release_id=s.release_id,
        headline=s.headline,
        kind=s.kind.value,
        state=s.state.value,
        embargo_at=s.embargo_at,
        embargo_zone=s.embargo_zone,
        counts={state.value: n for state, n in s.counts.items()},
        total=s.total,
        first_sent_at=s.first_sent_at,
        last_sent_at=s.last_sent_at,
        hold_reason=s.hold_reason,
        next_retry_at=s.next_retry_at,
        oldest_waiting_since=s.oldest_waiting_since,
        failures_by_reason=[FailureCount(reason=r, count=n) for r, n in s.failures_by_reason],
        estimated_recipients=s.estimated_recipients,
        armed_recipients=s.armed_recipients,
        joined_at_arming=s.joined_at_arming,
        left_at_arming=s.left_at_arming,
        parent_send_id=s.parent_send_id,
        scheduled_by=s.scheduled_by,
    )


def send_out(main: SendStatus, phases: list[SendStatus]) -> SendOut:
    return SendOut(
        **send_status_out(main).model_dump(), phases=[send_status_out(p) for p in phases]
    )


def detail_out(d: ReleaseDetail) -> ReleaseDetailOut:
    return ReleaseDetailOut(
        **summary_out(d.summary).model_dump(),
        dateline=d.dateline,
        standfirst=d.standfirst,
        body=d.body,
        body_format=d.body_format,
        notes_to_editors=d.notes_to_editors,
        template=d.template,
        organisation=d.organisation,
        quotes=d.quotes,
        press_contacts=d.press_contacts,
        links=d.links,
        assets=[AssetOut.model_validate(a) for a in d.assets],
        send_statuses=[send_status_out(s) for s in d.sends],
    )


def approval_out(a: Approval) -> ApprovalOut:
    return ApprovalOut(release_id=a.release_id, version=a.version, send_ids=list(a.send_ids))


def account_out(a: Account) -> AccountOut:
    return AccountOut(
        email=a.email, display_name=a.display_name, role=a.role.value, time_zone=a.time_zone
    )
