"""Storing a release: checked in full, and rendered through its templates, before it is kept.

A release that cannot render is refused here, naming the template, line and problem, so that
no template error is ever first found by a worker at the embargo.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from distributor.audit import record_action
from distributor.errors import DistributorError, NotFoundError
from distributor.files import ATTACHMENT_TYPES, IMAGE_TYPES, sniff_content_type
from distributor.models import Release, ReleaseAsset, Send
from distributor.organisations import get_organisation
from distributor.releases.content import ReleaseContent, content_of, profile_of
from distributor.releases.draft import AttachmentFile, ImageFile, ReleaseDraft, check_draft_text
from distributor.releases.versions import save_version
from distributor.rendering.embargo_notice import EmbargoNotice
from distributor.rendering.markup import is_remote, markdown_images
from distributor.states import ACTIVE_SEND_STATES

if TYPE_CHECKING:
    from distributor.rendering.render import RenderSetup

MAX_HEADLINE = 300
MAX_DATELINE = 100
DEFAULT_MAX_ASSET_BYTES = 10_000_000
TEMPLATE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
LINK_SCHEMES = ("https", "http", "mailto")
# The embargo used to check a release's templates before it has a send.
SAMPLE_EMBARGO_ZONE = "Europe/London"

Warn = Callable[[str], object]


class InvalidReleaseError(DistributorError):
    """A release draft with problems; nothing was stored."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"the release was not saved; fix these and try again:\n{listed}")


def _link_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in LINK_SCHEMES or any(c.isspace() for c in url):
        return f"the link {url!r} must be a full https:// (or mailto:) address without spaces"
    if parts.scheme != "mailto" and not parts.netloc:
        return f"the link {url!r} has no host"
    return None


def draft_problems(draft: ReleaseDraft, *, max_asset_bytes: int) -> list[str]:
    """Everything wrong with a draft, each saying what to change."""
    problems: list[str] = []
    try:
        check_draft_text(draft)  # hidden characters, lengths: for drafts built in code too
    except DistributorError as exc:
        problems.append(str(exc))
    headline = " ".join(draft.headline.split())
    if not headline:
        problems.append("the headline is empty")
    elif len(headline) > MAX_HEADLINE:
        problems.append(f"the headline is {len(headline)} characters long; keep it to 300")
    if len(draft.dateline) > MAX_DATELINE:
        problems.append(f"the dateline is {len(draft.dateline)} characters; keep it to 100")
    if not draft.body.strip():
        problems.append("the body is empty")
    if not TEMPLATE_NAME.match(draft.template):
        problems.append(
            f"the template name {draft.template!r} may only hold lower-case letters, digits, "
            "- and _"
        )
    for number, quote in enumerate(draft.quotes, start=1):
        if not quote.text.strip() or not quote.name.strip():
            problems.append(f"quote {number} needs both the words and who said them")
    for number, contact in enumerate(draft.press_contacts, start=1):
        if not contact.name.strip():
            problems.append(f"press contact {number} needs a name")
        if contact.email:
            try:
                validate_email(contact.email, check_deliverability=False)
            except EmailNotValidError as exc:
                problems.append(f"press contact {number}: {contact.email!r}: {exc}")
    for link in draft.links:
        if not link.label.strip():
            problems.append(f"the link {link.url!r} needs a label")
        problem = _link_problem(link.url)
        if problem:
            problems.append(problem)
    files: list[ImageFile | AttachmentFile] = [*draft.images, *draft.attachments]
    filenames = [f.filename for f in files]
    for name in sorted({n for n in filenames if filenames.count(n) > 1}):
        problems.append(f"two files are called {name!r}; rename one")
    for image in draft.images:
        if not image.alt.strip():
            problems.append(
                f"the image {image.filename} needs alt text: what a reader who cannot see it "
                "should know"
            )
        if image.content_type not in IMAGE_TYPES or sniff_content_type(image.data) != (
            image.content_type
        ):
            problems.append(f"{image.filename} is not a PNG, JPEG, GIF or WebP image")
    for attachment in draft.attachments:
        if attachment.content_type not in ATTACHMENT_TYPES or (
            sniff_content_type(attachment.data) != attachment.content_type
        ):
            problems.append(f"{attachment.filename} is not a PDF or an image")
    total = sum(len(f.data) for f in files)
    if total > max_asset_bytes:
        problems.append(
            f"the images and attachments come to {total:,} bytes, more than the "
            f"{max_asset_bytes:,} allowed; every recipient's message carries them all, "
            "so link to large files instead"
        )
    image_names = {image.filename for image in draft.images}
    for reference in markdown_images(draft.body):
        if not reference.alt:
            problems.append(
                f"the picture {reference.source} in the body needs alt text: ![text](...)"
            )
        if not is_remote(reference.source) and reference.source not in image_names:
            problems.append(
                f"the body shows {reference.source!r}, which is not one of the release's "
                "images; add it under [[images]] or give its https:// address"
            )
    return problems


