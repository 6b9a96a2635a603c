"""Claiming deliveries: no two workers ever hold the same one, and none before the embargo."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from distributor.contacts_import import ContactRow, ParsedContacts, import_contacts
from distributor.database import make_engine, make_session_factory
from distributor.engine.claims import ClaimedDelivery
from distributor.engine.dispatch import RecordingDispatcher
from distributor.engine.outcomes import Outcome, OutcomeRecorder
from distributor.engine.tick import SchedulerPolicy, tick
from distributor.lists import add_to_list, create_list
from distributor.models import Delivery, DeliveryEvent, Send
from distributor.releases import create_release
from distributor.runtime import Runtime
from distributor.scheduling import cancel_send, schedule_send
from distributor.states import DeliveryState
from tests.conftest import SAMPLE_DRAFT
from tests.support.engine import TEST_OWNER, claim_for_test

NOW = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)
EMBARGO = NOW + timedelta(minutes=30)
POLICY = SchedulerPolicy(arm_lead=timedelta(seconds=10), redispatch_after=timedelta(minutes=5))


def scheduled_send(rt: Runtime, count: int, *, batch_size: int = 1000) -> int:
    rows = [
        ContactRow(line=i + 2, email=f"hack{i}@gazette.example.com", name=f"Hack {i}", outlet="")
        for i in range(count)
    ]
    with rt.sessions.begin() as session:
        import_contacts(session, ParsedContacts(rows=rows), now=NOW)
        create_list(session, "Gazette", now=NOW)
        add_to_list(session, "Gazette", [r.email for r in rows])
        release_id = create_release(session, SAMPLE_DRAFT, now=NOW).id
        return schedule_send(
            session,
            release_id=release_id,
            list_names=["Gazette"],
            embargo_at=EMBARGO,
            embargo_zone="UTC",
            now=NOW,
            batch_size=batch_size,
            again=True,  # several sends of one release, on purpose
        ).send_id


def schedule_again(rt: Runtime, release_id: int) -> int:
    with rt.sessions.begin() as session:
        return schedule_send(
            session,
            release_id=release_id,
            list_names=["Gazette"],
            embargo_at=EMBARGO,
            embargo_zone="UTC",
            now=NOW,
            batch_size=1000,
            again=True,  # several sends of one release, on purpose
        ).send_id


def arm(rt: Runtime) -> None:
    report = tick(
        rt.sessions, RecordingDispatcher(), now=EMBARGO - timedelta(seconds=5), policy=POLICY
    )
    assert report.armed


def claim(rt: Runtime, send_id: int, *, now: datetime, limit: int = 100) -> list[ClaimedDelivery]:
    with rt.sessions.begin() as session:
        return claim_for_test(session, send_id, 0, now, limit)


def delivery_ids(rt: Runtime, send_id: int) -> set[int]:
    with rt.sessions() as session:
        return set(session.scalars(select(Delivery.id).where(Delivery.send_id == send_id)))


def states(rt: Runtime) -> Counter[DeliveryState]:
    with rt.sessions() as session:
        return Counter(session.scalars(select(Delivery.state)))


def test_a_claim_takes_pending_deliveries_of_its_batch_up_to_the_limit(runtime: Runtime) -> None:
    send_id = scheduled_send(runtime, 16, batch_size=12)
    arm(runtime)

    chunks = [claim(runtime, send_id, now=EMBARGO, limit=5) for _ in range(4)]

    assert [len(c) for c in chunks] == [5, 5, 2, 0]
    claimed = [r.delivery_id for c in chunks for r in c]
    with runtime.sessions() as session:
        batch_of = dict(session.execute(select(Delivery.id, Delivery.batch_no)).all())
    assert sorted(claimed) == sorted(i for i, b in batch_of.items() if b == 0)
    assert {r.recipient.email for c in chunks for r in c} == {
        f"hack{i}@gazette.example.com" for i in range(12)
    }
    assert {r.recipient.name for c in chunks for r in c} == {f"Hack {i}" for i in range(12)}
    assert {(r.attempt, r.first_claimed_at) for c in chunks for r in c} == {(1, EMBARGO)}
    assert states(runtime) == {DeliveryState.SENDING: 12, DeliveryState.PENDING: 4}
    with runtime.sessions() as session:
        taken = session.scalars(select(Delivery).where(Delivery.batch_no == 0)).all()
        assert {(d.attempts, d.claimed_at, d.lease_owner) for d in taken} == {
            (1, EMBARGO, TEST_OWNER)
        }
        sending = session.execute(
            select(DeliveryEvent.delivery_id, DeliveryEvent.detail).where(
                DeliveryEvent.state == DeliveryState.SENDING
            )
        ).all()
    # Each claim is in the history, naming the worker that made it.
    assert sorted(sending) == sorted((i, TEST_OWNER) for i in claimed)

    # What was sent is never claimed again, not even much later.
    recorder = OutcomeRecorder(runtime.engine, owner=TEST_OWNER)
    try:
        for i in claimed:
            assert recorder.record(Outcome(i, DeliveryState.SENT, EMBARGO, smtp_reply="250 ok"))
    finally:
        recorder.close()
    assert claim(runtime, send_id, now=EMBARGO + timedelta(minutes=10)) == []
    assert states(runtime) == {DeliveryState.SENT: 12, DeliveryState.PENDING: 4}


def test_nothing_is_claimed_before_the_embargo_or_before_the_send_is_armed(
    runtime: Runtime,
) -> None:
    send_id = scheduled_send(runtime, 6)

    # Not armed (the scheduler was down): even past the embargo, nothing goes.
    assert claim(runtime, send_id, now=EMBARGO + timedelta(minutes=1)) == []
    arm(runtime)
    # Armed, but early, by seconds or by a microsecond.
    for early in (EMBARGO - timedelta(seconds=5), EMBARGO - timedelta(microseconds=1)):
        assert claim(runtime, send_id, now=early) == []

    assert states(runtime) == {DeliveryState.PENDING: 6}
    with runtime.sessions() as session:
        assert set(session.scalars(select(Delivery.attempts))) == {0}
        assert set(session.scalars(select(DeliveryEvent.state))) == {DeliveryState.PENDING}
    assert len(claim(runtime, send_id, now=EMBARGO)) == 6


def test_nothing_is_claimed_for_a_cancelled_send(runtime: Runtime) -> None:
    send_id = scheduled_send(runtime, 6)
    arm(runtime)
    with runtime.sessions.begin() as session:
        cancel_send(session, send_id=send_id, now=EMBARGO - timedelta(seconds=1))

    assert claim(runtime, send_id, now=EMBARGO) == []
    assert claim(runtime, send_id, now=EMBARGO + timedelta(minutes=10)) == []
    assert states(runtime) == {DeliveryState.CANCELLED: 6}


def claim_from_two_threads(
    database_url: str, send_id: int, *, limit: int, owners: tuple[str, str]
) -> list[list[int]]:
    """Two claimers, each with its own engine, claiming the same batch until it is empty."""
    barrier = threading.Barrier(2, timeout=30)
    engines = [make_engine(database_url) for _ in range(2)]

    def worker(index: int) -> list[int]:
        sessions = make_session_factory(engines[index])
        with sessions() as session:  # connect before the start line
            session.execute(select(1))
        barrier.wait()
        got: list[int] = []
        while True:
            with sessions.begin() as session:
                chunk = claim_for_test(session, send_id, 0, EMBARGO, limit, owner=owners[index])
            if not chunk:
                return got
            got.extend(r.delivery_id for r in chunk)

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(worker, range(2)))
    finally:
        for engine in engines:
            engine.dispose()


@pytest.mark.parametrize(
    "owners",
    [
        # Two threads under one lease: the claim statement alone keeps them apart.
        pytest.param((TEST_OWNER, TEST_OWNER), id="one-lease"),
        # Two workers: the first to take the batch's lease claims it all.
        pytest.param(("worker:a:1:aaaaaa", "worker:b:2:bbbbbb"), id="two-workers"),
    ],
)
def test_two_workers_claiming_at_once_never_share_a_delivery(
    runtime: Runtime, database_url: str, owners: tuple[str, str]
) -> None:
    first_send = scheduled_send(runtime, 60)
    with runtime.sessions.begin() as session:
        release_id = session.scalars(select(Send.release_id)).one()
    sends = [first_send] + [schedule_again(runtime, release_id) for _ in range(2)]
    arm(runtime)

    for send_id, limit in zip(sends, (1, 7, 500), strict=True):
        first, second = claim_from_two_threads(database_url, send_id, limit=limit, owners=owners)

        assert set(first).isdisjoint(second), f"limit {limit}"
        assert len(first) == len(set(first)) and len(second) == len(set(second))
        assert set(first) | set(second) == delivery_ids(runtime, send_id), f"limit {limit}"
        if owners[0] != owners[1]:
            assert sorted(map(len, (first, second))) == [0, 60], f"limit {limit}"

    assert states(runtime) == {DeliveryState.SENDING: 180}
    with runtime.sessions() as session:
        assert set(session.scalars(select(Delivery.attempts))) == {1}
        events = Counter(
            session.scalars(
                select(DeliveryEvent.delivery_id).where(
                    DeliveryEvent.state == DeliveryState.SENDING
                )
            )
        )
    assert events == dict.fromkeys(set().union(*(delivery_ids(runtime, s) for s in sends)), 1)
