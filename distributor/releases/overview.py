"""Releases as a press officer looks for them: what each is, where it stands, and its sends."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from distributor.models import Delivery, Release, Send
from distributor.releases.store import get_release
from distributor.states import DeliveryState, SendState
from distributor.status import SendStatus, send_statuses

# Where a release stands, from its sends: the most pressing state wins.
_PRECEDENCE = (
    SendState.HELD,
    SendState.PAUSED,
    SendState.ARMED,
    SendState.SCHEDULED,
    SendState.AWAITING_APPROVAL,
    SendState.COMPLETED,
    SendState.CANCELLED,
)


@dataclass(frozen=True, slots=True)
class ReleaseSummary:
    release_id: int
    headline: str
    # "draft" (never scheduled), or the most pressing state of its sends ("completed": sent).
    state: str
    # The next embargo still to lift, else the last one; in the zone it was scheduled in.
    embargo_at: datetime | None
    embargo_zone: str | None
    sent: int
    recipients: int
    sends: int
    created_at: datetime
    edited_at: datetime | None

    @property
    def embargo_local(self) -> str:
        if self.embargo_at is None or self.embargo_zone is None:
            return ""
        local = self.embargo_at.astimezone(ZoneInfo(self.embargo_zone))
        return f"{local:%Y-%m-%d %H:%M} {self.embargo_zone}"


@dataclass(frozen=True, slots=True)
class ReleaseDetail:
    summary: ReleaseSummary
    dateline: str
    standfirst: str
    body: str
    body_format: str
    notes_to_editors: str
    template: str
    organisation: str | None
    quotes: list[dict[str, str]]
    press_contacts: list[dict[str, str]]
    links: list[dict[str, str]]
    assets: list[dict[str, object]]
    sends: list[SendStatus] = field(default_factory=list)


def release_state(states: list[SendState]) -> str:
    for state in _PRECEDENCE:
        if state in states:
            return state.value
    return "draft"


def release_summaries(session: Session, release_id: int | None = None) -> list[ReleaseSummary]:
    """Every release, newest first (or the one asked for)."""
    query = select(Release.id, Release.headline, Release.created_at, Release.edited_at)
    if release_id is not None:
        query = query.where(Release.id == release_id)
    releases = session.execute(query.order_by(Release.id.desc())).all()
    ids = [r.id for r in releases]
    sends: dict[int, list[tuple[SendState, datetime, str]]] = {i: [] for i in ids}
    for rid, state, embargo_at, zone in session.execute(
        select(Send.release_id, Send.state, Send.embargo_at, Send.embargo_zone)
        .where(Send.release_id.in_(ids))
        .order_by(Send.embargo_at)
    ):
        sends[rid].append((state, embargo_at, zone))
    counts: dict[int, tuple[int, int]] = {}
    for rid, sent, total in session.execute(
        select(
            Send.release_id,
            func.count().filter(Delivery.state == DeliveryState.SENT),
            func.count().filter(Delivery.state != DeliveryState.CANCELLED),
        )
        .join(Delivery, Delivery.send_id == Send.id)
        .where(Send.release_id.in_(ids))
        .group_by(Send.release_id)
    ):
        counts[rid] = (sent, total)
    summaries = []
    for r in releases:
        own = sends[r.id]
        upcoming = [s for s in own if s[0] not in (SendState.COMPLETED, SendState.CANCELLED)]
        shown = upcoming[0] if upcoming else (own[-1] if own else None)
        sent, total = counts.get(r.id, (0, 0))
        summaries.append(
            ReleaseSummary(
                release_id=r.id,
                headline=r.headline,
                state=release_state([s[0] for s in own]),
                embargo_at=shown[1] if shown else None,
                embargo_zone=shown[2] if shown else None,
                sent=sent,
                recipients=total,
                sends=len(own),
                created_at=r.created_at,
                edited_at=r.edited_at,
            )
        )
    return summaries


def release_detail(session: Session, release_id: int) -> ReleaseDetail:
    release = get_release(session, release_id)
    (summary,) = release_summaries(session, release_id)
    send_ids = session.scalars(
        select(Send.id).where(Send.release_id == release_id).order_by(Send.id)
    ).all()
    statuses = [s for send_id in send_ids for s in send_statuses(session, send_id)]
    return ReleaseDetail(
        summary=summary,
        dateline=release.dateline,
        standfirst=release.standfirst,
        body=release.body,
        body_format=release.body_format,
        notes_to_editors=release.notes_to_editors,
        template=release.template,
        organisation=release.organisation.name if release.organisation else None,
        quotes=list(release.quotes),
        press_contacts=list(release.press_contacts),
        links=list(release.links),
        assets=[
            {
                "kind": a.kind,
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "alt": a.alt_text,
            }
            for a in release.assets
        ],
        sends=statuses,
    )
