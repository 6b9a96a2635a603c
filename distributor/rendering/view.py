"""What the templates see: a release, its brand and its embargo as plain values.

Everything is formatted here, in Python, so templates need no custom filters and run in
the sandbox with nothing but plain attributes, strings and safe HTML.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from distributor.files import image_size
from distributor.releases.content import ReleaseContent
from distributor.releases.draft import AttachmentFile, BodyFormat, ImageFile, Link, PressContact
from distributor.releases.draft import Quote as QuoteDraft
from distributor.rendering.announcements import Announcement
from distributor.rendering.brand import BrandColours
from distributor.rendering.embargo_notice import EmbargoNotice
from distributor.rendering.markup import (
    BodyImage,
    is_remote,
    markdown_images,
    markdown_to_html,
    text_to_html,
)
from distributor.rendering.personal import LOCAL_EMBARGO, Variant
from distributor.rendering.plaintext import html_to_text

CONTENT_WIDTH = 552  # the 600 px column less its padding
PREHEADER_LENGTH = 140
TYPE_NAMES = {
    "application/pdf": "PDF",
    "image/png": "PNG image",
    "image/jpeg": "JPEG image",
    "image/gif": "GIF image",
    "image/webp": "WebP image",
}


@dataclass(frozen=True, slots=True)
class InlineImage:
    """An image carried in the message and shown by Content-ID."""

    content_id: str
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ImageView:
    src: str
    alt: str
    caption: str
    width: int | None
    height: int | None


@dataclass(frozen=True, slots=True)
class AttachmentView:
    filename: str
    kind: str
    size: str


@dataclass(frozen=True, slots=True)
class QuoteView:
    text: str
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class ReleaseView:
    headline: str
    dateline: str
    standfirst: str
    body: Markup
    body_text: str
    quotes: tuple[QuoteView, ...]
    notes: Markup
    notes_text: str
    press_contacts: tuple[PressContact, ...]
    boilerplate_title: str
    boilerplate: Markup
    boilerplate_text: str
    images: tuple[ImageView, ...]  # the pictures not already shown in the body
    attachments: tuple[AttachmentView, ...]
    links: tuple[Link, ...]


@dataclass(frozen=True, slots=True)
class BrandView:
    name: str
    website: str
    logo: ImageView | None
    primary: str
    on_primary: str
    accent: str
    on_accent: str
    link: str


@dataclass(frozen=True, slots=True)
class EmbargoView:
    notice: str  # EMBARGOED UNTIL 00:01 GMT, Tuesday 14 November 2017
    release_zone: str
    utc: str  # empty when the release's zone is UTC
    local: str  # the recipient's zone; empty when unknown or the same as above


@dataclass(frozen=True, slots=True)
class RecipientView:
    name: str
    outlet: str
    email: str


@dataclass(frozen=True, slots=True)
class SharedView:
    """The parts of the context that are the same for every recipient of a send."""

    release: ReleaseView
    brand: BrandView
    images: tuple[InlineImage, ...]
    attachments: tuple[AttachmentFile, ...]
    preheader: str


def human_size(size: int) -> str:
    if size < 1000:
        return f"{size} bytes"
    if size < 1_000_000:
        return f"{size / 1000:.0f} KB"
    return f"{size / 1_000_000:.1f} MB"


def content_id(kind: str, number: int, data: bytes, domain: str) -> str:
    return f"{kind}{number}.{hashlib.sha256(data).hexdigest()[:16]}@{domain}"


def _image_view(src: str, image: ImageFile) -> ImageView:
    size = image_size(image.data)
    width = height = None
    if size and size[0] > 0:
        width = min(size[0], CONTENT_WIDTH)
        height = round(size[1] * width / size[0])
    return ImageView(src=src, alt=image.alt, caption=image.caption, width=width, height=height)


def _text_of(html: Markup) -> str:
    return html_to_text(str(html))


def _preheader(standfirst: str, body_text: str) -> str:
    source = " ".join((standfirst or body_text).split())
    if len(source) <= PREHEADER_LENGTH:
        return source
    cut = source[:PREHEADER_LENGTH].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def _boilerplate_title(content: ReleaseContent) -> str:
    text = content.boilerplate.lstrip().lower()
    if content.organisation is None or text.startswith(("about", "#")):
        return ""
    return f"About {content.organisation.name}"


def shared_view(
    content: ReleaseContent, *, colours: BrandColours, content_id_domain: str
) -> SharedView:
    draft = content.draft
    organisation = content.organisation
    body_images: dict[str, BodyImage] = {}
    shown_in_body = {ref.source for ref in markdown_images(draft.body) if not is_remote(ref.source)}
    inline: list[InlineImage] = []
    gallery: list[ImageView] = []
    for number, image in enumerate(draft.images, start=1):
        cid = content_id("image", number, image.data, content_id_domain)
        inline.append(InlineImage(cid, image.filename, image.content_type, image.data))
        view = _image_view(f"cid:{cid}", image)
        if draft.body_format is BodyFormat.MARKDOWN and image.filename in shown_in_body:
            body_images[image.filename] = BodyImage(cid, view.width)
        else:
            gallery.append(view)
    logo_view = None
    if organisation is not None and organisation.logo is not None:
        logo = organisation.logo
        cid = content_id("logo", 0, logo.data, content_id_domain)
        inline.insert(0, InlineImage(cid, logo.filename, logo.content_type, logo.data))
        logo_view = _image_view(f"cid:{cid}", logo)
    if draft.body_format is BodyFormat.MARKDOWN:
        body = markdown_to_html(draft.body, images=body_images)
        notes = markdown_to_html(draft.notes_to_editors)
    else:
        body = text_to_html(draft.body)
        notes = text_to_html(draft.notes_to_editors, subheadings=True)
    boilerplate = markdown_to_html(content.boilerplate)
    primary = (organisation.primary_colour if organisation else None) or colours.primary
    accent = (organisation.accent_colour if organisation else None) or colours.accent
    brand_colours = BrandColours(primary=primary, accent=accent)
    body_text = _text_of(body)
    release = ReleaseView(
        headline=" ".join(draft.headline.split()),
        dateline=draft.dateline,
        standfirst=" ".join(draft.standfirst.split()),
        body=body,
        body_text=body_text,
        quotes=tuple(_quote(q) for q in draft.quotes),
        notes=notes,
        notes_text=_text_of(notes),
        press_contacts=draft.press_contacts,
        boilerplate_title=_boilerplate_title(content),
        boilerplate=boilerplate,
        boilerplate_text=_text_of(boilerplate),
        images=tuple(gallery),
        attachments=tuple(
            AttachmentView(
                a.filename, TYPE_NAMES.get(a.content_type, "file"), human_size(len(a.data))
            )
            for a in draft.attachments
        ),
        links=draft.links,
    )
    brand = BrandView(
        name=organisation.name if organisation else "",
        website=organisation.website if organisation else "",
        logo=logo_view,
        primary=brand_colours.primary,
        on_primary=brand_colours.on_primary,
        accent=brand_colours.accent,
        on_accent=brand_colours.on_accent,
        link=brand_colours.link,
    )
    return SharedView(
        release=release,
        brand=brand,
        images=tuple(inline),
        attachments=draft.attachments,
        preheader=_preheader(release.standfirst, body_text),
    )


def _quote(quote: QuoteDraft) -> QuoteView:
    text = " ".join(quote.text.split())
    return QuoteView(text=re.sub(r'^[“"]|[”"]$', "", text), name=quote.name, role=quote.role)


def template_context(
    shared: SharedView,
    *,
    variant: Variant,
    notice: EmbargoNotice | None,
    values: dict[str, str],
    subject: str,
    test: bool,
    announcement: Announcement | None = None,
    correction: str | None = None,
) -> dict[str, Any]:
    """The context of one variant; `values` holds placeholders (or probe values)."""
    embargo = None
    preheader = shared.preheader
    if variant.embargoed and notice is not None:
        embargo = EmbargoView(
            notice=notice.subject_prefix,
            release_zone=notice.in_release_zone,
            utc=notice.in_utc,
            local=values[LOCAL_EMBARGO],
        )
        preheader = f"Embargoed until {notice.in_release_zone}. {preheader}"
    return {
        "release": shared.release,
        "brand": shared.brand,
        "embargo": embargo,
        "recipient": RecipientView(
            name=values["recipient.name"],
            outlet=values["recipient.outlet"],
            email=values["recipient.email"],
        ),
        "unsubscribe_url": values["unsubscribe_url"],
        "preheader": preheader,
        "subject": subject,
        "test": test,
        "announcement": announcement,
        "correction": correction,
    }
