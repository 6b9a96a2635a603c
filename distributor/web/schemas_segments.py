"""Segments (saved filters) as the API reads and saves them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from distributor.segments.store import SegmentPreview
from distributor.web.contacts_common import MAX_FILTER, MAX_NAME
from distributor.web.schemas import InputModel
from distributor.web.schemas_lists import MemberOut


class SegmentOut(BaseModel):
    name: str
    filter: str
    reach: int = Field(
        description="How many contacts it reaches now (suppressed addresses left out)."
    )


class SegmentIn(InputModel):
    name: str = Field(max_length=MAX_NAME, examples=["UK crime"])
    filter: str = Field(
        max_length=MAX_FILTER,
        description='In the filter language, e.g. beat in ("crime", "policing") and '
        'country = "GB".',
        examples=['beat in ("crime", "policing") and country = "GB"'],
    )
    replace: bool = Field(False, description="Change the filter of an existing segment.")


class PreviewOut(BaseModel):
    """What a filter matches now."""

    count: int = Field(description="Contacts the filter matches, suppressed or not.")
    suppressed: int = Field(description="How many of them are suppressed, so not mailed.")
    sample: list[MemberOut]


def preview_out(preview: SegmentPreview) -> PreviewOut:
    return PreviewOut(
        count=preview.count,
        suppressed=preview.suppressed,
        sample=[MemberOut(email=s.email, name=s.name) for s in preview.sample],
    )
