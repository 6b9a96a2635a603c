"""Handing batches to workers, behind an interface the scheduler can use without Celery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BatchRef:
    send_id: int
    batch_no: int


def notice_queue_name(queue_name: str) -> str:
    """The queue of notices (embargo lifted, moved, withdrawn): short sends that a bulk send
    must never hold up, so a worker can be given to them alone."""
    return f"{queue_name}.notices"


class BatchDispatcher(Protocol):
    def dispatch(self, batch: BatchRef, *, not_before: datetime, urgent: bool = False) -> None:
        """Queue the batch for a worker; `not_before` is at most a few minutes away; an
        urgent batch (a notice) goes on the notice queue."""
        ...


class RecordingDispatcher:
    """Keeps what it was given, for tests and for running batches in-process."""

    def __init__(self) -> None:
        self.dispatched: list[tuple[BatchRef, datetime]] = []
        self.urgent: list[BatchRef] = []

    def dispatch(self, batch: BatchRef, *, not_before: datetime, urgent: bool = False) -> None:
        self.dispatched.append((batch, not_before))
        if urgent:
            self.urgent.append(batch)
