"""Logging in with an address and a password, under the throttle."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from distributor.accounts.passwords import password_matches
from distributor.accounts.throttle import Lockout, forget_failures, lockout, record_failure
from distributor.accounts.users import Account, account_of, find_user, record_login


class LoginRefusal(enum.Enum):
    # One answer for a wrong address, a wrong password and a disabled account, so that the
    # login form does not tell a guesser which addresses have accounts.
    WRONG = "wrong"
    THROTTLED = "throttled"


@dataclass(frozen=True, slots=True)
class LoginResult:
    account: Account | None
    refusal: LoginRefusal | None = None
    lockout: Lockout | None = None


def log_in(
    session: Session, *, email: str, password: str, client: str, now: datetime
) -> LoginResult:
    """Check the password unless the account or the client address is locked out.

    The caller commits: a failure is recorded even though the login is refused.
    """
    locked = lockout(session, account=email, client=client, now=now)
    if locked is not None:
        return LoginResult(account=None, refusal=LoginRefusal.THROTTLED, lockout=locked)
    user = find_user(session, email)
    # A disabled account's password is still checked (against nothing), so that refusing
    # it takes as long as refusing a wrong password.
    stored = user.password_hash if user is not None and user.disabled_at is None else None
    if user is None or not password_matches(stored, password):
        record_failure(session, account=email, client=client, now=now)
        return LoginResult(account=None, refusal=LoginRefusal.WRONG)
    record_login(session, user, password=password, now=now)
    forget_failures(session, account=email)
    return LoginResult(account=account_of(user))
