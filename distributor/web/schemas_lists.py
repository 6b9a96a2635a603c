"""Media lists as the API reads and changes them."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from distributor.lists import MAX_LIST_NAME_LENGTH
from distributor.web.contacts_common import MAX_EMAIL, MAX_FILTER
from distributor.web.schemas import InputModel

# Far more addresses than a change by hand, and few enough for one request.
MAX_ADDRESSES = 10_000

Address = Annotated[str, Field(max_length=MAX_EMAIL, examples=["ann@news.example.com"])]


class ListOut(BaseModel):
    name: str
    contacts: int = Field(description="How many contacts are on the list.")


class NewListIn(InputModel):
    name: str = Field(
        max_length=MAX_LIST_NAME_LENGTH,
        description="The new list's name.",
        examples=["Crime and policing"],
    )


class MemberOut(BaseModel):
    email: str
    name: str


class MembersIn(InputModel):
    """Contacts to put on the list: by address, and/or every contact a filter matches now."""

    emails: list[Address] = Field(
        default=[], max_length=MAX_ADDRESSES, description="Addresses of contacts already held."
    )
    matching: str = Field(
        default="",
        max_length=MAX_FILTER,
        description='A filter, e.g. beat = "crime": every contact it matches now is added.',
    )


class MembersOutIn(InputModel):
    emails: list[Address] = Field(
        min_length=1, max_length=MAX_ADDRESSES, description="Addresses to take off the list."
    )


class MembersAddedOut(BaseModel):
    list: str
    added: int = Field(description="How many were not on the list before.")


class MembersRemovedOut(BaseModel):
    list: str
    removed: int = Field(description="How many were on the list and are no longer.")
