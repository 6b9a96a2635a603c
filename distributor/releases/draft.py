"""A release as written, before it is stored: plain data, checked by `validate_draft`."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

from distributor.errors import DistributorError
from distributor.visible_text import HiddenCharacterError, check_visible


class BodyFormat(enum.StrEnum):
    TEXT = "text"  # plain paragraphs separated by blank lines, as pasted from a document
    MARKDOWN = "markdown"  # Markdown, turned into sanitised HTML


@dataclass(frozen=True, slots=True)
class Quote:
    text: str
    name: str  # who said it
    role: str = ""  # e.g. "Chief Executive, SafeLives"


@dataclass(frozen=True, slots=True)
class PressContact:
    name: str
    role: str = ""
    email: str = ""
    phone: str = ""


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True, slots=True)
class ImageFile:
    """A picture shown in the email (by Content-ID), with the text read out in its place."""

    filename: str
    content_type: str
    data: bytes
    alt: str
    caption: str = ""


@dataclass(frozen=True, slots=True)
class AttachmentFile:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ReleaseDraft:
    headline: str
    dateline: str
    body: str
    notes_to_editors: str
    body_format: BodyFormat = BodyFormat.TEXT
    standfirst: str = ""
    quotes: tuple[Quote, ...] = ()
    press_contacts: tuple[PressContact, ...] = ()
    # "About ..." in Markdown; empty takes the organisation's.
    boilerplate: str = ""
    images: tuple[ImageFile, ...] = ()
    attachments: tuple[AttachmentFile, ...] = ()
    links: tuple[Link, ...] = ()
    # The name of a stored organisation (brand and boilerplate); empty for none.
    organisation: str = ""
    template: str = "release"


# A long press release is a few thousand words; this is ten times the longest sensible one,
# and well past what a mail program shows whole (Gmail clips at 102 KB).
MAX_TEXT_CHARACTERS = 300_000
# Line breaks a TOML string may carry and that storing or rendering turns into spaces.
_LINE_BREAKS = str.maketrans("\n\r\t", "   ")


class DraftTextError(DistributorError):
    """A draft whose text is too long, or whose one-line fields hide characters."""


def one_line_fields(draft: ReleaseDraft) -> Iterator[tuple[str, str]]:
    """(what a person calls the field, its text) for every short field of a draft."""
    yield "headline", draft.headline
    yield "dateline", draft.dateline
    yield "standfirst", draft.standfirst
    yield "organisation", draft.organisation
    yield "template", draft.template
    for number, quote in enumerate(draft.quotes, start=1):
        yield f"name in quote {number}", quote.name
        yield f"role in quote {number}", quote.role
    for number, contact in enumerate(draft.press_contacts, start=1):
        yield f"name of press contact {number}", contact.name
        yield f"role of press contact {number}", contact.role
        yield f"email of press contact {number}", contact.email
        yield f"phone of press contact {number}", contact.phone
    for number, link in enumerate(draft.links, start=1):
        yield f"label of link {number}", link.label
        yield f"address of link {number}", link.url
    for image in draft.images:
        yield f"alt text of {image.filename}", image.alt
        yield f"caption of {image.filename}", image.caption


def long_text_fields(draft: ReleaseDraft) -> Iterator[tuple[str, str]]:
    yield "body", draft.body
    yield "notes to editors", draft.notes_to_editors
    yield "boilerplate", draft.boilerplate
    for number, quote in enumerate(draft.quotes, start=1):
        yield f"text of quote {number}", quote.text


def check_draft_text(draft: ReleaseDraft) -> ReleaseDraft:
    """Return the draft, or refuse it listing every text that is too long and every one-line
    field that holds invisible or text-direction characters (which could make a headline
    display differently from what it says)."""
    problems: list[str] = []
    for field, text in long_text_fields(draft):
        if len(text) > MAX_TEXT_CHARACTERS:
            problems.append(
                f"the {field} is {len(text):,} characters long, more than the "
                f"{MAX_TEXT_CHARACTERS:,} a release may hold; shorten it and link to the "
                "full document"
            )
    for field, text in one_line_fields(draft):
        try:
            check_visible(text.translate(_LINE_BREAKS), field=field)
        except HiddenCharacterError as exc:
            problems.append(str(exc))
    if len(problems) == 1:
        raise DraftTextError(problems[0])
    if problems:
        raise DraftTextError(
            "the release was not saved; fix these and try again:\n"
            + "\n".join(f"  {p}" for p in problems)
        )
    return draft
