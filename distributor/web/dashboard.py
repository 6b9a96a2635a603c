"""The press office's pages: logging in and out, the releases, and one release's sends."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import RedirectResponse, Response

from distributor.accounts.login import LoginRefusal, log_in
from distributor.accounts.passwords import MAX_PASSWORD_LENGTH
from distributor.accounts.throttle import Lockout
from distributor.accounts.users import end_sessions
from distributor.actors import SYSTEM_ACTOR
from distributor.approvals import approve_release, awaiting_sends
from distributor.errors import DistributorError, page_words
from distributor.releases.overview import release_detail, release_summaries
from distributor.states import DeliveryState
from distributor.web.auth import (
    Access,
    Approver,
    Caller,
    NotAuthenticated,
    Reader,
    authenticate,
    require_csrf,
)
from distributor.web.database import open_session, runtime_of
from distributor.web.pages import pages_of
from distributor.web.pagination import Paging, page_of
from distributor.web.params import ReleaseId
from distributor.web.problems import status_of
from distributor.web.sessions import end_login, flash, start_login

router = APIRouter(include_in_schema=False)

HOME = "/releases"
WRONG_LOGIN = "The address or the password is wrong."
DELIVERY_STATES = list(DeliveryState)


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site, never another site's address."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return HOME
    return target


@router.get("/")
def home(caller: Reader) -> Response:
    return RedirectResponse(HOME, status_code=303)


@router.get("/login")
def login_form(request: Request, next: str = "") -> Response:
    try:
        signed_in = authenticate(request) is not None
    except NotAuthenticated:  # a bad API token: this page is for people, who log in anew
        signed_in = False
    if signed_in:
        return RedirectResponse(safe_next(next), status_code=303)
    return pages_of(request).render(request, "login.html.j2", {"next": safe_next(next)})


@router.post("/login", dependencies=[Depends(require_csrf)])
def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=MAX_PASSWORD_LENGTH)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    runtime = runtime_of(request)
    now = runtime.clock.now()
    client = request.client.host if request.client else "unknown"
    with open_session(runtime, SYSTEM_ACTOR) as session, session.begin():
        result = log_in(session, email=email, password=password, client=client, now=now)
    if result.account is None:
        if result.refusal is LoginRefusal.THROTTLED and result.lockout is not None:
            message, status = _throttled(result.lockout), 429
        else:
            message, status = WRONG_LOGIN, 401
        return pages_of(request).render(
            request,
            "login.html.j2",
            {"next": safe_next(next), "error": message, "email": email},
            status_code=status,
        )
    start_login(request, user_id=result.account.id, now=now)
    return RedirectResponse(safe_next(next), status_code=303)


def _throttled(lock: Lockout) -> str:
    whose = "this account" if lock.scope == "account" else "your network address"
    return (
        f"Too many failed logins for {whose}. Try again after {lock.until:%H:%M} UTC, or ask "
        "an admin if you have forgotten your password."
    )


@router.post("/logout")
def logout(request: Request, caller: Reader) -> Response:
    with caller.transaction() as session:
        end_sessions(session, user_id=caller.account.id, now=caller.now())
    end_login(request)
    return RedirectResponse("/login", status_code=303)


@router.get("/releases")
def releases_page(request: Request, caller: Reader, paging: Paging) -> Response:
    with caller.session() as session:
        summaries = release_summaries(session)
    return pages_of(request).render(
        request,
        "releases.html.j2",
        {"releases": page_of(summaries, paging), "now": caller.now()},
        account=caller.account,
    )


@router.get("/releases/{release_id}")
def release_page(request: Request, caller: Reader, release_id: ReleaseId) -> Response:
    return _release_page(request, caller, release_id)


def _release_page(
    request: Request, caller: Caller, release_id: int, *, error: str = "", status: int = 200
) -> Response:
    with caller.session() as session:
        detail = release_detail(session, release_id)
        waiting = awaiting_sends(session, release_id)
    return pages_of(request).render(
        request,
        "release.html.j2",
        {
            "release": detail,
            "awaiting": waiting,
            "may_approve": caller.may(Access.APPROVE),
            "delivery_states": DELIVERY_STATES,
            "now": caller.now(),
            "error": error,
        },
        account=caller.account,
        status_code=status,
    )


@router.post("/releases/{release_id}/approve")
def approve(
    request: Request,
    caller: Approver,
    release_id: ReleaseId,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        with caller.transaction() as session:
            approval = approve_release(
                session, release_id=release_id, now=caller.now(), note=" ".join(note.split())
            )
    except DistributorError as exc:
        # Shown on the release's page, where the approver can see why.
        return _release_page(
            request, caller, release_id, error=page_words(exc), status=status_of(exc)
        )
    sends = ", ".join(map(str, approval.send_ids))
    flash(
        request, f"Approved version {approval.version}: send(s) {sends} will go out as scheduled."
    )
    return RedirectResponse(f"/releases/{release_id}", status_code=303)
