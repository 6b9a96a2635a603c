"""Media lists in the API: every list with its size, one list's members, create and delete
lists, and put contacts on a list or take them off, as `distributor lists` does."""

from __future__ import annotations

from fastapi import APIRouter

from distributor.lists import (
    add_matching_to_list,
    add_to_list,
    create_list,
    delete_list,
    get_lists,
    list_members,
    list_sizes,
    remove_from_list,
)
from distributor.web.auth import Changer, Reader
from distributor.web.pagination import PageModel, Paging, page_model, page_of
from distributor.web.params import ListName
from distributor.web.problems import PROBLEM_RESPONSES, blaming, refusal
from distributor.web.schemas_lists import (
    ListOut,
    MemberOut,
    MembersAddedOut,
    MembersIn,
    MembersOutIn,
    MembersRemovedOut,
    NewListIn,
)

router = APIRouter(tags=["lists"], responses=PROBLEM_RESPONSES)


@router.get("/lists")
def lists(caller: Reader, paging: Paging) -> PageModel[ListOut]:
    """Every media list, by name, with how many contacts are on it."""
    with caller.session() as session:
        sizes = list_sizes(session)
    return page_model(page_of(sizes, paging), lambda s: ListOut(name=s[0], contacts=s[1]))


@router.post("/lists", status_code=201)
def create(caller: Changer, given: NewListIn) -> ListOut:
    """Create an empty media list."""
    with blaming(pointer="#/name"), caller.transaction() as session:
        created = create_list(session, given.name, now=caller.now())
        name = created.name
    return ListOut(name=name, contacts=0)


@router.get("/lists/{name:path}/members")
def members(caller: Reader, name: ListName, paging: Paging) -> PageModel[MemberOut]:
    """Everyone on the list, in address order."""
    with caller.session() as session:
        people = list_members(session, name)
    return page_model(page_of(people, paging), lambda p: MemberOut(email=p[0], name=p[1]))


@router.post("/lists/{name:path}/members")
def add_members(caller: Changer, name: ListName, given: MembersIn) -> MembersAddedOut:
    """Put contacts on the list: by address (each must be a contact already), and every
    contact a filter matches now."""
    emails = [e for e in given.emails if e.strip()]
    if not emails and not given.matching.strip():
        raise refusal(
            422, "give the addresses to add in `emails`, or a filter in `matching`", pointer="#"
        )
    added = 0
    with caller.transaction() as session:
        get_lists(session, [name])  # a list that does not exist is the address's fault: 404
        if emails:
            with blaming(pointer="#/emails"):
                added += add_to_list(session, name, emails)
        if given.matching.strip():
            with blaming(pointer="#/matching"):
                added += add_matching_to_list(session, name, given.matching)
    return MembersAddedOut(list=name, added=added)


@router.post("/lists/{name:path}/members/remove")
def remove_members(caller: Changer, name: ListName, given: MembersOutIn) -> MembersRemovedOut:
    """Take contacts off the list; they stay in the database."""
    with caller.transaction() as session:
        removed = remove_from_list(session, name, given.emails)
    return MembersRemovedOut(list=name, removed=removed)


@router.delete("/lists/{name:path}", status_code=204)
def delete(caller: Changer, name: ListName) -> None:
    """Delete a list that no send went to; its contacts stay."""
    with caller.transaction() as session:
        delete_list(session, name)
