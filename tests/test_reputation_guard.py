"""The reputation guard in the scheduler's tick: a send whose relay refuses too many
addresses for good (hard bounces) pauses itself and says why; one an admin resumed after
such a pause is left running."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from distributor.clock import ManualClock
from distributor.errors import TransportError
from distributor.models import Delivery, Send
from distributor.runtime import Runtime
from distributor.send_control import resume_send
from distributor.settings import Settings
from distributor.states import DeliveryState, SendState
from distributor.transport import Envelope, InMemoryTransport
from tests.support.engine import EMBARGO, armed_send, batch_job, run_batch, run_tick

UNKNOWN = TransportError("550 5.1.1 no such mailbox here", code=550, temporary=False)


def send_with_dead_addresses(runtime: Runtime, *, total: int, dead: int) -> int:
    send_id, emails = armed_send(runtime, total)
    gone = set(emails[:dead])

    def refuse(envelope: Envelope) -> TransportError | None:
        return UNKNOWN if envelope.recipient in gone else None

    # Halfway: the tick looks while the send is still going.
    report = run_batch(
        runtime, batch_job(runtime, send_id), ManualClock(EMBARGO), InMemoryTransport(refuse=refuse)
    )
    assert report.bounced == dead
    with runtime.sessions.begin() as session:
        session.execute(update(Send).where(Send.id == send_id).values(state=SendState.ARMED))
        # One delivery still to go, so the send is not complete when the tick looks.
        first_sent = session.scalar(
            select(Delivery.id).where(
                Delivery.send_id == send_id, Delivery.state == DeliveryState.SENT
            )
        )
        session.execute(
            update(Delivery)
            .where(Delivery.id == first_sent)
            .values(state=DeliveryState.PENDING, finished_at=None)
        )
    return send_id


def test_a_send_bouncing_past_the_limit_pauses_itself_and_says_why(settings: Settings) -> None:
    runtime = Runtime(settings.model_copy(update={"reputation_minimum_delivered": 10}))
    try:
        judged_early(runtime)
    finally:
        runtime.close()


def judged_early(runtime: Runtime) -> None:
    send_id = send_with_dead_addresses(runtime, total=20, dead=3)
    report = run_tick(runtime, EMBARGO + timedelta(seconds=1))
    assert report.guarded == [send_id]
    with runtime.sessions() as session:
        send = session.get(Send, send_id)
        assert send is not None and send.state is SendState.PAUSED
        assert send.hold_reason is not None
        assert "15.8 % of delivered messages bounced hard (3 of 19; limit 5 %)" in send.hold_reason
        assert f"distributor send resume {send_id}" in send.hold_reason

    # An admin looked and resumed it: the guard leaves it running.
    with runtime.sessions.begin() as session:
        resume_send(
            session,
            send_id=send_id,
            now=EMBARGO + timedelta(seconds=2),
            arm_lead=timedelta(seconds=10),
        )
    report = run_tick(runtime, EMBARGO + timedelta(seconds=3))
    assert report.guarded == []


def test_a_send_within_the_limit_or_too_small_to_judge_goes_on(runtime: Runtime) -> None:
    send_id = send_with_dead_addresses(runtime, total=20, dead=3)
    # Below the default minimum of 100 delivered messages a rate says little.
    assert run_tick(runtime, EMBARGO + timedelta(seconds=1)).guarded == []
    with runtime.sessions() as session:
        send = session.get(Send, send_id)
        assert send is not None and send.state is SendState.ARMED
