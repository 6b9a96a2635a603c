"""The send engine driven by hand: a worker on a manual clock, claims taken under a lease."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from distributor.clock import Clock, ManualClock
from distributor.contacts_import import ContactRow, ParsedContacts, import_contacts
from distributor.engine.batch import BatchJob, BatchReport, SendingParts, deliver_batch
from distributor.engine.claims import ClaimedDelivery, claim_deliveries
from distributor.engine.dbclock import FollowingClock
from distributor.engine.dispatch import BatchRef, RecordingDispatcher
from distributor.engine.leases import release_batch, renew_batch, take_batch
from distributor.engine.outcomes import Outcome, OutcomeRecorder
from distributor.engine.tick import TickReport, tick
from distributor.lists import add_to_list, create_list
from distributor.models import Contact, Delivery, DeliveryEvent, Send, SendBatch
from distributor.releases import create_release
from distributor.runtime import Runtime
from distributor.scheduling import schedule_send
from distributor.states import DeliveryState
from distributor.transport import MailTransport
from tests.conftest import SAMPLE_DRAFT

# The worker identity of claims made directly in tests.
TEST_OWNER = "worker:test-host:1:abc123"
OTHER_OWNER = "worker:other-host:2:def456"
LEASE = timedelta(seconds=15)
NOW = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)
EMBARGO = NOW + timedelta(minutes=30)
LIST_NAME = "Desks"


def manual_parts(rt: Runtime, clock: Clock, **changes: Any) -> SendingParts:
    """A worker whose clock and whose idea of the database's clock are both `clock`."""
    return replace(
        rt.sending_parts(), database_clock=FollowingClock(clock), local_clock=clock, **changes
    )


def run_batch(
    rt: Runtime, job: BatchJob, clock: Clock, transport: MailTransport, **changes: Any
) -> BatchReport:
    return deliver_batch(job, parts=manual_parts(rt, clock, **changes), transport=transport)


def claim_for_test(
    session: Session,
    send_id: int,
    batch_no: int,
    now: datetime,
    limit: int,
    owner: str = TEST_OWNER,
) -> list[ClaimedDelivery]:
    """Take (or keep) the batch's lease as `owner`, then claim at `now` by the database's clock.

    A batch another live worker holds stays theirs: the claim then finds nothing.
    """
    batch = BatchRef(send_id, batch_no)
    if not take_batch(session, batch=batch, owner=owner, now=now, lease=LEASE):
        renew_batch(session, batch=batch, owner=owner, now=now, lease=LEASE)
    return claim_deliveries(
        session,
        batch=batch,
        owner=owner,
        clock=FollowingClock(ManualClock(now)),
        now=now,
        limit=limit,
    )


def batch_row(rt: Runtime, send_id: int, batch_no: int) -> SendBatch:
    with rt.sessions() as session:
        row = session.get(SendBatch, (send_id, batch_no))
        assert row is not None
        return row


def delivery_history(rt: Runtime, delivery_id: int) -> list[tuple[DeliveryState, str | None]]:
    with rt.sessions() as session:
        return [
            (state, detail)
            for state, detail in session.execute(
                select(DeliveryEvent.state, DeliveryEvent.detail)
                .where(DeliveryEvent.delivery_id == delivery_id)
                .order_by(DeliveryEvent.id)
            )
        ]


def add_audience(rt: Runtime, count: int, *, now: datetime = NOW) -> tuple[int, list[str]]:
    """`count` contacts on the list "Desks" and a release; returns its id and the addresses."""
    rows = [
        ContactRow(line=i + 2, email=f"editor{i}@daily{i % 3}.example.com", name=f"Editor {i}")
        for i in range(count)
    ]
    with rt.sessions.begin() as session:
        import_contacts(session, ParsedContacts(rows=rows), now=now)
        create_list(session, LIST_NAME, now=now)
        add_to_list(session, LIST_NAME, [r.email for r in rows])
        return create_release(session, SAMPLE_DRAFT, now=now).id, [r.email for r in rows]


