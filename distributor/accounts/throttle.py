"""Login throttling: failed logins counted per account and per client address, in the
database so that every web process (and a restart) sees the same counts.

An account is locked after ACCOUNT_FAILURES failures in WINDOW, whoever made them: that
stops a guesser spread over many addresses. A client address is locked after
CLIENT_FAILURES, whatever accounts it tried: that stops one guesser going down a list of
accounts. The address limit is higher because a whole office may share one address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from distributor.models import LoginFailure

WINDOW = timedelta(minutes=15)
ACCOUNT_FAILURES = 5
CLIENT_FAILURES = 20
MAX_CLIENT = 64
MAX_ACCOUNT = 320


@dataclass(frozen=True, slots=True)
class Lockout:
    # "account" or "address"
    scope: str
    until: datetime


def _tidy(account: str, client: str) -> tuple[str, str]:
    return account.strip().lower()[:MAX_ACCOUNT], client[:MAX_CLIENT]


def lockout(session: Session, *, account: str, client: str, now: datetime) -> Lockout | None:
    """The lock on this attempt, if the account or the client address has failed too often."""
    account, client = _tidy(account, client)
    since = now - WINDOW
    for scope, column, value, limit in (
        ("account", LoginFailure.account, account, ACCOUNT_FAILURES),
        ("address", LoginFailure.client, client, CLIENT_FAILURES),
    ):
        count, oldest_counted = session.execute(
            select(func.count(), func.min(LoginFailure.at)).where(
                column == value, LoginFailure.at > since
            )
        ).one()
        if count >= limit:
            # The lock lifts when enough of the failures have left the window; the oldest
            # leaving first is a fair, simple estimate to tell the person.
            return Lockout(scope=scope, until=oldest_counted + WINDOW)
    return None


def record_failure(session: Session, *, account: str, client: str, now: datetime) -> None:
    account, client = _tidy(account, client)
    session.execute(delete(LoginFailure).where(LoginFailure.at <= now - WINDOW))
    session.add(LoginFailure(at=now, account=account, client=client))
    session.flush()


def forget_failures(session: Session, *, account: str) -> None:
    """After a successful login the account's own count starts again; the address's does
    not, so that one good password does not reset a guesser's count on other accounts."""
    account, _ = _tidy(account, "")
    session.execute(delete(LoginFailure).where(LoginFailure.account == account))
