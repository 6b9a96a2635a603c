"""The public newsroom: /news, one release at /news/{id-headline}, an organisation's releases
at /news/by/{id-name}, and Atom feeds of both.

What is published, and from when, is decided by distributor.newsroom against the database's
clock at each request. Whatever is not published (unknown, under embargo, awaiting approval,
withdrawn) gets one and the same 404, byte for byte, so that nobody can learn from the
answer that a release exists.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from distributor.engine.dbclock import read_database_time
from distributor.newsroom import (
    NewsItem,
    NewsOrganisation,
    PublishedRelease,
    id_from_address,
    organisation_logo,
    published_organisation,
    published_release,
    published_releases,
)
from distributor.releases.draft import AttachmentFile, ImageFile
from distributor.rendering.markup import markdown_to_html
from distributor.rendering.view import ReleaseView, shared_view
from distributor.runtime import Runtime
from distributor.web.database import runtime_of
from distributor.web.pages import STATIC_DIR, pages_of
from distributor.web.pagination import MAX_PAGE
from distributor.web.security import CONTENT_SECURITY_POLICY

router = APIRouter(include_in_schema=False)

PREFIX = "/news"
PER_PAGE = 20
FEED_ENTRIES = 30
STYLESHEET = "newsroom.css"
ATOM = "application/atom+xml; charset=utf-8"
# Served as pictures only in these types; anything else is a download.
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
# A release's own pictures come from here; pictures its Markdown links on other sites too.
RELEASE_PAGE_POLICY = "; ".join(
    f"{name} {'https: ' + value if name == 'img-src' else value}"
    for name, value in CONTENT_SECURITY_POLICY.items()
)
# Characters XML 1.0 does not allow, whatever the escaping.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

Page = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1.")]


def _stylesheet() -> str:
    digest = hashlib.sha256((STATIC_DIR / STYLESHEET).read_bytes()).hexdigest()[:12]
    return f"/static/{STYLESHEET}?v={digest}"


NEWSROOM_STYLESHEET = _stylesheet()


def _reading(request: Request) -> tuple[Runtime, Session]:
    runtime = runtime_of(request)
    return runtime, runtime.sessions()


def _base_url(request: Request) -> str:
    """Absolute addresses (feeds, canonical links): the configured public address, else the
    one this request came to."""
    configured = runtime_of(request).settings.public_base_url
    return (configured or str(request.base_url)).rstrip("/")


def _render(
    request: Request, name: str, context: dict[str, Any], *, status_code: int = 200
) -> Response:
    values = {
        "newsroom_stylesheet": NEWSROOM_STYLESHEET,
        "feed_url": f"{PREFIX}/feed.xml",
        "feed_title": "All releases",
        "base_url": _base_url(request),
    }
    values.update(context)
    return pages_of(request).render(
        request, name, values, status_code=status_code, with_forms=False
    )


def not_published(request: Request) -> Response:
    """The one answer for everything that is not published, whatever the reason."""
    response = _render(request, "newsroom_missing.html.j2", {}, status_code=404)
    response.headers["X-Robots-Tag"] = "noindex"
    return response


# --- listings ---------------------------------------------------------------------------


@router.get(PREFIX)
def news_index(request: Request, page: Page = 1) -> Response:
    runtime, session = _reading(request)
    with session:
        found = published_releases(
            session,
            clock=runtime.database_clock,
            offset=(page - 1) * PER_PAGE,
            limit=PER_PAGE,
        )
    return _listing_page(request, found.items, found.total, page, organisation=None)


@router.get(PREFIX + "/by/{address}")
def organisation_index(request: Request, address: str, page: Page = 1) -> Response:
    runtime, session = _reading(request)
    organisation_id = id_from_address(address)
    with session:
        organisation = (
            published_organisation(session, organisation_id, clock=runtime.database_clock)
            if organisation_id is not None
            else None
        )
        if organisation is None:
            return not_published(request)
        if address != organisation.address:
            return _moved(f"{PREFIX}/by/{organisation.address}", request)
        found = published_releases(
            session,
            clock=runtime.database_clock,
            organisation_id=organisation.organisation_id,
            offset=(page - 1) * PER_PAGE,
            limit=PER_PAGE,
        )
    return _listing_page(request, found.items, found.total, page, organisation=organisation)


def _listing_page(
    request: Request,
    items: Sequence[NewsItem],
    total: int,
    page: int,
    *,
    organisation: NewsOrganisation | None,
) -> Response:
    pages = max(1, -(-total // PER_PAGE))
    context: dict[str, Any] = {
        "items": items,
        "page": page,
        "pages": pages,
        "organisation": organisation,
        "about": markdown_to_html(organisation.about) if organisation else "",
        "here": f"{PREFIX}/by/{organisation.address}" if organisation else PREFIX,
    }
    if organisation is not None:
        context["feed_url"] = f"{PREFIX}/by/{organisation.address}/feed.xml"
        context["feed_title"] = f"Releases from {organisation.name}"
    return _render(request, "newsroom.html.j2", context)


def _moved(path: str, request: Request) -> Response:
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(path + query, status_code=301)


# --- feeds ------------------------------------------------------------------------------


def _xml_text(value: str) -> str:
    return NOT_XML.sub("", value)


@dataclass(frozen=True, slots=True)
class FeedEntry:
    url: str
    headline: str
    summary: str
    author: str
    published_at: datetime
    updated_at: datetime


def _feed(
    request: Request,
    *,
    title: str,
    page_path: str,
    items: Sequence[NewsItem],
    empty_updated: datetime,
    author: str,
) -> Response:
    base = _base_url(request)
    entries = [
        FeedEntry(
            url=f"{base}{PREFIX}/{item.address}",
            headline=_xml_text(item.headline),
            summary=_xml_text(item.summary),
            author=_xml_text(item.organisation.name if item.organisation else author),
            published_at=item.published_at,
            updated_at=item.updated_at,
        )
        for item in items
    ]
    updated = max((entry.updated_at for entry in entries), default=empty_updated)
    template = pages_of(request).templates.env.get_template("feed.atom.j2")
    body = template.render(
        title=_xml_text(title),
        author=_xml_text(author),
        feed_url=f"{base}{request.url.path}",
        page_url=f"{base}{page_path}",
        updated=updated,
        entries=entries,
    )
    return Response(body, media_type=ATOM)


@router.get(PREFIX + "/feed.xml")
def news_feed(request: Request) -> Response:
    runtime, session = _reading(request)
    site = pages_of(request).site_name
    with session:
        found = published_releases(session, clock=runtime.database_clock, limit=FEED_ENTRIES)
        now = read_database_time(session, runtime.database_clock)
    return _feed(
        request,
        title=f"{site}: press releases",
        page_path=PREFIX,
        items=found.items,
        empty_updated=now,
        author=site,
    )


@router.get(PREFIX + "/by/{address}/feed.xml")
def organisation_feed(request: Request, address: str) -> Response:
    runtime, session = _reading(request)
    organisation_id = id_from_address(address)
    with session:
        organisation = (
            published_organisation(session, organisation_id, clock=runtime.database_clock)
            if organisation_id is not None
            else None
        )
        if organisation is None or address != organisation.address:
            return not_published(request)
        found = published_releases(
            session,
            clock=runtime.database_clock,
            organisation_id=organisation.organisation_id,
            limit=FEED_ENTRIES,
        )
        now = read_database_time(session, runtime.database_clock)
    return _feed(
        request,
        title=f"{organisation.name}: press releases",
        page_path=f"{PREFIX}/by/{organisation.address}",
        items=found.items,
        empty_updated=now,
        author=organisation.name,
    )


@router.get(PREFIX + "/by/{address}/logo")
def organisation_logo_file(request: Request, address: str) -> Response:
    runtime, session = _reading(request)
    organisation_id = id_from_address(address)
    with session:
        logo = (
            organisation_logo(session, organisation_id, clock=runtime.database_clock)
            if organisation_id is not None
            else None
        )
    if logo is None or logo[0] not in IMAGE_TYPES:
        return not_published(request)
    return Response(logo[1], media_type=logo[0])


# --- one release ------------------------------------------------------------------------


def _find(request: Request, address: str) -> PublishedRelease | None:
    release_id = id_from_address(address)
    if release_id is None:
        return None
    runtime, session = _reading(request)
    with session:
        return published_release(session, release_id, clock=runtime.database_clock)


def _files_path(item: NewsItem) -> str:
    return f"{PREFIX}/{item.address}/files"


def _web_view(runtime: Runtime, published: PublishedRelease) -> tuple[ReleaseView, str | None]:
    """The release as the email shows it, its pictures served from the newsroom instead of
    carried in the message: each `cid:` reference becomes the picture's address here."""
    setup = runtime.render_setup
    shared = shared_view(
        published.content, colours=setup.colours, content_id_domain=setup.content_id_domain
    )
    organisation = published.item.organisation
    logo_cid = shared.brand.logo.src.removeprefix("cid:") if shared.brand.logo else None
    logo_url = f"{PREFIX}/by/{organisation.address}/logo" if organisation else None
    files = _files_path(published.item)
    addresses: dict[str, str] = {
        image.content_id: (
            logo_url
            if logo_url and image.content_id == logo_cid
            else f"{files}/{quote(image.filename)}"
        )
        for image in shared.images
    }
    body = str(shared.release.body)
    for content_id, url in addresses.items():
        body = body.replace(f'src="cid:{content_id}"', f'src="{url}"')
    release = replace(
        shared.release,
        body=Markup(body),  # noqa: S704 - sanitised HTML, only its picture addresses changed
        images=tuple(
            replace(image, src=addresses.get(image.src.removeprefix("cid:"), ""))
            for image in shared.release.images
        ),
    )
    return release, (logo_url if logo_cid else None)


