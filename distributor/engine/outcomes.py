"""Recording what became of each message, durably, before the next one is accepted.

Each outcome is committed on its own as soon as the relay has answered, so a worker that
dies loses at most the one message whose reply had arrived but was not yet committed: the
bound on duplicates. The update is conditional on the recording worker still being the
delivery's owner, so a worker that lost its lease cannot overwrite its successor's work,
yet one that was merely slow still records a message the relay took.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Engine, Table, bindparam, insert, update
from sqlalchemy.exc import DBAPIError, OperationalError

from distributor.models import Delivery, DeliveryEvent
from distributor.states import DeliveryState

log = logging.getLogger(__name__)

DELIVERIES = cast(Table, Delivery.__table__)
EVENTS = cast(Table, DeliveryEvent.__table__)
REPLY_LIMIT = 500  # the smtp_reply column's width; relays may answer at greater length

RECORD = (
    update(DELIVERIES)
    .where(
        DELIVERIES.c.id == bindparam("delivery_id"),
        DELIVERIES.c.lease_owner == bindparam("owner"),
        DELIVERIES.c.state.in_([DeliveryState.SENDING.value, DeliveryState.DEFERRED.value]),
    )
    .values(
        state=bindparam("new_state"),
        finished_at=bindparam("finished_at"),
        next_attempt_at=bindparam("next_attempt_at"),
        smtp_code=bindparam("code"),
        smtp_reply=bindparam("reply"),
        error=bindparam("failure"),
    )
)


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery_id: int
    state: DeliveryState
    # When the relay accepted or refused this message, by the database's clock.
    at: datetime
    smtp_code: int | None = None
    smtp_reply: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None

    @property
    def is_final(self) -> bool:
        return self.state is not DeliveryState.DEFERRED


class RecordingFailedError(Exception):
    """The database stayed out of reach for longer than a recording may wait."""


class OutcomeRecorder:
    """Commits one outcome at a time over a connection of its own.

    On PostgreSQL the connection commits asynchronously (synchronous_commit off): a commit
    returns once the server has it, without waiting for the disk, so a worker's death loses
    nothing; only a crash of the database server itself may lose the last fraction of a
    second of outcomes, which are then sent again after the lease expires.
    """

    def __init__(self, engine: Engine, *, owner: str, patience: float = 60.0) -> None:
        self._engine = engine
        self._owner = owner
        self._patience = patience
        self._connection: Connection | None = None

    def _connect(self) -> Connection:
        if self._connection is None:
            connection = self._engine.connect()
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("SET synchronous_commit = off")
                connection.commit()
            self._connection = connection
        return self._connection

    def record(self, outcome: Outcome) -> bool:
        """Commit the outcome; False when this worker no longer owns the delivery."""
        deadline = time.monotonic() + self._patience
        pause = 0.1
        while True:
            try:
                return self._commit(outcome)
            except (OperationalError, DBAPIError) as exc:
                self._discard_connection()
                if time.monotonic() + pause > deadline:
                    raise RecordingFailedError(
                        f"cannot record delivery {outcome.delivery_id} "
                        f"({outcome.state.value}): {exc}"
                    ) from exc
                log.warning(
                    "database error recording delivery %s; retrying in %.1f s",
                    outcome.delivery_id,
                    pause,
                    extra={"delivery_id": outcome.delivery_id},
                )
                time.sleep(pause)
                pause = min(pause * 2, 5.0)

    def _commit(self, outcome: Outcome) -> bool:
        connection = self._connect()
        with connection.begin():
            result = connection.execute(
                RECORD,
                {
                    "delivery_id": outcome.delivery_id,
                    "owner": self._owner,
                    "new_state": outcome.state.value,
                    "finished_at": outcome.at if outcome.is_final else None,
                    "next_attempt_at": outcome.next_attempt_at,
                    "code": outcome.smtp_code,
                    "reply": outcome.smtp_reply[:REPLY_LIMIT] if outcome.smtp_reply else None,
                    "failure": outcome.error,
                },
            )
            if result.rowcount != 1:
                return False
            connection.execute(
                insert(EVENTS),
                {
                    "delivery_id": outcome.delivery_id,
                    "at": outcome.at,
                    "state": outcome.state,
                    "detail": outcome.smtp_reply or outcome.error,
                },
            )
        return True

    def _discard_connection(self) -> None:
        if self._connection is not None:
            try:
                self._connection.invalidate()
                self._connection.close()
            except Exception:  # noqa: S110 - the connection is already broken
                pass
            self._connection = None

    def close(self) -> None:
        if self._connection is not None:
            try:
                if self._connection.dialect.name == "postgresql":
                    self._connection.exec_driver_sql("RESET synchronous_commit")
                    self._connection.commit()
                self._connection.close()
            except Exception:  # noqa: S110 - closing after a failure
                pass
            self._connection = None
