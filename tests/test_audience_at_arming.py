"""The audience as it stands at the lift: lists are read again when the send is armed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from distributor.contacts_import import ContactRow, ParsedContacts, import_contacts
from distributor.engine.dispatch import RecordingDispatcher
from distributor.engine.tick import SchedulerPolicy, tick
from distributor.errors import InvalidStateError
from distributor.lists import add_to_list, remove_from_list
from distributor.models import Contact, Delivery, DeliveryEvent, Send, SendBatch
from distributor.runtime import Runtime
from distributor.scheduling import schedule_send
from distributor.states import DeliveryState, SendState
from distributor.status import send_statuses
from distributor.suppression import SuppressionReason, suppress
from tests.conftest import now, seconds_from_now

POLICY = SchedulerPolicy(
    arm_lead=timedelta(seconds=10), redispatch_after=timedelta(minutes=5), batch_size=2
)
MakeAudience = Callable[..., tuple[int, list[str]]]


def schedule(
    rt: Runtime, release_id: int, *, seconds_ahead: float = 3600, again: bool = False
) -> int:
    with rt.sessions.begin() as session:
        return schedule_send(
            session,
            release_id=release_id,
            list_names=["Newsdesks"],
            embargo_at=seconds_from_now(seconds_ahead),
            embargo_zone="Europe/London",
            now=now(),
            batch_size=2,
            again=again,
        ).send_id


def add_contacts(rt: Runtime, *emails: str) -> None:
    rows = [ContactRow(line=n + 2, email=e, name=f"New {n}") for n, e in enumerate(emails)]
    with rt.sessions.begin() as session:
        import_contacts(session, ParsedContacts(rows=rows), now=now())
        add_to_list(session, "Newsdesks", list(emails))


def arm(rt: Runtime, send_id: int) -> None:
    """Bring the embargo within the arming lead and tick once."""
    with rt.sessions.begin() as session:
        session.get_one(Send, send_id).embargo_at = seconds_from_now(5)
    report = tick(rt.sessions, RecordingDispatcher(), now=now(), policy=POLICY)
    assert send_id in report.armed


def deliveries_by_email(rt: Runtime, send_id: int) -> dict[str, tuple[DeliveryState, str | None]]:
    with rt.sessions() as session:
        rows = session.execute(
            select(Contact.email, Delivery.state, Delivery.error)
            .join(Contact, Contact.id == Delivery.contact_id)
            .where(Delivery.send_id == send_id)
        )
        return {email: (state, error) for email, state, error in rows}


def test_contacts_who_join_or_leave_the_list_after_scheduling_are_counted_at_arming(
    runtime: Runtime, make_audience: MakeAudience
) -> None:
    # Given a send scheduled to a list of four
    release_id, emails = make_audience(4)
    send_id = schedule(runtime, release_id)
    # When, before the lift, two journalists join the list, one is taken off it and one
    # asks not to be mailed again
    add_contacts(runtime, "late1@example.org", "late2@example.org")
    with runtime.sessions.begin() as session:
        remove_from_list(session, "Newsdesks", [emails[0]])
        suppress(
            session,
            email=emails[1],
            reason=SuppressionReason.UNSUBSCRIBED,
            source="test",
            now=now(),
        )
    arm(runtime, send_id)

    # Then the newcomers have pending deliveries in new batches, the leaver's is cancelled
    # with the reason, and the suppressed one is left for the claim to stop
    found = deliveries_by_email(runtime, send_id)
    assert found["late1@example.org"] == (DeliveryState.PENDING, None)
    assert found["late2@example.org"] == (DeliveryState.PENDING, None)
    assert found[emails[0]] == (
        DeliveryState.CANCELLED,
        "removed from the audience before the lift",
    )
    assert found[emails[1]][0] is DeliveryState.PENDING
    with runtime.sessions() as session:
        batches = set(
            session.scalars(select(SendBatch.batch_no).where(SendBatch.send_id == send_id))
        )
        new_batches = set(
            session.scalars(
                select(Delivery.batch_no)
                .join(Contact, Contact.id == Delivery.contact_id)
                .where(Delivery.send_id == send_id, Contact.email.like("late%"))
            )
        )
        assert new_batches <= batches and min(new_batches) > 1  # 4 scheduled: batches 0 and 1
        history = session.execute(
            select(DeliveryEvent.state, DeliveryEvent.detail)
            .join(Delivery, Delivery.id == DeliveryEvent.delivery_id)
            .join(Contact, Contact.id == Delivery.contact_id)
            .where(Contact.email.in_([emails[0], "late1@example.org"]))
            .order_by(DeliveryEvent.id)
        ).all()
    assert (DeliveryState.CANCELLED, "removed from the audience before the lift") in history
    assert (DeliveryState.PENDING, "joined the audience before the lift") in history

    # And status tells the estimate at scheduling apart from the audience at arming
    with runtime.sessions() as session:
        (status,) = send_statuses(session, send_id)
    assert status.estimated_recipients == 4
    assert (status.armed_recipients, status.joined_at_arming, status.left_at_arming) == (5, 2, 1)


def test_a_send_whose_whole_list_left_completes_without_sending(
    runtime: Runtime, make_audience: MakeAudience
) -> None:
    release_id, emails = make_audience(2)
    send_id = schedule(runtime, release_id)
    with runtime.sessions.begin() as session:
        remove_from_list(session, "Newsdesks", emails)
    arm(runtime, send_id)
    assert {s for s, _ in deliveries_by_email(runtime, send_id).values()} == {
        DeliveryState.CANCELLED
    }
    with runtime.sessions.begin() as session:
        session.get_one(Send, send_id).embargo_at = now() - timedelta(seconds=1)
    report = tick(runtime.sessions, RecordingDispatcher(), now=now(), policy=POLICY)
    assert report.dispatched == [] and report.completed == [send_id]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.postgres
def test_two_schedulers_arming_the_same_send_make_one_delivery_per_contact(
    runtime: Runtime, make_audience: MakeAudience
) -> None:
    release_id, _ = make_audience(50)
    send_id = schedule(runtime, release_id)
    add_contacts(runtime, *(f"late{i}@example.org" for i in range(30)))
    with runtime.sessions.begin() as session:
        session.get_one(Send, send_id).embargo_at = seconds_from_now(5)
    start = threading.Barrier(2)
    reports = []

    def scheduler() -> None:
        start.wait()
        reports.append(tick(runtime.sessions, RecordingDispatcher(), now=now(), policy=POLICY))

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(len(r.armed) for r in reports) == [0, 1]
    found = deliveries_by_email(runtime, send_id)
    assert len(found) == 80
    assert all(state is DeliveryState.PENDING for state, _ in found.values())


def test_scheduling_the_same_release_to_the_same_people_again_is_refused_unless_asked(
    runtime: Runtime, make_audience: MakeAudience
) -> None:
    release_id, _ = make_audience(3)
    first = schedule(runtime, release_id)
    with pytest.raises(InvalidStateError, match=r"3 contact.*already have release.*--again"):
        schedule(runtime, release_id)
    with runtime.sessions() as session:
        assert session.scalars(select(Send.id)).all() == [first]
    second = schedule(runtime, release_id, again=True)
    assert second != first
    with runtime.sessions() as session:
        assert session.get_one(Send, first).state is SendState.SCHEDULED
