"""Applying a report: the delivery marked bounced, the address suppressed, or the report
kept for an admin with the reason it could not be matched.

The report's row is inserted first, keyed by its fingerprint, and everything else happens
only if that insert was new: the same report processed twice (a mailbox read again, a
relay that retried after a lost reply) changes nothing the second time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from distributor.bounces.kinds import BounceKind
from distributor.bounces.matching import Match, Matched, Unmatched
from distributor.bounces.report import BounceReport
from distributor.models import Bounce, Delivery, DeliveryEvent
from distributor.states import DeliveryState
from distributor.suppression import SuppressionReason, suppress

SOFT_BOUNCE_WINDOW = timedelta(days=30)
SOFT_BOUNCES_TO_SUPPRESS = 3
LONGEST_SOURCE = 200
LONGEST_ADDRESS = 320
LONGEST_DETAIL = 500


@dataclass(frozen=True, slots=True)
class Recorded:
    bounce_id: int
    outcome: str
    # The same report was processed before: nothing was changed this time.
    duplicate: bool = False


def fingerprint(report: BounceReport, match: Match) -> str:
    """One report, whichever way it came in: its identity and the address it came back to."""
    target = match.verp_address or ""
    return hashlib.sha256(f"{report.identity}\n{target}".encode()).hexdigest()


def record_bounce(
    session: Session,
    report: BounceReport,
    match: Match,
    *,
    now: datetime,
    source: str,
    soft_window: timedelta = SOFT_BOUNCE_WINDOW,
    soft_limit: int = SOFT_BOUNCES_TO_SUPPRESS,
) -> Recorded:
    key = fingerprint(report, match)
    matched = match if isinstance(match, Matched) else None
    # What an admin needs to act on a report nobody could place; nothing more is kept.
    kept_for_admin = matched is None or report.kind is BounceKind.UNKNOWN
    recipient = report.recipient[:LONGEST_ADDRESS] if report.recipient and not matched else None
    kept_headers = report.headers if report.headers and kept_for_admin else None
    bounce_id = _insert(
        session,
        {
            "received_at": now,
            "fingerprint": key,
            "kind": report.kind,
            "send_id": matched.send_id if matched else None,
            "delivery_id": matched.delivery_id if matched else None,
            "status": report.status,
            "diagnostic": report.diagnostic,
            "outcome": "",
            "recipient": recipient,
            "headers": kept_headers,
            "size": report.size,
            "source": " ".join(source.split())[:LONGEST_SOURCE],
        },
    )
    if bounce_id is None:
        earlier = session.scalars(select(Bounce).where(Bounce.fingerprint == key)).one()
        return Recorded(earlier.id, f"already processed as bounce {earlier.id}", duplicate=True)
    if isinstance(match, Unmatched):
        outcome = f"kept for an admin: {match.reason}"
    else:
        outcome = _apply(session, report, match, bounce_id, now, soft_window, soft_limit)
    session.execute(update(Bounce).where(Bounce.id == bounce_id).values(outcome=outcome))
    return Recorded(bounce_id, outcome)


def _insert(session: Session, values: dict[str, object]) -> int | None:
    """The new row's id; None when a row with this fingerprint exists already."""
    table = cast(Table, Bounce.__table__)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    inserted: int | None = session.execute(
        insert(table)
        .values(values)
        .on_conflict_do_nothing(index_elements=["fingerprint"])
        .returning(table.c.id)
    ).scalar()
    return inserted


def _apply(
    session: Session,
    report: BounceReport,
    match: Matched,
    bounce_id: int,
    now: datetime,
    soft_window: timedelta,
    soft_limit: int,
) -> str:
    delivery = f"delivery {match.delivery_id}"
    if report.kind is BounceKind.HARD:
        steps = [_mark_bounced(session, report, match, now)]
        steps.append(
            _suppress(
                session,
                match,
                SuppressionReason.HARD_BOUNCED,
                source=f"bounce {bounce_id}: {delivery} bounced",
                note=report.diagnostic or report.summary,
                now=now,
            )
        )
        return "; ".join(steps)
    if report.kind is BounceKind.SOFT:
        count = _soft_bounces(session, match.contact_id, since=now - soft_window)
        days = soft_window.days
        recorded = f"soft bounce of {delivery} recorded ({count} of {soft_limit} in {days} days)"
        if count < soft_limit:
            return recorded
        suppressed = _suppress(
            session,
            match,
            SuppressionReason.HARD_BOUNCED,
            source=f"bounce {bounce_id}: {count} soft bounces in {days} days",
            note=report.diagnostic or report.summary,
            now=now,
        )
        return f"{recorded}; {suppressed}"
    if report.kind is BounceKind.COMPLAINT:
        return _suppress(
            session,
            match,
            SuppressionReason.COMPLAINED,
            source=f"bounce {bounce_id}: abuse report on {delivery}",
            note=report.summary,
            now=now,
        )
    if report.kind is BounceKind.WARNING:
        return f"{delivery} is delayed and still being tried: nothing changed"
    if report.kind is BounceKind.AUTO_REPLY:
        return f"an automatic reply to {delivery}, not a bounce: nothing changed"
    return f"about {delivery}, but not a report this program understands: nothing changed"


def _mark_bounced(session: Session, report: BounceReport, match: Matched, now: datetime) -> str:
    """Sent, then bounced: only a delivery the relay accepted moves, and only once."""
    detail = " ".join(
        filter(None, ["bounced after it was sent:", report.status, report.diagnostic])
    )[:LONGEST_DETAIL]
    moved = session.scalars(
        update(Delivery)
        .where(Delivery.id == match.delivery_id, Delivery.state == DeliveryState.SENT)
        .values(state=DeliveryState.BOUNCED, error=detail)
        .returning(Delivery.id)
    ).all()
    if not moved:
        state = session.scalar(select(Delivery.state).where(Delivery.id == match.delivery_id))
        return f"delivery {match.delivery_id} is {state.value if state else 'gone'}: left as it is"
    session.add(
        DeliveryEvent(
            delivery_id=match.delivery_id, at=now, state=DeliveryState.BOUNCED, detail=detail
        )
    )
    return f"delivery {match.delivery_id} bounced"


def _suppress(
    session: Session,
    match: Matched,
    reason: SuppressionReason,
    *,
    source: str,
    note: str,
    now: datetime,
) -> str:
    if match.email is None:
        return "the person was forgotten: nothing to suppress"
    added = suppress(
        session,
        email=match.email,
        reason=reason,
        source=source,
        note=note[:LONGEST_DETAIL],
        now=now,
    )
    return f"address suppressed ({reason.value})" if added else "address was suppressed already"


def _soft_bounces(session: Session, contact_id: int, *, since: datetime) -> int:
    """Soft bounces of this person's deliveries since then, a delivery counted once."""
    count = session.scalar(
        select(func.count(func.distinct(Bounce.delivery_id)))
        .join(Delivery, Delivery.id == Bounce.delivery_id)
        .where(
            Delivery.contact_id == contact_id,
            Bounce.kind == BounceKind.SOFT,
            Bounce.received_at >= since,
        )
    )
    return int(count or 0)
