"""The public newsroom: which releases anyone may read, and from when.

A release is published from the lift of its public send: the send went out (armed, done,
or paused only after its embargo) and its embargo has passed by the database's clock, read
in the very statement that looks, at the moment someone asks. Before that instant nothing
of the release is found here: not its page, not its headline, not that it exists. A send
awaiting approval, held or cancelled publishes nothing; a release withdrawn (a public send
cancelled after the last that went out) disappears; a moved embargo is followed because the
send's row is the only place the embargo lives. The latest correction that went out is the
text shown, under the original's address and publication time.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Label, Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased, lazyload

from distributor.engine.dbclock import DatabaseClock
from distributor.models import Organisation, Release, Send
from distributor.releases.content import ReleaseContent, content_of
from distributor.releases.draft import BodyFormat
from distributor.rendering.markup import markdown_to_html, paragraphs
from distributor.states import SendKind, SendState

# Ids are INTEGER columns (32-bit on PostgreSQL): a larger number names nothing.
MAX_ID = 2**31 - 1
SLUG_LENGTH = 80
SUMMARY_LENGTH = 280
# "12-charity-opens-three-refuges", or "12" for a headline with no Latin letters. Any words
# after the id are accepted, and a published release's page leads on to its own address.
RELEASE_ADDRESS = re.compile(r"(?P<id>[0-9]{1,10})(?:-.*)?", re.DOTALL)
TAG = re.compile(r"<[^>]+>")
PUBLISHED_AT = "published_at"


def slugify(text: str) -> str:
    """Lower-case ASCII words joined by hyphens, cut at a word, for a readable address."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = ""
    for word in re.findall(r"[a-z0-9]+", ascii_text.lower()):
        longer = f"{slug}-{word}" if slug else word
        if len(longer) > SLUG_LENGTH:
            break
        slug = longer
    return slug


def address_of(identifier: int, name: str) -> str:
    slug = slugify(name)
    return f"{identifier}-{slug}" if slug else str(identifier)


def id_from_address(address: str) -> int | None:
    """The id an address such as "12-some-headline" names; None when it names none."""
    found = RELEASE_ADDRESS.fullmatch(address)
    if found is None:
        return None
    number = int(found.group("id"))
    return number if 1 <= number <= MAX_ID else None


@dataclass(frozen=True, slots=True)
class NewsOrganisation:
    organisation_id: int
    name: str
    website: str
    about: str  # Markdown
    has_logo: bool

    @property
    def address(self) -> str:
        return address_of(self.organisation_id, self.name)


@dataclass(frozen=True, slots=True)
class NewsItem:
    """A published release as a listing or a feed shows it."""

    release_id: int
    address: str  # from the original headline, so that a correction keeps the address
    headline: str
    dateline: str
    summary: str
    published_at: datetime  # the lift
    zone: str  # the zone its embargo was set in, to show the lift as its readers expect
    corrected_at: datetime | None
    organisation: NewsOrganisation | None

    @property
    def updated_at(self) -> datetime:
        return self.corrected_at or self.published_at


@dataclass(frozen=True, slots=True)
class PublishedRelease:
    item: NewsItem
    # The text shown: the latest correction's that went out, else the release's own.
    content: ReleaseContent
    correction_note: str


@dataclass(frozen=True, slots=True)
class NewsPage:
    items: Sequence[NewsItem]
    total: int


def _went_out(send: type[Send], now: ColumnElement[datetime]) -> ColumnElement[bool]:
    """The send was cleared to go and its embargo has passed by `now`; a send paused before
    its lift let nothing out at the lift, so it publishes nothing until resumed."""
    return and_(
        send.embargo_at <= now,
        or_(
            send.state.in_([SendState.ARMED, SendState.COMPLETED]),
            and_(send.state == SendState.PAUSED, send.paused_at >= send.embargo_at),
        ),
    )


def _published(clock: DatabaseClock) -> Select[int, datetime]:
    """(release id, published at) of every published release."""
    lifted, withdrawn = aliased(Send), aliased(Send)
    withdrawn_since = exists().where(
        withdrawn.release_id == lifted.release_id,
        withdrawn.kind == SendKind.PUBLIC,
        withdrawn.state == SendState.CANCELLED,
        withdrawn.id > lifted.id,
    )
    return (
        select(lifted.release_id, func.min(lifted.embargo_at).label(PUBLISHED_AT))
        .where(
            lifted.kind == SendKind.PUBLIC,
            _went_out(lifted, clock.sql_now()),
            ~withdrawn_since,
        )
        .group_by(lifted.release_id)
    )


def _corrections(
    session: Session, release_ids: Sequence[int], clock: DatabaseClock
) -> dict[int, tuple[Release, datetime]]:
    """The latest correction of each release that went out, and when it did."""
    if not release_ids:
        return {}
    send = aliased(Send)
    rows = session.execute(
        select(Release, send.embargo_at)
        .join(send, send.release_id == Release.id)
        .where(
            Release.corrects_release_id.in_(release_ids),
            send.kind == SendKind.CORRECTION,
            _went_out(send, clock.sql_now()),
        )
        .order_by(Release.id, send.id)
        .options(lazyload(Release.assets))
    ).all()
    latest: dict[int, tuple[Release, datetime]] = {}
    for correction, sent_at in rows:
        assert correction.corrects_release_id is not None
        latest[correction.corrects_release_id] = (correction, sent_at)
    return latest


