"""An admin's hands on a send: a late send held until resumed, pause and resume, retrying."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from distributor.clock import ManualClock
from distributor.engine.dispatch import BatchRef
from distributor.errors import InvalidStateError, TransportError
from distributor.runtime import Runtime
from distributor.scheduling import cancel_send
from distributor.send_control import pause_send, resume_send, retry_deliveries
from distributor.states import DeliveryState, SendState
from distributor.status import send_statuses
from distributor.suppression import SuppressionReason, suppress
from distributor.transport import Envelope, InMemoryTransport
from tests.support.engine import (
    EMBARGO,
    add_audience,
    armed_send,
    batch_job,
    batch_row,
    claim_for_test,
    deliveries_by_email,
    run_batch,
    run_tick,
    schedule,
    send_row,
)

LEAD = timedelta(seconds=10)
NO_SUCH_USER = "550 5.1.1 Recipient address rejected: User unknown"
POLICY_REFUSAL = "550 5.7.1 Message rejected by the recipient's policy"


# --- late sends --------------------------------------------------------------------------------


def test_a_send_nothing_sent_in_time_is_held_until_an_admin_resumes_it(runtime: Runtime) -> None:
    release_id, emails = add_audience(runtime, 5)
    send_id = schedule(runtime, release_id)
    max_lateness = runtime.scheduler_policy.max_lateness
    assert max_lateness == timedelta(minutes=15)

    # No scheduler ran over the embargo; the first one back comes sixteen minutes late.
    late = EMBARGO + max_lateness + timedelta(minutes=1)
    report = run_tick(runtime, late)

    assert report.held == [send_id]
    assert (report.armed, report.dispatched) == ([], [])
    send = send_row(runtime, send_id)
    assert (send.state, send.held_at) == (SendState.HELD, late)
    assert send.hold_reason is not None
    assert "nothing was sent within 15 minutes of the embargo" in send.hold_reason
    assert f"distributor send resume {send_id}" in send.hold_reason
    with runtime.sessions() as session:
        (status,) = send_statuses(session, send_id)
    assert (status.state, status.hold_reason) == (SendState.HELD, send.hold_reason)
    # Held, it sends nothing, whoever asks.
    transport = InMemoryTransport()
    report = run_batch(runtime, batch_job(runtime, send_id), ManualClock(late), transport)
    assert report.skipped_reason == "send is held, not armed"
    assert transport.sent == []

    resumed_at = late + timedelta(minutes=5)
    with runtime.sessions.begin() as session:
        assert resume_send(session, send_id=send_id, now=resumed_at, arm_lead=LEAD) is (
            SendState.ARMED
        )
    send = send_row(runtime, send_id)
    assert (send.state, send.resumed_at, send.hold_reason) == (SendState.ARMED, resumed_at, None)

    # However late it now is, the admin's word stands: it is not held again.
    for seconds in (1, 2):
        report = run_tick(runtime, resumed_at + timedelta(seconds=seconds))
        assert report.held == []
    assert report.dispatched == []  # queued once, by the first of the two ticks
    at = resumed_at + timedelta(seconds=3)
    report = run_batch(runtime, batch_job(runtime, send_id), ManualClock(at), transport)
    assert report.sent == 5
    assert sorted(e.recipient for e in transport.sent) == sorted(emails)
    assert run_tick(runtime, at + timedelta(seconds=1)).completed == [send_id]


def test_a_send_that_started_in_time_or_is_only_a_little_late_is_not_held(
    runtime: Runtime,
) -> None:
    release_id, _ = add_audience(runtime, 4)
    started = schedule(runtime, release_id)
    slightly_late = schedule(runtime, release_id, embargo_at=EMBARGO + timedelta(hours=1))
    assert run_tick(runtime, EMBARGO - LEAD).armed == [started]
    # The first send began on time, then its worker went away with most of it unsent.
    with runtime.sessions.begin() as session:
        assert len(claim_for_test(session, started, 0, EMBARGO, 1)) == 1

    assert run_tick(runtime, EMBARGO + timedelta(minutes=30)).held == []
    report = run_tick(runtime, EMBARGO + timedelta(hours=1, minutes=14))
    assert (report.held, report.armed) == ([], [slightly_late])
    assert send_row(runtime, started).state is SendState.ARMED


# --- pause and resume --------------------------------------------------------------------------


def test_pausing_stops_further_claims_and_resuming_carries_on_without_sending_twice(
    runtime: Runtime,
) -> None:
    send_id, emails = armed_send(runtime, 12)
    clock = ManualClock(EMBARGO)
    paused_at = EMBARGO + timedelta(seconds=1)
    paused = []

    def pause_during_the_third(envelope: Envelope) -> None:
        if envelope.recipient == emails[2] and not paused:
            clock.advance(1)
            with runtime.sessions.begin() as session:
                pause_send(session, send_id=send_id, now=paused_at)
            paused.append(envelope.recipient)

    transport = InMemoryTransport(refuse=pause_during_the_third)
    # The worker claims three at a time: it finishes what it holds, then claims no more.
    report = run_batch(runtime, batch_job(runtime, send_id, claim_chunk=3), clock, transport)

    assert paused
    rows = deliveries_by_email(runtime, send_id)
    claimed = [d for d in rows.values() if d.claimed_at is not None]
    # nothing claimed after the pause (a claim running while the manual clock stepped to the
    # pause may read the pause's instant; it still committed first, or it claims nothing)
    assert all(EMBARGO <= d.claimed_at <= paused_at for d in claimed if d.claimed_at)
    assert {(d.state, d.attempts) for d in claimed} == {(DeliveryState.SENT, 1)}
    assert 3 <= report.sent == len(claimed) < len(emails)
    assert (report.failed, report.handed_back) == (0, 0)
    assert [e.recipient for e in transport.sent] == emails[: report.sent]
    unclaimed = [d for d in rows.values() if d.claimed_at is None]
    assert {(d.state, d.attempts) for d in unclaimed} == {(DeliveryState.PENDING, 0)}
    send = send_row(runtime, send_id)
    assert (send.state, send.paused_at, send.hold_reason) == (
        SendState.PAUSED,
        paused_at,
        "paused by an admin",
    )
    # While paused, no tick queues it, holds it or completes it, and no worker sends.
    report = run_tick(runtime, EMBARGO + timedelta(minutes=20))
    assert (report.dispatched, report.held, report.completed) == ([], [], [])
    later = EMBARGO + timedelta(minutes=21)
    report = run_batch(runtime, batch_job(runtime, send_id), ManualClock(later), transport)
    assert report.skipped_reason == "send is paused, not armed"
    assert len(transport.sent) == len(claimed)

    with runtime.sessions.begin() as session:
        assert resume_send(session, send_id=send_id, now=later, arm_lead=LEAD) is SendState.ARMED
    assert batch_row(runtime, send_id, 0).queued_at is None
    assert run_tick(runtime, later).dispatched == [BatchRef(send_id, 0)]
    report = run_batch(runtime, batch_job(runtime, send_id), ManualClock(later), transport)

    assert report.sent == len(unclaimed)
    assert Counter(e.recipient for e in transport.sent) == dict.fromkeys(emails, 1)
    assert run_tick(runtime, later + timedelta(seconds=1)).completed == [send_id]


def test_a_send_paused_before_its_embargo_waits_as_scheduled_when_resumed(
    runtime: Runtime,
) -> None:
    release_id, _ = add_audience(runtime, 2)
    send_id = schedule(runtime, release_id)
    with runtime.sessions.begin() as session:
        pause_send(session, send_id=send_id, now=EMBARGO - timedelta(hours=1))
    assert run_tick(runtime, EMBARGO - LEAD).armed == []

    with runtime.sessions.begin() as session:
        state = resume_send(
            session, send_id=send_id, now=EMBARGO - timedelta(minutes=30), arm_lead=LEAD
        )
    assert state is SendState.SCHEDULED
    assert run_tick(runtime, EMBARGO - LEAD).armed == [send_id]


def test_pause_and_resume_refuse_sends_in_the_wrong_state(runtime: Runtime) -> None:
    send_id, _ = armed_send(runtime, 2)
    with runtime.sessions.begin() as session, pytest.raises(InvalidStateError, match="is armed"):
        resume_send(session, send_id=send_id, now=EMBARGO, arm_lead=LEAD)
    with runtime.sessions.begin() as session:
        cancel_send(session, send_id=send_id, now=EMBARGO - timedelta(seconds=1))
    with (
        runtime.sessions.begin() as session,
        pytest.raises(InvalidStateError, match="only a scheduled or armed send can be paused"),
    ):
        pause_send(session, send_id=send_id, now=EMBARGO)
    with runtime.sessions.begin() as session, pytest.raises(InvalidStateError, match="cancelled"):
        retry_deliveries(session, send_id=send_id, now=EMBARGO)
    assert send_row(runtime, send_id).state is SendState.CANCELLED


# --- retrying ----------------------------------------------------------------------------------


def test_retrying_puts_failures_back_in_line_and_reopens_the_completed_send(
    runtime: Runtime,
) -> None:
    send_id, emails = armed_send(runtime, 5)
    refused, bounced, unsubscribed = emails[0], emails[1], emails[4]
    with runtime.sessions.begin() as session:
        suppress(
            session,
            email=unsubscribed,
            reason=SuppressionReason.UNSUBSCRIBED,
            source="one-click unsubscribe",
            now=EMBARGO - timedelta(minutes=1),
        )

    def refuse(envelope: Envelope) -> TransportError | None:
        if envelope.recipient == refused:
            return TransportError(POLICY_REFUSAL, code=550)
        if envelope.recipient == bounced:
            return TransportError(NO_SUCH_USER, code=550)
        return None

    run_batch(
        runtime, batch_job(runtime, send_id), ManualClock(EMBARGO), InMemoryTransport(refuse=refuse)
    )
    assert run_tick(runtime, EMBARGO + timedelta(seconds=1)).completed == [send_id]
    before = deliveries_by_email(runtime, send_id)
    assert {e: d.state for e, d in before.items()} == {
        refused: DeliveryState.FAILED,
        bounced: DeliveryState.BOUNCED,
        emails[2]: DeliveryState.SENT,
        emails[3]: DeliveryState.SENT,
        unsubscribed: DeliveryState.SUPPRESSED,
    }

    # An hour later the relay's policy is fixed, and an admin puts the failures back in line.
    retried_at = EMBARGO + timedelta(hours=1)
    with runtime.sessions.begin() as session:
        assert retry_deliveries(session, send_id=send_id, now=retried_at) == 2

    send = send_row(runtime, send_id)
    assert (send.state, send.completed_at, send.resumed_at) == (SendState.ARMED, None, retried_at)
    rows = deliveries_by_email(runtime, send_id)
    for email in (refused, bounced):
        assert (rows[email].state, rows[email].error, rows[email].first_claimed_at) == (
            DeliveryState.PENDING,
            None,
            None,
        )
    assert rows[unsubscribed].state is DeliveryState.SUPPRESSED

    # An hour past the embargo, yet not held: an admin asked for it.
    report = run_tick(runtime, retried_at + timedelta(seconds=1))
    assert (report.held, report.dispatched) == ([], [BatchRef(send_id, 0)])
    transport = InMemoryTransport()
    report = run_batch(
        runtime,
        batch_job(runtime, send_id),
        ManualClock(retried_at + timedelta(seconds=2)),
        transport,
    )

    # The policy refusal goes through now; the mailbox that does not exist stays suppressed.
    assert report.sent == 1
    assert [e.recipient for e in transport.sent] == [refused]
    after = deliveries_by_email(runtime, send_id)
    assert (after[refused].state, after[refused].attempts) == (DeliveryState.SENT, 2)
    assert (after[bounced].state, after[bounced].attempts) == (DeliveryState.SUPPRESSED, 1)
    assert after[unsubscribed].state is DeliveryState.SUPPRESSED
    for email in emails[2:4]:
        assert (after[email].state, after[email].attempts) == (DeliveryState.SENT, 1)
    report = run_tick(runtime, retried_at + timedelta(seconds=3))
    assert report.completed == [send_id]

    # Only failures can be retried, and nothing is left to retry now.
    with (
        runtime.sessions.begin() as session,
        pytest.raises(InvalidStateError, match="only failed and bounced"),
    ):
        retry_deliveries(session, send_id=send_id, states=[DeliveryState.SENT], now=retried_at)
    with runtime.sessions.begin() as session:
        assert retry_deliveries(session, send_id=send_id, now=retried_at) == 0
    assert send_row(runtime, send_id).state is SendState.COMPLETED
