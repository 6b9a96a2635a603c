"""A send's deliveries, and putting failed ones back in line, as the API tells them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from distributor.states import DeliveryState
from distributor.web.schemas import InputModel


class DeliveryOut(BaseModel):
    delivery_id: int
    email: str
    name: str
    outlet: str
    state: DeliveryState
    attempts: int
    claimed_at: datetime | None
    finished_at: datetime | None
    next_attempt_at: datetime | None
    smtp_code: int | None = Field(description="The relay's last reply code.")
    smtp_reply: str | None
    error: str | None


class RetryIn(InputModel):
    states: list[Literal["failed", "bounced"]] = Field(
        default=["failed", "bounced"],
        min_length=1,
        max_length=2,
        description="Which deliveries to put back in line.",
    )


class RetriedOut(BaseModel):
    send_id: int
    retried: int = Field(
        description="Deliveries put back in line; suppressed addresses stay suppressed."
    )
