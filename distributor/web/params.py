"""Parameters every route reads the same way."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from distributor.web.contacts_common import MAX_EMAIL, MAX_NAME

# Ids are INTEGER columns: 32-bit on PostgreSQL. A larger number names no record, and the
# database would refuse to compare it, so it is refused here, naming the parameter.
MAX_ID = 2**31 - 1

ReleaseId = Annotated[int, Path(ge=1, le=MAX_ID, description="The release's id.")]
SendId = Annotated[int, Path(ge=1, le=MAX_ID, description="The send's id.")]
# Names and addresses are read to the end of the path (routes declare them `{name:path}`),
# so that one holding a slash, sent as %2F, is still found.
ListName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_NAME,
        description="The media list's name.",
        examples=["Newsdesks"],
    ),
]
SegmentName = Annotated[
    str,
    Path(min_length=1, max_length=MAX_NAME, description="The segment's name.", examples=["Crime"]),
]
EmailAddress = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_EMAIL,
        description="The email address.",
        examples=["ann@news.example.com"],
    ),
]
