"""API tokens: random, shown once, stored as their SHA-256, sent as `Authorization: Bearer`.

A token is 32 random bytes; its hash needs no salt or slow function, since nobody can guess
it, and a plain hash lets a request find its token with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from distributor.accounts.users import Account, account_of, get_user
from distributor.audit import record_action
from distributor.errors import DistributorError
from distributor.models import ApiToken, User

# A prefix that says what the secret is, for people and for secret scanners.
TOKEN_PREFIX = "dist_"  # noqa: S105 - a prefix, not a secret
MAX_TOKEN_LENGTH = 200
MAX_LABEL = 100
# last_used_at is for people ("is this token still used?"): updating it on every request
# would make every API read a write.
LAST_USED_PRECISION = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token_id: int
    # The token itself: shown to its owner once, then only its hash exists.
    secret: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(
    session: Session, *, email: str, now: datetime, label: str = ""
) -> IssuedToken:
    user = get_user(session, email)
    if user.disabled_at is not None:
        raise DistributorError(f"the account {user.email} is disabled; it gets no new token")
    label = " ".join(label.split())
    if len(label) > MAX_LABEL:
        raise DistributorError(f"the token's label is longer than {MAX_LABEL} characters")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, token_hash=token_hash(secret), label=label, created_at=now)
    session.add(token)
    session.flush()
    record_action(
        session,
        "user.token_created",
        f"user {user.id}",
        at=now,
        after={"token": token.id, "label": label},
    )
    return IssuedToken(token_id=token.id, secret=secret)


def account_for_token(session: Session, token: str, *, now: datetime) -> Account | None:
    """The active account a token belongs to, or None (unknown, revoked or disabled)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        return None
    found = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(
            ApiToken.token_hash == token_hash(token),
            ApiToken.revoked_at.is_(None),
            User.disabled_at.is_(None),
        )
    ).first()
    if found is None:
        return None
    api_token, user = found
    if api_token.last_used_at is None or now - api_token.last_used_at > LAST_USED_PRECISION:
        api_token.last_used_at = now
    return account_of(user)
