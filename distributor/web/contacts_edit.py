"""Editing one contact (press officers and above): its address, name, outlet, role, beats,
the vetted flag and the lists it is on, checked as `distributor contacts edit` checks them.
A refused edit shows the form again as typed, each problem beside its field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from distributor.contacts.editing import ContactEdit, ContactEditRefusedError, edit_contact
from distributor.contacts.lookup import contact_detail
from distributor.contacts.records import (
    MAX_EMAIL_LENGTH,
    MAX_NAME_LENGTH,
    MAX_OUTLET_LENGTH,
    MAX_ROLE_LENGTH,
)
from distributor.errors import DistributorError, page_words
from distributor.lists import ListChanges, list_sizes, set_contact_lists
from distributor.web.auth import Caller, Changer
from distributor.web.contacts_common import MAX_EMAIL, MAX_NAME, render_contacts
from distributor.web.problems import status_of
from distributor.web.sessions import flash

router = APIRouter(include_in_schema=False)

# The fields of the form, in the core's names, as `contacts edit --set FIELD=VALUE` sets them.
TEXT_FIELDS = ("email", "name", "outlet", "role", "beats")
# Far above any column's width, so that the core, not the form, says what is too long.
MAX_FIELD = 4_000
BEAT_SEPARATOR = "; "

Text = Annotated[str, Form(max_length=MAX_FIELD)]


def edit_url(email: str) -> str:
    return "/contacts/edit?" + urlencode({"email": email})


def detail_url(email: str) -> str:
    return "/contacts/detail?" + urlencode({"email": email})


@dataclass
class ContactForm:
    """The form as shown or as typed, and what is wrong with it."""

    contact: str  # the address the contact had when the form was opened
    email: str = ""
    name: str = ""
    outlet: str = ""
    role: str = ""
    beats: str = ""
    embargo_vetted: bool = False
    lists: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    error: str = ""

    def assignments(self) -> list[tuple[str, str]]:
        typed = [(name, getattr(self, name)) for name in TEXT_FIELDS]
        return [*typed, ("embargo_vetted", "yes" if self.embargo_vetted else "no")]


def _stored_form(caller: Caller, email: str) -> ContactForm:
    with caller.session() as session:
        detail = contact_detail(session, email, deliveries_shown=0)
    return ContactForm(
        contact=detail.email,
        email=detail.email,
        name=detail.name,
        outlet=detail.outlet.name if detail.outlet else "",
        role=detail.role,
        beats=BEAT_SEPARATOR.join(detail.beats),
        embargo_vetted=detail.embargo_vetted,
        lists=detail.lists,
    )


def _edit_page(
    request: Request, caller: Caller, form: ContactForm, *, status: int = 200
) -> Response:
    with caller.session() as session:
        all_lists = [name for name, _ in list_sizes(session)]
    return render_contacts(
        request,
        caller,
        "contacts_edit.html.j2",
        {
            "form": form,
            # A list chosen on the form and deleted meanwhile still shows, ticked.
            "all_lists": sorted(set(all_lists) | set(form.lists)),
            "limits": {
                "email": MAX_EMAIL_LENGTH,
                "name": MAX_NAME_LENGTH,
                "outlet": MAX_OUTLET_LENGTH,
                "role": MAX_ROLE_LENGTH,
            },
            "detail_url": detail_url(form.contact),
        },
        tab="Contacts",
        status_code=status,
    )


@router.get("/contacts/edit")
def edit_form(
    request: Request, caller: Changer, email: Annotated[str, Query(max_length=MAX_EMAIL)]
) -> Response:
    return _edit_page(request, caller, _stored_form(caller, email))


@router.post("/contacts/edit")
def save(
    request: Request,
    caller: Changer,
    contact: Annotated[str, Form(max_length=MAX_EMAIL)],
    email: Text = "",
    name: Text = "",
    outlet: Text = "",
    role: Text = "",
    beats: Text = "",
    embargo_vetted: Annotated[bool, Form()] = False,
    lists: Annotated[list[str], Form(max_length=MAX_NAME)] = [],  # noqa: B006 - FastAPI copies it
    lists_shown: Annotated[list[str], Form(max_length=MAX_NAME)] = [],  # noqa: B006
) -> Response:
    """The same as `distributor contacts edit EMAIL --set FIELD=VALUE ...`, and putting the
    contact on the ticked lists (`distributor lists add`) and off the others
    (`distributor lists remove`), all at once or not at all."""
    form = ContactForm(
        contact=contact,
        email=email,
        name=name,
        outlet=outlet,
        role=role,
        beats=beats,
        embargo_vetted=embargo_vetted,
        lists=list(dict.fromkeys(lists)),
    )
    try:
        with caller.transaction() as session:
            edited = edit_contact(
                session, email=contact, assignments=form.assignments(), now=caller.now()
            )
            moved = set_contact_lists(session, edited.email, form.lists, among=lists_shown)
    except ContactEditRefusedError as exc:
        form.errors = exc.problems
        form.error = "" if exc.problems else page_words(exc)
        return _edit_page(request, caller, form, status=status_of(exc))
    except DistributorError as exc:
        form.error = page_words(exc)
        return _edit_page(request, caller, form, status=status_of(exc))
    flash(request, saved_message(edited, moved))
    return RedirectResponse(detail_url(edited.email), status_code=303)


def saved_message(edited: ContactEdit, moved: ListChanges) -> str:
    """What the edit did, in a sentence or two."""
    parts = []
    if edited.changes:
        changed = [change.field.replace("_", " ") for change in edited.changes]
        parts.append(f"Changed the {_listed(changed)} of {edited.email}.")
    if moved.added_to:
        parts.append(f"Put on {_listed([f'“{n}”' for n in moved.added_to])}.")
    if moved.taken_off:
        parts.append(f"Taken off {_listed([f'“{n}”' for n in moved.taken_off])}.")
    if not parts:
        return f"Nothing changed: {edited.email} already had these values."
    if edited.created_outlet:
        parts.append(f"The outlet “{edited.created_outlet}” is new.")
    parts.extend(f"Note: {page_words(notice)}." for notice in edited.notices)
    return " ".join(parts)


def _listed(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
