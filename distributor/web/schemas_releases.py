"""A release's text as the API takes it, to create a draft or to edit one, and the draft it
makes. The core checks it (`distributor.releases`); these models only give it its shape."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import Field

from distributor.releases.draft import (
    MAX_TEXT_CHARACTERS,
    BodyFormat,
    Link,
    PressContact,
    Quote,
    ReleaseDraft,
)
from distributor.web.schemas import InputModel, ReleaseDetailOut

# Far past any headline, dateline or name: the core says how long each may be.
MAX_LINE = 2_000
MAX_ITEMS = 100

EMPTY_DRAFT = ReleaseDraft(headline="", dateline="", body="", notes_to_editors="")


class QuoteIn(InputModel):
    text: str = Field(max_length=MAX_TEXT_CHARACTERS)
    name: str = Field(max_length=MAX_LINE, description="Who said it.")
    role: str = Field("", max_length=MAX_LINE, description='e.g. "Chief Executive, SafeLives".')


class PressContactIn(InputModel):
    name: str = Field(max_length=MAX_LINE)
    role: str = Field("", max_length=MAX_LINE)
    email: str = Field("", max_length=MAX_LINE)
    phone: str = Field("", max_length=MAX_LINE)


class LinkIn(InputModel):
    label: str = Field(max_length=MAX_LINE)
    url: str = Field(max_length=MAX_LINE, description="An https://, http:// or mailto: address.")


class ReleaseChangesIn(InputModel):
    """The fields to change; those left out keep their value. Images and attachments are
    kept as they are."""

    headline: str = Field("", max_length=MAX_LINE)
    dateline: str = Field("", max_length=MAX_LINE)
    standfirst: str = Field("", max_length=MAX_LINE)
    body: str = Field("", max_length=MAX_TEXT_CHARACTERS)
    body_format: BodyFormat = BodyFormat.TEXT
    notes_to_editors: str = Field("", max_length=MAX_TEXT_CHARACTERS)
    boilerplate: str = Field(
        "",
        max_length=MAX_TEXT_CHARACTERS,
        description="The release's own About text, in Markdown; empty takes the organisation's.",
    )
    organisation: str = Field(
        "", max_length=MAX_LINE, description="A stored organisation's name; empty for none."
    )
    template: str = Field("release", max_length=MAX_LINE)
    quotes: list[QuoteIn] = Field([], max_length=MAX_ITEMS)
    press_contacts: list[PressContactIn] = Field([], max_length=MAX_ITEMS)
    links: list[LinkIn] = Field([], max_length=MAX_ITEMS)


class ReleaseIn(ReleaseChangesIn):
    """A new release's text: a headline and a body at least."""

    headline: str = Field(max_length=MAX_LINE, examples=["Charity opens three new refuges"])
    body: str = Field(
        max_length=MAX_TEXT_CHARACTERS,
        description="Paragraphs separated by blank lines, or Markdown (see body_format).",
        examples=["The charity today opened three new refuges."],
    )


class SavedReleaseOut(ReleaseDetailOut):
    warnings: list[str] = Field(
        description="What the release may want changing, though it was saved (e.g. a "
        "picture without a caption, words spam filters dislike)."
    )


def _draft_values(given: ReleaseChangesIn, *, only_given: bool) -> dict[str, Any]:
    values = given.model_dump(exclude_unset=only_given)
    kinds: dict[str, type[Any]] = {"quotes": Quote, "press_contacts": PressContact, "links": Link}
    for name, kind in kinds.items():
        if name in values:
            values[name] = tuple(kind(**item) for item in values[name])
    return values


def new_draft(given: ReleaseIn) -> ReleaseDraft:
    return replace(EMPTY_DRAFT, **_draft_values(given, only_given=False))


def changed_draft(stored: ReleaseDraft, changes: ReleaseChangesIn) -> ReleaseDraft:
    return replace(stored, **_draft_values(changes, only_given=True))
