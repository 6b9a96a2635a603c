"""The record of embargo breaches, and of breaker flags cleared: who, which release, when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from distributor.models.base import Base


class BreachRecord(Base):
    """One breach recorded, or one breaker flag cleared by an admin; never changed after."""

    __tablename__ = "breach_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    # "breach" or "cleared"
    action: Mapped[str] = mapped_column(String(16))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    outlet_id: Mapped[int | None] = mapped_column(ForeignKey("outlets.id"), index=True)
    release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id"), index=True)
    at: Mapped[datetime]
    # Who recorded it, as the actor's label.
    recorded_by: Mapped[str] = mapped_column(String(300))
    note: Mapped[str] = mapped_column(Text, default="")
