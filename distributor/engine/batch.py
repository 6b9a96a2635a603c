"""Sending one batch under its lease: claim a chunk, build and transmit each message, and
commit each outcome before the next message is accepted.

Whatever happens, every delivery ends somewhere that says why: sent with the relay's reply;
deferred with the reply and the next attempt; failed or bounced with the reason; or handed
back, untouched and without an attempt charged, when the worker stops, loses its lease or
finds the relay down.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from distributor.clock import Clock, sleep_until
from distributor.engine.claims import (
    ClaimedDelivery,
    SendSnapshot,
    claim_deliveries,
    load_send,
    seconds_until_embargo,
)
from distributor.engine.dbclock import (
    ClockOffset,
    CorrectedClock,
    DatabaseClock,
    measure_offset,
    read_database_time,
    warn_if_skewed,
)
from distributor.engine.dispatch import BatchRef
from distributor.engine.heartbeats import beat
from distributor.engine.leases import (
    LeaseKeeper,
    hand_back,
    lease_holder,
    release_batch,
    take_batch,
)
from distributor.engine.outcomes import Outcome, OutcomeRecorder
from distributor.engine.relay_health import record_outage, record_recovery, relay_state
from distributor.engine.retries import RetryPolicy, judge_failure
from distributor.errors import RelayUnavailableError, TransportError
from distributor.message import BuiltMessage, Recipient
from distributor.states import DeliveryState, SendState
from distributor.suppression import suppress
from distributor.transport import Envelope, MailTransport
from distributor.vocabulary import SuppressionReason

log = logging.getLogger(__name__)
T = TypeVar("T")

FIRST_CHUNK = 20
# Connection failures in a row, each after a short pause, before the relay counts as down.
OUTAGE_AFTER = 3
RECONNECT_PAUSE = 0.5

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


class _Interrupted(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _RelayDown(Exception):
    def __init__(self, error: TransportError) -> None:
        super().__init__(str(error))
        self.error = error


def deliver_batch(job: BatchJob, *, parts: SendingParts, transport: MailTransport) -> BatchReport:
    report = BatchReport(job.send_id, job.batch_no)
    ids = {"send_id": job.send_id, "batch_no": job.batch_no}
    with parts.sessions() as session:
        snapshot = load_send(session, job.send_id)
    if snapshot is None or snapshot.state is not SendState.ARMED:
        report.skipped_reason = (
            f"send is {snapshot.state.value}, not armed" if snapshot else "send does not exist"
        )
        log.info("batch skipped: %s", report.skipped_reason, extra=ids)
        return report
    with parts.sessions.begin() as session:
        offset = measure_offset(session, parts.database_clock, parts.local_clock)
        now = read_database_time(session, parts.database_clock)
        taken = take_batch(session, batch=job.batch, owner=parts.owner, now=now, lease=job.lease)
        holder = None if taken else lease_holder(session, job.batch)
        beat(
            session,
            name=parts.owner,
            kind="worker",
            now=now,
            offset=offset,
            detail=f"send {job.send_id} batch {job.batch_no}",
        )
    warn_if_skewed(offset, process=parts.owner)
    if not taken:
        # Another live worker has it (a broker message delivered twice): leave it be.
        report.skipped_reason = f"held by {holder}"
        log.info("batch skipped: %s", report.skipped_reason, extra=ids)
        return report
    log.info("batch started", extra=ids)
    try:
        with LeaseKeeper(
            parts.sessions,
            parts.database_clock,
            batch=job.batch,
            owner=parts.owner,
            lease=job.lease,
            on_renewal=lambda s: beat(
                s,
                name=parts.owner,
                kind="worker",
                now=read_database_time(s, parts.database_clock),
                offset=offset,
                detail=f"send {job.send_id} batch {job.batch_no}",
            ),
        ) as keeper:
            _Sender(job, parts, transport, snapshot, keeper, offset, report).run()
    finally:
        _give_back(job, parts, report)
    log.info(
        "batch finished: %d sent, %d deferred, %d failed, %d bounced, %d handed back%s",
        report.sent,
        report.deferred,
        report.failed,
        report.bounced,
        report.handed_back,
        f" ({report.stopped_reason})" if report.stopped_reason else "",
        extra=ids,
    )
    return report


class _Sender:
    def __init__(
        self,
        job: BatchJob,
        parts: SendingParts,
        transport: MailTransport,
        snapshot: SendSnapshot,
        keeper: LeaseKeeper,
        offset: ClockOffset,
        report: BatchReport,
    ) -> None:
        self.job, self.parts, self.transport = job, parts, transport
        self.snapshot, self.keeper, self.report = snapshot, keeper, report
        self.clock = CorrectedClock(parts.local_clock, offset)
        self.recorder = OutcomeRecorder(parts.engine, owner=parts.owner, patience=parts.db_patience)
        self.relay_was_down = False

    def run(self) -> None:
        # Everything that does not depend on the embargo is done before it lifts.
        build = self.parts.make_builder(self.snapshot)
        with self.parts.sessions() as session:
            self.relay_was_down = relay_state(session).consecutive_outages > 0
        with contextlib.suppress(TransportError):
            self.transport.connect()  # tried again, with the outage rules, at the first message
        started = self.clock.now()
        sleep_until(self.clock, self.snapshot.embargo_at, at_most=self.job.max_wait.total_seconds())
        # One budget for the whole wait: this sleep and any "not yet" from the database after.
        waited = max((self.clock.now() - started).total_seconds(), 0.0)
        try:
            self._send_all(build, waited=waited)
        except _Interrupted as stop:
            self.report.stopped_reason = stop.reason
        except _RelayDown as down:
            self.report.stopped_reason = f"relay unavailable: {down.error}"
            self._rest_relay(down.error)
        finally:
            self.recorder.close()

    def _check(self) -> None:
        if self.keeper.lost:
            raise _Interrupted("lease lost to a takeover")
        if self.parts.should_stop():
            raise _Interrupted("worker shutting down")
        if time.monotonic() > self.job.deadline:
            raise _Interrupted("the task's time is nearly up")

    def _send_all(self, build: BuildMessage, *, waited: float) -> None:
        chunk = min(FIRST_CHUNK, self.job.claim_chunk)
        waited_for_embargo = waited
        while True:
            self._check()
            claimed = self._claim(chunk)
            if not claimed:
                # The database may still say "not yet" to a worker whose clock runs ahead.
                wait = self._with_database(
                    lambda s: seconds_until_embargo(s, self.job.send_id, self.parts.database_clock)
                )
                if wait and waited_for_embargo < self.job.max_wait.total_seconds():
                    pause = min(wait, 0.5)
                    self.clock.sleep(pause)
                    waited_for_embargo += pause
                    continue
                return
            chunk = self.job.claim_chunk
            for delivery in claimed:
                self._check()
                outcome = self._transmit(delivery, build)
                self._record(delivery, outcome)

    def _claim(self, limit: int) -> list[ClaimedDelivery]:
        def claim(session: Session) -> list[ClaimedDelivery]:
            return claim_deliveries(
                session,
                batch=self.job.batch,
                owner=self.parts.owner,
                clock=self.parts.database_clock,
                now=read_database_time(session, self.parts.database_clock),
                limit=limit,
            )

        return self._with_database(claim, write=True)

    def _with_database(self, work: Callable[[Session], T], *, write: bool = False) -> T:
        return with_database(
            self.parts.sessions, work, write=write, patience=self.parts.db_patience
        )

    def _transmit(self, delivery: ClaimedDelivery, build: BuildMessage) -> Outcome:
        delivery_id = delivery.delivery_id
        try:
            built = build(delivery.recipient)
        except Exception as exc:
            log.exception("cannot build delivery %s", delivery_id, extra=self._ids(delivery_id))
            return Outcome(
                delivery_id, DeliveryState.FAILED, self.clock.now(), error=f"cannot build: {exc}"
            )
        envelope = Envelope(
            sender=built.envelope_sender, recipient=delivery.recipient.email, data=built.data
        )
        failures = 0
        while True:
            try:
                reply = self.transport.send(envelope)
            except RelayUnavailableError as exc:
                failures += 1
                if failures >= OUTAGE_AFTER:
                    raise _RelayDown(exc) from exc
                self.clock.sleep(RECONNECT_PAUSE * failures)
                self._check()
                continue
            except TransportError as exc:
                return self._failure(delivery, exc)
            except Exception as exc:
                # Whatever went wrong, this message ends with a reason and the batch goes on
                # on a fresh connection.
                log.exception("unexpected error sending delivery %s", delivery_id)
                self.transport.close()
                return Outcome(
                    delivery_id,
                    DeliveryState.FAILED,
                    self.clock.now(),
                    error=f"unexpected error: {type(exc).__name__}: {exc}",
                )
            return Outcome(
                delivery_id,
                DeliveryState.SENT,
                self.clock.now(),
                smtp_code=_code_of(reply),
                smtp_reply=reply,
            )

    def _failure(self, delivery: ClaimedDelivery, error: TransportError) -> Outcome:
        now = self.clock.now()
        verdict = judge_failure(
            error,
            attempt=delivery.attempt,
            first_claimed_at=delivery.first_claimed_at,
            now=now,
            policy=self.parts.retry,
        )
        level = logging.INFO if verdict.state is DeliveryState.DEFERRED else logging.WARNING
        log.log(
            level,
            "delivery %s %s: %s",
            delivery.delivery_id,
            verdict.state.value,
            verdict.reason,
            extra={**self._ids(delivery.delivery_id), "smtp_code": error.code},
        )
        if verdict.hard_bounce:
            self._with_database(
                lambda s: suppress(
                    s,
                    email=delivery.recipient.email,
                    reason=SuppressionReason.HARD_BOUNCED,
                    source=f"relay reply to delivery {delivery.delivery_id}",
                    now=now,
                    note=verdict.reason[:500],
                ),
                write=True,
            )
        return Outcome(
            delivery.delivery_id,
            verdict.state,
            now,
            smtp_code=error.code,
            error=verdict.reason,
            next_attempt_at=verdict.next_attempt_at,
        )

    def _record(self, delivery: ClaimedDelivery, outcome: Outcome) -> None:
        if not self.recorder.record(outcome):
            log.warning(
                "delivery %s was taken over before its outcome (%s) was recorded",
                delivery.delivery_id,
                outcome.state.value,
                extra=self._ids(delivery.delivery_id),
            )
            return
        self.report.count(outcome)
        if outcome.state is DeliveryState.SENT and self.relay_was_down:
            self.relay_was_down = False
            self._with_database(lambda s: record_recovery(s, now=outcome.at), write=True)
            log.info("the mail relay accepts messages again", extra=self._ids(None))

    def _rest_relay(self, error: TransportError) -> None:
        def rest(session: Session) -> None:
            now = read_database_time(session, self.parts.database_clock)
            retry_at = record_outage(
                session, now=now, error=str(error), first_wait=self.parts.relay_first_wait
            )
            self.report.handed_back += hand_back(
                session,
                batch=self.job.batch,
                owner=self.parts.owner,
                now=now,
                retry_at=retry_at,
                detail=f"relay unavailable, not counted as an attempt: {error}",
            )
            log.error(
                "mail relay unavailable (%s); batch handed back until %s",
                error,
                retry_at.isoformat(timespec="seconds"),
                extra=self._ids(None),
            )

        self._with_database(rest, write=True)

    def _ids(self, delivery_id: int | None) -> dict[str, int | None]:
        return {
            "send_id": self.job.send_id,
            "batch_no": self.job.batch_no,
            "delivery_id": delivery_id,
        }


def _give_back(job: BatchJob, parts: SendingParts, report: BatchReport) -> None:
    """Hand back whatever is claimed but unsent, and release the lease, so that the
    scheduler can queue the rest at once rather than after the lease runs out."""

    def give_back(session: Session) -> None:
        now = read_database_time(session, parts.database_clock)
        report.handed_back += hand_back(
            session,
            batch=job.batch,
            owner=parts.owner,
            now=now,
            detail=f"handed back unsent: {report.stopped_reason or 'batch ended'}",
        )
        release_batch(session, batch=job.batch, owner=parts.owner)

    try:
        with_database(parts.sessions, give_back, write=True, patience=parts.db_patience)
    except (OperationalError, DBAPIError):
        log.exception(
            "cannot hand back send %s batch %s; its lease will expire and it will be taken over",
            job.send_id,
            job.batch_no,
            extra={"send_id": job.send_id, "batch_no": job.batch_no},
        )


def with_database(
    sessions: sessionmaker[Session],
    work: Callable[[Session], T],
    *,
    write: bool,
    patience: float,
) -> T:
    """Run `work` in a transaction, again on a fresh connection while the database is out of
    reach (a restart, a terminated connection), for up to `patience` seconds."""
    deadline = time.monotonic() + patience
    pause = 0.1
    while True:
        try:
            if write:
                with sessions.begin() as session:
                    return work(session)
            with sessions() as session:
                return work(session)
        except (OperationalError, DBAPIError) as exc:
            if not exc.connection_invalidated and not isinstance(exc, OperationalError):
                raise
            if time.monotonic() + pause > deadline:
                raise
            log.warning("database error (%s); retrying in %.1f s", exc.orig, pause)
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


def _code_of(reply: str) -> int | None:
    head = reply[:3]
    return int(head) if head.isdigit() else None
