"""The suppression list in the API: everyone reads it, press officers add to it, and only an
admin takes an address off it, as `distributor suppressions` allows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from distributor.errors import NotFoundError
from distributor.suppression import SuppressionReason, lift_suppression, list_suppressions, suppress
from distributor.web.auth import Admin, Changer, Reader
from distributor.web.pagination import PageModel, Paging, page_model, page_of
from distributor.web.params import EmailAddress
from distributor.web.problems import PROBLEM_RESPONSES, blaming
from distributor.web.schemas_suppressions import SuppressedOut, SuppressionIn, SuppressionOut

router = APIRouter(tags=["suppressions"], responses=PROBLEM_RESPONSES)


@router.get("/suppressions")
def suppressions(
    caller: Reader,
    paging: Paging,
    reason: Annotated[SuppressionReason | None, Query(description="Only this reason.")] = None,
) -> PageModel[SuppressionOut]:
    """Every suppressed address, newest first; a forgotten person's shows as null."""
    with caller.session() as session:
        entries = list_suppressions(session, reason=reason)
    return page_model(page_of(entries, paging), SuppressionOut.model_validate)


@router.post("/suppressions")
def add(caller: Changer, given: SuppressionIn) -> SuppressedOut:
    """Never mail this address again, whatever list it is on."""
    with blaming(pointer="#/email"), caller.transaction() as session:
        added = suppress(
            session,
            email=given.email,
            reason=given.reason,
            source=f"added by {caller.actor.label}",
            note=given.note,
            now=caller.now(),
        )
    return SuppressedOut(email=given.email.strip(), added=added)


@router.delete("/suppressions/{email:path}", status_code=204)
def remove(caller: Admin, email: EmailAddress) -> None:
    """Let the address be mailed again (admins only)."""
    with caller.transaction() as session:
        removed = lift_suppression(session, email=email, actor=caller.actor)
    if not removed:
        raise NotFoundError(f"{email.strip()} is not on the suppression list")
