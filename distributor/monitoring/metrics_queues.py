"""Batches waiting for a worker on each Celery queue, as the database records them.

The scheduler marks a batch `queued_at` when it puts its message on the broker, and the
worker that takes it holds its lease. A batch of an armed send that is queued, held by no
worker and still has due work is waiting on its queue. The broker's messages carry no time
of sending, so the age of the oldest is read here: the time since the batch became due
(queued, and no earlier than the moment it was meant to reach a worker, just before its
embargo).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from distributor.engine.claims import is_due
from distributor.engine.dispatch import notice_queue_name
from distributor.models import Delivery, Send, SendBatch
from distributor.states import SendState


@dataclass(frozen=True, slots=True)
class QueueFigures:
    queue: str
    batches_waiting: int
    # When the batch that has waited longest became due; None when nothing waits.
    oldest_due_at: datetime | None

    def oldest_age_seconds(self, now: datetime) -> float:
        if self.oldest_due_at is None:
            return 0.0
        return max((now - self.oldest_due_at).total_seconds(), 0.0)


def waiting_batches(
    session: Session, *, queue_name: str, now: datetime, prepare_ahead: timedelta
) -> list[QueueFigures]:
    """Both queues of the installation: the bulk one and the notices' one."""
    has_due_work = exists().where(
        Delivery.send_id == SendBatch.send_id,
        Delivery.batch_no == SendBatch.batch_no,
        is_due(now),
    )
    rows = session.execute(
        select(Send.kind, SendBatch.queued_at, Send.embargo_at)
        .join(Send, Send.id == SendBatch.send_id)
        .where(
            Send.state == SendState.ARMED,
            SendBatch.queued_at.is_not(None),
            SendBatch.lease_owner.is_(None),
            has_due_work,
        )
    ).all()
    notices = notice_queue_name(queue_name)
    waiting: dict[str, list[datetime]] = {queue_name: [], notices: []}
    for kind, queued_at, embargo_at in rows:
        if queued_at is None:  # excluded by the query; the column may be empty elsewhere
            continue
        waiting[notices if kind.is_notice else queue_name].append(
            max(queued_at, embargo_at - prepare_ahead)
        )
    return [
        QueueFigures(queue=queue, batches_waiting=len(due), oldest_due_at=min(due, default=None))
        for queue, due in waiting.items()
    ]