def schedule(
    rt: Runtime,
    release_id: int,
    *,
    embargo_at: datetime = EMBARGO,
    now: datetime = NOW,
    batch_size: int = 100,
) -> int:
    with rt.sessions.begin() as session:
        return schedule_send(
            session,
            release_id=release_id,
            list_names=[LIST_NAME],
            embargo_at=embargo_at,
            embargo_zone="Europe/London",
            now=now,
            batch_size=batch_size,
            again=True,  # several sends of one release, on purpose
        ).send_id


def run_tick(
    rt: Runtime, now: datetime, dispatcher: RecordingDispatcher | None = None
) -> TickReport:
    """One scheduler tick at `now` (the database's time) with the runtime's policy."""
    return tick(
        rt.sessions, dispatcher or RecordingDispatcher(), now=now, policy=rt.scheduler_policy
    )


def armed_send(rt: Runtime, count: int, *, batch_size: int = 100) -> tuple[int, list[str]]:
    """A send of `count` contacts, armed and queued by a tick ten seconds before its embargo."""
    release_id, emails = add_audience(rt, count)
    send_id = schedule(rt, release_id, batch_size=batch_size)
    report = run_tick(rt, EMBARGO - timedelta(seconds=10))
    assert report.armed == [send_id]
    return send_id, emails


def batch_job(rt: Runtime, send_id: int, batch_no: int = 0, **changes: Any) -> BatchJob:
    """The runtime's job for the batch; a worker that does not wait for the embargo."""
    return replace(rt.batch_job(send_id, batch_no), **{"max_wait": timedelta(0), **changes})


def deliveries_by_email(rt: Runtime, send_id: int) -> dict[str, Delivery]:
    with rt.sessions() as session:
        return {
            email: delivery
            for delivery, email in session.execute(
                select(Delivery, Contact.email)
                .join(Contact, Contact.id == Delivery.contact_id)
                .where(Delivery.send_id == send_id)
                .order_by(Delivery.id)
            )
        }


def send_row(rt: Runtime, send_id: int) -> Send:
    with rt.sessions() as session:
        send = session.get(Send, send_id)
        assert send is not None
        return send


def wait_until(condition: Callable[[], bool], *, timeout: float = 10.0, what: str = "") -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what or condition}")
        time.sleep(0.02)


@contextmanager
def held_by_another_worker(
    rt: Runtime, send_id: int, batch_nos: list[int], *, at: datetime
) -> Iterator[None]:
    """These batches are in another live worker's hands meanwhile, so a worker sending the
    send's other batches cannot take them; they are let go afterwards."""
    batches = [BatchRef(send_id, n) for n in batch_nos]
    with rt.sessions.begin() as session:
        for batch in batches:
            assert take_batch(session, batch=batch, owner=OTHER_OWNER, now=at, lease=LEASE)
    try:
        yield
    finally:
        with rt.sessions.begin() as session:
            for batch in batches:
                release_batch(session, batch=batch, owner=OTHER_OWNER)


def send_by_hand(rt: Runtime, send_id: int, batch_no: int, *, at: datetime) -> list[int]:
    """A worker that takes one batch, has every message of it accepted at `at`, and lets go."""
    with rt.sessions.begin() as session:
        claimed = [c.delivery_id for c in claim_for_test(session, send_id, batch_no, at, 10_000)]
    recorder = OutcomeRecorder(rt.engine, owner=TEST_OWNER)
    try:
        for delivery_id in claimed:
            accepted = Outcome(delivery_id, DeliveryState.SENT, at, 250, "250 accepted")
            assert recorder.record(accepted)
    finally:
        recorder.close()
    with rt.sessions.begin() as session:
        release_batch(session, batch=BatchRef(send_id, batch_no), owner=TEST_OWNER)
    return claimed
