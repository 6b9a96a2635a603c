"""Addresses that are never mailed, and the key their hashes are made with."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from distributor.models.base import Base, state_enum
from distributor.vocabulary import SuppressionReason


class Suppression(Base):
    """One suppressed address, matched by its keyed hash so that it outlives erasure."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # HMAC-SHA256 of the lower-cased normalised address: kept when the person is forgotten.
    address_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The lower-cased address itself, until the person asks to be forgotten.
    email_key: Mapped[str | None] = mapped_column(String(320), unique=True)
    reason: Mapped[SuppressionReason] = mapped_column(state_enum(SuppressionReason))
    source: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    forgotten_at: Mapped[datetime | None]


class AddressHashKey(Base):
    """The installation's random key for address hashes: one row, made once, never rotated.

    It lives in the database rather than in the settings so that changing the secret key of
    a deployment can never silently lift the suppression of a person who was forgotten.
    """

    __tablename__ = "address_hash_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hex: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
