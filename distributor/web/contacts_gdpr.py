"""Data protection, for admins: everything held about one person as a JSON download, and
erasing it after a confirmation (the address stays suppressed, as a hash only)."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from distributor.contacts.lookup import contact_detail
from distributor.errors import DistributorError, NotFoundError, page_words
from distributor.gdpr import export_personal_data, forget
from distributor.web.auth import Admin
from distributor.web.contacts_common import MAX_EMAIL, render_contacts
from distributor.web.sessions import flash

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)

Email = Annotated[str, Form(max_length=MAX_EMAIL)]


@router.get("/contacts/gdpr")
def gdpr_page(request: Request, caller: Admin) -> Response:
    return render_contacts(request, caller, "contacts_gdpr.html.j2", {}, tab="Data protection")


@router.post("/contacts/gdpr/export")
def export(caller: Admin, email: Email) -> Response:
    """The same as `distributor contacts export-personal-data EMAIL`: a subject access
    request's answer, downloaded."""
    with caller.session() as session:
        data = export_personal_data(session, email=email)
    log.info("personal data exported", extra={"found": data["contact"] is not None})
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n",
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="personal-data.json"'},
    )


@router.post("/contacts/gdpr/erase")
def erase_confirmation(request: Request, caller: Admin, email: Email) -> Response:
    """What erasing would remove, and the button that does it."""
    detail = None
    with caller.session() as session, contextlib.suppress(NotFoundError):
        detail = contact_detail(session, email)
    return render_contacts(
        request,
        caller,
        "contacts_erase.html.j2",
        {"email": email.strip(), "contact": detail},
        tab="Data protection",
    )


@router.post("/contacts/gdpr/erase/confirm")
def erase(request: Request, caller: Admin, email: Email) -> Response:
    """The same as `distributor contacts forget EMAIL`."""
    try:
        with caller.transaction() as session:
            report = forget(session, email=email, actor=caller.actor, now=caller.now())
    except DistributorError as exc:
        return render_contacts(
            request,
            caller,
            "contacts_gdpr.html.j2",
            {"error": page_words(exc)},
            tab="Data protection",
            status_code=422,
        )
    count = report.deliveries_stopped
    noun = "delivery" if count == 1 else "deliveries"
    stopped = f"; {count} pending {noun} stopped" if count else ""
    held = (
        "Erased everything held about that person"
        if report.had_contact
        else ("No contact held that address")
    )
    flash(request, f"{held}; the address stays suppressed, as a hash only{stopped}.")
    return RedirectResponse("/contacts/gdpr", status_code=303)
