"""Who is calling: a browser session or an API token, and what their role lets them do.

Every route that is not public depends on `caller_for(access)`. It refuses an anonymous
caller (pages send them to the login form, the API answers 401), a form or API change made
with the session cookie but without the session's CSRF token (403), and a role that the
access level leaves out (403), before the route does anything.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from distributor.accounts.tokens import account_for_token
from distributor.accounts.users import Account, account_of
from distributor.actors import SYSTEM_ACTOR, Actor, Role
from distributor.models import User
from distributor.runtime import Runtime
from distributor.web.database import open_session, runtime_of
from distributor.web.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    SAFE_METHODS,
    csrf_matches,
    current_login,
    end_login,
)

Via = Literal["session", "token"]
CSRF_REFUSAL = (
    "this form has expired or did not come from this site (its security token is missing "
    "or wrong); go back, reload the page and try again"
)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class Access(enum.Enum):
    """What a route does, and so which roles may call it."""

    READ = frozenset({Role.VIEWER, Role.PRESS_OFFICER, Role.APPROVER, Role.ADMIN})
    CHANGE = frozenset({Role.PRESS_OFFICER, Role.APPROVER, Role.ADMIN})
    APPROVE = frozenset({Role.APPROVER, Role.ADMIN})
    ADMIN = frozenset({Role.ADMIN})

    @property
    def roles(self) -> frozenset[Role]:
        return self.value

    @property
    def who(self) -> str:
        return {
            Access.READ: "a logged-in person",
            Access.CHANGE: "a press officer, an approver or an admin",
            Access.APPROVE: "an approver or an admin",
            Access.ADMIN: "an admin",
        }[self]


class NotAuthenticated(Exception):
    """No one is logged in, or the API token given is not valid."""

    def __init__(self, reason: str = "log in first") -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Caller:
    """The logged-in person a request comes from, with sessions acting in their name."""

    account: Account
    runtime: Runtime
    via: Via

    @property
    def actor(self) -> Actor:
        return self.account.actor

    def now(self) -> datetime:
        return self.runtime.clock.now()

    def session(self) -> Session:
        return open_session(self.runtime, self.actor)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction, committed when the block ends without an error."""
        with self.session() as session, session.begin():
            yield session

    def may(self, access: Access) -> bool:
        return self.account.role in access.roles


def authenticate(request: Request) -> tuple[Account, Via] | None:
    """The account behind a bearer token or the session cookie; None when there is none.

    A bearer token that is not valid is refused rather than ignored, so that a script with a
    revoked token is told so instead of being treated as anonymous.
    """
    runtime = runtime_of(request)
    now = runtime.clock.now()
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("send the API token as `Authorization: Bearer TOKEN`")
        with open_session(runtime, SYSTEM_ACTOR) as session, session.begin():
            account = account_for_token(session, token.strip(), now=now)
        if account is None:
            raise NotAuthenticated(
                "the API token is not valid: it was revoked, its account is disabled, or it "
                "was mistyped; an admin creates a new one with `distributor users token`"
            )
        return account, "token"
    login = current_login(request, now=now)
    if login is None:
        return None
    with open_session(runtime, SYSTEM_ACTOR) as session:
        user = session.get(User, login.user_id)
        account = account_of(user) if user is not None else None
    if account is None or not account.accepts_session_from(login.since):
        end_login(request)
        return None
    return account, "session"


async def presented_csrf(request: Request) -> str:
    """The CSRF token a change came with: the X-CSRF-Token header, else the form field."""
    if request.method in SAFE_METHODS:
        return ""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.headers.get("content-type", "").startswith(FORM_TYPES):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


PresentedCsrf = Annotated[str, Depends(presented_csrf)]


def require_csrf(request: Request, presented: PresentedCsrf) -> None:
    """For forms anyone may send (the login form): the token of the browser's session."""
    if not csrf_matches(request, presented):
        raise HTTPException(status_code=403, detail=CSRF_REFUSAL)


def caller_for(access: Access) -> Callable[[Request, str], Caller]:
    def dependency(request: Request, presented: PresentedCsrf) -> Caller:
        found = authenticate(request)
        if found is None:
            raise NotAuthenticated()
        account, via = found
        changing = request.method not in SAFE_METHODS
        if changing and via == "session" and not csrf_matches(request, presented):
            raise HTTPException(status_code=403, detail=CSRF_REFUSAL)
        if account.role not in access.roles:
            raise HTTPException(
                status_code=403,
                detail=f"{account.email} is {_role_words(account.role)}, and only "
                f"{access.who} may do this",
            )
        return Caller(account=account, runtime=runtime_of(request), via=via)

    return dependency


def _role_words(role: Role) -> str:
    words = role.value.replace("_", " ")
    return f"an {words}" if words[0] in "aeiou" else f"a {words}"


Reader = Annotated[Caller, Depends(caller_for(Access.READ))]
Changer = Annotated[Caller, Depends(caller_for(Access.CHANGE))]
Approver = Annotated[Caller, Depends(caller_for(Access.APPROVE))]
Admin = Annotated[Caller, Depends(caller_for(Access.ADMIN))]
