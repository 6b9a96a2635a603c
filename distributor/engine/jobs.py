"""What a batch task works with: the job, the worker's parts, and the report it returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from distributor.clock import Clock
from distributor.engine.claims import SendSnapshot
from distributor.engine.dbclock import DatabaseClock
from distributor.engine.dispatch import BatchRef
from distributor.engine.outcomes import Outcome
from distributor.engine.pacing import UNLIMITED, Pacer
from distributor.engine.retries import RetryPolicy
from distributor.message import BuiltMessage, Recipient
from distributor.states import DeliveryState

# Builds one message (its bytes and its VERP envelope sender) from the send's prepared release.
BuildMessage = Callable[[Recipient], BuiltMessage]


@dataclass(slots=True)
class BatchReport:
    send_id: int
    batch_no: int
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    bounced: int = 0
    handed_back: int = 0
    skipped_reason: str | None = None
    stopped_reason: str | None = None
    errors: list[str] = field(default_factory=list)
    connections: int = 0  # relay connections that carried at least one message
    round_trips: int = 0  # waits for the relay, over all connections

    def count(self, outcome: Outcome) -> None:
        if outcome.state is DeliveryState.SENT:
            self.sent += 1
        elif outcome.state is DeliveryState.DEFERRED:
            self.deferred += 1
        elif outcome.state is DeliveryState.BOUNCED:
            self.bounced += 1
        else:
            self.failed += 1
        if outcome.error and outcome.state is not DeliveryState.SENT:
            self.errors.append(outcome.error)


@dataclass(frozen=True, slots=True)
class BatchJob:
    batch: BatchRef
    claim_chunk: int
    # How long a batch that arrived early may wait for its embargo (the arming lead).
    max_wait: timedelta
    lease: timedelta
    # time.monotonic() after which no new message is begun: well inside the task's time limit.
    deadline: float

    @property
    def send_id(self) -> int:
        return self.batch.send_id

    @property
    def batch_no(self) -> int:
        return self.batch.batch_no


@dataclass(frozen=True, slots=True)
class SendingParts:
    """What a worker process brings to every batch it sends."""

    sessions: sessionmaker[Session]
    engine: Engine
    database_clock: DatabaseClock
    local_clock: Clock
    make_builder: Callable[[SendSnapshot], BuildMessage]
    retry: RetryPolicy
    relay_first_wait: timedelta
    owner: str  # this process's identity on leases and claims
    should_stop: Callable[[], bool] = lambda: False
    db_patience: float = 60.0  # how long to retry a database that is out of reach
    # The installation's rate limit, connection cap and daily quota, shared with every process.
    pacer: Pacer = UNLIMITED
