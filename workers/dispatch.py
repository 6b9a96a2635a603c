"""The batch dispatcher that puts batches on the Celery queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from celery import Celery

from distributor.engine.dispatch import BatchRef
from distributor.errors import ConfigurationError

# Redis redelivers a long-ETA message after its visibility timeout; keep every ETA short.
MAX_ETA = timedelta(minutes=5)


class CeleryDispatcher:
    def __init__(self, app: Celery, *, notice_queue: str) -> None:
        self._app = app
        self._notice_queue = notice_queue

    def dispatch(self, batch: BatchRef, *, not_before: datetime, urgent: bool = False) -> None:
        if not_before - datetime.now(UTC) > MAX_ETA:
            raise ConfigurationError(
                f"refusing to queue send {batch.send_id} batch {batch.batch_no} with an ETA "
                f"more than {MAX_ETA} ahead; the scheduler arms sends shortly before the embargo"
            )
        self._app.send_task(
            "distributor.send_batch",
            args=(batch.send_id, batch.batch_no),
            eta=not_before,
            queue=self._notice_queue if urgent else None,
        )
