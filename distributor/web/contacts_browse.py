"""Browsing and searching contacts and outlets, and one contact in full."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from distributor.contacts.lookup import FoundContact, contact_detail, search_contacts
from distributor.contacts.outlets import find_outlets
from distributor.errors import DistributorError, page_words
from distributor.segments.syntax import Condition, Operator, render
from distributor.web.auth import Reader
from distributor.web.contacts_common import MAX_EMAIL, MAX_FILTER, MAX_NAME, render_contacts
from distributor.web.pagination import Paging, Slice
from distributor.web.problems import status_of

router = APIRouter(include_in_schema=False)


@router.get("/contacts")
def contacts_page(
    request: Request,
    caller: Reader,
    paging: Paging,
    q: Annotated[str, Query(max_length=MAX_NAME)] = "",
    matching: Annotated[str, Query(max_length=MAX_FILTER)] = "",
) -> Response:
    error, status = "", 200
    found: Slice[FoundContact] = Slice(
        items=[], page=paging.page, per_page=paging.per_page, total=0
    )
    with caller.session() as session:
        try:
            result = search_contacts(
                session,
                text=q.strip() or None,
                matching=matching.strip() or None,
                everyone=True,
                per_page=paging.per_page,
                page=paging.page,
            )
            found = Slice(
                items=result.contacts,
                page=paging.page,
                per_page=paging.per_page,
                total=result.total,
            )
        except DistributorError as exc:
            error, status = page_words(exc), status_of(exc)
    return render_contacts(
        request,
        caller,
        "contacts.html.j2",
        {"found": found, "q": q, "matching": matching, "error": error},
        tab="Contacts",
        status_code=status,
    )


@router.get("/contacts/detail")
def contact_page(
    request: Request, caller: Reader, email: Annotated[str, Query(max_length=MAX_EMAIL)]
) -> Response:
    with caller.session() as session:
        detail = contact_detail(session, email)
    return render_contacts(
        request, caller, "contacts_detail.html.j2", {"contact": detail}, tab="Contacts"
    )


def outlet_filter(name: str) -> str:
    """The filter that finds an outlet's journalists, its name quoted as the language wants."""
    return render(Condition("outlet", Operator.EQUALS, (name,)))


@router.get("/contacts/outlets")
def outlets_page(
    request: Request,
    caller: Reader,
    paging: Paging,
    q: Annotated[str, Query(max_length=MAX_NAME)] = "",
) -> Response:
    with caller.session() as session:
        found = find_outlets(session, text=q, offset=paging.offset, limit=paging.per_page)
    return render_contacts(
        request,
        caller,
        "contacts_outlets.html.j2",
        {
            "found": Slice(
                items=found.outlets,
                page=paging.page,
                per_page=paging.per_page,
                total=found.total,
            ),
            "q": q,
            "outlet_filter": outlet_filter,
        },
        tab="Outlets",
    )
