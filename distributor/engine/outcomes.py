"""Recording what became of each message, durably, before the next one is accepted.

Each outcome is committed on its own as soon as the relay has answered, so a worker that
dies loses at most the one message whose reply had arrived but was not yet committed: the
bound on duplicates. The update is conditional on the recording worker still being the
delivery's owner, so a worker that lost its lease cannot overwrite its successor's work,
yet one that was merely slow still records a message the relay took.

Each attempt also leaves a history row with the relay's reply code, in the same statement:
the delivery keeps only its last reply, and /metrics counts every one (a deferral tried
again later included) from the history.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, Table, bindparam, insert, update
from sqlalchemy.exc import DBAPIError, OperationalError

from distributor.models import Delivery, DeliveryEvent
from distributor.states import DeliveryState

log = logging.getLogger(__name__)

DELIVERIES: Table = Delivery.__table__  # type: ignore[assignment]
EVENTS: Table = DeliveryEvent.__table__  # type: ignore[assignment]
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

# PostgreSQL: a group of outcomes as arrays, the update and its history rows in one statement.
RECORD_GROUP = """
WITH outcome AS (
    SELECT * FROM unnest(
        %(ids)s::integer[], %(states)s::text[], %(finished)s::timestamptz[],
        %(next)s::timestamptz[], %(codes)s::integer[], %(replies)s::text[],
        %(failures)s::text[], %(ats)s::timestamptz[]
    ) AS o(id, state, finished_at, next_attempt_at, code, reply, failure, at)
), recorded AS (
    UPDATE deliveries AS d
    SET state = outcome.state, finished_at = outcome.finished_at,
        next_attempt_at = outcome.next_attempt_at, smtp_code = outcome.code,
        smtp_reply = outcome.reply, error = outcome.failure
    FROM outcome
    WHERE d.id = outcome.id AND d.lease_owner = %(owner)s
      AND d.state IN ('sending', 'deferred')
    RETURNING d.id
)
INSERT INTO delivery_events (delivery_id, at, state, detail, smtp_code)
SELECT outcome.id, outcome.at, outcome.state, coalesce(outcome.reply, outcome.failure),
    outcome.code
FROM outcome JOIN recorded ON recorded.id = outcome.id
RETURNING delivery_id
"""


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
    # A mailbox that does not exist: its address goes on the suppression list.
    hard_bounce: bool = False

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
        return self.record_many([outcome])[0]

    def record_many(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Commit several outcomes in one transaction (a group commit); for each, whether it
        was recorded (False: another worker owns the delivery now)."""
        deadline = time.monotonic() + self._patience
        pause = 0.1
        while True:
            try:
                return self._commit(outcomes)
            except DBAPIError as exc:
                if not (isinstance(exc, OperationalError) or exc.connection_invalidated):
                    raise  # a mistake in the statement, not an outage: no use waiting
                self._discard_connection()
                if time.monotonic() + pause > deadline:
                    ids = ", ".join(str(o.delivery_id) for o in outcomes)
                    raise RecordingFailedError(f"cannot record deliveries {ids}: {exc}") from exc
                log.warning(
                    "database error recording %d outcome(s); retrying in %.1f s",
                    len(outcomes),
                    pause,
                    extra={"delivery_id": outcomes[0].delivery_id},
                )
                time.sleep(pause)
                pause = min(pause * 2, 5.0)

    def _commit(self, outcomes: Sequence[Outcome]) -> list[bool]:
        connection = self._connect()
        with connection.begin():
            if connection.dialect.name == "postgresql":
                recorded = self._apply_in_one_statement(connection, outcomes)
            else:
                recorded = {o.delivery_id for o in outcomes if self._apply(connection, o)}
        return [o.delivery_id in recorded for o in outcomes]

    def _apply_in_one_statement(
        self, connection: Connection, outcomes: Sequence[Outcome]
    ) -> set[int]:
        """The whole group in one statement of fixed text (so the server keeps it prepared):
        two round trips with the commit, however many outcomes the group holds."""
        parameters = {
            "owner": self._owner,
            "ids": [o.delivery_id for o in outcomes],
            "states": [o.state.value for o in outcomes],
            "finished": [o.at if o.is_final else None for o in outcomes],
            "next": [o.next_attempt_at for o in outcomes],
            "codes": [o.smtp_code for o in outcomes],
            "replies": [o.smtp_reply[:REPLY_LIMIT] if o.smtp_reply else None for o in outcomes],
            "failures": [o.error for o in outcomes],
            "ats": [o.at for o in outcomes],
        }
        return set(connection.exec_driver_sql(RECORD_GROUP, parameters).scalars())

    def _apply(self, connection: Connection, outcome: Outcome) -> bool:
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
                "smtp_code": outcome.smtp_code,
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


class GroupRecorder:
    """Commits the outcomes of many connections together, from a thread of its own.

    Each connection submits its outcome and waits for the commit before its next message is
    accepted, so the bound on duplicates stays one per connection; meanwhile the other
    connections' outcomes join the same transaction, so a commit serves many messages.
    """

    def __init__(
        self, recorder: OutcomeRecorder, *, connections: int = 1, linger: float = 0.002
    ) -> None:
        self._recorder = recorder
        # A group is committed once every connection waits on it, or after `linger` seconds:
        # a commit costs as much for one outcome as for sixteen (make bench, "What leases and
        # per-message recording cost").
        self._connections = connections
        self._linger = linger
        self._pending: list[tuple[Outcome, Future[bool]]] = []
        self._wake = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="outcome-recorder", daemon=True)
        self._thread.start()

    def submit(self, outcome: Outcome) -> Future[bool]:
        future: Future[bool] = Future()
        with self._wake:
            if self._closing:
                raise RuntimeError("the recorder is closed")
            self._pending.append((outcome, future))
            self._wake.notify()
        return future

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closing:
                    self._wake.wait()
                if not self._pending and self._closing:
                    return
                if self._connections > 1:
                    deadline = time.monotonic() + self._linger
                    while len(self._pending) < self._connections and not self._closing:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._wake.wait(left)
                group, self._pending = self._pending, []
            try:
                results = self._recorder.record_many([outcome for outcome, _ in group])
            except BaseException as exc:
                for _, future in group:
                    future.set_exception(exc)
                continue
            for (_, future), recorded in zip(group, results, strict=True):
                future.set_result(recorded)

    def close(self) -> None:
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join()
        self._recorder.close()
