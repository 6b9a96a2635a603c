"""Dynamic segments: saved filters over contacts, and the sends addressed to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from distributor.models.base import Base


class Segment(Base):
    """A named filter; its members are whoever matches it when a send is scheduled."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # The filter as the press officer wrote it; parsed again whenever it is used.
    filter_text: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SendSegment(Base):
    """Which segments a send was addressed to (with SendList, the audience as chosen)."""

    __tablename__ = "send_segments"

    send_id: Mapped[int] = mapped_column(
        ForeignKey("sends.id", ondelete="CASCADE"), primary_key=True
    )
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id"), primary_key=True)
