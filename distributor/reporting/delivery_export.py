"""Every delivery of a release as CSV rows, read a chunk at a time.

Each chunk is read in a session of its own, keyed on the delivery id, so that a long export
holds no transaction open and may be produced across threads, as a streamed response is.
Cells that a spreadsheet would run as a formula are protected as the contacts export does.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from distributor.contacts.reading import protect_cell
from distributor.models import Contact, Delivery, Outlet, Send

CHUNK = 2_000
COLUMNS = (
    "send_id",
    "send_kind",
    "delivery_id",
    "email",
    "name",
    "outlet",
    "state",
    "attempts",
    "claimed_at",
    "finished_at",
    "seconds_after_embargo",
    "next_attempt_at",
    "smtp_code",
    "smtp_reply",
    "error",
)


def _utc(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def _chunk(session: Session, release_id: int, after: int) -> list[Any]:
    return list(
        session.execute(
            select(
                Send.id,
                Send.kind,
                Delivery.id,
                Contact.email,
                Contact.name,
                func.coalesce(Outlet.name, ""),
                Delivery.state,
                Delivery.attempts,
                Delivery.claimed_at,
                Delivery.finished_at,
                Send.embargo_at,
                Delivery.next_attempt_at,
                Delivery.smtp_code,
                Delivery.smtp_reply,
                Delivery.error,
            )
            .join(Send, Send.id == Delivery.send_id)
            .join(Contact, Contact.id == Delivery.contact_id)
            .outerjoin(Outlet, Outlet.id == Contact.outlet_id)
            .where(Send.release_id == release_id, Delivery.id > after)
            .order_by(Delivery.id)
            .limit(CHUNK)
        )
    )


def delivery_rows(sessions: Callable[[], Session], release_id: int) -> Iterator[list[object]]:
    """The release's deliveries in id order, one list of cells (as COLUMNS) each."""
    after = 0
    while True:
        with sessions() as session:
            chunk = _chunk(session, release_id, after)
        for row in chunk:
            (send_id, kind, delivery_id, email, name, outlet, state, attempts, claimed_at) = row[:9]
            finished_at, embargo_at, next_attempt_at, code, reply, error = row[9:]
            after_embargo = (
                f"{(finished_at - embargo_at).total_seconds():.3f}" if finished_at else ""
            )
            yield [
                send_id,
                kind.value,
                delivery_id,
                email,
                name,
                outlet,
                state.value,
                attempts,
                _utc(claimed_at),
                _utc(finished_at),
                after_embargo,
                _utc(next_attempt_at),
                code if code is not None else "",
                reply or "",
                error or "",
            ]
        if len(chunk) < CHUNK:
            return
        after = chunk[-1][2]


def csv_text(rows: Iterable[list[object]], *, lines_per_piece: int = 500) -> Iterator[str]:
    """The header and the rows as CSV text, a few hundred lines a piece."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for written, row in enumerate(rows, start=1):
        writer.writerow([protect_cell(c) if isinstance(c, str) else c for c in row])
        if written % lines_per_piece == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
