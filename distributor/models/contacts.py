"""Journalists, the outlets they work for, their beats, and the media lists that group them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, false, text
from sqlalchemy.orm import Mapped, mapped_column

from distributor.models.base import Base, state_enum
from distributor.vocabulary import LegalBasis, MediaType


class Outlet(Base):
    """A publication or broadcaster; its embargo flags apply to every journalist there."""

    __tablename__ = "outlets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # The name case-folded: "Daily Example" and "DAILY EXAMPLE" are one outlet.
    name_key: Mapped[str] = mapped_column(String(200), unique=True)
    embargo_vetted: Mapped[bool] = mapped_column(default=False, server_default=false())
    embargo_breaker: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    # The address folded to lower case: two spellings of one mailbox are one contact.
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    outlet_id: Mapped[int | None] = mapped_column(
        ForeignKey("outlets.id", ondelete="SET NULL"), index=True
    )
    role: Mapped[str] = mapped_column(String(200), default="", server_default="")
    region: Mapped[str] = mapped_column(String(100), default="", server_default="")
    # ISO 3166-1 alpha-2, upper case; empty when unknown.
    country: Mapped[str] = mapped_column(String(2), default="", server_default="")
    # A BCP 47 tag in lower case ("en", "pt-br"); empty when unknown.
    language: Mapped[str] = mapped_column(String(35), default="", server_default="")
    media_type: Mapped[MediaType | None] = mapped_column(state_enum(MediaType))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    # Free-form text attributes: attribute name to value, both strings.
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict, server_default=text("'{}'")
    )
    # Where the data came from (a file, a person), for the GDPR record of processing.
    source: Mapped[str] = mapped_column(String(200), default="", server_default="")
    legal_basis: Mapped[LegalBasis] = mapped_column(
        state_enum(LegalBasis, length=24),
        default=LegalBasis.LEGITIMATE_INTEREST,
        server_default=LegalBasis.LEGITIMATE_INTEREST.value,
    )
    embargo_vetted: Mapped[bool] = mapped_column(default=False, server_default=false())
    embargo_breaker: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Set when the person's data was erased; the row stays so that send history adds up.
    forgotten_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ContactBeat(Base):
    """One beat (topic) a journalist covers, case-folded: a contact has several."""

    __tablename__ = "contact_beats"
    __table_args__ = (Index("ix_contact_beats_beat_contact", "beat", "contact_id"),)

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    beat: Mapped[str] = mapped_column(String(100), primary_key=True)


class MediaList(Base):
    __tablename__ = "media_lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]


class ListMembership(Base):
    __tablename__ = "list_memberships"
    list_id: Mapped[int] = mapped_column(
        ForeignKey("media_lists.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
