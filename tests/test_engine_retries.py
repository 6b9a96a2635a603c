"""What a failure does to a delivery: retried later, given up on, or its address suppressed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pytest

from distributor.clock import ManualClock
from distributor.engine.claims import SUPPRESSED_DETAIL
from distributor.engine.dispatch import BatchRef
from distributor.engine.relay_health import relay_state
from distributor.engine.retries import RetryPolicy, judge_failure
from distributor.errors import RelayUnavailableError, TransportError
from distributor.mail.builder import message_id_for
from distributor.message import BuiltMessage, Recipient
from distributor.runtime import Runtime
from distributor.states import DeliveryState
from distributor.status import send_statuses
from distributor.suppression import SuppressionReason, is_suppressed, list_suppressions
from distributor.transport import Envelope, InMemoryTransport
from tests.support.engine import (
    EMBARGO,
    add_audience,
    armed_send,
    batch_job,
    deliveries_by_email,
    delivery_history,
    run_batch,
    run_tick,
    schedule,
)

T0 = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)
RETRY = RetryPolicy(initial=timedelta(seconds=30), window=timedelta(hours=2))
GREYLISTED = TransportError(
    "451 4.7.1 greylisted, please try again later", code=451, temporary=True
)
NO_SUCH_USER = "550 5.1.1 <editor1@daily1.example.com>: Recipient address rejected: User unknown"
POLICY_REFUSAL = "550 5.7.1 Message rejected by the recipient's policy"


# --- judging a failure -------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5])
def test_a_temporary_failure_is_deferred_for_a_doubling_wait_with_jitter(attempt: int) -> None:
    base = 30 * 2 ** (attempt - 1)
    waits = set()
    for _ in range(200):
        verdict = judge_failure(
            GREYLISTED, attempt=attempt, first_claimed_at=T0, now=T0, policy=RETRY
        )

        assert verdict.state is DeliveryState.DEFERRED
        assert verdict.reason == str(GREYLISTED)
        assert not verdict.hard_bounce
        assert verdict.next_attempt_at is not None
        wait = (verdict.next_attempt_at - T0).total_seconds()
        assert base * 0.8 <= wait <= base * 1.2
        waits.add(wait)
    # Spread out, so that the deferred deliveries of one batch do not all come back at once.
    assert len(waits) > 100


def test_the_wait_between_retries_stops_growing_at_half_an_hour() -> None:
    verdict = judge_failure(GREYLISTED, attempt=12, first_claimed_at=T0, now=T0, policy=RETRY)
    assert verdict.next_attempt_at is not None
    assert verdict.next_attempt_at - T0 <= timedelta(minutes=30) * 1.2


def test_a_temporary_failure_past_the_retry_window_fails_as_expired() -> None:
    # The next attempt (at least 24 s away) would fall outside the two hours.
    now = T0 + RETRY.window - timedelta(seconds=20)
    verdict = judge_failure(GREYLISTED, attempt=9, first_claimed_at=T0, now=now, policy=RETRY)
    assert verdict.state is DeliveryState.FAILED
    assert verdict.reason.startswith("expired: still failing temporarily after 2 h")
    assert verdict.reason.endswith(f"last: {GREYLISTED}")
    assert (verdict.next_attempt_at, verdict.hard_bounce) == (None, False)

    # An attempt whose next try still fits is deferred, however many came before.
    now = T0 + RETRY.window - timedelta(seconds=37)
    verdict = judge_failure(GREYLISTED, attempt=1, first_claimed_at=T0, now=now, policy=RETRY)
    assert verdict.state is DeliveryState.DEFERRED


@pytest.mark.parametrize(
    ("error", "state", "hard_bounce"),
    [
        pytest.param(
            TransportError(NO_SUCH_USER, code=550), DeliveryState.BOUNCED, True, id="550 5.1.1"
        ),
        pytest.param(
            TransportError("553 5.1.3 Bad recipient address syntax", code=553),
            DeliveryState.BOUNCED,
            True,
            id="553 5.1.3",
        ),
        pytest.param(
            TransportError(POLICY_REFUSAL, code=550), DeliveryState.FAILED, False, id="550 5.7.1"
        ),
        pytest.param(
            TransportError("550 mailbox unavailable", code=550),
            DeliveryState.FAILED,
            False,
            id="550 without enhanced status",
        ),
        pytest.param(
            TransportError("the relay does not support SMTPUTF8 for this address"),
            DeliveryState.FAILED,
            False,
            id="no code",
        ),
    ],
)
def test_a_permanent_failure_is_final_and_only_a_bad_mailbox_is_a_hard_bounce(
    error: TransportError, state: DeliveryState, hard_bounce: bool
) -> None:
    verdict = judge_failure(error, attempt=1, first_claimed_at=T0, now=T0, policy=RETRY)
    assert (verdict.state, verdict.hard_bounce, verdict.next_attempt_at) == (
        state,
        hard_bounce,
        None,
    )
    assert verdict.reason == str(error)


# --- failures while sending a batch ----------------------------------------------------------


def message_id(envelope: Envelope) -> str:
    return str(message_from_bytes(envelope.data, policy=policy.default)["Message-ID"])


def test_a_greylisted_message_is_retried_when_due_and_sent_with_the_same_message_id(
    runtime: Runtime,
) -> None:
    send_id, emails = armed_send(runtime, 3)
    greylisted = emails[1]
    tries: list[Envelope] = []

    def refuse(envelope: Envelope) -> TransportError | None:
        if envelope.recipient == greylisted:
            tries.append(envelope)
            if len(tries) <= 2:
                return GREYLISTED
        return None

    transport = InMemoryTransport(refuse=refuse)

    report = run_batch(runtime, batch_job(runtime, send_id), ManualClock(EMBARGO), transport)

    assert (report.sent, report.deferred, report.failed) == (2, 1, 0)
    delivery = deliveries_by_email(runtime, send_id)[greylisted]
    first_retry = delivery.next_attempt_at
    assert delivery.state is DeliveryState.DEFERRED
    assert (delivery.attempts, delivery.smtp_code, delivery.error) == (1, 451, str(GREYLISTED))
    assert first_retry is not None
    assert EMBARGO + timedelta(seconds=24) <= first_retry <= EMBARGO + timedelta(seconds=36)
    with runtime.sessions() as session:
        (status,) = send_statuses(session, send_id)
    assert status.next_retry_at == first_retry
    assert status.counts == {DeliveryState.SENT: 2, DeliveryState.DEFERRED: 1}

    # The scheduler hands the batch out again only once the retry is due.
    assert run_tick(runtime, first_retry - timedelta(microseconds=1)).dispatched == []
    assert run_tick(runtime, first_retry).dispatched == [BatchRef(send_id, 0)]
    report = run_batch(runtime, batch_job(runtime, send_id), ManualClock(first_retry), transport)

    assert (report.sent, report.deferred) == (0, 1)
    delivery = deliveries_by_email(runtime, send_id)[greylisted]
    second_retry = delivery.next_attempt_at
    assert (delivery.state, delivery.attempts) == (DeliveryState.DEFERRED, 2)
    assert second_retry is not None
    assert (
        first_retry + timedelta(seconds=48) <= second_retry <= first_retry + timedelta(seconds=72)
    )

    assert run_tick(runtime, second_retry).dispatched == [BatchRef(send_id, 0)]
    report = run_batch(runtime, batch_job(runtime, send_id), ManualClock(second_retry), transport)

    assert (report.sent, report.deferred) == (1, 0)
    delivery = deliveries_by_email(runtime, send_id)[greylisted]
    assert (delivery.state, delivery.attempts, delivery.finished_at) == (
        DeliveryState.SENT,
        3,
        second_retry,
    )
    assert delivery.next_attempt_at is None
    # The recipient's server sees one message tried three times, never three messages.
    expected = message_id_for(delivery.id, send_id, runtime.settings.message_id_domain)
    assert [message_id(e) for e in tries] == [expected] * 3
    assert Counter(e.recipient for e in transport.sent) == dict.fromkeys(emails, 1)
    assert [state for state, _ in delivery_history(runtime, delivery.id)] == [
        DeliveryState.PENDING,
        DeliveryState.SENDING,
        DeliveryState.DEFERRED,
        DeliveryState.SENDING,
        DeliveryState.DEFERRED,
        DeliveryState.SENDING,
        DeliveryState.SENT,
    ]
    assert run_tick(runtime, second_retry + timedelta(seconds=1)).completed == [send_id]


def test_a_hard_bounce_suppresses_the_address_and_a_later_send_does_not_mail_it(
    runtime: Runtime,
) -> None:
    release_id, emails = add_audience(runtime, 3)
    gone = emails[1]
    later = EMBARGO + timedelta(hours=1)
    first = schedule(runtime, release_id)
    second = schedule(runtime, release_id, embargo_at=later)
    assert run_tick(runtime, EMBARGO - timedelta(seconds=10)).armed == [first]

    def refuse(envelope: Envelope) -> TransportError | None:
        if envelope.recipient == gone:
            return TransportError(NO_SUCH_USER, code=550)
        return None

    report = run_batch(
        runtime, batch_job(runtime, first), ManualClock(EMBARGO), InMemoryTransport(refuse=refuse)
    )

    assert (report.sent, report.bounced, report.failed) == (2, 1, 0)
    bounced = deliveries_by_email(runtime, first)[gone]
    assert (bounced.state, bounced.smtp_code, bounced.error) == (
        DeliveryState.BOUNCED,
        550,
        NO_SUCH_USER,
    )
    with runtime.sessions() as session:
        assert is_suppressed(session, gone)
        (entry,) = list_suppressions(session)
    assert (entry.email, entry.reason) == (gone, SuppressionReason.HARD_BOUNCED)
    assert entry.source == f"relay reply to delivery {bounced.id}"

    # The second send, scheduled before the bounce, reaches everyone else and skips the address.
    assert run_tick(runtime, later - timedelta(seconds=10)).armed == [second]
    transport = InMemoryTransport()
    report = run_batch(runtime, batch_job(runtime, second), ManualClock(later), transport)

    assert (report.sent, report.failed, report.bounced) == (2, 0, 0)
    assert sorted(e.recipient for e in transport.sent) == sorted(set(emails) - {gone})
    skipped = deliveries_by_email(runtime, second)[gone]
    assert (skipped.state, skipped.attempts) == (DeliveryState.SUPPRESSED, 0)
    assert delivery_history(runtime, skipped.id)[-1] == (
        DeliveryState.SUPPRESSED,
        SUPPRESSED_DETAIL,
    )


def test_an_unexpected_error_for_one_message_fails_only_that_delivery(runtime: Runtime) -> None:
    send_id, emails = armed_send(runtime, 6)
    broken = emails[2]

    def refuse(envelope: Envelope) -> TransportError | None:
        if envelope.recipient == broken:
            raise RuntimeError("connection object in an unexpected state")
        return None

    transport = InMemoryTransport(refuse=refuse)

    report = run_batch(runtime, batch_job(runtime, send_id), ManualClock(EMBARGO), transport)

    assert (report.sent, report.failed, report.stopped_reason) == (5, 1, None)
    reason = "unexpected error: RuntimeError: connection object in an unexpected state"
    assert report.errors == [reason]
    rows = deliveries_by_email(runtime, send_id)
    assert (rows[broken].state, rows[broken].error) == (DeliveryState.FAILED, reason)
    assert {e: d.state for e, d in rows.items() if e != broken} == dict.fromkeys(
        set(emails) - {broken}, DeliveryState.SENT
    )
    assert sorted(e.recipient for e in transport.sent) == sorted(set(emails) - {broken})


def test_a_message_that_cannot_be_built_fails_only_that_delivery(runtime: Runtime) -> None:
    send_id, emails = armed_send(runtime, 5)
    unbuildable = emails[3]

    def make_builder(snapshot: object) -> object:
        build = runtime.make_builder(snapshot)  # type: ignore[arg-type]

        def build_or_fail(recipient: Recipient) -> BuiltMessage:
            if recipient.email == unbuildable:
                raise ValueError("the name cannot be encoded in the header")
            return build(recipient)

        return build_or_fail

    transport = InMemoryTransport()

    report = run_batch(
        runtime,
        batch_job(runtime, send_id),
        ManualClock(EMBARGO),
        transport,
        make_builder=make_builder,
    )

    assert (report.sent, report.failed) == (4, 1)
    failed = deliveries_by_email(runtime, send_id)[unbuildable]
    assert failed.state is DeliveryState.FAILED
    assert failed.error == "cannot build: the name cannot be encoded in the header"
    assert sorted(e.recipient for e in transport.sent) == sorted(set(emails) - {unbuildable})


# --- the relay is down -----------------------------------------------------------------------


def test_a_relay_that_is_down_stops_the_batch_and_rests_every_worker_until_it_may_be_back(
    runtime: Runtime,
) -> None:
    # Twelve deliveries; a worker claims ten at a time (claim_chunk in the settings fixture).
    send_id, emails = armed_send(runtime, 12)
    tries: list[str] = []
    down = RelayUnavailableError("cannot connect to the relay at 127.0.0.1:2525: refused")

    def refuse(envelope: Envelope) -> TransportError | None:
        tries.append(envelope.recipient)
        return down

    clock = ManualClock(EMBARGO)

    report = run_batch(
        runtime, batch_job(runtime, send_id), clock, InMemoryTransport(refuse=refuse)
    )

    # One message, tried three times in a row, then the batch stops.
    assert len(tries) == 3 and len(set(tries)) == 1
    assert (report.sent, report.failed, report.deferred, report.handed_back) == (0, 0, 0, 10)
    assert report.stopped_reason == f"relay unavailable: {down}"
    with runtime.sessions() as session:
        relay = relay_state(session)
    assert relay.consecutive_outages == 1
    assert relay.last_error == str(down)
    assert relay.retry_after is not None
    assert clock.now() + timedelta(seconds=5) <= relay.retry_after
    assert relay.retry_after <= clock.now() + timedelta(seconds=6)
    # Nobody is charged an attempt for the relay's outage.
    rows = deliveries_by_email(runtime, send_id).values()
    assert Counter((d.state, d.attempts, d.next_attempt_at) for d in rows) == {
        (DeliveryState.DEFERRED, 0, relay.retry_after): 10,
        (DeliveryState.PENDING, 0, None): 2,
    }
    deferred = next(d for d in rows if d.state is DeliveryState.DEFERRED)
    assert delivery_history(runtime, deferred.id)[-1] == (
        DeliveryState.DEFERRED,
        f"relay unavailable, not counted as an attempt: {down}",
    )

    # Until the relay may be back, the scheduler hands no batch to any worker.
    for at in (clock.now(), relay.retry_after - timedelta(microseconds=1)):
        resting = run_tick(runtime, at)
        assert (resting.relay_resting, resting.dispatched) == (True, [])
    again = run_tick(runtime, relay.retry_after)
    assert (again.relay_resting, again.dispatched) == (False, [BatchRef(send_id, 0)])

    transport = InMemoryTransport()
    report = run_batch(
        runtime, batch_job(runtime, send_id), ManualClock(relay.retry_after), transport
    )

    assert report.sent == 12
    assert Counter(e.recipient for e in transport.sent) == dict.fromkeys(emails, 1)
    assert {d.attempts for d in deliveries_by_email(runtime, send_id).values()} == {1}
    with runtime.sessions() as session:
        recovered = relay_state(session)
    assert (recovered.consecutive_outages, recovered.retry_after) == (0, None)
