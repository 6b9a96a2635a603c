"""A release as written, before it is stored: plain data, checked by `validate_draft`."""

from __future__ import annotations

import enum
from dataclasses import dataclass


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
