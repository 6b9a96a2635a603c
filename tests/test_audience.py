"""Who a send goes to: lists and segments united, suppressions taken out, once per address."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from distributor.actors import Actor, Role
from distributor.audience import choose_audience, count_audience, stream_audience
from distributor.engine.claims import SUPPRESSED_DETAIL
from distributor.engine.dispatch import RecordingDispatcher
from distributor.engine.tick import SchedulerPolicy, tick
from distributor.errors import InvalidStateError, NotFoundError
from distributor.lists import add_to_list, create_list, delete_list
from distributor.models import Contact, Delivery, DeliveryEvent, SendSegment
from distributor.releases import create_release
from distributor.runtime import Runtime
from distributor.scheduling import schedule_send
from distributor.segments.store import delete_segment, save_segment
from distributor.states import DeliveryState
from distributor.suppression import SuppressionReason, suppress
from tests.conftest import SAMPLE_DRAFT
from tests.support.engine import claim_for_test
from tests.support.media import NOW, contact, store

EMBARGO = NOW + timedelta(hours=1)
OFFICER = Actor("Pat", Role.PRESS_OFFICER)
POLICY = SchedulerPolicy(arm_lead=timedelta(seconds=10), redispatch_after=timedelta(minutes=5))


@pytest.fixture
def desk(runtime: Runtime) -> Runtime:
    """Six journalists; lists "A", "B", "C" all hold ann; the segment "Crime" holds two."""
    with runtime.sessions.begin() as session:
        store(
            session,
            [
                contact("ann@example.com", beats="crime"),
                contact("bob@example.com", beats="politics"),
                contact("cat@example.com", beats="crime"),
                contact("dan@example.com", beats="sport"),
                contact("eve@example.com"),
                contact("zoe@bücher.example", beats="health"),
            ],
        )
        for name, members in (
            ("A", ["ann@example.com", "bob@example.com"]),
            ("B", ["ANN@example.com", "zoe@xn--bcher-kva.example"]),
            ("C", ["ann@example.com"]),
        ):
            create_list(session, name, now=NOW)
            add_to_list(session, name, members)
        save_segment(session, name="Crime", filter_text='beat = "crime"', actor=OFFICER, now=NOW)
    return runtime


def audience(rt: Runtime, lists: list[str], segments: list[str] = []) -> list[str]:  # noqa: B006
    with rt.sessions() as session:
        choice = choose_audience(session, list_names=lists, segment_names=segments)
        members = [m.email for m in stream_audience(session, choice)]
        assert count_audience(session, choice) == len(members)
        return members


def test_a_journalist_on_three_lists_and_in_a_segment_is_chosen_once(desk: Runtime) -> None:
    assert audience(desk, ["A", "B", "C"], ["Crime"]) == [
        "ann@example.com",
        "bob@example.com",
        "cat@example.com",
        "zoe@bücher.example",
    ]
    assert audience(desk, [], ["Crime"]) == ["ann@example.com", "cat@example.com"]
    assert audience(desk, ["C"]) == ["ann@example.com"]


def test_suppressed_addresses_are_left_out_whatever_their_spelling(desk: Runtime) -> None:
    with desk.sessions.begin() as session:
        suppress(
            session,
            email="ZOE@xn--bcher-kva.example",
            reason=SuppressionReason.HARD_BOUNCED,
            source="bounce",
            now=NOW,
        )
        suppress(
            session,
            email="Cat@Example.com",
            reason=SuppressionReason.UNSUBSCRIBED,
            source="one-click",
            now=NOW,
        )
    assert audience(desk, ["A", "B"], ["Crime"]) == ["ann@example.com", "bob@example.com"]


def test_choosing_nothing_or_something_unknown_is_refused(desk: Runtime) -> None:
    with desk.sessions() as session:
        with pytest.raises(NotFoundError, match="at least one media list or segment"):
            choose_audience(session)
        with pytest.raises(NotFoundError, match="no segment named 'Nope'"):
            choose_audience(session, list_names=["A"], segment_names=["Nope"])


def schedule(rt: Runtime, *, lists: list[str], segments: list[str], batch_size: int = 2) -> int:
    with rt.sessions.begin() as session:
        release_id = create_release(session, SAMPLE_DRAFT, now=NOW).id
        return schedule_send(
            session,
            release_id=release_id,
            list_names=lists,
            segment_names=segments,
            embargo_at=EMBARGO,
            embargo_zone="UTC",
            now=NOW,
            batch_size=batch_size,
        ).send_id


def deliveries(rt: Runtime, send_id: int) -> list[tuple[str, int, DeliveryState]]:
    with rt.sessions() as session:
        rows = session.execute(
            select(Contact.email, Delivery.batch_no, Delivery.state)
            .join(Contact, Contact.id == Delivery.contact_id)
            .where(Delivery.send_id == send_id)
            .order_by(Delivery.contact_id)
        )
        return [(email, batch, state) for email, batch, state in rows]


def test_scheduling_to_lists_and_segments_makes_one_delivery_per_address(desk: Runtime) -> None:
    with desk.sessions.begin() as session:
        suppress(
            session,
            email="bob@example.com",
            reason=SuppressionReason.COMPLAINED,
            source="fbl",
            now=NOW,
        )
    send_id = schedule(desk, lists=["A", "B", "C"], segments=["Crime"])
    rows = deliveries(desk, send_id)
    assert [email for email, _, _ in rows] == [
        "ann@example.com",
        "cat@example.com",
        "zoe@bücher.example",
    ]
    # Integer batch numbers in contact order, two to a batch.
    assert [batch for _, batch, _ in rows] == [0, 0, 1]
    assert {state for _, _, state in rows} == {DeliveryState.PENDING}
    with desk.sessions() as session:
        assert session.scalars(select(SendSegment.send_id)).all() == [send_id]
        # The segment and lists are the send's record now.
        with pytest.raises(InvalidStateError, match="kept for their record"):
            delete_segment(session, name="Crime")
        with pytest.raises(InvalidStateError, match="kept for their record"):
            delete_list(session, "A")


def test_an_audience_with_nobody_left_to_mail_is_refused(desk: Runtime) -> None:
    with desk.sessions.begin() as session:
        for email in ("ann@example.com", "cat@example.com"):
            suppress(
                session, email=email, reason=SuppressionReason.UNSUBSCRIBED, source="x", now=NOW
            )
    with pytest.raises(NotFoundError, match="suppressed addresses are left out"):
        schedule(desk, lists=[], segments=["Crime"])


def claim(rt: Runtime, send_id: int, *, batch_no: int, limit: int) -> list[str]:
    with rt.sessions.begin() as session:
        claimed = claim_for_test(session, send_id, batch_no, EMBARGO, limit)
        return [c.recipient.email for c in claimed]


def test_an_address_suppressed_after_scheduling_is_not_sent_at_claim_time(desk: Runtime) -> None:
    # Given a send to five people, armed, in one batch
    send_id = schedule(desk, lists=["A", "B"], segments=["Crime"], batch_size=10)
    assert tick(desk.sessions, RecordingDispatcher(), now=EMBARGO, policy=POLICY).armed
    # When two of them unsubscribe before the embargo, one of them under another spelling
    with desk.sessions.begin() as session:
        for email in ("ANN@example.com", "bob@example.com"):
            suppress(
                session,
                email=email,
                reason=SuppressionReason.UNSUBSCRIBED,
                source="one-click",
                now=NOW,
            )
    # Then a claim of two skips both, marks them suppressed, and still returns two others
    assert claim(desk, send_id, batch_no=0, limit=2) == ["cat@example.com", "zoe@bücher.example"]
    states = {email: state for email, _, state in deliveries(desk, send_id)}
    assert states == {
        "ann@example.com": DeliveryState.SUPPRESSED,
        "bob@example.com": DeliveryState.SUPPRESSED,
        "cat@example.com": DeliveryState.SENDING,
        "zoe@bücher.example": DeliveryState.SENDING,
    }
    with desk.sessions() as session:
        events = Counter(
            (state, detail)
            for state, detail in session.execute(
                select(DeliveryEvent.state, DeliveryEvent.detail)
                .join(Delivery, Delivery.id == DeliveryEvent.delivery_id)
                .where(Delivery.send_id == send_id)
            )
        )
    assert events[(DeliveryState.SUPPRESSED, SUPPRESSED_DETAIL)] == 2
    assert claim(desk, send_id, batch_no=0, limit=2) == []


def test_a_chunk_of_only_suppressed_addresses_does_not_end_the_batch(desk: Runtime) -> None:
    send_id = schedule(desk, lists=["A", "B"], segments=["Crime"], batch_size=10)
    assert tick(desk.sessions, RecordingDispatcher(), now=EMBARGO, policy=POLICY).armed
    with desk.sessions.begin() as session:
        for email in ("ann@example.com", "bob@example.com"):
            suppress(
                session, email=email, reason=SuppressionReason.UNSUBSCRIBED, source="x", now=NOW
            )
    # The first chunk of two is all suppressed; the claim reads on rather than return nothing.
    assert claim(desk, send_id, batch_no=0, limit=2) == ["cat@example.com", "zoe@bücher.example"]


def test_a_suppressed_delivery_of_a_send_not_yet_live_is_left_alone(desk: Runtime) -> None:
    send_id = schedule(desk, lists=["A"], segments=[], batch_size=10)
    with desk.sessions.begin() as session:
        suppress(
            session,
            email="ann@example.com",
            reason=SuppressionReason.UNSUBSCRIBED,
            source="x",
            now=NOW,
        )
    # Not armed: nothing is claimed and nothing changes state.
    assert claim(desk, send_id, batch_no=0, limit=10) == []
    assert {state for _, _, state in deliveries(desk, send_id)} == {DeliveryState.PENDING}
