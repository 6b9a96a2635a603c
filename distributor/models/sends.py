"""One distribution of a release, its per-recipient deliveries and their history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from distributor.models.base import Base, state_enum
from distributor.states import DeliveryState, SendKind, SendState


class Send(Base):
    __tablename__ = "sends"

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"), index=True)
    state: Mapped[SendState] = mapped_column(state_enum(SendState, length=20), index=True)
    kind: Mapped[SendKind] = mapped_column(
        state_enum(SendKind), default=SendKind.PUBLIC, server_default=SendKind.PUBLIC.value
    )
    # A pre-brief, notice or correction belongs to the release's public send, whose embargo
    # it announces.
    parent_send_id: Mapped[int | None] = mapped_column(
        ForeignKey("sends.id", ondelete="CASCADE"), index=True
    )
    # When it may go out: the embargo of a public send, the hour of a pre-brief, the moment
    # a notice was decided.
    embargo_at: Mapped[datetime] = mapped_column(index=True)
    # The zone the press officer scheduled in, for showing the embargo back in local time.
    embargo_zone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    # Who scheduled it (the actor's label): not the one who may approve it.
    scheduled_by: Mapped[str | None] = mapped_column(String(300))
    armed_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]
    held_at: Mapped[datetime | None]
    # Why the send is held or paused, in words an admin can act on.
    hold_reason: Mapped[str | None] = mapped_column(Text)
    # Set when an admin resumed the send: it may then go out however late it is.
    resumed_at: Mapped[datetime | None]
    # The audience is counted when the send is scheduled (an estimate: lists keep changing)
    # and resolved again when it is armed, from the lists and segments as they stand then.
    estimated_recipients: Mapped[int | None]
    armed_recipients: Mapped[int | None]
    joined_at_arming: Mapped[int | None]
    left_at_arming: Mapped[int | None]


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
    claimed_at: Mapped[datetime | None]
    # The first claim starts the retry window; a retry by an admin starts a new one.
    first_claimed_at: Mapped[datetime | None]
    # The worker that claimed it last: only that worker may record its outcome.
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    # A deferred delivery is claimable again from this instant (pending: not before it).
    next_attempt_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    smtp_code: Mapped[int | None] = mapped_column(Integer)
    smtp_reply: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(Text)


class SendBatch(Base):
    """A numbered batch of a send: what carries it to a worker, and which worker holds it.

    A worker holds a batch under a lease that it renews while alive; the lease covers every
    delivery of the batch it claimed. A batch is queued to the broker only while no live
    lease holds it, so two workers never work on one batch.
    """

    __tablename__ = "send_batches"

    send_id: Mapped[int] = mapped_column(
        ForeignKey("sends.id", ondelete="CASCADE"), primary_key=True
    )
    batch_no: Mapped[int] = mapped_column(primary_key=True)
    # When a broker message last carried it; empty when none is in flight.
    queued_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None]


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
    # The reply code of the attempt, counted by class in the metrics.
    smtp_code: Mapped[int | None] = mapped_column(Integer)
