"""The alerts an admin is shown: each one raised when its condition holds and cleared when
it stops, judged from a real database (SQLite and PostgreSQL) at instants the test chooses."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from distributor.bounces.kinds import BounceKind
from distributor.bounces.reputation import ReputationLimits
from distributor.clock import ManualClock
from distributor.engine.dbclock import ClockOffset
from distributor.engine.heartbeats import beat
from distributor.engine.relay_health import record_outage, record_recovery
from distributor.errors import TransportError
from distributor.models import Bounce, Delivery
from distributor.monitoring.alerts import (
    Alert,
    AlertCode,
    AlertThresholds,
    Severity,
    evaluate_alerts,
)
from distributor.runtime import Runtime
from distributor.scheduling import cancel_send
from distributor.send_control import retry_deliveries
from distributor.transport import Envelope, InMemoryTransport
from tests.support.engine import (
    EMBARGO,
    NOW,
    armed_send,
    batch_job,
    run_batch,
    run_tick,
    schedule,
    send_by_hand,
    send_row,
)

IN_STEP = ClockOffset(timedelta(0))
THRESHOLDS = AlertThresholds(reputation=ReputationLimits(minimum_delivered=10))
UNKNOWN = TransportError("550 5.1.1 no such mailbox here", code=550, temporary=False)


def alerts_at(rt: Runtime, at: datetime) -> dict[str, Alert]:
    with rt.sessions() as session:
        return {a.key: a for a in evaluate_alerts(session, now=at, thresholds=THRESHOLDS)}


def heartbeat(rt: Runtime, kind: str, at: datetime) -> None:
    with rt.sessions.begin() as session:
        beat(session, name=f"{kind}:test-host:1", kind=kind, now=at, offset=IN_STEP)


def test_the_processes_alerts_are_raised_and_cleared(runtime: Runtime) -> None:
    # No scheduler has ever ticked, and nothing is scheduled: worth a warning only.
    (alert,) = alerts_at(runtime, NOW).values()
    assert (alert.code, alert.severity) == (AlertCode.SCHEDULER_SILENT, Severity.WARNING)
    assert "no scheduler has ticked in the last hour" in alert.message
    assert "`distributor scheduler`" in alert.message

    heartbeat(runtime, "scheduler", NOW)
    assert alerts_at(runtime, NOW + timedelta(seconds=10)) == {}
    silent = alerts_at(runtime, NOW + timedelta(seconds=11))["scheduler_silent"]
    assert "the scheduler has not ticked for 11 s (last tick 09:00:00 UTC)" in silent.message

    # A send is armed: a silent scheduler now makes it late.
    send_id, _ = armed_send(runtime, 5)
    before_lift = EMBARGO - timedelta(seconds=5)
    silent = alerts_at(runtime, before_lift)["scheduler_silent"]
    assert silent.severity is Severity.CRITICAL
    assert silent.send_ids == (send_id,)
    assert f"send {send_id} will not be armed, handed to workers or completed" in silent.message
    heartbeat(runtime, "scheduler", before_lift)
    # Before the lift no work is due, so idle workers are no cause for alarm.
    assert alerts_at(runtime, before_lift) == {}

    # The embargo passed ten seconds ago and no worker was ever seen.
    lifted = EMBARGO + timedelta(seconds=10)
    heartbeat(runtime, "scheduler", lifted)
    (no_worker,) = alerts_at(runtime, lifted).values()
    assert (no_worker.code, no_worker.severity) == (AlertCode.NO_WORKER_ALIVE, Severity.CRITICAL)
    assert no_worker.send_ids == (send_id,)
    assert f"no worker has been seen in the last hour while send {send_id} has deliveries due" in (
        no_worker.message
    )
    heartbeat(runtime, "worker", lifted)
    assert alerts_at(runtime, lifted) == {}

    # The relay refuses: the installation rests, and the idle workers are not blamed for it.
    with runtime.sessions.begin() as session:
        retry_at = record_outage(
            session, now=lifted, error="connection refused", first_wait=timedelta(minutes=1)
        )
    later = lifted + timedelta(seconds=40)
    heartbeat(runtime, "scheduler", later)
    (relay,) = alerts_at(runtime, later).values()
    assert (relay.code, relay.severity) == (AlertCode.RELAY_REFUSING, Severity.CRITICAL)
    assert "refused connections or could not be reached (1 time in a row; last: connection " in (
        relay.message
    )
    assert f"nothing is handed to workers until {retry_at:%H:%M:%S} UTC" in relay.message
    with runtime.sessions.begin() as session:
        record_recovery(session, now=later)
    assert set(alerts_at(runtime, later)) == {"no_worker_alive"}

    # Sent: nothing is due any more, so no worker needs to be alive.
    send_by_hand(runtime, send_id, 0, at=later)
    assert alerts_at(runtime, later) == {}


def test_the_sends_alerts_are_raised_and_cleared(runtime: Runtime) -> None:
    """Sends of one release to twenty journalists, one after another."""
    # A send more than a minute behind its embargo, with deliveries still pending.
    late_id, emails = armed_send(runtime, 20)
    release_id = send_row(runtime, late_id).release_id
    for kind in ("scheduler", "worker"):
        heartbeat(runtime, kind, EMBARGO + timedelta(minutes=5))
    assert alerts_at(runtime, EMBARGO + timedelta(seconds=60)) == {}
    at = EMBARGO + timedelta(seconds=61, milliseconds=500)
    behind = alerts_at(runtime, at)[f"send_behind_embargo:{late_id}"]
    assert behind.severity is Severity.CRITICAL
    assert behind.message == (
        f"send {late_id} is 61 s past its embargo with 20 deliveries still pending"
    )
    send_by_hand(runtime, late_id, 0, at=at)
    assert alerts_at(runtime, at) == {}

    # A send the scheduler held, nothing of it having gone out in time, until it is cancelled.
    held_id = schedule(runtime, release_id, embargo_at=EMBARGO + timedelta(hours=1))
    at = EMBARGO + timedelta(hours=1, minutes=16)
    run_tick(runtime, at)
    for kind in ("scheduler", "worker"):
        heartbeat(runtime, kind, at)
    held = alerts_at(runtime, at)[f"send_behind_embargo:{held_id}"]
    assert f"send {held_id} is held: nothing was sent within 15 minutes" in held.message
    assert f"`distributor send resume {held_id}`" in held.message
    with runtime.sessions.begin() as session:
        cancel_send(session, send_id=held_id, now=at)
    assert alerts_at(runtime, at) == {}

    # Three addresses no longer exist: the relay refuses them for good.
    gone = set(emails[:3])

    def refuse(envelope: Envelope) -> TransportError | None:
        return UNKNOWN if envelope.recipient in gone else None

    bouncing_id = arm(runtime, release_id, EMBARGO + timedelta(hours=2))
    run_batch(
        runtime,
        batch_job(runtime, bouncing_id),
        ManualClock(EMBARGO + timedelta(hours=2)),
        InMemoryTransport(refuse=refuse),
    )
    at = EMBARGO + timedelta(hours=2, seconds=1)
    for kind in ("scheduler", "worker"):
        heartbeat(runtime, kind, at)
    bounces = alerts_at(runtime, at)[f"bounce_rate_high:{bouncing_id}"]
    assert bounces.severity is Severity.WARNING
    assert (
        f"send {bouncing_id}: 15 % of delivered messages bounced hard (3 of 20; limit 5 %)"
        in bounces.message
    )
    # An admin puts them back in line (the addresses were fixed): the rate falls back.
    with runtime.sessions.begin() as session:
        retry_deliveries(session, send_id=bouncing_id, now=at)
    assert f"bounce_rate_high:{bouncing_id}" not in alerts_at(runtime, at)

    # Another send, all delivered (but to the three addresses now suppressed), of which one
    # recipient reports it as spam.
    complained_id = arm(runtime, release_id, EMBARGO + timedelta(hours=3))
    at = EMBARGO + timedelta(hours=3)
    run_batch(runtime, batch_job(runtime, complained_id), ManualClock(at), InMemoryTransport())
    with runtime.sessions.begin() as session:
        delivery_id = session.scalars(
            select(Delivery.id).where(Delivery.send_id == complained_id).limit(1)
        ).one()
        session.add(
            Bounce(
                received_at=at,
                fingerprint="complaint-1",
                kind=BounceKind.COMPLAINT,
                send_id=complained_id,
                delivery_id=delivery_id,
                outcome="suppressed",
                size=100,
                source="test",
            )
        )
    complaint = alerts_at(runtime, at)[f"complaint_rate_high:{complained_id}"]
    assert (
        f"send {complained_id}: 5.9 % of delivered messages were reported as spam (1 of 17; "
        "limit 0.3 %)" in complaint.message
    )
    # The send completes; a day later its complaints are no longer news.
    report = run_tick(runtime, at + timedelta(seconds=1))
    assert complained_id in report.completed
    day_after = at + timedelta(days=1, minutes=1)
    assert f"complaint_rate_high:{complained_id}" not in alerts_at(runtime, day_after)


def arm(runtime: Runtime, release_id: int, embargo_at: datetime) -> int:
    """Another send of the release, armed by the tick ten seconds before its embargo."""
    send_id = schedule(runtime, release_id, embargo_at=embargo_at)
    assert send_id in run_tick(runtime, embargo_at - timedelta(seconds=10)).armed
    return send_id
