"""Sending one batch: claim a chunk, build each message, transmit it, record the results."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from distributor.claims import Outcome, claim_deliveries, load_send, record_outcomes
from distributor.clock import Clock, sleep_until
from distributor.errors import TransportError
from distributor.message import BuiltMessage, Recipient
from distributor.states import DeliveryState, SendState
from distributor.transport import Envelope, MailTransport

FIRST_CHUNK = 20

# Builds one message (its bytes and its VERP envelope sender) from the send's prepared release.
BuildMessage = Callable[[Recipient], BuiltMessage]


@dataclass(slots=True)
class BatchReport:
    send_id: int
    batch_no: int
    sent: int = 0
    failed: int = 0
    skipped_reason: str | None = None
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BatchJob:
    send_id: int
    batch_no: int
    claim_chunk: int
    # How long a batch that arrived early may wait for its embargo (the arming lead).
    max_wait: timedelta


def deliver_batch(
    job: BatchJob,
    *,
    sessions: sessionmaker[Session],
    transport: MailTransport,
    make_builder: Callable[..., BuildMessage],
    clock: Clock,
) -> BatchReport:
    report = BatchReport(job.send_id, job.batch_no)
    with sessions() as session:
        snapshot = load_send(session, job.send_id)
    if snapshot is None or snapshot.state is not SendState.ARMED:
        report.skipped_reason = "send is not armed" if snapshot else "send does not exist"
        return report
    # Everything that does not depend on the embargo is done before it lifts.
    build = make_builder(snapshot)
    with contextlib.suppress(TransportError):
        transport.connect()  # a relay that is down now is tried again for each message
    sleep_until(clock, snapshot.embargo_at, at_most=job.max_wait.total_seconds())
    outcomes: list[Outcome] = []
    # A small first claim puts the first message on the wire soonest after the lift.
    chunk = min(FIRST_CHUNK, job.claim_chunk)
    while True:
        # One transaction records the last chunk's outcomes and claims the next: half the
        # commits, and a claim always sees the batch as it really stands.
        try:
            with sessions.begin() as session:
                record_outcomes(session, outcomes)
                recipients = claim_deliveries(
                    session,
                    send_id=job.send_id,
                    batch_no=job.batch_no,
                    now=clock.now(),
                    limit=chunk,
                )
        except Exception:
            # What was sent must be recorded even when the next claim fails.
            with sessions.begin() as session:
                record_outcomes(session, outcomes)
            raise
        _tally(report, outcomes)
        if not recipients:
            break
        chunk = job.claim_chunk
        outcomes = [_transmit(r, build, transport, clock) for r in recipients]
    return report


def _tally(report: BatchReport, outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        if outcome.state is DeliveryState.SENT:
            report.sent += 1
        else:
            report.failed += 1
            report.errors.append(outcome.error or "")


def _transmit(
    recipient: Recipient, build: BuildMessage, transport: MailTransport, clock: Clock
) -> Outcome:
    delivery_id = recipient.delivery_id
    try:
        built = build(recipient)
    except (ValueError, TypeError) as exc:
        return Outcome(delivery_id, DeliveryState.FAILED, clock.now(), error=f"cannot build: {exc}")
    try:
        reply = transport.send(
            Envelope(sender=built.envelope_sender, recipient=recipient.email, data=built.data)
        )
    except TransportError as exc:
        return Outcome(delivery_id, DeliveryState.FAILED, clock.now(), error=str(exc))
    return Outcome(delivery_id, DeliveryState.SENT, clock.now(), smtp_reply=reply)
