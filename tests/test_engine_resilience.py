"""The scheduler outlives a broker that refuses work, and one worker process that finished
early helps with the rest of a send."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from distributor.clock import ManualClock
from distributor.engine.dbclock import FollowingClock
from distributor.engine.dispatch import BatchRef, RecordingDispatcher
from distributor.engine.scheduler_loop import SchedulerParts, run_scheduler
from distributor.engine.tick import SchedulerPolicy
from distributor.models import Delivery, Heartbeat, SendBatch
from distributor.runtime import Runtime
from distributor.states import DeliveryState
from distributor.transport import InMemoryTransport
from tests.support.engine import (
    EMBARGO,
    add_audience,
    batch_job,
    run_batch,
    run_tick,
    schedule,
    wait_until,
)


class FlakyBroker(RecordingDispatcher):
    """Refuses the first `failures` batches, as a broker restarting would."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.lock = threading.Lock()

    def dispatch(self, batch: BatchRef, *, not_before: datetime, urgent: bool = False) -> None:
        with self.lock:
            if self.failures > 0:
                self.failures -= 1
                raise ConnectionError("broker restarting")
        super().dispatch(batch, not_before=not_before)


def test_the_scheduler_survives_a_broker_error_and_queues_the_batch_on_the_next_tick(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    release_id, _ = add_audience(runtime, 10)
    send_id = schedule(runtime, release_id, embargo_at=EMBARGO)
    clock = ManualClock(EMBARGO - timedelta(seconds=5))
    broker = FlakyBroker(failures=2)
    parts = SchedulerParts(
        sessions=runtime.sessions,
        dispatcher=broker,
        database_clock=FollowingClock(clock),
        local_clock=clock,
        policy=SchedulerPolicy(arm_lead=timedelta(seconds=10), redispatch_after=timedelta(hours=1)),
        period=0.01,
    )
    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(parts,), kwargs={"stop": stop})
    with caplog.at_level(logging.ERROR, logger="distributor.engine.scheduler_loop"):
        thread.start()
        try:
            # Despite two refusals, the batch is queued well before the hour-long redispatch
            wait_until(lambda: bool(broker.dispatched), timeout=20, what="the batch queued")
        finally:
            stop.set()
            thread.join(10)
    assert not thread.is_alive()
    assert [batch for batch, _ in broker.dispatched] == [BatchRef(send_id, 0)]
    assert sum("scheduler tick failed" in r.message for r in caplog.records) == 2
    with runtime.sessions() as session:
        assert session.scalar(select(Heartbeat.kind)) == "scheduler"


def test_a_worker_that_finished_its_batch_sends_the_other_free_batches(runtime: Runtime) -> None:
    release_id, emails = add_audience(runtime, 30)
    send_id = schedule(runtime, release_id, embargo_at=EMBARGO, batch_size=10)
    run_tick(runtime, EMBARGO - timedelta(seconds=5))
    transport = InMemoryTransport()
    # One task, for batch 0, while the broker still holds the messages for batches 1 and 2
    report = run_batch(runtime, batch_job(runtime, send_id, 0), ManualClock(EMBARGO), transport)
    assert report.sent == 30
    assert sorted(e.recipient for e in transport.sent) == sorted(emails)
    with runtime.sessions() as session:
        assert set(session.scalars(select(Delivery.state))) == {DeliveryState.SENT}
        # every lease given back; the later broker messages will find nothing due
        assert set(session.scalars(select(SendBatch.lease_owner))) == {None}
    late = run_batch(runtime, batch_job(runtime, send_id, 2), ManualClock(EMBARGO), transport)
    assert late.skipped_reason == "nothing due"
    assert len(transport.sent) == 30
