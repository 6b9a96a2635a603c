"""The scheduler tick under failure, and the database's clock as the one judge of the embargo."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from distributor.clock import ManualClock, SystemClock
from distributor.engine.batch import deliver_batch
from distributor.engine.dbclock import ServerClock
from distributor.engine.dispatch import BatchRef
from distributor.engine.heartbeats import recent_heartbeats
from distributor.engine.leases import release_batch, renew_batch, take_batch
from distributor.engine.tick import expire_stale_deferrals
from distributor.errors import TransportError
from distributor.runtime import Runtime
from distributor.states import DeliveryState
from distributor.transport import Envelope, InMemoryTransport
from tests.support.engine import (
    EMBARGO,
    LEASE,
    add_audience,
    armed_send,
    batch_job,
    batch_row,
    deliveries_by_email,
    delivery_history,
    run_batch,
    run_tick,
    schedule,
)

OWNER = "worker:host-a:101:aaaaaa"
BUSY = TransportError("421 4.3.2 too busy, try again later", code=421, temporary=True)


def test_deliveries_still_deferred_when_the_retry_window_closes_fail_as_expired(
    runtime: Runtime,
) -> None:
    send_id, emails = armed_send(runtime, 3)
    busy = set(emails[:2])

    def refuse(envelope: Envelope) -> TransportError | None:
        return BUSY if envelope.recipient in busy else None

    report = run_batch(
        runtime, batch_job(runtime, send_id), ManualClock(EMBARGO), InMemoryTransport(refuse=refuse)
    )
    assert (report.sent, report.deferred) == (1, 2)
    window = runtime.scheduler_policy.retry_window
    assert window == timedelta(hours=2)

    # Two hours to the instant after the first attempt, they may still be tried.
    with runtime.sessions.begin() as session:
        assert expire_stale_deferrals(session, now=EMBARGO + window, window=window) == 0
    closed = EMBARGO + window + timedelta(seconds=1)
    report = run_tick(runtime, closed)

    assert report.expired == 2
    # Nothing is left waiting, so the same tick completes the send.
    assert report.completed == [send_id]
    expired = "expired: not delivered within 2 h of the first attempt"
    rows = deliveries_by_email(runtime, send_id)
    for email in busy:
        delivery = rows[email]
        assert (delivery.state, delivery.finished_at, delivery.next_attempt_at) == (
            DeliveryState.FAILED,
            closed,
            None,
        )
        assert delivery.error == f"{BUSY}; {expired}"
        assert delivery_history(runtime, delivery.id)[-1] == (DeliveryState.FAILED, expired)
    assert rows[emails[2]].state is DeliveryState.SENT


def test_a_batch_a_live_worker_holds_is_not_queued_again_until_it_lets_go(
    runtime: Runtime,
) -> None:
    send_id, _ = armed_send(runtime, 3)
    batch = BatchRef(send_id, 0)
    redispatch = runtime.scheduler_policy.redispatch_after
    with runtime.sessions.begin() as session:
        assert take_batch(session, batch=batch, owner=OWNER, now=EMBARGO, lease=LEASE)
    # The worker is alive and renewing; its broker message is long past the redispatch wait.
    renewed_at = EMBARGO + redispatch
    with runtime.sessions.begin() as session:
        assert renew_batch(session, batch=batch, owner=OWNER, now=renewed_at, lease=LEASE)

    report = run_tick(runtime, renewed_at + timedelta(seconds=10))

    assert (report.dispatched, report.takeovers) == ([], [])
    assert batch_row(runtime, send_id, 0).lease_owner == OWNER

    # It lets go with work left (it was stopped): the next tick queues the batch at once.
    with runtime.sessions.begin() as session:
        release_batch(session, batch=batch, owner=OWNER)
    at = renewed_at + timedelta(seconds=11)
    assert run_tick(runtime, at).dispatched == [batch]
    assert batch_row(runtime, send_id, 0).queued_at == at


class ClockAhead(SystemClock):
    """A worker machine whose clock runs five seconds fast."""

    def now(self) -> datetime:
        return super().now() + timedelta(seconds=5)


def test_a_worker_whose_clock_runs_ahead_sends_nothing_before_the_database_says_so(
    runtime: Runtime,
) -> None:
    release_id, emails = add_audience(runtime, 3, now=datetime.now(UTC))
    start = datetime.now(UTC)
    embargo = start + timedelta(seconds=2)
    send_id = schedule(runtime, release_id, embargo_at=embargo, now=start)
    assert run_tick(runtime, start).armed == [send_id]
    handed_over_at: list[float] = []

    def note_time(envelope: Envelope) -> None:
        handed_over_at.append(time.time())

    transport = InMemoryTransport(refuse=note_time)
    parts = replace(runtime.sending_parts(), local_clock=ClockAhead())
    assert parts.database_clock == ServerClock(runtime.engine.dialect.name)

    report = deliver_batch(
        replace(runtime.batch_job(send_id, 0), max_wait=timedelta(seconds=15)),
        parts=parts,
        transport=transport,
    )

    assert report.sent == 3
    assert sorted(e.recipient for e in transport.sent) == sorted(emails)
    assert len(handed_over_at) == 3
    assert min(handed_over_at) >= embargo.timestamp()
    # ...and it did not give up: everything went within moments of the embargo.
    assert max(handed_over_at) < embargo.timestamp() + 3
    for delivery in deliveries_by_email(runtime, send_id).values():
        assert delivery.claimed_at is not None and delivery.claimed_at >= embargo
    # The worker's clock offset is there for `distributor status` to warn about.
    with runtime.sessions() as session:
        (worker,) = recent_heartbeats(session, now=datetime.now(UTC))
    assert worker.kind == "worker"
    assert 4500 <= worker.clock_offset_ms <= 5500
