"""Reports that came back to a return path: bounces, complaints and automatic replies."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from distributor.bounces.kinds import BounceKind
from distributor.models.base import Base, state_enum


class Bounce(Base):
    """One message that came back, matched to its delivery or kept for an admin to look at.

    Little of the message is kept, since it may carry personal data: the remote server's
    words (with any address in them blanked) and, only when it could not be matched, a few
    of its headers and the address it reports, so that an admin can act on it.
    """

    __tablename__ = "bounces"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(index=True)
    # The same report processed twice (a mailbox read again, a relay retrying) is one row.
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[BounceKind] = mapped_column(state_enum(BounceKind))
    # Empty when the report could not be matched to a delivery of ours.
    send_id: Mapped[int | None] = mapped_column(
        ForeignKey("sends.id", ondelete="CASCADE"), index=True
    )
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    # The enhanced status code (RFC 3463), such as 5.1.1, when the report gives one.
    status: Mapped[str | None] = mapped_column(String(16))
    diagnostic: Mapped[str | None] = mapped_column(String(500))
    # What was done about it, or why it could not be matched.
    outcome: Mapped[str] = mapped_column(Text)
    # Only for a report that could not be matched: the address it names, and a few headers.
    recipient: Mapped[str | None] = mapped_column(String(320))
    headers: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int]
    # How it came in: the SMTP client's address, or the file it was read from.
    source: Mapped[str] = mapped_column(String(200))
