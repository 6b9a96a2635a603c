"""Handing batches to workers, behind an interface the scheduler can use without Celery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BatchRef:
    send_id: int
    batch_no: int


class BatchDispatcher(Protocol):
    def dispatch(self, batch: BatchRef, *, not_before: datetime) -> None:
        """Queue the batch for a worker; `not_before` is at most a few minutes away."""
        ...


class RecordingDispatcher:
    """Keeps what it was given, for tests and for running batches in-process."""

    def __init__(self) -> None:
        self.dispatched: list[tuple[BatchRef, datetime]] = []

    def dispatch(self, batch: BatchRef, *, not_before: datetime) -> None:
        self.dispatched.append((batch, not_before))
