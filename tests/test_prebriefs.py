"""Pre-briefs, and moving, lifting and withdrawing the embargo, decided in the database (the
scheduler's tick in-process; the end-to-end tests with real workers are in
test_embargo_workflow.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from distributor.contacts.editing import get_contact
from distributor.corrections import correct_release
from distributor.embargo_changes import lift_embargo, move_embargo, withdraw_release
from distributor.engine.claims import load_send
from distributor.engine.dispatch import RecordingDispatcher
from distributor.engine.tick import SchedulerPolicy, tick
from distributor.errors import InvalidEmbargoError, InvalidStateError, NotFoundError
from distributor.message import Recipient
from distributor.models import Contact, Delivery, Release, Send, SendBatch
from distributor.organisations import save_organisation
from distributor.prebriefs import PrebriefRequest
from distributor.releases import create_release
from distributor.runtime import Runtime
from distributor.scheduling import ScheduledSend, schedule_send
from distributor.states import DeliveryState, SendKind, SendState
from tests.conftest import SAMPLE_DRAFT, now, seconds_from_now
from tests.support.mail import parse

LEAD = timedelta(seconds=10)
POLICY = SchedulerPolicy(arm_lead=LEAD, redispatch_after=timedelta(minutes=5), batch_size=5)
MakeAudience = Callable[..., tuple[int, list[str]]]


def vet(rt: Runtime, *emails: str, breaker: bool = False) -> None:
    with rt.sessions.begin() as session:
        for email in emails:
            contact = get_contact(session, email)
            contact.embargo_vetted = True
            contact.embargo_breaker = breaker


def schedule(
    rt: Runtime, release_id: int, *, lift_in: float = 3600, prebrief: bool = True
) -> ScheduledSend:
    with rt.sessions.begin() as session:
        return schedule_send(
            session,
            release_id=release_id,
            list_names=["Newsdesks"],
            embargo_at=seconds_from_now(lift_in),
            embargo_zone="Europe/London",
            now=now(),
            batch_size=5,
            prebrief=PrebriefRequest(at=now(), min_lead=timedelta(seconds=5)) if prebrief else None,
        )


def states(rt: Runtime, send_id: int) -> dict[str, DeliveryState]:
    with rt.sessions() as session:
        rows = session.execute(
            select(Contact.email, Delivery.state)
            .join(Contact, Contact.id == Delivery.contact_id)
            .where(Delivery.send_id == send_id)
        )
        return {email: state for email, state in rows}


def mark_sent(rt: Runtime, send_id: int) -> None:
    """As a worker would have: every pending delivery of the send accepted by the relay."""
    with rt.sessions.begin() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.send_id == send_id, Delivery.state == DeliveryState.PENDING)
            .values(state=DeliveryState.SENT, first_claimed_at=now(), finished_at=now())
        )


def bring_the_lift_near(rt: Runtime) -> None:
    with rt.sessions.begin() as session:
        session.execute(
            update(Send)
            .where(Send.kind.in_([SendKind.PUBLIC, SendKind.LIFT_NOTICE]))
            .values(embargo_at=seconds_from_now(5))
        )


def test_a_prebrief_not_out_by_the_public_arming_gives_way_to_the_public_send(
    runtime: Runtime, make_audience: MakeAudience
) -> None:
    release_id, emails = make_audience(2)
    vet(runtime, emails[0])
    scheduled = schedule(runtime, release_id)
    assert scheduled.prebrief is not None
    bring_the_lift_near(runtime)
    tick(runtime.sessions, RecordingDispatcher(), now=now(), policy=POLICY)
    assert states(runtime, scheduled.prebrief.send_id) == {emails[0]: DeliveryState.CANCELLED}
    assert states(runtime, scheduled.send_id)[emails[0]] is DeliveryState.PENDING


def sends_of(rt: Runtime, kind: SendKind) -> list[Send]:
    with rt.sessions() as session:
        return list(session.scalars(select(Send).where(Send.kind == kind).order_by(Send.id)))


def test_the_prebrief_goes_to_the_vetted_only_and_the_public_send_leaves_them_out(
    runtime: Runtime, make_audience: MakeAudience
) -> None:
    release_id, emails = make_audience(6)
    vet(runtime, emails[0], emails[1])
    vet(runtime, emails[2], breaker=True)
    scheduled = schedule(runtime, release_id)
    assert scheduled.prebrief is not None and scheduled.prebrief.recipients == 2
    prebrief_id = scheduled.prebrief.send_id
    assert set(states(runtime, prebrief_id)) == {emails[0], emails[1]}

    # The pre-brief is due now: the tick arms it and queues it
    report = tick(runtime.sessions, RecordingDispatcher(), now=now(), policy=POLICY)
    assert report.armed == [prebrief_id]
    mark_sent(runtime, prebrief_id)

    # Near the lift the public send and the lift notice are armed: the pre-briefed get the
    # notice, everyone else the release
    bring_the_lift_near(runtime)
    dispatcher = RecordingDispatcher()
    tick(runtime.sessions, dispatcher, now=now(), policy=POLICY)
    public = states(runtime, scheduled.send_id)
    assert {e for e, s in public.items() if s is DeliveryState.PENDING} == set(emails[2:])
    assert {e for e, s in public.items() if s is DeliveryState.CANCELLED} == set(emails[:2])
    (notice,) = sends_of(runtime, SendKind.LIFT_NOTICE)
    assert states(runtime, notice.id) == {
        emails[0]: DeliveryState.PENDING,
        emails[1]: DeliveryState.PENDING,
    }
    # the notice travels on the queue that bulk sends cannot hold up
    assert {b.send_id for b in dispatcher.urgent} == {notice.id}


def test_nobody_vetted_means_no_prebrief_and_nothing_scheduled(
    runtime: Runtime, make_audience: MakeAudience
) -> None:
    release_id, _ = make_audience(3)
    with pytest.raises(NotFoundError, match="nobody in this audience may have the embargoed"):
        schedule(runtime, release_id)
    assert sends_of(runtime, SendKind.PUBLIC) == []


def test_a_prebrief_too_close_to_the_lift_is_refused(
    runtime: Runtime, make_audience: MakeAudience
) -> None:
    release_id, emails = make_audience(2)
    vet(runtime, emails[0])
    with pytest.raises(InvalidEmbargoError, match="before the embargo lifts"):
        schedule(runtime, release_id, lift_in=3)


def test_a_journalist_flagged_a_breaker_after_scheduling_is_not_prebriefed(
    runtime: Runtime, make_audience: MakeAudience
) -> None:
    release_id, emails = make_audience(3)
    vet(runtime, emails[0], emails[1])
    scheduled = schedule(runtime, release_id)
    assert scheduled.prebrief is not None
    vet(runtime, emails[1], breaker=True)
    tick(runtime.sessions, RecordingDispatcher(), now=now(), policy=POLICY)
    found = states(runtime, scheduled.prebrief.send_id)
    assert found == {emails[0]: DeliveryState.PENDING, emails[1]: DeliveryState.CANCELLED}


def test_moving_the_embargo_disarms_requeues_and_tells_the_prebriefed(
    runtime: Runtime, make_audience: MakeAudience
) -> None:
    release_id, emails = make_audience(4)
    vet(runtime, emails[0])
    scheduled = schedule(runtime, release_id)
    assert scheduled.prebrief is not None
    tick(runtime.sessions, RecordingDispatcher(), now=now(), policy=POLICY)
    mark_sent(runtime, scheduled.prebrief.send_id)
    bring_the_lift_near(runtime)
    tick(runtime.sessions, RecordingDispatcher(), now=now(), policy=POLICY)
    with runtime.sessions() as session:
        assert session.get_one(Send, scheduled.send_id).state is SendState.ARMED

    # Moved an hour later in the last seconds
    with runtime.sessions.begin() as session:
        change = move_embargo(
            session,
            release_id=release_id,
            embargo_at=seconds_from_now(3600),
            embargo_zone="Europe/London",
            now=now(),
            arm_lead=LEAD,
            batch_size=5,
        )
    assert change.notified == 1 and change.notice_send_id is not None
    with runtime.sessions() as session:
        public = session.get_one(Send, scheduled.send_id)
        assert public.state is SendState.SCHEDULED
        assert public.embargo_at > seconds_from_now(3500)
        assert session.scalars(
            select(SendBatch.queued_at).where(SendBatch.send_id == scheduled.send_id)
        ).all() == [None]
        new_embargo = public.embargo_at
    (lift_notice,) = sends_of(runtime, SendKind.LIFT_NOTICE)
    assert lift_notice.embargo_at == new_embargo
    assert states(runtime, change.notice_send_id) == {emails[0]: DeliveryState.PENDING}
    # the move notice is armed and queued on the next tick, urgently; the public send is not
    dispatcher = RecordingDispatcher()
    tick(runtime.sessions, dispatcher, now=now(), policy=POLICY)
    assert {b.send_id for b, _ in dispatcher.dispatched} == {change.notice_send_id}
    assert dispatcher.urgent == [b for b, _ in dispatcher.dispatched]

    # Into the past it cannot move
    with pytest.raises(InvalidEmbargoError, match="in the past"), runtime.sessions.begin() as s:
        move_embargo(
            s,
            release_id=release_id,
            embargo_at=seconds_from_now(-60),
            embargo_zone="Europe/London",
            now=now(),
            arm_lead=LEAD,
            batch_size=5,
        )


def test_lifting_now_lets_the_public_send_out_on_the_next_tick(
    runtime: Runtime, make_audience: MakeAudience
) -> None:
    release_id, _ = make_audience(3)
    scheduled = schedule(runtime, release_id, prebrief=False)
    with runtime.sessions.begin() as session:
        lift_embargo(session, release_id=release_id, now=now(), arm_lead=LEAD)
    dispatcher = RecordingDispatcher()
    report = tick(runtime.sessions, dispatcher, now=now(), policy=POLICY)
    assert report.armed == [scheduled.send_id]
    assert dispatcher.dispatched and dispatcher.urgent == []
    with pytest.raises(InvalidStateError), runtime.sessions.begin() as session:
        session.execute(
            update(Delivery).values(first_claimed_at=now(), state=DeliveryState.SENDING)
        )
        lift_embargo(session, release_id=release_id, now=now(), arm_lead=LEAD)


def test_withdrawing_cancels_everything_and_tells_only_the_prebriefed(
    runtime: Runtime, make_audience: MakeAudience
) -> None:
    release_id, emails = make_audience(4)
    vet(runtime, emails[0], emails[1])
    scheduled = schedule(runtime, release_id)
    assert scheduled.prebrief is not None
    tick(runtime.sessions, RecordingDispatcher(), now=now(), policy=POLICY)
    mark_sent(runtime, scheduled.prebrief.send_id)
    with runtime.sessions.begin() as session:
        stopped, change = withdraw_release(session, release_id=release_id, now=now(), batch_size=5)
    assert stopped[scheduled.send_id] == 4
    assert change.notice_send_id is not None
    assert states(runtime, change.notice_send_id) == {
        emails[0]: DeliveryState.PENDING,
        emails[1]: DeliveryState.PENDING,
    }
    (lift_notice,) = sends_of(runtime, SendKind.LIFT_NOTICE)
    assert lift_notice.state is SendState.CANCELLED


def test_an_organisation_can_turn_the_lift_notice_off(
    runtime: Runtime, make_audience: MakeAudience
) -> None:
    _, emails = make_audience(2)
    vet(runtime, emails[0])
    with runtime.sessions.begin() as session:
        save_organisation(session, name="Quiet Charity", now=now(), lift_notice=False)
        release_id = create_release(
            session, replace(SAMPLE_DRAFT, organisation="Quiet Charity"), now=now()
        ).id
    scheduled = schedule(runtime, release_id)
    assert scheduled.prebrief is not None
    assert scheduled.prebrief.lift_notice_send_id is None
    assert sends_of(runtime, SendKind.LIFT_NOTICE) == []


def test_a_correction_goes_to_everyone_who_received_the_release_marked_as_such(
    runtime: Runtime, make_audience: MakeAudience
) -> None:
    release_id, emails = make_audience(4)
    vet(runtime, emails[0])
    scheduled = schedule(runtime, release_id)
    assert scheduled.prebrief is not None
    corrected = replace(SAMPLE_DRAFT, body="First paragraph, with the right figure: 40.")
    with (
        pytest.raises(InvalidStateError, match="nothing to correct"),
        runtime.sessions.begin() as session,
    ):
        correct_release(
            session, release_id=release_id, draft=corrected, note="x", now=now(), batch_size=5
        )
    # the pre-brief reached emails[0]; the public send reached two others, one failed
    mark_sent(runtime, scheduled.prebrief.send_id)
    with runtime.sessions.begin() as session:
        for email, state in (
            (emails[1], DeliveryState.SENT),
            (emails[2], DeliveryState.SENT),
            (emails[3], DeliveryState.FAILED),
        ):
            session.execute(
                update(Delivery)
                .where(
                    Delivery.send_id == scheduled.send_id,
                    Delivery.contact_id == get_contact(session, email).id,
                )
                .values(state=state)
            )
    with runtime.sessions.begin() as session:
        sent = correct_release(
            session,
            release_id=release_id,
            draft=corrected,
            note="The number of families was wrong: it is 40, not 400.",
            now=now(),
            batch_size=5,
        )
    assert sent.recipients == 3
    assert set(states(runtime, sent.send_id)) == set(emails[:3])
    # the original stays; the message is the corrected text with the note and the prefix
    with runtime.sessions() as session:
        assert "40." not in session.get_one(Release, release_id).body
        snapshot = load_send(session, sent.send_id)
    assert snapshot is not None
    message = runtime.builder_for(snapshot).build_message(
        Recipient(delivery_id=1, email=emails[1], name="Ann")
    )
    data = message if isinstance(message, bytes) else message.data
    parsed = parse(data)
    assert str(parsed["Subject"]).startswith("CORRECTION: ")
    text = parsed.get_body(("plain",)).get_content()
    assert "*** CORRECTION ***" in text and "it is 40, not 400" in text
    assert "the right figure: 40" in text
