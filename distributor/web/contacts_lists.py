"""Media lists: every list with its size, one list's members, and putting contacts on a
list or taking them off, and deleting a list after a confirmation (press officers and
above)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from distributor.errors import DistributorError, NotFoundError, page_words
from distributor.lists import (
    add_matching_to_list,
    add_to_list,
    check_list_deletable,
    create_list,
    delete_list,
    list_members,
    list_size,
    list_sizes,
    remove_from_list,
)
from distributor.web.auth import Caller, Changer, Reader
from distributor.web.contacts_common import (
    MAX_ADDRESSES_TEXT,
    MAX_EMAIL,
    MAX_FILTER,
    MAX_NAME,
    addresses_in,
    render_contacts,
)
from distributor.web.pagination import Pagination, Paging, page_of
from distributor.web.problems import status_of
from distributor.web.sessions import flash

router = APIRouter(include_in_schema=False)

ListName = Annotated[str, Form(max_length=MAX_NAME)]


def list_url(name: str) -> str:
    return "/contacts/list?" + urlencode({"name": name})


def _lists_page(
    request: Request, caller: Caller, *, error: str = "", status: int = 200, name: str = ""
) -> Response:
    with caller.session() as session:
        sizes = list_sizes(session)
    return render_contacts(
        request,
        caller,
        "contacts_lists.html.j2",
        {"lists": sizes, "error": error, "new_name": name, "list_url": list_url},
        tab="Lists",
        status_code=status,
    )


@router.get("/contacts/lists")
def lists_page(request: Request, caller: Reader) -> Response:
    return _lists_page(request, caller)


@router.post("/contacts/lists")
def create(request: Request, caller: Changer, name: ListName) -> Response:
    try:
        with caller.transaction() as session:
            created = create_list(session, name, now=caller.now())
            created_name = created.name
    except DistributorError as exc:
        return _lists_page(request, caller, error=page_words(exc), status=status_of(exc), name=name)
    flash(request, f"Created the list “{created_name}”.")
    return RedirectResponse(list_url(created_name), status_code=303)


def _list_page(
    request: Request,
    caller: Caller,
    name: str,
    paging_page: int = 1,
    per_page: int = 50,
    *,
    error: str = "",
    status: int = 200,
    addresses: str = "",
    matching: str = "",
) -> Response:
    with caller.session() as session:
        members = list_members(session, name)
    return render_contacts(
        request,
        caller,
        "contacts_list.html.j2",
        {
            "name": name,
            "members": page_of(members, Pagination(page=paging_page, per_page=per_page)),
            "error": error,
            "addresses": addresses,
            "matching": matching,
        },
        tab="Lists",
        status_code=status,
    )


@router.get("/contacts/list")
def list_page(
    request: Request,
    caller: Reader,
    paging: Paging,
    name: Annotated[str, Query(max_length=MAX_NAME)],
) -> Response:
    return _list_page(request, caller, name, paging.page, paging.per_page)


@router.post("/contacts/list/add")
def add(
    request: Request,
    caller: Changer,
    name: ListName,
    addresses: Annotated[str, Form(max_length=MAX_ADDRESSES_TEXT)] = "",
    matching: Annotated[str, Form(max_length=MAX_FILTER)] = "",
) -> Response:
    """Put contacts on the list by address, or every contact a filter matches now."""
    emails = addresses_in(addresses)
    if not emails and not matching.strip():
        return _list_page(
            request,
            caller,
            name,
            error="give the addresses to add, or a filter",
            status=422,
        )
    try:
        with caller.transaction() as session:
            added = add_to_list(session, name, emails) if emails else 0
            if matching.strip():
                added += add_matching_to_list(session, name, matching)
    except DistributorError as exc:
        return _list_page(
            request,
            caller,
            name,
            error=page_words(exc),
            status=status_of(exc),
            addresses=addresses,
            matching=matching,
        )
    flash(request, f"Added {added} contact{'s' if added != 1 else ''} to “{name}”.")
    return RedirectResponse(list_url(name), status_code=303)


@router.post("/contacts/list/remove")
def remove(
    request: Request,
    caller: Changer,
    name: ListName,
    email: Annotated[list[str], Form(max_length=MAX_EMAIL)] = [],  # noqa: B006 - FastAPI copies it
) -> Response:
    """Take the ticked members off the list; they stay in the database."""
    emails = [address for address in email if address.strip()]
    if not emails:
        return _list_page(request, caller, name, error="tick the contacts to take off", status=422)
    with caller.transaction() as session:
        removed = remove_from_list(session, name, emails)
    flash(request, f"Took {removed} contact{'s' if removed != 1 else ''} off “{name}”.")
    return RedirectResponse(list_url(name), status_code=303)


def _delete_page(
    request: Request, caller: Caller, name: str, *, error: str = "", status: int = 200
) -> Response:
    """What deleting the list would do, or why it is kept."""
    refusal = error
    with caller.session() as session:
        try:
            members = list_size(session, check_list_deletable(session, name))
        except DistributorError as exc:
            members, refusal = None, page_words(exc)
            status = status_of(exc) if isinstance(exc, NotFoundError) else status
    return render_contacts(
        request,
        caller,
        "contacts_delete.html.j2",
        {
            "kind": "list",
            "name": name,
            "members": members,
            "refusal": refusal,
            "action": "/contacts/list/delete",
            "back": list_url(name),
        },
        tab="Lists",
        status_code=status,
    )


@router.get("/contacts/list/delete")
def delete_confirmation(
    request: Request, caller: Changer, name: Annotated[str, Query(max_length=MAX_NAME)]
) -> Response:
    return _delete_page(request, caller, name)


@router.post("/contacts/list/delete")
def delete(request: Request, caller: Changer, name: ListName) -> Response:
    """The same as `distributor lists delete NAME`: the list goes, its contacts stay."""
    try:
        with caller.transaction() as session:
            delete_list(session, name)
    except DistributorError as exc:
        return _delete_page(request, caller, name, error=page_words(exc), status=status_of(exc))
    flash(request, f"Deleted the list “{name}”; its contacts stay in the database.")
    return RedirectResponse("/contacts/lists", status_code=303)
