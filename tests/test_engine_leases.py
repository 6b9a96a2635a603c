"""Batch leases: one live worker per batch, a dead worker's batch taken over, a slow one heard."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from distributor.clock import ManualClock
from distributor.engine.dbclock import ServerClock, read_database_time
from distributor.engine.dispatch import BatchRef
from distributor.engine.leases import (
    LeaseKeeper,
    Takeover,
    lease_holder,
    take_batch,
    take_over_expired_batches,
)
from distributor.engine.outcomes import Outcome, OutcomeRecorder
from distributor.models import SendBatch
from distributor.runtime import Runtime
from distributor.states import DeliveryState
from distributor.transport import Envelope, InMemoryTransport
from tests.support.engine import (
    EMBARGO,
    LEASE,
    armed_send,
    batch_job,
    batch_row,
    claim_for_test,
    deliveries_by_email,
    delivery_history,
    run_batch,
    run_tick,
    wait_until,
)

FIRST = "worker:host-a:101:aaaaaa"
SECOND = "worker:host-b:202:bbbbbb"


def test_a_batch_held_by_a_live_worker_is_left_alone_by_a_second_one(runtime: Runtime) -> None:
    # The broker delivered the batch's message twice, to two workers.
    send_id, _ = armed_send(runtime, 5)
    batch = BatchRef(send_id, 0)
    with runtime.sessions.begin() as session:
        assert take_batch(session, batch=batch, owner=FIRST, now=EMBARGO, lease=LEASE)
    with runtime.sessions.begin() as session:
        assert not take_batch(
            session, batch=batch, owner=SECOND, now=EMBARGO + timedelta(seconds=5), lease=LEASE
        )
        assert lease_holder(session, batch) == FIRST
    transport = InMemoryTransport()

    report = run_batch(
        runtime,
        batch_job(runtime, send_id),
        ManualClock(EMBARGO + timedelta(seconds=1)),
        transport,
        owner=SECOND,
    )

    assert report.skipped_reason == f"held by {FIRST}"
    assert (report.sent, report.handed_back) == (0, 0)
    assert (transport.connected, transport.sent) == (False, [])
    rows = deliveries_by_email(runtime, send_id).values()
    assert {(d.state, d.attempts) for d in rows} == {(DeliveryState.PENDING, 0)}
    held = batch_row(runtime, send_id, 0)
    assert (held.lease_owner, held.lease_expires_at) == (FIRST, EMBARGO + LEASE)

    # Even once the lease has run out, the batch waits for the scheduler's takeover...
    expired_at = EMBARGO + LEASE
    with runtime.sessions.begin() as session:
        assert not take_batch(session, batch=batch, owner=SECOND, now=expired_at, lease=LEASE)
    assert run_tick(runtime, expired_at).takeovers == [Takeover(batch, FIRST, 0)]
    # ...after which another worker may take it.
    with runtime.sessions.begin() as session:
        assert take_batch(session, batch=batch, owner=SECOND, now=expired_at, lease=LEASE)
        assert lease_holder(session, batch) == SECOND


def test_a_dead_workers_batch_is_taken_over_yet_a_slow_worker_still_records_what_it_sent(
    runtime: Runtime,
) -> None:
    send_id, _ = armed_send(runtime, 4)
    with runtime.sessions.begin() as session:
        claimed = [c.delivery_id for c in claim_for_test(session, send_id, 0, EMBARGO, 10, FIRST)]
    assert len(claimed) == 4
    old = OutcomeRecorder(runtime.engine, owner=FIRST)
    try:
        sent_at = EMBARGO + timedelta(seconds=1)
        assert old.record(Outcome(claimed[0], DeliveryState.SENT, sent_at, 250, "250 ok"))

        # The first worker stops renewing its lease; once it has run out, a tick takes over.
        expired_at = EMBARGO + LEASE
        report = run_tick(runtime, expired_at)

        assert report.takeovers == [Takeover(BatchRef(send_id, 0), FIRST, 3)]
        assert report.dispatched == [BatchRef(send_id, 0)]
        freed = batch_row(runtime, send_id, 0)
        assert (freed.lease_owner, freed.queued_at) == (None, expired_at)
        rows = {d.id: d for d in deliveries_by_email(runtime, send_id).values()}
        assert rows[claimed[0]].state is DeliveryState.SENT
        for delivery_id in claimed[1:]:
            taken = rows[delivery_id]
            # Whether the relay got it is unknown: it goes again, due at once, attempt spent.
            assert (taken.state, taken.next_attempt_at, taken.attempts) == (
                DeliveryState.DEFERRED,
                expired_at,
                1,
            )
            assert taken.error is not None and f"lease of {FIRST} expired" in taken.error
            assert delivery_history(runtime, delivery_id)[-1] == (
                DeliveryState.DEFERRED,
                taken.error,
            )

        # The first worker was only slow: the message it had sent is still recorded as sent.
        late = expired_at + timedelta(seconds=1)
        assert old.record(Outcome(claimed[1], DeliveryState.SENT, late, 250, "250 late but ok"))

        # The next worker claims what is left, and from then on the first is not heard.
        with runtime.sessions.begin() as session:
            retaken = claim_for_test(session, send_id, 0, late, 10, SECOND)
        assert [c.delivery_id for c in retaken] == claimed[2:]
        assert {c.attempt for c in retaken} == {2}
        assert not old.record(Outcome(claimed[2], DeliveryState.SENT, late, 250, "250 too late"))
    finally:
        old.close()

    rows = {d.id: d for d in deliveries_by_email(runtime, send_id).values()}
    assert (rows[claimed[1]].state, rows[claimed[1]].smtp_reply) == (
        DeliveryState.SENT,
        "250 late but ok",
    )
    assert (rows[claimed[2]].state, rows[claimed[2]].lease_owner, rows[claimed[2]].smtp_reply) == (
        DeliveryState.SENDING,
        SECOND,
        None,
    )


def test_a_worker_that_finds_a_lease_expired_leaves_the_batch_to_the_takeover(
    runtime: Runtime,
) -> None:
    # A worker claimed two deliveries and died; its lease ran out, and before any tick the
    # broker hands the batch's message to another worker.
    send_id, emails = armed_send(runtime, 4)
    with runtime.sessions.begin() as session:
        assert len(claim_for_test(session, send_id, 0, EMBARGO, 2, FIRST)) == 2
    expired_at = EMBARGO + LEASE + timedelta(seconds=1)
    transport = InMemoryTransport()

    report = run_batch(runtime, batch_job(runtime, send_id), ManualClock(expired_at), transport)

    # It does not work around the dead worker's deliveries, which would then be lost in
    # `sending` for good; the scheduler takes the batch over and queues it again.
    assert report.skipped_reason == f"held by {FIRST}"
    assert transport.sent == []
    tick = run_tick(runtime, expired_at)
    assert tick.takeovers == [Takeover(BatchRef(send_id, 0), FIRST, 2)]
    assert tick.dispatched == [BatchRef(send_id, 0)]

    report = run_batch(runtime, batch_job(runtime, send_id), ManualClock(expired_at), transport)

    assert report.sent == 4
    assert Counter(e.recipient for e in transport.sent) == dict.fromkeys(emails, 1)
    rows = deliveries_by_email(runtime, send_id)
    assert sorted(d.attempts for d in rows.values()) == [1, 1, 2, 2]
    assert run_tick(runtime, expired_at + timedelta(seconds=1)).completed == [send_id]


def test_a_lease_keeper_renews_the_lease_and_notices_when_it_is_taken(runtime: Runtime) -> None:
    send_id, _ = armed_send(runtime, 2)
    batch = BatchRef(send_id, 0)
    clock = ServerClock(runtime.engine.dialect.name)
    lease = timedelta(seconds=0.6)  # renewed every 0.2 s
    with runtime.sessions.begin() as session:
        now = read_database_time(session, clock)
        assert take_batch(session, batch=batch, owner=FIRST, now=now, lease=lease)
    renewals: list[str] = []

    def expiry() -> datetime:
        expires_at = batch_row(runtime, send_id, 0).lease_expires_at
        assert expires_at is not None
        return expires_at

    first_expiry = expiry()

    with LeaseKeeper(
        runtime.sessions,
        clock,
        batch=batch,
        owner=FIRST,
        lease=lease,
        on_renewal=lambda _session: renewals.append(FIRST),
    ) as keeper:
        wait_until(lambda: expiry() > first_expiry, what="the lease to be renewed")
        assert not keeper.lost
        # A scheduler whose view is a minute on finds the lease expired (as after a stall of
        # the process) and takes the batch over; another worker takes it.
        with runtime.sessions.begin() as session:
            later = read_database_time(session, clock) + timedelta(minutes=1)
            assert take_over_expired_batches(session, now=later) == [Takeover(batch, FIRST, 0)]
            assert take_batch(session, batch=batch, owner=SECOND, now=later, lease=lease)
        wait_until(lambda: keeper.lost, what="the keeper to notice the takeover")

    assert renewals
    # The keeper gave up rather than take the batch back.
    assert batch_row(runtime, send_id, 0).lease_owner == SECOND


def test_a_worker_asked_to_stop_hands_back_what_it_has_not_sent(runtime: Runtime) -> None:
    # Twelve deliveries; the worker claims ten, sends four, then is asked to shut down.
    send_id, emails = armed_send(runtime, 12)
    assert batch_row(runtime, send_id, 0).queued_at is not None
    transport = InMemoryTransport()

    report = run_batch(
        runtime,
        batch_job(runtime, send_id),
        ManualClock(EMBARGO),
        transport,
        should_stop=lambda: len(transport.sent) >= 4,
    )

    assert (report.sent, report.handed_back, report.failed) == (4, 6, 0)
    assert report.stopped_reason == "worker shutting down"
    assert len(transport.sent) == 4
    rows = list(deliveries_by_email(runtime, send_id).values())
    assert Counter((d.state, d.attempts) for d in rows) == {
        (DeliveryState.SENT, 1): 4,
        (DeliveryState.PENDING, 0): 8,
    }
    handed_back = [d for d in rows if d.claimed_at is not None and d.state is DeliveryState.PENDING]
    assert len(handed_back) == 6
    assert delivery_history(runtime, handed_back[0].id) == [
        (DeliveryState.PENDING, None),
        (DeliveryState.SENDING, runtime.process_identity),
        (DeliveryState.PENDING, "handed back unsent: worker shutting down"),
    ]
    # The lease is given up and the batch is free to be queued again at once.
    released = batch_row(runtime, send_id, 0)
    assert (released.lease_owner, released.lease_expires_at, released.queued_at) == (
        None,
        None,
        None,
    )

    at = EMBARGO + timedelta(seconds=1)
    assert run_tick(runtime, at).dispatched == [BatchRef(send_id, 0)]
    report = run_batch(runtime, batch_job(runtime, send_id), ManualClock(at), transport)

    assert report.sent == 8
    assert Counter(e.recipient for e in transport.sent) == dict.fromkeys(emails, 1)


def test_a_worker_whose_lease_was_taken_over_sends_nothing_more(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    send_id, emails = armed_send(runtime, 6)

    def lost() -> bool:
        return any("lost the lease" in r.getMessage() for r in caplog.records)

    def take_over(envelope: Envelope) -> None:
        # While the worker sends its third message, another worker takes its batch over, and
        # the worker's lease keeper notices at its next renewal.
        if envelope.recipient == emails[2]:
            with runtime.sessions.begin() as session:
                session.execute(
                    update(SendBatch).where(SendBatch.send_id == send_id).values(lease_owner=SECOND)
                )
            wait_until(lost, what="the lease keeper to notice the takeover")

    transport = InMemoryTransport(refuse=take_over)
    job = batch_job(runtime, send_id, lease=timedelta(seconds=0.6))  # renewed every 0.2 s

    with caplog.at_level(logging.ERROR, logger="distributor.engine.leases"):
        report = run_batch(runtime, job, ManualClock(EMBARGO), transport)

    # The message in flight is recorded; nothing after it is sent.
    assert (report.sent, report.handed_back) == (3, 3)
    assert report.stopped_reason == "lease lost to a takeover"
    assert [e.recipient for e in transport.sent] == emails[:3]
    rows = deliveries_by_email(runtime, send_id)
    assert [(rows[e].state, rows[e].attempts) for e in emails] == [
        *[(DeliveryState.SENT, 1)] * 3,
        *[(DeliveryState.PENDING, 0)] * 3,
    ]
    # The lease stays with the worker that took it.
    assert batch_row(runtime, send_id, 0).lease_owner == SECOND
