"""Scheduling a release under embargo and changing the embargo, as the API takes and tells
them. Times are typed as a person types them: a local time and an IANA zone."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from distributor.embargo_changes import EmbargoChange
from distributor.scheduling import ScheduledSend
from distributor.states import SendState
from distributor.web.contacts_common import MAX_NAME
from distributor.web.schemas import InputModel

MAX_AUDIENCE_NAMES = 100
# Far past "YYYY-MM-DD HH:MM:SS" and the longest zone name.
MAX_TIME_TEXT = 40
MAX_ZONE = 64

Name = Annotated[str, Field(max_length=MAX_NAME, examples=["Newsdesks"])]
LocalTime = Annotated[
    str,
    Field(
        max_length=MAX_TIME_TEXT,
        description='Local time in `zone`: "YYYY-MM-DD HH:MM".',
        examples=["2027-11-14 00:01"],
    ),
]
Zone = Annotated[
    str,
    Field(
        max_length=MAX_ZONE,
        description="An IANA time zone, e.g. Europe/London.",
        examples=["Europe/London"],
    ),
]


class PrebriefIn(InputModel):
    """The embargoed copy, first, to the vetted journalists of the audience: `now`, or `at`
    a local time in the embargo's zone; `lists` and `segments` narrow it."""

    at: str = Field("", max_length=MAX_TIME_TEXT, description='"YYYY-MM-DD HH:MM".')
    now: bool = False
    lists: list[Name] = Field([], max_length=MAX_AUDIENCE_NAMES)
    segments: list[Name] = Field([], max_length=MAX_AUDIENCE_NAMES)

    @model_validator(mode="after")
    def _at_or_now(self) -> PrebriefIn:
        if bool(self.at.strip()) == self.now:
            raise ValueError("give the pre-brief's time in `at`, or `now`: true, not both")
        return self


class ScheduleIn(InputModel):
    embargo: LocalTime
    zone: Zone
    lists: list[Name] = Field(
        [], max_length=MAX_AUDIENCE_NAMES, description="Media lists to send to."
    )
    segments: list[Name] = Field(
        [], max_length=MAX_AUDIENCE_NAMES, description="Segments to send to."
    )
    again: bool = Field(False, description="Also send to contacts who already have it.")
    prebrief: PrebriefIn | None = None


class PrebriefOut(BaseModel):
    send_id: int
    recipients: int
    at: datetime
    lift_notice_send_id: int | None = Field(
        description="The send telling the pre-briefed that the embargo has lifted, if any."
    )


class ScheduledOut(BaseModel):
    send_id: int
    state: SendState = Field(description="awaiting_approval when a second person must approve.")
    recipients: int = Field(
        description="As the lists stand now; they are read again just before the lift."
    )
    left_out: int = Field(description="On the lists, but suppressed or forgotten.")
    embargo_at: datetime
    prebrief: PrebriefOut | None


class MoveIn(InputModel):
    embargo: LocalTime
    zone: Zone


class EmbargoChangeOut(BaseModel):
    release_id: int
    embargo_at: datetime
    embargo_zone: str
    moved_sends: list[int]
    cancelled_prebriefs: list[int] = Field(
        description="Pre-briefs that could no longer go out before the lift."
    )
    notice_send_id: int | None = Field(
        description="The notice going now to those who hold the embargoed copy, if any."
    )
    notified: int


class CancelledSendOut(BaseModel):
    send_id: int
    deliveries_stopped: int


class WithdrawalOut(BaseModel):
    release_id: int
    cancelled: list[CancelledSendOut]
    notice_send_id: int | None = Field(
        description="The notice telling those who hold the embargoed copy not to publish."
    )
    notified: int


def scheduled_out(s: ScheduledSend) -> ScheduledOut:
    prebrief = None
    if s.prebrief is not None:
        prebrief = PrebriefOut(
            send_id=s.prebrief.send_id,
            recipients=s.prebrief.recipients,
            at=s.prebrief.at,
            lift_notice_send_id=s.prebrief.lift_notice_send_id,
        )
    return ScheduledOut(
        send_id=s.send_id,
        state=s.state,
        recipients=s.recipients,
        left_out=s.left_out,
        embargo_at=s.embargo_at,
        prebrief=prebrief,
    )


def change_out(c: EmbargoChange) -> EmbargoChangeOut:
    return EmbargoChangeOut(
        release_id=c.release_id,
        embargo_at=c.embargo_at,
        embargo_zone=c.embargo_zone,
        moved_sends=c.moved_sends,
        cancelled_prebriefs=c.cancelled_prebriefs,
        notice_send_id=c.notice_send_id,
        notified=c.notified,
    )


def withdrawal_out(stopped: dict[int, int], c: EmbargoChange) -> WithdrawalOut:
    return WithdrawalOut(
        release_id=c.release_id,
        cancelled=[
            CancelledSendOut(send_id=send_id, deliveries_stopped=n)
            for send_id, n in sorted(stopped.items())
        ],
        notice_send_id=c.notice_send_id,
        notified=c.notified,
    )
