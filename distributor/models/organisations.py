"""The organisations releases are issued for: their brand and their "About" boilerplate."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String, Text, false, true
from sqlalchemy.orm import Mapped, mapped_column

from distributor.models.base import Base


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    website: Mapped[str] = mapped_column(String(500), default="")
    # The "About <name>" paragraph(s) that end every release, in Markdown.
    about: Mapped[str] = mapped_column(Text, default="")
    # Brand colours as #rrggbb; None takes the installation's defaults.
    primary_colour: Mapped[str | None] = mapped_column(String(7))
    accent_colour: Mapped[str | None] = mapped_column(String(7))
    logo_filename: Mapped[str | None] = mapped_column(String(255))
    logo_content_type: Mapped[str | None] = mapped_column(String(100))
    logo_alt: Mapped[str] = mapped_column(Text, default="")
    logo_data: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Journalists who had the embargoed copy get a one-line "the embargo has now lifted" at
    # the lift, instead of the release a second time.
    lift_notice: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Every send of its releases waits for a second person's approval before it is armed.
    require_approval: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
