"""Release content as the press officer wrote it, with its images and attachments."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from distributor.models.base import Base

if TYPE_CHECKING:
    from distributor.models.organisations import Organisation


class Release(Base):
    __tablename__ = "releases"

    id: Mapped[int] = mapped_column(primary_key=True)
    headline: Mapped[str] = mapped_column(String(300))
    dateline: Mapped[str] = mapped_column(String(100), default="")
    # The one or two sentences under the headline that tell the story.
    standfirst: Mapped[str] = mapped_column(Text, default="")
    # The body as written: plain paragraphs ("text") or Markdown ("markdown").
    body: Mapped[str] = mapped_column(Text)
    body_format: Mapped[str] = mapped_column(String(16), default="text")
    notes_to_editors: Mapped[str] = mapped_column(Text, default="")
    # "About ..." in Markdown; empty means the organisation's own.
    boilerplate: Mapped[str] = mapped_column(Text, default="")
    # Ordered lists of small records, always read and written whole with the release.
    quotes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    press_contacts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    links: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The template pair <template>.html.j2 and <template>.txt.j2 in the templates folder.
    template: Mapped[str] = mapped_column(String(100), default="release")
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    created_at: Mapped[datetime]
    # When its text was last replaced (before anything went out).
    edited_at: Mapped[datetime | None]
    # A correction is a release of its own that names the one it corrects, with the press
    # officer's note; the original stays as it was sent.
    corrects_release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id"), index=True)
    correction_note: Mapped[str] = mapped_column(Text, default="", server_default="")

    # Loaded with the release, so that a send's snapshot carries everything it renders.
    organisation: Mapped[Organisation | None] = relationship(lazy="selectin")
    assets: Mapped[list[ReleaseAsset]] = relationship(
        lazy="selectin",
        order_by="ReleaseAsset.position",
        cascade="all, delete-orphan",
    )


class ReleaseAsset(Base):
    """An image shown in the release, or a file attached to it, kept in the database."""

    __tablename__ = "release_assets"

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(
        ForeignKey("releases.id", ondelete="CASCADE"), index=True
    )
    # "image" (shown in the email, with alt text) or "attachment" (a file to download).
    kind: Mapped[str] = mapped_column(String(16))
    position: Mapped[int]
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    alt_text: Mapped[str] = mapped_column(Text, default="")
    caption: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
