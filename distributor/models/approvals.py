"""Versions of a release's text, and the approvals a second person gives to one of them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from distributor.models.base import Base


class ReleaseVersion(Base):
    """The release's text as it was saved: at creation, then at each edit."""

    __tablename__ = "release_versions"
    __table_args__ = (UniqueConstraint("release_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    version: Mapped[int]
    saved_at: Mapped[datetime]
    saved_by: Mapped[str] = mapped_column(String(300))
    # The fields a reader sees, as text (see distributor.approvals.version_content).
    content: Mapped[dict[str, Any]] = mapped_column(JSON)


class ReleaseApproval(Base):
    """A second person's approval of one version of a release, for the sends waiting on it.

    Withdrawn (never deleted) when the release is edited afterwards.
    """

    __tablename__ = "release_approvals"

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(
        ForeignKey("releases.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int]
    approved_at: Mapped[datetime]
    approved_by: Mapped[str] = mapped_column(String(300))
    note: Mapped[str] = mapped_column(Text, default="")
    withdrawn_at: Mapped[datetime | None]
    withdrawn_reason: Mapped[str | None] = mapped_column(Text)
