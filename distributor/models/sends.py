"""One distribution of a release, its per-recipient deliveries and their history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from distributor.models.base import Base, state_enum
from distributor.states import DeliveryState, SendState


class Send(Base):
    __tablename__ = "sends"

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"), index=True)
    state: Mapped[SendState] = mapped_column(state_enum(SendState), index=True)
    embargo_at: Mapped[datetime] = mapped_column(index=True)
    # The zone the press officer scheduled in, for showing the embargo back in local time.
    embargo_zone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    armed_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]


class SendList(Base):
    """Which media lists a send was addressed to (the audience as chosen)."""

    __tablename__ = "send_lists"

    send_id: Mapped[int] = mapped_column(
        ForeignKey("sends.id", ondelete="CASCADE"), primary_key=True
    )
    list_id: Mapped[int] = mapped_column(ForeignKey("media_lists.id"), primary_key=True)


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("send_id", "contact_id"),
        Index("ix_deliveries_send_batch_state", "send_id", "batch_no", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    send_id: Mapped[int] = mapped_column(ForeignKey("sends.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    # Deliveries travel to workers in numbered batches; a broker message names one batch.
    batch_no: Mapped[int]
    state: Mapped[DeliveryState] = mapped_column(state_enum(DeliveryState))
    attempts: Mapped[int] = mapped_column(default=0)
    dispatched_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    smtp_reply: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(Text)


class DeliveryEvent(Base):
    """Every state change of a delivery, in order."""

    __tablename__ = "delivery_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    state: Mapped[DeliveryState] = mapped_column(state_enum(DeliveryState))
    detail: Mapped[str | None] = mapped_column(Text)