def sample_notice(now: datetime) -> EmbargoNotice:
    """An embargo for checking templates before a release is scheduled."""
    return EmbargoNotice(at=now + timedelta(days=1), zone_name=SAMPLE_EMBARGO_ZONE)


def create_release(
    session: Session,
    draft: ReleaseDraft,
    *,
    now: datetime,
    setup: RenderSetup | None = None,
    max_asset_bytes: int = DEFAULT_MAX_ASSET_BYTES,
    on_warning: Warn | None = None,
) -> Release:
    """Check the draft, render it through its templates, then store it."""
    release = checked_release(
        session,
        draft,
        now=now,
        setup=setup,
        max_asset_bytes=max_asset_bytes,
        on_warning=on_warning,
    )
    session.add(release)
    session.flush()
    save_version(session, release, now=now)
    record_action(
        session,
        "release.created",
        f"release {release.id}",
        at=now,
        release_id=release.id,
        after={"headline": release.headline, "version": 1},
    )
    return release


def checked_release(
    session: Session,
    draft: ReleaseDraft,
    *,
    now: datetime,
    setup: RenderSetup | None = None,
    max_asset_bytes: int = DEFAULT_MAX_ASSET_BYTES,
    on_warning: Warn | None = None,
) -> Release:
    """A release built from the draft once it is checked and renders; not yet stored."""
    problems = draft_problems(draft, max_asset_bytes=max_asset_bytes)
    if problems:
        raise InvalidReleaseError(problems)
    organisation = get_organisation(session, draft.organisation) if draft.organisation else None
    content = ReleaseContent(draft, profile_of(organisation) if organisation else None)
    # Imported here: distributor.rendering imports this package while it initialises.
    from distributor.rendering.content_checks import content_warnings
    from distributor.rendering.render import check_release_renders
    from distributor.rendering.session import render_setup_for

    render_setup = setup or render_setup_for(session)
    warnings = check_release_renders(content, setup=render_setup, notice=sample_notice(now))
    warnings += content_warnings(content, setup=render_setup)
    for warning in warnings:
        if on_warning is not None:
            on_warning(warning)
    release = Release(
        headline=" ".join(draft.headline.split()),
        dateline=draft.dateline,
        standfirst=draft.standfirst,
        body=draft.body,
        body_format=draft.body_format.value,
        notes_to_editors=draft.notes_to_editors,
        boilerplate=draft.boilerplate,
        quotes=[_record(q) for q in draft.quotes],
        press_contacts=[_record(c) for c in draft.press_contacts],
        links=[_record(link) for link in draft.links],
        template=draft.template,
        organisation=organisation,
        created_at=now,
    )
    release.assets = [
        _asset("image", n, f.filename, f.content_type, f.data, alt=f.alt, caption=f.caption)
        for n, f in enumerate(draft.images)
    ] + [
        _asset("attachment", n, f.filename, f.content_type, f.data)
        for n, f in enumerate(draft.attachments, start=len(draft.images))
    ]
    return release


def _record(item: object) -> dict[str, str]:
    return {name: getattr(item, name) for name in item.__dataclass_fields__}  # type: ignore[attr-defined]


def _asset(
    kind: str,
    position: int,
    filename: str,
    content_type: str,
    data: bytes,
    *,
    alt: str = "",
    caption: str = "",
) -> ReleaseAsset:
    return ReleaseAsset(
        kind=kind,
        position=position,
        filename=filename,
        content_type=content_type,
        alt_text=alt,
        caption=caption,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
    )


def get_release(session: Session, release_id: int) -> Release:
    release = session.get(Release, release_id)
    if release is None:
        raise NotFoundError(
            f"no release with id {release_id}; see `distributor status`",
            on_page=f"no release with id {release_id}",
        )
    return release


def check_release_for_sending(
    session: Session, *, release_id: int, embargo_at: datetime, embargo_zone: str
) -> list[str]:
    """Render a stored release as its send will, with the send's embargo; raises
    TemplateProblem (or NotFoundError), returns warnings. Called when a send is scheduled."""
    release = get_release(session, release_id)
    notice = EmbargoNotice(at=embargo_at, zone_name=embargo_zone)
    from distributor.rendering.render import check_release_renders
    from distributor.rendering.session import render_setup_for

    return check_release_renders(
        content_of(release), setup=render_setup_for(session), notice=notice
    )


def upcoming_embargo(session: Session, release_id: int) -> tuple[datetime, str] | None:
    """The embargo and zone of the release's next send that has not gone out, if any."""
    row = session.execute(
        select(Send.embargo_at, Send.embargo_zone)
        .where(Send.release_id == release_id, Send.state.in_(ACTIVE_SEND_STATES))
        .order_by(Send.embargo_at)
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None
