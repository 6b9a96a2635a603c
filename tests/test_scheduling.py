"""Scheduling a release under embargo, and cancelling it, as the press officer does."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from distributor.clock import ManualClock
from distributor.contacts_import import ContactRow, ParsedContacts, import_contacts
from distributor.engine.dispatch import RecordingDispatcher
from distributor.engine.tick import SchedulerPolicy, tick
from distributor.errors import InvalidEmbargoError, InvalidStateError, NotFoundError
from distributor.lists import add_to_list, create_list
from distributor.models import Delivery, DeliveryEvent, Send, SendBatch, SendList
from distributor.releases import create_release
from distributor.runtime import Runtime
from distributor.scheduling import cancel_release, cancel_send, schedule_send
from distributor.states import DeliveryState, SendState
from distributor.transport import InMemoryTransport
from tests.conftest import SAMPLE_DRAFT
from tests.support.engine import claim_for_test, run_batch

NOW = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)
EMBARGO = NOW + timedelta(hours=1)


def add_contacts(rt: Runtime, count: int) -> list[str]:
    rows = [
        ContactRow(
            line=i + 2,
            email=f"writer{i}@paper{i % 4}.example.net",
            name=f"Writer {i}",
            outlet="Paper",
        )
        for i in range(count)
    ]
    with rt.sessions.begin() as session:
        import_contacts(session, ParsedContacts(rows=rows), now=NOW)
    return [r.email for r in rows]


def make_list(rt: Runtime, name: str, emails: list[str]) -> None:
    with rt.sessions.begin() as session:
        create_list(session, name, now=NOW)
        if emails:
            add_to_list(session, name, emails)


def make_release(rt: Runtime) -> int:
    with rt.sessions.begin() as session:
        return create_release(session, SAMPLE_DRAFT, now=NOW).id


def schedule(
    rt: Runtime,
    release_id: int,
    lists: list[str],
    *,
    embargo_at: datetime = EMBARGO,
    batch_size: int = 20,
) -> int:
    with rt.sessions.begin() as session:
        scheduled = schedule_send(
            session,
            release_id=release_id,
            list_names=lists,
            embargo_at=embargo_at,
            embargo_zone="Europe/London",
            now=NOW,
            batch_size=batch_size,
            again=True,  # several sends of one release, on purpose
        )
    return scheduled.send_id


def deliveries(rt: Runtime, send_id: int) -> list[Delivery]:
    with rt.sessions() as session:
        return list(
            session.scalars(
                select(Delivery).where(Delivery.send_id == send_id).order_by(Delivery.id)
            )
        )


def events_by_delivery(rt: Runtime, send_id: int) -> dict[int, list[DeliveryState]]:
    with rt.sessions() as session:
        rows = session.execute(
            select(DeliveryEvent.delivery_id, DeliveryEvent.state)
            .join(Delivery, Delivery.id == DeliveryEvent.delivery_id)
            .where(Delivery.send_id == send_id)
            .order_by(DeliveryEvent.id)
        ).all()
    events: dict[int, list[DeliveryState]] = {}
    for delivery_id, state in rows:
        events.setdefault(delivery_id, []).append(state)
    return events


def send_row(rt: Runtime, send_id: int) -> Send:
    with rt.sessions() as session:
        send = session.get(Send, send_id)
        assert send is not None
        return send


POLICY = SchedulerPolicy(arm_lead=timedelta(seconds=10), redispatch_after=timedelta(minutes=5))


def arm(rt: Runtime, *, embargo_at: datetime = EMBARGO) -> RecordingDispatcher:
    """One scheduler tick shortly before the embargo: the send is armed and its batches queued."""
    dispatcher = RecordingDispatcher()
    tick(rt.sessions, dispatcher, now=embargo_at - timedelta(seconds=5), policy=POLICY)
    assert dispatcher.dispatched
    return dispatcher


@pytest.fixture
def audience(runtime: Runtime) -> tuple[int, list[str]]:
    """A release and 10 contacts on one list called Newsdesks."""
    emails = add_contacts(runtime, 10)
    make_list(runtime, "Newsdesks", emails)
    return make_release(runtime), emails


# --- schedule_send -------------------------------------------------------------------------


def test_a_journalist_on_three_lists_gets_one_pending_delivery(runtime: Runtime) -> None:
    emails = add_contacts(runtime, 10)
    make_list(runtime, "Home affairs", emails[:6])
    make_list(runtime, "Crime", emails[3:])
    make_list(runtime, "Courts", [emails[4], emails[0], emails[9]])
    release_id = make_release(runtime)

    with runtime.sessions.begin() as session:
        scheduled = schedule_send(
            session,
            release_id=release_id,
            list_names=["Home affairs", "Crime", "Courts", "Crime"],
            embargo_at=EMBARGO,
            embargo_zone="Europe/London",
            now=NOW,
            batch_size=20,
            again=True,  # several sends of one release, on purpose
        )

    assert scheduled.recipients == 10
    assert scheduled.embargo_at == EMBARGO
    rows = deliveries(runtime, scheduled.send_id)
    assert len(rows) == 10
    assert len({d.contact_id for d in rows}) == 10
    assert {d.state for d in rows} == {DeliveryState.PENDING}
    assert {d.attempts for d in rows} == {0}
    assert all(d.claimed_at is None and d.finished_at is None for d in rows)
    # One batch of 20, not yet handed to any worker.
    with runtime.sessions() as session:
        assert session.execute(
            select(SendBatch.batch_no, SendBatch.queued_at, SendBatch.lease_owner).where(
                SendBatch.send_id == scheduled.send_id
            )
        ).all() == [(0, None, None)]
    send = send_row(runtime, scheduled.send_id)
    assert send.state is SendState.SCHEDULED
    assert send.embargo_at == EMBARGO
    # Each delivery's history starts with one 'pending' event, at the time of scheduling.
    events = events_by_delivery(runtime, scheduled.send_id)
    assert set(events) == {d.id for d in rows}
    assert all(states == [DeliveryState.PENDING] for states in events.values())
    with runtime.sessions() as session:
        assert set(session.scalars(select(DeliveryEvent.at))) == {NOW}
        chosen = session.scalar(
            select(func.count()).select_from(SendList).where(SendList.send_id == send.id)
        )
    assert chosen == 3


def test_deliveries_are_numbered_in_full_batches_of_integers(runtime: Runtime) -> None:
    emails = add_contacts(runtime, 45)
    release_id = make_release(runtime)
    cases = [
        (45, 20, {0: 20, 1: 20, 2: 5}),
        (40, 20, {0: 20, 1: 20}),
        (3, 1, {0: 1, 1: 1, 2: 1}),
        (7, 500, {0: 7}),
    ]
    for contacts, batch_size, expected in cases:
        name = f"First {contacts}"
        make_list(runtime, name, emails[:contacts])
        send_id = schedule(runtime, release_id, [name], batch_size=batch_size)

        sizes = Counter(d.batch_no for d in deliveries(runtime, send_id))
        assert dict(sizes) == expected, (contacts, batch_size)
        # Stored as integers, not as 1.0 or '1': read them back without the ORM's types.
        with runtime.sessions() as session:
            raw = session.execute(
                text("SELECT batch_no FROM deliveries WHERE send_id = :s"), {"s": send_id}
            ).scalars()
            assert {type(value) for value in raw} == {int}


def test_a_send_that_cannot_go_out_is_refused_and_leaves_nothing_behind(
    runtime: Runtime, audience: tuple[int, list[str]]
) -> None:
    release_id, _ = audience
    make_list(runtime, "Empty", [])
    make_list(runtime, "Also empty", [])
    cases: list[tuple[str, dict[str, object], type[Exception], str]] = [
        ("past", {"embargo_at": NOW - timedelta(minutes=1)}, InvalidEmbargoError, "in the past"),
        ("now", {"embargo_at": NOW}, InvalidEmbargoError, "in the past"),
        ("naive", {"embargo_at": EMBARGO.replace(tzinfo=None)}, InvalidEmbargoError, "aware"),
        ("no lists", {"list_names": []}, NotFoundError, "at least one media list"),
        (
            "unknown list",
            {"list_names": ["Newsdesks", "Foreign desk"]},
            NotFoundError,
            "'Foreign desk'",
        ),
        ("no contacts", {"list_names": ["Empty", "Also empty"]}, NotFoundError, "no contacts"),
        ("unknown release", {"release_id": 999}, NotFoundError, "no release with id 999"),
    ]
    for case, changes, error, message in cases:
        arguments: dict[str, object] = {
            "release_id": release_id,
            "list_names": ["Newsdesks"],
            "embargo_at": EMBARGO,
            "embargo_zone": "Europe/London",
            "now": NOW,
            "batch_size": 20,
        }
        arguments.update(changes)

        with pytest.raises(error, match=message), runtime.sessions.begin() as session:
            schedule_send(session, **arguments)  # type: ignore[arg-type]

        with runtime.sessions() as session:
            for model in (Send, SendList, Delivery, DeliveryEvent):
                left = session.scalar(select(func.count()).select_from(model))
                assert left == 0, f"{case}: {left} {model.__name__} left behind"


# --- cancel_send ---------------------------------------------------------------------------


def test_cancelling_turns_every_pending_delivery_into_cancelled_once(
    runtime: Runtime, audience: tuple[int, list[str]]
) -> None:
    release_id, _ = audience
    send_id = schedule(runtime, release_id, ["Newsdesks"])
    at = NOW + timedelta(minutes=5)

    with runtime.sessions.begin() as session:
        stopped = cancel_send(session, send_id=send_id, now=at)

    assert stopped == 10
    send = send_row(runtime, send_id)
    assert send.state is SendState.CANCELLED
    assert send.cancelled_at == at
    rows = deliveries(runtime, send_id)
    assert {d.state for d in rows} == {DeliveryState.CANCELLED}
    assert {d.finished_at for d in rows} == {at}
    events = events_by_delivery(runtime, send_id)
    assert len(events) == 10
    assert all(
        states == [DeliveryState.PENDING, DeliveryState.CANCELLED] for states in events.values()
    )

    # A second cancel is refused and changes nothing.
    with pytest.raises(InvalidStateError, match="is cancelled"), runtime.sessions.begin() as s:
        cancel_send(s, send_id=send_id, now=at + timedelta(minutes=1))
    assert send_row(runtime, send_id).cancelled_at == at
    assert events_by_delivery(runtime, send_id) == events

    with pytest.raises(NotFoundError, match="no send with id 42"), runtime.sessions.begin() as s:
        cancel_send(s, send_id=42, now=at)


def test_cancelling_mid_send_stops_only_what_is_still_pending(
    runtime: Runtime, audience: tuple[int, list[str]]
) -> None:
    release_id, _ = audience
    send_id = schedule(runtime, release_id, ["Newsdesks"])
    arm(runtime)
    with runtime.sessions.begin() as session:
        claimed = claim_for_test(session, send_id, 0, EMBARGO, 3)
    assert len(claimed) == 3

    with runtime.sessions.begin() as session:
        stopped = cancel_send(session, send_id=send_id, now=EMBARGO)

    assert stopped == 7
    states = Counter(d.state for d in deliveries(runtime, send_id))
    assert states == {DeliveryState.SENDING: 3, DeliveryState.CANCELLED: 7}
    events = events_by_delivery(runtime, send_id)
    in_flight = {r.delivery_id for r in claimed}
    for delivery_id, history in events.items():
        if delivery_id in in_flight:
            assert history == [DeliveryState.PENDING, DeliveryState.SENDING]
        else:
            assert history == [DeliveryState.PENDING, DeliveryState.CANCELLED]


def complete(rt: Runtime, send_id: int, *, embargo_at: datetime = EMBARGO) -> None:
    """Run a send for real: arm it, send every batch in memory, and let the scheduler close it."""
    dispatcher = arm(rt, embargo_at=embargo_at)
    clock = ManualClock(embargo_at)
    for batch, _ in dispatcher.dispatched:
        run_batch(
            rt,
            replace(rt.batch_job(batch.send_id, batch.batch_no), max_wait=timedelta(0)),
            clock,
            InMemoryTransport(),
        )
    report = tick(rt.sessions, dispatcher, now=embargo_at + timedelta(seconds=1), policy=POLICY)
    assert report.completed == [send_id]


def test_a_completed_send_cannot_be_cancelled(
    runtime: Runtime, audience: tuple[int, list[str]]
) -> None:
    release_id, _ = audience
    send_id = schedule(runtime, release_id, ["Newsdesks"])
    complete(runtime, send_id)

    with pytest.raises(InvalidStateError, match="is completed"), runtime.sessions.begin() as s:
        cancel_send(s, send_id=send_id, now=EMBARGO + timedelta(minutes=1))

    assert send_row(runtime, send_id).state is SendState.COMPLETED
    assert {d.state for d in deliveries(runtime, send_id)} == {DeliveryState.SENT}


# --- cancel_release ------------------------------------------------------------------------


def test_cancelling_a_release_cancels_each_of_its_active_sends(
    runtime: Runtime, audience: tuple[int, list[str]]
) -> None:
    release_id, emails = audience
    make_list(runtime, "Crime", emails[:4])
    first = schedule(runtime, release_id, ["Newsdesks"])
    second = schedule(runtime, release_id, ["Crime"], embargo_at=EMBARGO + timedelta(days=1))
    done = schedule(runtime, release_id, ["Crime"], embargo_at=EMBARGO - timedelta(minutes=30))
    complete(runtime, done, embargo_at=EMBARGO - timedelta(minutes=30))
    other_release = make_release(runtime)
    other = schedule(runtime, other_release, ["Newsdesks"])

    with runtime.sessions.begin() as session:
        stopped = cancel_release(session, release_id=release_id, now=NOW)

    assert stopped == {first: 10, second: 4}
    assert send_row(runtime, first).state is SendState.CANCELLED
    assert send_row(runtime, second).state is SendState.CANCELLED
    assert send_row(runtime, done).state is SendState.COMPLETED
    assert send_row(runtime, other).state is SendState.SCHEDULED
    assert {d.state for d in deliveries(runtime, other)} == {DeliveryState.PENDING}

    with pytest.raises(InvalidStateError, match="no scheduled send"), runtime.sessions.begin() as s:
        cancel_release(s, release_id=release_id, now=NOW)
    with pytest.raises(NotFoundError, match="no release"), runtime.sessions.begin() as s:
        cancel_release(s, release_id=7, now=NOW)
