"""The suppression list: everyone reads it, press officers add to it, and only an admin
takes an address off it (after a confirmation), as on the command line."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from distributor.errors import DistributorError, page_words
from distributor.suppression import (
    SuppressionReason,
    is_suppressed,
    lift_suppression,
    list_suppressions,
    suppress,
)
from distributor.web.auth import Admin, Caller, Changer, Reader
from distributor.web.contacts_common import MAX_EMAIL, MAX_NAME, render_contacts
from distributor.web.pagination import Pagination, Paging, page_of
from distributor.web.problems import status_of
from distributor.web.sessions import flash

router = APIRouter(include_in_schema=False)

HOME = "/contacts/suppressions"
Email = Annotated[str, Form(max_length=MAX_EMAIL)]


def _page(
    request: Request,
    caller: Caller,
    paging: Pagination,
    reason: SuppressionReason | None = None,
    *,
    error: str = "",
    status: int = 200,
    email: str = "",
) -> Response:
    with caller.session() as session:
        entries = list_suppressions(session, reason=reason)
    return render_contacts(
        request,
        caller,
        "contacts_suppressions.html.j2",
        {
            "entries": page_of(entries, paging),
            "reason": reason.value if reason else "",
            "reasons": list(SuppressionReason),
            "error": error,
            "email": email,
        },
        tab="Suppressions",
        status_code=status,
    )


@router.get("/contacts/suppressions")
def suppressions_page(
    request: Request,
    caller: Reader,
    paging: Paging,
    reason: Annotated[SuppressionReason | None, Query()] = None,
) -> Response:
    return _page(request, caller, paging, reason)


@router.post("/contacts/suppressions")
def add(
    request: Request,
    caller: Changer,
    email: Email,
    note: Annotated[str, Form(max_length=MAX_NAME)] = "",
) -> Response:
    """The same as `distributor suppressions add EMAIL --note NOTE`."""
    try:
        with caller.transaction() as session:
            added = suppress(
                session,
                email=email,
                reason=SuppressionReason.DO_NOT_CONTACT,
                source=f"added by {caller.actor.label}",
                note=note,
                now=caller.now(),
            )
    except DistributorError as exc:
        first = Pagination(page=1, per_page=25)
        return _page(
            request, caller, first, error=page_words(exc), status=status_of(exc), email=email
        )
    shown = email.strip()
    flash(request, f"Suppressed {shown}." if added else f"{shown} was suppressed already.")
    return RedirectResponse(HOME, status_code=303)


@router.get("/contacts/suppressions/remove")
def remove_confirmation(
    request: Request, caller: Admin, email: Annotated[str, Query(max_length=MAX_EMAIL)]
) -> Response:
    with caller.session() as session:
        on_list = is_suppressed(session, email)
    return render_contacts(
        request,
        caller,
        "contacts_unsuppress.html.j2",
        {"email": email.strip(), "on_list": on_list},
        tab="Suppressions",
    )


@router.post("/contacts/suppressions/remove")
def remove(request: Request, caller: Admin, email: Email) -> Response:
    """The same as `distributor suppressions remove EMAIL` (admins only)."""
    with caller.transaction() as session:
        removed = lift_suppression(session, email=email, actor=caller.actor)
    shown = email.strip()
    flash(request, f"{shown} may be mailed again." if removed else f"{shown} was not suppressed.")
    return RedirectResponse(HOME, status_code=303)
