"""Creating, finding, listing and disabling accounts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError
from sqlalchemy import select
from sqlalchemy.orm import Session

from distributor.accounts.passwords import hash_password, needs_rehash
from distributor.actors import Actor, Role
from distributor.audit import record_action
from distributor.contacts.addresses import email_key, normalise_email
from distributor.embargo import load_zone
from distributor.errors import DistributorError, InvalidAddressError, NotFoundError
from distributor.models import User

PEOPLES_ROLES = tuple(role for role in Role if role is not Role.SYSTEM)
MAX_DISPLAY_NAME = 200


@dataclass(frozen=True, slots=True)
class Account:
    """What the rest of the app knows of a user: never the password hash."""

    id: int
    email: str
    display_name: str
    role: Role
    time_zone: str
    created_at: datetime
    last_login_at: datetime | None
    disabled_at: datetime | None
    sessions_valid_from: datetime | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    def accepts_session_from(self, since: datetime) -> bool:
        """Whether a browser session begun at `since` is still this account's."""
        return self.active and (
            self.sessions_valid_from is None or since >= self.sessions_valid_from
        )

    @property
    def actor(self) -> Actor:
        """Who the account acts as in the records: the address, since it is unique (two
        people may share a display name, and approval must tell them apart)."""
        return Actor(name=self.email, role=self.role)


def account_of(user: User) -> Account:
    return Account(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=user.role,
        time_zone=user.time_zone,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        disabled_at=user.disabled_at,
        sessions_valid_from=user.sessions_valid_from,
    )


def account_email(raw: str) -> str:
    """The address as accounts store it; raises InvalidAddressError."""
    try:
        return email_key(normalise_email(raw))
    except EmailNotValidError as exc:
        raise InvalidAddressError(f"{raw.strip()!r} is not an email address: {exc}") from None


def check_role(role: Role) -> Role:
    if role is Role.SYSTEM:
        raise DistributorError(
            "the system role is the scheduler's and the workers'; give a person one of "
            + ", ".join(r.value for r in PEOPLES_ROLES)
        )
    return role


def check_time_zone(zone: str) -> str:
    """The zone, if it is a place's IANA zone (as embargoes take them)."""
    load_zone(zone)
    return zone


def find_user(session: Session, email: str) -> User | None:
    try:
        key = account_email(email)
    except InvalidAddressError:
        return None
    return session.scalar(select(User).where(User.email == key))


def get_user(session: Session, email: str) -> User:
    user = find_user(session, email)
    if user is None:
        raise NotFoundError(
            f"no account has the address {email.strip()!r}; `distributor users list` shows them"
        )
    return user


def create_user(
    session: Session,
    *,
    email: str,
    role: Role,
    password: str,
    now: datetime,
    display_name: str = "",
    time_zone: str = "UTC",
) -> Account:
    """Create an account; raises DistributorError when the address is taken or a value is
    unusable (the password is checked against the policy before it is hashed)."""
    key = account_email(email)
    check_role(role)
    check_time_zone(time_zone)
    name = " ".join(display_name.split())
    if len(name) > MAX_DISPLAY_NAME:
        raise DistributorError(f"the display name is longer than {MAX_DISPLAY_NAME} characters")
    if session.scalar(select(User.id).where(User.email == key)) is not None:
        raise DistributorError(f"an account with the address {key} exists already")
    user = User(
        email=key,
        display_name=name,
        role=role,
        password_hash=hash_password(password),
        time_zone=time_zone,
        created_at=now,
    )
    session.add(user)
    session.flush()
    record_action(
        session,
        "user.created",
        f"user {user.id}",
        at=now,
        after={"role": role, "time_zone": time_zone},
    )
    return account_of(user)


def list_accounts(session: Session) -> Sequence[Account]:
    return [account_of(u) for u in session.scalars(select(User).order_by(User.email))]


def disable_user(session: Session, *, email: str, now: datetime) -> bool:
    """Disable the account: its sessions and tokens stop working at their next request.
    Returns False when it was disabled already."""
    user = get_user(session, email)
    if user.disabled_at is not None:
        return False
    user.disabled_at = now
    record_action(session, "user.disabled", f"user {user.id}", at=now, after={"disabled": True})
    session.flush()
    return True


def end_sessions(session: Session, *, user_id: int, now: datetime) -> None:
    """Log the person out of every browser: sessions begun before now stop working."""
    user = session.get(User, user_id)
    if user is not None:
        user.sessions_valid_from = now


def record_login(session: Session, user: User, *, password: str, now: datetime) -> None:
    """Note the login, and rehash a password hashed with weaker parameters than today's."""
    user.last_login_at = now
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