def _summary(release: Release) -> str:
    if release.standfirst.strip():
        text = " ".join(release.standfirst.split())
    else:
        first = next(iter(paragraphs(release.body)), "")
        if BodyFormat(release.body_format) is BodyFormat.MARKDOWN:
            first = html.unescape(TAG.sub("", str(markdown_to_html(first))))
        text = " ".join(first.split())
    if len(text) <= SUMMARY_LENGTH:
        return text
    return text[:SUMMARY_LENGTH].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _organisation(organisation: Organisation | None) -> NewsOrganisation | None:
    if organisation is None:
        return None
    return NewsOrganisation(
        organisation_id=organisation.id,
        name=organisation.name,
        website=organisation.website,
        about=organisation.about,
        has_logo=organisation.logo_data is not None,
    )


def _items(
    session: Session, rows: Sequence[tuple[Release, datetime, str]], clock: DatabaseClock
) -> list[tuple[NewsItem, Release, str]]:
    """Each row as an item, with the release whose text it shows and the correction note."""
    corrections = _corrections(session, [release.id for release, _, _ in rows], clock)
    found = []
    for release, published_at, zone in rows:
        shown, corrected_at = corrections.get(release.id, (release, None))
        item = NewsItem(
            release_id=release.id,
            address=address_of(release.id, release.headline),
            headline=" ".join(shown.headline.split()),
            dateline=shown.dateline,
            summary=_summary(shown),
            published_at=published_at,
            zone=zone,
            corrected_at=corrected_at,
            organisation=_organisation(release.organisation),
        )
        found.append((item, shown, shown.correction_note if corrected_at else ""))
    return found


def _listing(clock: DatabaseClock) -> tuple[Select[Release, datetime, str], Label[datetime]]:
    """Published releases with when they were published (also returned, to order by)."""
    published = _published(clock).subquery()
    published_at = published.c.published_at.label(PUBLISHED_AT)
    # The zone of the send that lifted first, for showing the publication time.
    first = aliased(Send)
    zone = (
        select(first.embargo_zone)
        .where(
            first.release_id == published.c.release_id,
            first.kind == SendKind.PUBLIC,
            first.embargo_at == published.c[PUBLISHED_AT],
        )
        .order_by(first.id)
        .limit(1)
        .scalar_subquery()
    )
    query = (
        select(Release, published_at, zone)
        .join(published, published.c.release_id == Release.id)
        # A listing shows no pictures: they load with the one release that shows them.
        .options(lazyload(Release.assets))
    )
    return query, published_at


def published_releases(
    session: Session,
    *,
    clock: DatabaseClock,
    organisation_id: int | None = None,
    offset: int = 0,
    limit: int = 20,
) -> NewsPage:
    """Published releases, the latest lift first (of one organisation, if given)."""
    query, published_at = _listing(clock)
    if organisation_id is not None:
        query = query.where(Release.organisation_id == organisation_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(published_at.desc(), Release.id.desc()).offset(offset).limit(limit)
    ).all()
    items = _items(session, [(r[0], r[1], r[2]) for r in rows], clock)
    return NewsPage(items=[item for item, _, _ in items], total=total)


def published_release(
    session: Session, release_id: int, *, clock: DatabaseClock
) -> PublishedRelease | None:
    """The release if it is published now; None alike for one unknown, embargoed, awaiting
    approval or withdrawn, so that no caller can tell those apart."""
    query, _ = _listing(clock)
    row = session.execute(query.where(Release.id == release_id)).first()
    if row is None:
        return None
    ((item, shown, note),) = _items(session, [(row[0], row[1], row[2])], clock)
    return PublishedRelease(item=item, content=content_of(shown), correction_note=note)


def published_organisation(
    session: Session, organisation_id: int, *, clock: DatabaseClock
) -> NewsOrganisation | None:
    """The organisation, once one of its releases is published (an organisation made for a
    release still under embargo must not give the release away)."""
    published = _published(clock).subquery()
    organisation = session.scalar(
        select(Organisation).where(
            Organisation.id == organisation_id,
            exists().where(
                Release.organisation_id == Organisation.id,
                Release.id == published.c.release_id,
            ),
        )
    )
    return _organisation(organisation)


def organisation_logo(
    session: Session, organisation_id: int, *, clock: DatabaseClock
) -> tuple[str, bytes] | None:
    """The content type and bytes of a published organisation's logo."""
    if published_organisation(session, organisation_id, clock=clock) is None:
        return None
    row = session.execute(
        select(Organisation.logo_content_type, Organisation.logo_data).where(
            Organisation.id == organisation_id
        )
    ).first()
    if row is None or row[0] is None or row[1] is None:
        return None
    return row[0], row[1]
