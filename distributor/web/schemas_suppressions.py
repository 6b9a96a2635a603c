"""The suppression list as the API reads and changes it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from distributor.suppression import SuppressionReason
from distributor.web.contacts_common import MAX_EMAIL, MAX_NAME
from distributor.web.schemas import InputModel


class SuppressionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    email: str | None = Field(
        description="null once the person was forgotten: only a hash of the address is kept."
    )
    reason: SuppressionReason
    source: str
    note: str
    created_at: datetime
    forgotten_at: datetime | None


class SuppressionIn(InputModel):
    email: str = Field(max_length=MAX_EMAIL, examples=["jo@news.example.com"])
    reason: SuppressionReason = SuppressionReason.DO_NOT_CONTACT
    note: str = Field("", max_length=MAX_NAME, description="Why, in a few words.")


class SuppressedOut(BaseModel):
    email: str
    added: bool = Field(description="False when the address was suppressed already.")
