"""What came back, for `distributor bounces list`: matched or not, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from distributor.bounces.kinds import BounceKind
from distributor.models import Bounce, Contact, Delivery


@dataclass(frozen=True, slots=True)
class BounceEntry:
    bounce_id: int
    received_at: datetime
    kind: BounceKind
    send_id: int | None
    delivery_id: int | None
    # The delivery's address; for a report not matched, the address it names, if any.
    email: str | None
    status: str | None
    diagnostic: str | None
    outcome: str
    # Kept only for a report that could not be matched, or not understood.
    headers: str | None
    size: int
    source: str

    @property
    def matched(self) -> bool:
        return self.delivery_id is not None


def list_bounces(
    session: Session,
    *,
    send_id: int | None = None,
    unmatched_only: bool = False,
    limit: int = 100,
) -> Sequence[BounceEntry]:
    query = (
        select(Bounce, Contact.email, Contact.forgotten_at)
        .outerjoin(Delivery, Delivery.id == Bounce.delivery_id)
        .outerjoin(Contact, Contact.id == Delivery.contact_id)
        .order_by(Bounce.received_at.desc(), Bounce.id.desc())
        .limit(limit)
    )
    if send_id is not None:
        query = query.where(Bounce.send_id == send_id)
    if unmatched_only:
        query = query.where(Bounce.delivery_id.is_(None))
    return [
        BounceEntry(
            bounce_id=b.id,
            received_at=b.received_at,
            kind=b.kind,
            send_id=b.send_id,
            delivery_id=b.delivery_id,
            email=(email if forgotten_at is None else None) if b.delivery_id else b.recipient,
            status=b.status,
            diagnostic=b.diagnostic,
            outcome=b.outcome,
            headers=b.headers,
            size=b.size,
            source=b.source,
        )
        for b, email, forgotten_at in session.execute(query)
    ]
