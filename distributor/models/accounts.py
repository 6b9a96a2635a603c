"""The people who log in to the web app, their API tokens, and failed logins to throttle."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from distributor.actors import Role
from distributor.models.base import Base, state_enum


class User(Base):
    """One person's account: a role, an Argon2 password hash, and the zone they read times in.

    Accounts are disabled, never deleted: the audit trail names people by their address.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Normalised and lower-cased: two spellings of one mailbox are one account.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[Role] = mapped_column(state_enum(Role, length=20))
    password_hash: Mapped[str] = mapped_column(String(200))
    # IANA zone the dashboard shows times in, beside UTC.
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]
    # Browser sessions begun before this instant are over: logging out ends the person's
    # sessions everywhere, since a signed cookie cannot be taken back from a browser.
    sessions_valid_from: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")


class ApiToken(Base):
    """A token for scripts, sent as `Authorization: Bearer`; only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # What the token is for, as its owner named it ("nightly export").
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")


class LoginFailure(Base):
    """One failed login, counted per account and per client address for throttling; rows
    older than the throttling window are deleted as new ones arrive."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    # The address typed, lower-cased, whether or not an account has it.
    account: Mapped[str] = mapped_column(String(320), index=True)
    client: Mapped[str] = mapped_column(String(64), index=True)
