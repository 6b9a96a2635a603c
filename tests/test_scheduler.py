"""The scheduler tick: arming sends near the embargo and handing each batch to workers once."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from distributor.clock import ManualClock
from distributor.contacts_import import ContactRow, ParsedContacts, import_contacts
from distributor.database import make_engine, make_session_factory
from distributor.engine.dispatch import BatchRef, RecordingDispatcher
from distributor.engine.tick import SchedulerPolicy, TickReport, tick
from distributor.errors import TransportError
from distributor.lists import add_to_list, create_list
from distributor.models import Delivery, Send, SendBatch
from distributor.releases import create_release
from distributor.runtime import Runtime
from distributor.scheduling import cancel_send, schedule_send
from distributor.states import DeliveryState, SendState
from distributor.transport import InMemoryTransport
from tests.conftest import SAMPLE_DRAFT
from tests.support.engine import held_by_another_worker, run_batch, send_by_hand

NOW = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)
EMBARGO = NOW + timedelta(minutes=30)
LEAD = timedelta(seconds=10)
REDISPATCH = timedelta(seconds=60)
POLICY = SchedulerPolicy(arm_lead=LEAD, redispatch_after=REDISPATCH)
# Workers get each batch a little before the embargo, to be ready when it lifts.
READY = EMBARGO - POLICY.prepare_ahead
CONTACTS = 45  # in batches of 20: batch 0 and 1 full, batch 2 with five


@pytest.fixture
def release_id(runtime: Runtime) -> int:
    rows = [
        ContactRow(
            line=i + 2, email=f"desk{i}@wire{i % 5}.example.org", name=f"Desk {i}", outlet=""
        )
        for i in range(CONTACTS)
    ]
    with runtime.sessions.begin() as session:
        import_contacts(session, ParsedContacts(rows=rows), now=NOW)
        create_list(session, "Wires", now=NOW)
        add_to_list(session, "Wires", [r.email for r in rows])
        return create_release(session, SAMPLE_DRAFT, now=NOW).id


def schedule(rt: Runtime, release_id: int, embargo_at: datetime = EMBARGO) -> int:
    with rt.sessions.begin() as session:
        return schedule_send(
            session,
            release_id=release_id,
            list_names=["Wires"],
            embargo_at=embargo_at,
            embargo_zone="UTC",
            now=NOW,
            batch_size=20,
            again=True,  # several sends of one release, on purpose
        ).send_id


def run_tick(rt: Runtime, dispatcher: RecordingDispatcher, now: datetime) -> TickReport:
    return tick(rt.sessions, dispatcher, now=now, policy=POLICY)


def send_state(rt: Runtime, send_id: int) -> Send:
    with rt.sessions() as session:
        send = session.get(Send, send_id)
        assert send is not None
        return send


def batches(send_id: int, *numbers: int) -> list[BatchRef]:
    return [BatchRef(send_id, n) for n in numbers]


def deliver(
    rt: Runtime,
    batch: BatchRef,
    *,
    at: datetime = EMBARGO,
    transport: InMemoryTransport | None = None,
) -> None:
    run_batch(
        rt,
        replace(rt.batch_job(batch.send_id, batch.batch_no), max_wait=timedelta(0)),
        ManualClock(at),
        transport or InMemoryTransport(),
    )


def queued_at(rt: Runtime, send_id: int) -> dict[int, datetime | None]:
    with rt.sessions() as session:
        return dict(
            session.execute(
                select(SendBatch.batch_no, SendBatch.queued_at).where(SendBatch.send_id == send_id)
            ).all()
        )


def test_a_send_is_armed_within_the_lead_and_each_batch_dispatched_once_for_the_embargo(
    runtime: Runtime, release_id: int
) -> None:
    send_id = schedule(runtime, release_id)
    dispatcher = RecordingDispatcher()

    # While the embargo is further away than the lead, nothing happens.
    for now in (NOW, EMBARGO - LEAD - timedelta(microseconds=1)):
        assert run_tick(runtime, dispatcher, now) == TickReport([], [], [])
    assert dispatcher.dispatched == []
    send = send_state(runtime, send_id)
    assert (send.state, send.armed_at) == (SendState.SCHEDULED, None)
    assert queued_at(runtime, send_id) == {0: None, 1: None, 2: None}

    # Within the lead: armed, and every batch queued to go out at the embargo.
    now = EMBARGO - LEAD
    report = run_tick(runtime, dispatcher, now)

    assert report.armed == [send_id]
    assert report.dispatched == batches(send_id, 0, 1, 2)
    assert report.completed == []
    assert dispatcher.dispatched == [(b, READY) for b in batches(send_id, 0, 1, 2)]
    assert all(isinstance(b.batch_no, int) for b, _ in dispatcher.dispatched)
    send = send_state(runtime, send_id)
    assert (send.state, send.armed_at) == (SendState.ARMED, now)
    assert queued_at(runtime, send_id) == {0: now, 1: now, 2: now}

    # Later ticks find nothing new to do.
    assert run_tick(runtime, dispatcher, now) == TickReport([], [], [])
    assert run_tick(runtime, dispatcher, now + timedelta(seconds=5)) == TickReport([], [], [])
    assert len(dispatcher.dispatched) == 3


def test_a_send_the_scheduler_reaches_late_is_dispatched_for_right_now(
    runtime: Runtime, release_id: int
) -> None:
    # The scheduler was down over the embargo: the batches go at once, not in the past.
    send_id = schedule(runtime, release_id)
    dispatcher = RecordingDispatcher()
    late = EMBARGO + timedelta(minutes=2)

    run_tick(runtime, dispatcher, late)

    assert dispatcher.dispatched == [(b, late) for b in batches(send_id, 0, 1, 2)]


def test_batches_whose_work_lies_idle_are_dispatched_again(
    runtime: Runtime, release_id: int
) -> None:
    send_id = schedule(runtime, release_id)
    dispatcher = RecordingDispatcher()
    policy = SchedulerPolicy(arm_lead=timedelta(minutes=5), redispatch_after=REDISPATCH)
    first = EMBARGO - timedelta(minutes=4)
    tick(runtime.sessions, dispatcher, now=first, policy=policy)
    assert len(dispatcher.dispatched) == 3

    # Before the embargo the broker lost everything: all three go again, still for the embargo.
    quiet = tick(runtime.sessions, dispatcher, now=first + REDISPATCH, policy=policy)
    again_at = first + REDISPATCH + timedelta(seconds=1)
    again = tick(runtime.sessions, dispatcher, now=again_at, policy=policy)

    assert quiet.dispatched == []
    assert again.dispatched == batches(send_id, 0, 1, 2)
    assert dispatcher.dispatched[3:] == [(b, READY) for b in batches(send_id, 0, 1, 2)]

    # After the embargo batch 1 reached a worker and was sent; 0 and 2 were lost once more.
    send_by_hand(runtime, send_id, 1, at=EMBARGO)
    late = EMBARGO + REDISPATCH + timedelta(seconds=1)
    report = tick(runtime.sessions, dispatcher, now=late, policy=policy)

    assert report.dispatched == batches(send_id, 0, 2)
    assert dispatcher.dispatched[6:] == [(b, late) for b in batches(send_id, 0, 2)]
    assert send_state(runtime, send_id).state is SendState.ARMED
    # Once dispatched again, the wait for the next redispatch starts over.
    soon = tick(runtime.sessions, dispatcher, now=late + REDISPATCH / 2, policy=policy)
    assert soon.dispatched == []


def test_a_cancelled_send_is_never_dispatched(runtime: Runtime, release_id: int) -> None:
    cancelled_early = schedule(runtime, release_id)
    with runtime.sessions.begin() as session:
        cancel_send(session, send_id=cancelled_early, now=NOW)
    dispatcher = RecordingDispatcher()
    for seconds in (-5, 0, 100, 1000):
        report = run_tick(runtime, dispatcher, EMBARGO + timedelta(seconds=seconds))
        assert report == TickReport([], [], [])
    assert dispatcher.dispatched == []
    assert send_state(runtime, cancelled_early).state is SendState.CANCELLED

    # Cancelled after it was armed: its batches are not handed out again.
    later = EMBARGO + timedelta(hours=1)
    cancelled_armed = schedule(runtime, release_id, later)
    run_tick(runtime, dispatcher, later - LEAD)
    assert len(dispatcher.dispatched) == 3
    with runtime.sessions.begin() as session:
        cancel_send(session, send_id=cancelled_armed, now=later - timedelta(seconds=2))
    for factor in (0, 2, 5):
        report = run_tick(runtime, dispatcher, later + REDISPATCH * factor)
        assert report == TickReport([], [], [])
    assert len(dispatcher.dispatched) == 3
    assert send_state(runtime, cancelled_armed).state is SendState.CANCELLED


def test_a_send_whose_deliveries_are_all_final_becomes_completed(
    runtime: Runtime, release_id: int
) -> None:
    send_id = schedule(runtime, release_id)
    dispatcher = RecordingDispatcher()
    run_tick(runtime, dispatcher, EMBARGO - LEAD)
    refusing = InMemoryTransport(
        refuse=lambda e: (
            TransportError("550 no such user", code=550)
            if e.recipient.startswith("desk7@")
            else None
        )
    )
    # Each batch in its own worker's hands.
    with held_by_another_worker(runtime, send_id, [1, 2], at=EMBARGO):
        deliver(runtime, BatchRef(send_id, 0), transport=refusing)
    with held_by_another_worker(runtime, send_id, [2], at=EMBARGO):
        deliver(runtime, BatchRef(send_id, 1))

    # Batch 2 is still pending: the send is not complete.
    assert run_tick(runtime, dispatcher, EMBARGO + timedelta(seconds=1)).completed == []
    assert send_state(runtime, send_id).state is SendState.ARMED

    # Batch 2 is sent, but one of its deliveries is still in a worker's hands.
    deliver(runtime, BatchRef(send_id, 2))
    with runtime.sessions.begin() as session:
        one = session.scalars(select(Delivery).where(Delivery.batch_no == 2)).first()
        assert one is not None
        one.state = DeliveryState.SENDING
    assert run_tick(runtime, dispatcher, EMBARGO + timedelta(seconds=2)).completed == []

    with runtime.sessions.begin() as session:
        one = session.get(Delivery, one.id)
        assert one is not None
        one.state = DeliveryState.SENT
    done_at = EMBARGO + timedelta(seconds=3)
    report = run_tick(runtime, dispatcher, done_at)

    assert report.completed == [send_id]
    send = send_state(runtime, send_id)
    assert (send.state, send.completed_at) == (SendState.COMPLETED, done_at)
    with runtime.sessions() as session:
        states = Counter(session.scalars(select(Delivery.state)))
    assert states == {DeliveryState.SENT: CONTACTS - 1, DeliveryState.FAILED: 1}
    assert run_tick(runtime, dispatcher, done_at + timedelta(seconds=1)) == TickReport([], [], [])


def two_ticks_at_once(
    database_url: str, now: datetime
) -> tuple[list[TickReport], list[RecordingDispatcher]]:
    """Two schedulers, each with its own engine and sessions, ticking at the same instant."""
    barrier = threading.Barrier(2, timeout=30)
    engines = [make_engine(database_url) for _ in range(2)]
    dispatchers = [RecordingDispatcher(), RecordingDispatcher()]

    def one_scheduler(index: int) -> TickReport:
        sessions = make_session_factory(engines[index])
        with sessions() as session:  # connect first, so both start on the same footing
            session.execute(select(1))
        barrier.wait()
        return tick(sessions, dispatchers[index], now=now, policy=POLICY)

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            reports = list(pool.map(one_scheduler, range(2)))
    finally:
        for engine in engines:
            engine.dispose()
    return reports, dispatchers


def test_two_schedulers_ticking_at_once_dispatch_each_batch_exactly_once(
    runtime: Runtime, release_id: int, database_url: str
) -> None:
    # Arming and the first dispatch, three sends at a time.
    sends: list[int] = []
    for round_no in range(3):
        # Close enough together that no earlier round's batches are due for a redispatch.
        embargo_at = EMBARGO + timedelta(seconds=15 * round_no)
        new = [schedule(runtime, release_id, embargo_at) for _ in range(3)]
        sends += new

        reports, dispatchers = two_ticks_at_once(database_url, embargo_at - LEAD)

        armed = Counter(s for r in reports for s in r.armed)
        assert armed == dict.fromkeys(new, 1), f"round {round_no}"
        queued = Counter(b for d in dispatchers for b, _ in d.dispatched)
        expected = [b for s in new for b in batches(s, 0, 1, 2)]
        assert queued == dict.fromkeys(expected, 1), f"round {round_no}"
        assert Counter(b for r in reports for b in r.dispatched) == queued

    # Redispatching idle work, every batch of all nine sends at once.
    now = EMBARGO + timedelta(seconds=30) - LEAD
    for round_no in range(2):
        now += REDISPATCH + timedelta(seconds=1)
        _, dispatchers = two_ticks_at_once(database_url, now)
        queued = Counter(b for d in dispatchers for b, _ in d.dispatched)
        expected = [b for s in sends for b in batches(s, 0, 1, 2)]
        assert queued == dict.fromkeys(expected, 1), f"redispatch round {round_no}"