@router.get(PREFIX + "/{address}")
def release_page(request: Request, address: str) -> Response:
    published = _find(request, address)
    if published is None:
        return not_published(request)
    item = published.item
    if address != item.address:
        return _moved(f"{PREFIX}/{item.address}", request)
    release, logo_url = _web_view(runtime_of(request), published)
    response = _render(
        request,
        "newsroom_release.html.j2",
        {
            "item": item,
            "release": release,
            "logo_url": logo_url,
            "correction_note": published.correction_note,
            "files_path": _files_path(item),
            "canonical": f"{_base_url(request)}{PREFIX}/{item.address}",
        },
    )
    response.headers["Content-Security-Policy"] = RELEASE_PAGE_POLICY
    return response


@router.get(PREFIX + "/{address}/files/{filename}")
def release_file(request: Request, address: str, filename: str) -> Response:
    """A picture or an attachment of a published release (of the text shown)."""
    published = _find(request, address)
    if published is None or address != published.item.address:
        return not_published(request)
    draft = published.content.draft
    for image in draft.images:
        if image.filename == filename and image.content_type in IMAGE_TYPES:
            return Response(image.data, media_type=image.content_type)
    files: list[ImageFile | AttachmentFile] = [*draft.images, *draft.attachments]
    for file in files:
        if file.filename == filename:
            # Never shown in the page's origin as a document: always a download.
            return Response(
                file.data,
                media_type="application/octet-stream",
                headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
            )
    return not_published(request)
