"""A worker sending one batch: never before the embargo, never after a cancel, each result kept."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

from sqlalchemy import select

from distributor.clock import ManualClock
from distributor.contacts_import import ContactRow, ParsedContacts, import_contacts
from distributor.engine.batch import BatchJob, BatchReport, deliver_batch
from distributor.engine.dispatch import RecordingDispatcher
from distributor.engine.outcomes import REPLY_LIMIT
from distributor.engine.tick import SchedulerPolicy, tick
from distributor.errors import TransportError
from distributor.lists import add_to_list, create_list
from distributor.models import Contact, Delivery, Send
from distributor.releases import create_release
from distributor.runtime import Runtime
from distributor.scheduling import cancel_send, schedule_send
from distributor.states import DeliveryState, SendState
from distributor.suppression import is_suppressed
from distributor.transport import Envelope, InMemoryTransport
from tests.conftest import SAMPLE_DRAFT
from tests.support.engine import (
    batch_row,
    delivery_history,
    held_by_another_worker,
    manual_parts,
    run_batch,
)

NOW = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)
EMBARGO = NOW + timedelta(minutes=30)
LEAD = timedelta(seconds=10)
REFUSED = "relay refused the recipient: 550 5.1.1 No such mailbox here"


def add_audience(rt: Runtime, rows: list[ContactRow]) -> int:
    with rt.sessions.begin() as session:
        import_contacts(session, ParsedContacts(rows=rows), now=NOW)
        create_list(session, "Desks", now=NOW)
        add_to_list(session, "Desks", [r.email for r in rows])
        return create_release(session, SAMPLE_DRAFT, now=NOW).id


def contacts(count: int) -> list[ContactRow]:
    return [
        ContactRow(
            line=i + 2, email=f"editor{i}@daily{i % 3}.example.com", name=f"Editor {i}", outlet=""
        )
        for i in range(count)
    ]


def arm_new_send(
    rt: Runtime, release_id: int, *, embargo_at: datetime = EMBARGO, batch_size: int = 100
) -> int:
    """Schedule a send to the Desks list, and let the scheduler arm it just before its embargo."""
    with rt.sessions.begin() as session:
        send_id = schedule_send(
            session,
            release_id=release_id,
            list_names=["Desks"],
            embargo_at=embargo_at,
            embargo_zone="Europe/London",
            now=NOW,
            batch_size=batch_size,
        ).send_id
    policy = SchedulerPolicy(arm_lead=LEAD, redispatch_after=timedelta(minutes=5))
    report = tick(rt.sessions, RecordingDispatcher(), now=embargo_at - LEAD, policy=policy)
    assert report.armed == [send_id]
    return send_id


def armed_send(rt: Runtime, count: int = 12, *, batch_size: int = 100) -> tuple[int, list[str]]:
    """A send of `count` contacts that the scheduler armed ten seconds before its embargo."""
    audience = contacts(count)
    send_id = arm_new_send(rt, add_audience(rt, audience), batch_size=batch_size)
    return send_id, [r.email for r in audience]


def job(
    rt: Runtime,
    send_id: int,
    batch_no: int = 0,
    *,
    max_wait: timedelta = timedelta(0),
    claim_chunk: int | None = None,
) -> BatchJob:
    base = rt.batch_job(send_id, batch_no)
    return replace(base, max_wait=max_wait, claim_chunk=claim_chunk or base.claim_chunk)


def run(
    rt: Runtime, batch_job: BatchJob, clock: ManualClock, transport: InMemoryTransport
) -> BatchReport:
    return run_batch(rt, batch_job, clock, transport)


def rows(rt: Runtime, send_id: int) -> list[Delivery]:
    with rt.sessions() as session:
        return list(
            session.scalars(
                select(Delivery).where(Delivery.send_id == send_id).order_by(Delivery.id)
            )
        )


def history(rt: Runtime, delivery_id: int) -> list[tuple[DeliveryState, str | None]]:
    return delivery_history(rt, delivery_id)


def emails_by_delivery(rt: Runtime, send_id: int) -> dict[int, str]:
    with rt.sessions() as session:
        return dict(
            session.execute(
                select(Delivery.id, Contact.email)
                .join(Contact, Contact.id == Delivery.contact_id)
                .where(Delivery.send_id == send_id)
            ).all()
        )


def test_before_the_embargo_nothing_is_transmitted(runtime: Runtime) -> None:
    send_id, _ = armed_send(runtime)
    transport = InMemoryTransport()

    # Without waiting (max_wait 0), seconds or a microsecond early: nothing goes.
    for early in (EMBARGO - timedelta(seconds=3), EMBARGO - timedelta(microseconds=1)):
        clock = ManualClock(early)
        report = run(runtime, job(runtime, send_id), clock, transport)
        assert (report.sent, report.failed) == (0, 0)
        assert clock.now() == early
    # Arrived far too early: it waits at most max_wait, then gives up rather than send early.
    start = EMBARGO - timedelta(seconds=60)
    clock = ManualClock(start)
    report = run(runtime, job(runtime, send_id, max_wait=LEAD), clock, transport)
    assert report.sent == 0
    assert clock.now() == start + LEAD

    assert transport.sent == []
    deliveries = rows(runtime, send_id)
    assert {d.state for d in deliveries} == {DeliveryState.PENDING}
    assert {d.attempts for d in deliveries} == {0}
    assert all(history(runtime, d.id) == [(DeliveryState.PENDING, None)] for d in deliveries)
    # Each early worker gave the batch back for the next one.
    assert batch_row(runtime, send_id, 0).lease_owner is None
    # At the embargo itself, it all goes.
    assert run(runtime, job(runtime, send_id), ManualClock(EMBARGO), transport).sent == 12


def test_an_early_batch_waits_for_the_embargo_then_sends_everyone(runtime: Runtime) -> None:
    send_id, emails = armed_send(runtime)
    clock = ManualClock(EMBARGO - timedelta(seconds=7.3))
    transport = InMemoryTransport()

    report = run(runtime, job(runtime, send_id, max_wait=LEAD), clock, transport)

    assert (report.sent, report.failed, report.skipped_reason) == (12, 0, None)
    assert sorted(e.recipient for e in transport.sent) == sorted(emails)
    assert EMBARGO <= clock.now() < EMBARGO + timedelta(seconds=1)
    deliveries = rows(runtime, send_id)
    assert all(d.claimed_at is not None and d.claimed_at >= EMBARGO for d in deliveries)


class CancellingClock(ManualClock):
    """While the worker waits for the embargo, the press officer cancels the send."""

    def __init__(self, start: datetime, rt: Runtime, send_id: int) -> None:
        super().__init__(start)
        self._rt, self._send_id, self.cancelled = rt, send_id, False

    def sleep(self, seconds: float) -> None:
        if not self.cancelled:
            with self._rt.sessions.begin() as session:
                cancel_send(session, send_id=self._send_id, now=self.now())
            self.cancelled = True
        super().sleep(seconds)


def test_a_cancelled_send_sends_nothing(runtime: Runtime) -> None:
    cancelled_before, _ = armed_send(runtime)
    with runtime.sessions.begin() as session:
        cancel_send(session, send_id=cancelled_before, now=EMBARGO - timedelta(seconds=5))
        release_id = session.scalars(select(Send.release_id)).one()
    later = EMBARGO + timedelta(hours=1)
    cancelled_while_waiting = arm_new_send(runtime, release_id, embargo_at=later)
    transport = InMemoryTransport()

    report = run(runtime, job(runtime, cancelled_before), ManualClock(EMBARGO), transport)
    assert report.skipped_reason == "send is cancelled, not armed"

    clock = CancellingClock(later - timedelta(seconds=4), runtime, cancelled_while_waiting)
    report = run(runtime, job(runtime, cancelled_while_waiting, max_wait=LEAD), clock, transport)
    assert clock.cancelled
    # it stood down as soon as it saw the cancellation, without waiting for the embargo
    assert clock.now() < later
    assert report.sent == 0

    report = run(runtime, job(runtime, 404), ManualClock(EMBARGO), transport)
    assert report.skipped_reason == "send does not exist"

    assert transport.sent == []
    for send_id in (cancelled_before, cancelled_while_waiting):
        assert {d.state for d in rows(runtime, send_id)} == {DeliveryState.CANCELLED}


def test_a_refused_recipient_bounces_alone_and_every_step_of_the_rest_is_kept(
    runtime: Runtime,
) -> None:
    send_id, emails = armed_send(runtime, 25)
    refused = emails[5]

    def refuse(envelope: Envelope) -> TransportError | None:
        if envelope.recipient == refused:
            return TransportError(REFUSED, code=550, temporary=False)
        return None

    transport = InMemoryTransport(refuse=refuse)
    at = EMBARGO + timedelta(milliseconds=3)

    report = run(runtime, job(runtime, send_id, claim_chunk=7), ManualClock(at), transport)

    # 5.1.1: the mailbox does not exist, a hard bounce; it is not tried again.
    assert (report.sent, report.bounced, report.failed, report.deferred) == (24, 1, 0, 0)
    assert report.errors == [REFUSED]
    assert Counter(e.recipient for e in transport.sent) == dict.fromkeys(set(emails) - {refused}, 1)
    # The relay's reply to each message is kept with that message's delivery.
    replies = {e.recipient: f"250 queued as memory-{n}" for n, e in enumerate(transport.sent, 1)}
    address = emails_by_delivery(runtime, send_id)
    for delivery in rows(runtime, send_id):
        assert (delivery.claimed_at, delivery.finished_at, delivery.attempts) == (at, at, 1)
        if address[delivery.id] == refused:
            assert delivery.state is DeliveryState.BOUNCED
            assert (delivery.error, delivery.smtp_reply, delivery.smtp_code) == (REFUSED, None, 550)
            final = (DeliveryState.BOUNCED, REFUSED)
        else:
            assert delivery.state is DeliveryState.SENT
            assert delivery.error is None
            assert delivery.smtp_reply == replies[address[delivery.id]]
            assert delivery.smtp_code == 250
            final = (DeliveryState.SENT, delivery.smtp_reply)
        assert history(runtime, delivery.id) == [
            (DeliveryState.PENDING, None),
            (DeliveryState.SENDING, runtime.process_identity),
            final,
        ]
    for envelope in transport.sent:
        # Bounces come back to an address that names the send and the delivery (VERP).
        assert envelope.sender.startswith(f"bounces+{send_id}.")
        message = message_from_bytes(envelope.data, policy=policy.default)
        assert message["To"].addresses[0].addr_spec == envelope.recipient
        assert message["Subject"] == SAMPLE_DRAFT.headline
    with runtime.sessions() as session:
        send = session.get(Send, send_id)
        assert send is not None and send.state is SendState.ARMED
        # The address that does not exist is never mailed again.
        assert is_suppressed(session, refused)
        assert not is_suppressed(session, emails[6])


def test_a_batch_sends_its_own_deliveries_once_however_often_it_arrives(
    runtime: Runtime,
) -> None:
    # The broker may hand the same batch out again (a redispatch): nobody gets two copies.
    send_id, _ = armed_send(runtime, 25, batch_size=10)
    transport = InMemoryTransport()

    # Batches 0 and 2 are in other workers' hands meanwhile.
    with held_by_another_worker(runtime, send_id, [0, 2], at=EMBARGO):
        first = run(runtime, job(runtime, send_id, 1), ManualClock(EMBARGO), transport)
        second = run(runtime, job(runtime, send_id, 1), ManualClock(EMBARGO), transport)

    assert (first.sent, second.sent) == (10, 0)
    assert len({e.recipient for e in transport.sent}) == len(transport.sent) == 10
    by_batch = Counter((d.batch_no, d.state, d.attempts) for d in rows(runtime, send_id))
    assert by_batch == {
        (0, DeliveryState.PENDING, 0): 10,
        (1, DeliveryState.SENT, 1): 10,
        (2, DeliveryState.PENDING, 0): 5,
    }


def test_a_name_with_a_line_break_still_gets_the_release_without_extra_headers(
    runtime: Runtime,
) -> None:
    line_breaks = ["\r\n", "\n", "\r"]
    tricky = [
        ContactRow(
            line=n + 2,
            email=f"tricky{n}@example.com",
            name=f"Tricky{line_break}Bcc: everyone@example.net",
            outlet="",
        )
        for n, line_break in enumerate(line_breaks)
    ]
    send_id = arm_new_send(runtime, add_audience(runtime, tricky))
    transport = InMemoryTransport()

    report = run(runtime, job(runtime, send_id), ManualClock(EMBARGO), transport)

    assert (report.sent, report.failed) == (3, 0)
    for envelope in transport.sent:
        message = message_from_bytes(envelope.data, policy=policy.default)
        assert message["Bcc"] is None
        (to,) = message["To"].addresses
        assert to.addr_spec == envelope.recipient
        assert to.display_name == "Tricky Bcc: everyone@example.net"


def test_each_delivery_records_its_own_acceptance_time_and_a_long_reply_fits(
    runtime: Runtime,
) -> None:
    """finished_at is when the relay accepted that message, so latency reports are true."""

    class SlowVerboseTransport(InMemoryTransport):
        def __init__(self, clock: ManualClock) -> None:
            super().__init__()
            self._clock = clock

        def send(self, envelope: Envelope) -> str:
            self._clock.advance(0.25)
            super().send(envelope)
            return "250 " + "x" * (REPLY_LIMIT * 2)

    send_id, _ = armed_send(runtime, 3)
    clock = ManualClock(EMBARGO)
    run(runtime, job(runtime, send_id), clock, SlowVerboseTransport(clock))
    with runtime.sessions() as session:
        rows = session.execute(
            select(Delivery.finished_at, Delivery.smtp_reply).order_by(Delivery.id)
        ).all()
    assert [r.finished_at for r in rows] == [
        EMBARGO + timedelta(seconds=0.25 * n) for n in (1, 2, 3)
    ]
    assert all(r.smtp_reply is not None and len(r.smtp_reply) == REPLY_LIMIT for r in rows)


def test_a_batch_that_arrives_early_is_ready_when_the_embargo_lifts(runtime: Runtime) -> None:
    """Rendering and connecting happen before the wait, so the first message goes at once."""
    send_id, emails = armed_send(runtime, 4)
    clock = ManualClock(EMBARGO - timedelta(seconds=2))
    built_at: list[datetime] = []

    def make_builder(snapshot: object) -> object:
        built_at.append(clock.now())
        return runtime.make_builder(snapshot)  # type: ignore[arg-type]

    transport = InMemoryTransport()
    report = deliver_batch(
        job(runtime, send_id, max_wait=timedelta(seconds=5)),
        parts=manual_parts(runtime, clock, make_builder=make_builder),
        transport=transport,
    )
    assert built_at == [EMBARGO - timedelta(seconds=2)]
    assert transport.connected
    assert report.sent == 4
    assert sorted(e.recipient for e in transport.sent) == sorted(emails)
