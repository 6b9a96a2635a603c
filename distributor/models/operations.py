"""What the running processes say about themselves and about the relay."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from distributor.models.base import Base


class Heartbeat(Base):
    """The last sign of life of one scheduler or worker process, in the database's time."""

    __tablename__ = "heartbeats"

    # kind:host:pid, unique per running process.
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    seen_at: Mapped[datetime]
    # The process's clock minus the database's; beyond a second it is worth an alarm.
    clock_offset_ms: Mapped[int] = mapped_column(default=0)
    detail: Mapped[str | None] = mapped_column(Text)


class RelayHealth(Base):
    """One row: whether the mail relay is reachable, and when to try it again if not."""

    __tablename__ = "relay_health"

    id: Mapped[int] = mapped_column(primary_key=True)
    consecutive_outages: Mapped[int] = mapped_column(default=0)
    # While in the future, the scheduler hands no batch to workers.
    retry_after: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[datetime | None]
