"""The audit trail: who did what to which record, when, with the values before and after."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from distributor.models.base import Base


class AuditEntry(Base):
    """One action, appended and never changed: the application has no code that updates or
    deletes these rows, and on PostgreSQL and SQLite a trigger refuses it anyway.

    No foreign keys: the record outlives what it names (a forgotten contact, a deleted list).
    Personal data stays out of `before` and `after` (a contact is named by its id), so that
    erasing a contact never needs to rewrite the trail.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_release_at", "release_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(200))
    actor_role: Mapped[str] = mapped_column(String(32))
    # What was done, as "<thing>.<verb>": release.edited, send.approved, list.members_added.
    action: Mapped[str] = mapped_column(String(64), index=True)
    # The record acted on, as a reader would name it: "send 12", "list 'Science desk'".
    target: Mapped[str] = mapped_column(String(300))
    # The release the action concerns, when it concerns one, for `distributor audit --release`.
    release_id: Mapped[int | None]
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    detail: Mapped[str] = mapped_column(Text, default="")
