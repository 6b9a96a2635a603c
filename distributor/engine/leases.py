"""Batch leases: which live worker holds a batch, and taking a batch over from a dead one.

A worker takes a batch's lease before it claims anything in it and renews it from a
background thread while it lives. A worker that dies (SIGKILL, out of memory, machine gone)
stops renewing; once the lease has expired the scheduler turns the deliveries it held in
`sending` into `deferred`, due at once, and queues the batch again for another worker. The
old worker's identity stays on those deliveries until they are claimed again, so a worker
that was only slow can still record what it sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, Table, and_, exists, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from distributor.database import rows_affected
from distributor.engine.claims import is_due
from distributor.engine.dbclock import DatabaseClock, read_database_time
from distributor.engine.dispatch import BatchRef
from distributor.models import Delivery, DeliveryEvent, SendBatch
from distributor.states import DeliveryState

log = logging.getLogger(__name__)

EVENTS = cast(Table, DeliveryEvent.__table__)


def _this_batch(batch: BatchRef) -> ColumnElement[bool]:
    return and_(SendBatch.send_id == batch.send_id, SendBatch.batch_no == batch.batch_no)


def take_batch(
    session: Session, *, batch: BatchRef, owner: str, now: datetime, lease: timedelta
) -> bool:
    """Take the batch's lease if no worker holds it; True when taken.

    An expired lease is not taken here: its worker may have left deliveries in `sending`,
    and only the scheduler's takeover (take_over_expired_batches) puts those back in line.
    """
    result = session.execute(
        update(SendBatch)
        .where(_this_batch(batch), SendBatch.lease_owner.is_(None))
        .values(lease_owner=owner, lease_expires_at=now + lease)
    )
    return rows_affected(result) == 1


def renew_batch(
    session: Session, *, batch: BatchRef, owner: str, now: datetime, lease: timedelta
) -> bool:
    """Extend the lease; False when this worker no longer holds it (it was taken over)."""
    result = session.execute(
        update(SendBatch)
        .where(_this_batch(batch), SendBatch.lease_owner == owner)
        .values(lease_expires_at=now + lease)
    )
    return rows_affected(result) == 1


def lease_holder(session: Session, batch: BatchRef) -> str | None:
    holder: str | None = session.scalar(select(SendBatch.lease_owner).where(_this_batch(batch)))
    return holder


def hand_back(
    session: Session,
    *,
    batch: BatchRef,
    owner: str,
    now: datetime,
    detail: str,
    retry_at: datetime | None = None,
    cancelled: bool = False,
) -> int:
    """Return this worker's claimed but untransmitted deliveries, without using an attempt.

    With `retry_at` they wait as deferred until then (the relay is down); without it they are
    pending again at once (a graceful stop, a pause); of a cancelled send, they are cancelled.
    """
    state = DeliveryState.DEFERRED if retry_at is not None else DeliveryState.PENDING
    if cancelled:
        state, retry_at = DeliveryState.CANCELLED, None
    ids = session.scalars(
        update(Delivery)
        .where(
            Delivery.send_id == batch.send_id,
            Delivery.batch_no == batch.batch_no,
            Delivery.state == DeliveryState.SENDING,
            Delivery.lease_owner == owner,
        )
        .values(
            state=state,
            attempts=Delivery.attempts - 1,
            next_attempt_at=retry_at,
            finished_at=now if cancelled else None,
        )
        .returning(Delivery.id)
    ).all()
    if ids:
        session.execute(
            insert(EVENTS),
            [{"delivery_id": i, "at": now, "state": state, "detail": detail} for i in sorted(ids)],
        )
    return len(ids)


def release_batch(session: Session, *, batch: BatchRef, owner: str) -> None:
    """Give the lease up; the scheduler queues the batch again if due work remains."""
    session.execute(
        update(SendBatch)
        .where(_this_batch(batch), SendBatch.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None, queued_at=None)
    )


@dataclass(frozen=True, slots=True)
class Takeover:
    batch: BatchRef
    dead_owner: str
    deliveries: int


def take_over_expired_batches(session: Session, *, now: datetime) -> list[Takeover]:
    """Free batches whose lease expired; what their worker held becomes due again now."""
    expired = session.execute(
        select(SendBatch.send_id, SendBatch.batch_no, SendBatch.lease_owner)
        .where(SendBatch.lease_owner.is_not(None), SendBatch.lease_expires_at <= now)
        .order_by(SendBatch.send_id, SendBatch.batch_no)
    ).all()
    takeovers = []
    for send_id, batch_no, owner in expired:
        batch = BatchRef(send_id, batch_no)
        freed = session.execute(
            update(SendBatch)
            .where(
                _this_batch(batch),
                SendBatch.lease_owner == owner,
                SendBatch.lease_expires_at <= now,
            )
            .values(lease_owner=None, lease_expires_at=None, queued_at=None)
        )
        if rows_affected(freed) != 1:
            continue  # renewed or freed by another scheduler meanwhile
        detail = (
            f"lease of {owner} expired: the worker stopped while sending; whether the relay "
            "took this message is unknown, so it is sent again"
        )
        ids = session.scalars(
            update(Delivery)
            .where(
                Delivery.send_id == send_id,
                Delivery.batch_no == batch_no,
                Delivery.state == DeliveryState.SENDING,
            )
            .values(state=DeliveryState.DEFERRED, next_attempt_at=now, error=detail)
            .returning(Delivery.id)
        ).all()
        if ids:
            session.execute(
                insert(EVENTS),
                [
                    {"delivery_id": i, "at": now, "state": DeliveryState.DEFERRED, "detail": detail}
                    for i in sorted(ids)
                ],
            )
        takeovers.append(Takeover(batch, str(owner), len(ids)))
    return takeovers


def renew_leases(session: Session, *, owner: str, now: datetime, lease: timedelta) -> set[BatchRef]:
    """Extend every lease this worker holds, in one statement; returns the batches held."""
    rows = session.execute(
        update(SendBatch)
        .where(SendBatch.lease_owner == owner)
        .values(lease_expires_at=now + lease)
        .returning(SendBatch.send_id, SendBatch.batch_no)
    ).all()
    return {BatchRef(send_id, batch_no) for send_id, batch_no in rows}


class LeaseKeeper:
    """Renews this worker's batch leases from a background thread while it sends.

    Renewal proves only that the process lives; a stuck process is ended by the task's time
    limit, after which its leases expire like any other. A batch found no longer held (taken
    over after a stall) marks the keeper `lost`: the worker then sends nothing more.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: DatabaseClock,
        *,
        batch: BatchRef,
        owner: str,
        lease: timedelta,
        on_renewal: Callable[[Session], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._held = {batch}
        self._guard = threading.Lock()
        self._owner = owner
        self._lease = lease
        self._on_renewal = on_renewal
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._renewed = time.monotonic()  # the lease was taken just before
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    @property
    def lost(self) -> bool:
        """True once a lease was found taken over, or has gone unrenewed for as long as it
        lasts (this process stalled, or the database was out of reach): send nothing more."""
        overdue = time.monotonic() - self._renewed > self._lease.total_seconds()
        return self._lost.is_set() or overdue

    def hold(self, batch: BatchRef) -> None:
        with self._guard:
            self._held.add(batch)

    def let_go(self, batch: BatchRef) -> None:
        with self._guard:
            self._held.discard(batch)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        interval = self._lease.total_seconds() / 3
        while not self._stop.wait(interval):
            with self._guard:
                expected = set(self._held)
            try:
                with self._sessions.begin() as session:
                    now = read_database_time(session, self._clock)
                    held = renew_leases(session, owner=self._owner, now=now, lease=self._lease)
                    if self._on_renewal is not None:
                        self._on_renewal(session)
            except Exception:
                # The database may be back before the lease runs out: keep trying.
                log.warning("cannot renew the leases of %s; retrying", self._owner, exc_info=True)
                continue
            with self._guard:
                missing = (expected & self._held) - held
            if not missing:
                self._renewed = time.monotonic()
            if missing:
                for batch in sorted(missing, key=lambda b: (b.send_id, b.batch_no)):
                    log.error(
                        "lost the lease on send %s batch %s to a takeover; stopping",
                        batch.send_id,
                        batch.batch_no,
                        extra={"send_id": batch.send_id, "batch_no": batch.batch_no},
                    )
                self._lost.set()
                return


def take_free_batch(
    session: Session, *, send_id: int, owner: str, now: datetime, lease: timedelta
) -> BatchRef | None:
    """Take the first batch of the send that no worker holds and that has work due now: how a
    worker that finished early helps with what is left."""
    has_due_work = exists().where(
        Delivery.send_id == SendBatch.send_id,
        Delivery.batch_no == SendBatch.batch_no,
        is_due(now),
    )
    candidates = session.scalars(
        select(SendBatch.batch_no)
        .where(SendBatch.send_id == send_id, SendBatch.lease_owner.is_(None), has_due_work)
        .order_by(SendBatch.batch_no)
        .limit(3)
    ).all()
    for batch_no in candidates:
        batch = BatchRef(send_id, batch_no)
        if take_batch(session, batch=batch, owner=owner, now=now, lease=lease):
            return batch
    return None


def batch_has_due_work(session: Session, batch: BatchRef, now: datetime) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    Delivery.send_id == batch.send_id,
                    Delivery.batch_no == batch.batch_no,
                    is_due(now),
                )
            )
        )
    )
