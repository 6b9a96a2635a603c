"""The send engine when reality intrudes: real worker and scheduler processes on PostgreSQL
and Redis, a real SMTP server on loopback, and one thing broken on purpose in each test.

Every test asserts what a press officer was promised: nothing reaches the relay before the
embargo, every journalist's delivery ends in a final state that says why, nothing is lost,
and a journalist gets a second copy only within the documented bound (one message per
connection that was open when a worker died).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select

from distributor.models import Delivery, DeliveryEvent, SendBatch
from distributor.processes import ManagedProcess, settings_env, start_command
from distributor.runtime import Runtime
from distributor.send_control import pause_send, resume_send
from distributor.settings import Settings
from distributor.states import FINAL_DELIVERY_STATES, DeliveryState, SendState
from distributor.suppression import is_suppressed
from tests.conftest import now
from tests.support.faulty_smtp import FaultySMTPServer
from tests.support.private_redis import PrivateRedis
from tests.support.services import POSTGRES_ADMIN_URL, fresh_redis_queue
from tests.support.silent_smtp import SilentServer
from tests.test_end_to_end import audience, schedule, wait_for_send_state

pytestmark = [pytest.mark.slow, pytest.mark.chaos, pytest.mark.postgres, pytest.mark.redis]

Start = Callable[..., ManagedProcess]
FAKETIME_LIBRARY = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")

# Fast enough to see a death, a takeover and a retry within a test's few seconds.
CHAOS_TIMINGS = {
    "batch_size": 40,
    "claim_chunk": 10,
    "scheduler_interval_seconds": 0.2,
    "arm_lead_seconds": 1.0,
    "redispatch_after_seconds": 4.0,
    "lease_seconds": 3.0,
    "retry_initial_seconds": 1.0,
    "relay_backoff_seconds": 1.0,
    "smtp_timeout_seconds": 2.0,
    "task_time_limit_seconds": 60.0,
    "smtp_connections": 4,
}


def chaos_settings(tmp_path: Path, database: str, relay_url: str, **overrides: object) -> Settings:
    broker_url, queue = fresh_redis_queue()
    values: dict[str, object] = {
        "database_url": database,
        "broker_url": broker_url,
        "queue_name": queue,
        "data_dir": tmp_path / "var",
        "smtp_url": relay_url,
        **CHAOS_TIMINGS,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def deliveries(rt: Runtime, send_id: int) -> list[Delivery]:
    with rt.sessions() as session:
        return list(session.scalars(select(Delivery).where(Delivery.send_id == send_id)))


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def assert_promise_kept(
    rt: Runtime,
    relay: FaultySMTPServer,
    send_id: int,
    emails: list[str],
    embargo_ts: float,
    *,
    duplicates_allowed: int = 0,
    expect_everyone: bool = True,
) -> Counter[str]:
    """Nothing early, every delivery final with a reason, nobody lost, duplicates bounded."""
    received = relay.received
    early = [r for r in received if r.arrived < embargo_ts]
    assert early == [], f"{len(early)} message(s) reached the relay before the embargo"
    rows = deliveries(rt, send_id)
    assert len(rows) == len(emails)
    unfinished = [d for d in rows if d.state not in FINAL_DELIVERY_STATES]
    assert unfinished == [], f"{len(unfinished)} deliveries not final: {unfinished[:3]}"
    unexplained = [
        d for d in rows if d.state is not DeliveryState.SENT and not (d.error or d.smtp_reply)
    ]
    assert unexplained == [], "a delivery that was not sent does not say why"
    per_recipient = Counter(r.recipient for r in received)
    if expect_everyone:
        sent_ids = {d.id for d in rows if d.state is DeliveryState.SENT}
        assert len(sent_ids) == len(emails), "not everyone's delivery is sent"
        assert set(per_recipient) == set(emails), "someone's message never arrived"
    extra = sum(n - 1 for n in per_recipient.values())
    assert extra <= duplicates_allowed, f"{extra} duplicate message(s), bound {duplicates_allowed}"
    return per_recipient


def pool_children(worker: ManagedProcess) -> list[int]:
    path = Path(f"/proc/{worker.pid}/task/{worker.pid}/children")
    return [int(p) for p in path.read_text().split()]


def lease_holders(rt: Runtime, send_id: int) -> list[str]:
    with rt.sessions() as session:
        return [
            owner
            for owner in session.scalars(
                select(SendBatch.lease_owner).where(
                    SendBatch.send_id == send_id, SendBatch.lease_owner.is_not(None)
                )
            )
            if owner
        ]


def pid_of(owner: str) -> int:
    # worker:HOST:PID:NONCE
    return int(owner.split(":")[2])


def test_sigkill_of_a_sending_worker_child_loses_nothing(
    tmp_path: Path,
    fresh_database: str,
    relay: FaultySMTPServer,
    processes: Start,
    make_runtime: Callable[[Settings], Runtime],
) -> None:
    settings = chaos_settings(tmp_path, fresh_database, relay.url)
    rt = make_runtime(settings)
    release_id, emails = audience(rt, 600)
    processes("worker", settings, concurrency=2)
    scheduler = processes("scheduler", settings)
    send_id, embargo_ts = schedule(rt, release_id, 3)
    relay.wait_for(60, timeout=60)
    # When a pool process is killed outright while it holds deliveries it is sending
    victim: list[str] = []
    wait_until(
        lambda: bool(victim.extend(sending_owners(rt, send_id)) or victim),
        timeout=30,
        what="a worker holding deliveries in flight",
    )
    os.kill(pid_of(victim[0]), signal.SIGKILL)
    # Then another process takes its batch over once the lease expires, and finishes
    wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=120)
    # with at most one message per connection the dead process had open
    assert_promise_kept(
        rt, relay, send_id, emails, embargo_ts, duplicates_allowed=settings.smtp_connections
    )
    assert f"lease of {victim[0]} expired" in scheduler.log_text()


def sending_owners(rt: Runtime, send_id: int) -> list[str]:
    with rt.sessions() as session:
        return [
            owner
            for owner in session.scalars(
                select(Delivery.lease_owner)
                .where(Delivery.send_id == send_id, Delivery.state == DeliveryState.SENDING)
                .distinct()
            )
            if owner
        ]


def test_sigterm_hands_the_rest_back_at_once(
    tmp_path: Path,
    fresh_database: str,
    relay: FaultySMTPServer,
    processes: Start,
    make_runtime: Callable[[Settings], Runtime],
) -> None:
    # A lease long enough that waiting for it would show: a graceful stop must not wait.
    settings = chaos_settings(tmp_path, fresh_database, relay.url, lease_seconds=60.0)
    rt = make_runtime(settings)
    release_id, emails = audience(rt, 600)
    first = processes("worker", settings, concurrency=1)
    processes("worker", settings, concurrency=1)
    processes("scheduler", settings)
    send_id, embargo_ts = schedule(rt, release_id, 3)
    relay.wait_for(40, timeout=60)
    # When one worker is stopped gracefully mid-send (a deploy)
    first.process.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    first.process.wait(30)
    # Then the other worker finishes everything well before any lease could have expired
    wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=45)
    assert time.monotonic() - stopped_at < settings.lease_seconds
    # and a graceful stop sends nobody a second copy
    assert_promise_kept(rt, relay, send_id, emails, embargo_ts, duplicates_allowed=0)
    assert "worker shutting down" in first.log_text()


def test_broker_restart_mid_send(
    tmp_path: Path,
    fresh_database: str,
    relay: FaultySMTPServer,
    processes: Start,
    make_runtime: Callable[[Settings], Runtime],
) -> None:
    with PrivateRedis() as broker:
        settings = chaos_settings(tmp_path, fresh_database, relay.url, broker_url=broker.url)
        rt = make_runtime(settings)
        release_id, emails = audience(rt, 600)
        processes("worker", settings, concurrency=2)
        processes("scheduler", settings)
        send_id, embargo_ts = schedule(rt, release_id, 3)
        relay.wait_for(60, timeout=60)
        # When the broker restarts and forgets every queued batch
        broker.restart()
        # Then the database still knows the work, and the scheduler queues it again
        wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=120)
        assert_promise_kept(rt, relay, send_id, emails, embargo_ts, duplicates_allowed=0)


def test_database_connections_terminated_mid_send(
    tmp_path: Path,
    fresh_database: str,
    relay: FaultySMTPServer,
    processes: Start,
    make_runtime: Callable[[Settings], Runtime],
) -> None:
    settings = chaos_settings(tmp_path, fresh_database, relay.url)
    rt = make_runtime(settings)
    release_id, emails = audience(rt, 600)
    processes("worker", settings, concurrency=2)
    processes("scheduler", settings)
    send_id, embargo_ts = schedule(rt, release_id, 3)
    relay.wait_for(60, timeout=60)
    # When every connection of the workers and the scheduler is cut by the server
    database_name = fresh_database.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database_name,),
        ).fetchone()
    assert killed and killed[0] > 0
    # Then everyone reconnects and the send completes; nothing accepted is forgotten
    wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=120)
    # an outcome whose commit was cut is committed again on a new connection
    assert_promise_kept(
        rt, relay, send_id, emails, embargo_ts, duplicates_allowed=settings.smtp_connections
    )


def test_relay_busy_with_421_at_the_lift(
    tmp_path: Path,
    fresh_database: str,
    relay: FaultySMTPServer,
    processes: Start,
    make_runtime: Callable[[Settings], Runtime],
) -> None:
    settings = chaos_settings(tmp_path, fresh_database, relay.url)
    rt = make_runtime(settings)
    release_id, emails = audience(rt, 120)
    processes("worker", settings, concurrency=2)
    processes("scheduler", settings)
    send_id, embargo_ts = schedule(rt, release_id, 2)
    # The relay turns every connection away with 421 for the first seconds after the lift
    relay.busy_until(time.monotonic() + 2 + 3)
    wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=90)
    assert_promise_kept(rt, relay, send_id, emails, embargo_ts)
    # A busy relay is the relay's problem: nobody was charged a failed attempt for it
    assert {d.attempts for d in deliveries(rt, send_id)} == {1}


def test_a_recipient_deferred_twice_is_sent_on_the_third_try(
    tmp_path: Path,
    fresh_database: str,
    relay: FaultySMTPServer,
    processes: Start,
    make_runtime: Callable[[Settings], Runtime],
) -> None:
    settings = chaos_settings(tmp_path, fresh_database, relay.url)
    rt = make_runtime(settings)
    release_id, emails = audience(rt, 30)
    relay.defer_recipient(emails[7], times=2)
    processes("worker", settings, concurrency=1)
    processes("scheduler", settings)
    send_id, embargo_ts = schedule(rt, release_id, 2)
    wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=60)
    assert_promise_kept(rt, relay, send_id, emails, embargo_ts)
    assert relay.attempts(emails[7]) == 3
    with rt.sessions() as session:
        history = [
            (state, detail)
            for state, detail in session.execute(
                select(DeliveryEvent.state, DeliveryEvent.detail)
                .join(Delivery, Delivery.id == DeliveryEvent.delivery_id)
                .where(Delivery.send_id == send_id, Delivery.attempts == 3)
                .order_by(DeliveryEvent.id)
            )
        ]
    deferrals = [detail for state, detail in history if state is DeliveryState.DEFERRED]
    assert len(deferrals) == 2 and all("451" in (d or "") for d in deferrals)
    # The same message each time: retries never re-render differently
    copies = [r for r in relay.received if r.recipient == emails[7]]
    assert len(copies) == 1


def test_relay_down_at_the_lift_and_up_seconds_later(
    tmp_path: Path,
    fresh_database: str,
    relay: FaultySMTPServer,
    processes: Start,
    make_runtime: Callable[[Settings], Runtime],
) -> None:
    settings = chaos_settings(tmp_path, fresh_database, relay.url)
    rt = make_runtime(settings)
    release_id, emails = audience(rt, 120)
    processes("worker", settings, concurrency=2)
    processes("scheduler", settings)
    relay.stop()
    send_id, embargo_ts = schedule(rt, release_id, 2)
    # Down at the lift: nothing can go, and the scheduler backs off
    wait_until(lambda: time.time() > embargo_ts + 3, timeout=10, what="the lift passing")
    relay.start()
    wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=90)
    assert_promise_kept(rt, relay, send_id, emails, embargo_ts)
    assert {d.attempts for d in deliveries(rt, send_id)} == {1}


def test_unknown_mailboxes_bounce_and_are_suppressed(
    tmp_path: Path,
    fresh_database: str,
    relay: FaultySMTPServer,
    processes: Start,
    make_runtime: Callable[[Settings], Runtime],
) -> None:
    settings = chaos_settings(tmp_path, fresh_database, relay.url)
    rt = make_runtime(settings)
    release_id, emails = audience(rt, 40)
    dead = emails[3::10]
    for address in dead:
        relay.reject_recipient(address)
    processes("worker", settings, concurrency=1)
    processes("scheduler", settings)
    send_id, embargo_ts = schedule(rt, release_id, 2)
    wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=60)
    assert_promise_kept(rt, relay, send_id, emails, embargo_ts, expect_everyone=False)
    rows = deliveries(rt, send_id)
    bounced = [d for d in rows if d.state is DeliveryState.BOUNCED]
    assert len(bounced) == len(dead)
    assert all(d.smtp_code == 550 and "5.1.1" in (d.error or "") for d in bounced)
    assert sum(d.state is DeliveryState.SENT for d in rows) == len(emails) - len(dead)
    with rt.sessions() as session:
        assert all(is_suppressed(session, address) for address in dead)


def test_a_relay_that_never_answers_ends_in_expired_failures(
    tmp_path: Path,
    fresh_database: str,
    processes: Start,
    make_runtime: Callable[[Settings], Runtime],
) -> None:
    silent = SilentServer()
    silent.start()
    try:
        settings = chaos_settings(
            tmp_path,
            fresh_database,
            silent.url,
            smtp_timeout_seconds=1.0,
            task_time_limit_seconds=30.0,
            retry_window_seconds=8.0,
        )
        rt = make_runtime(settings)
        release_id, _emails = audience(rt, 30)
        worker = processes("worker", settings, concurrency=1)
        processes("scheduler", settings)
        send_id, _ = schedule(rt, release_id, 2)
        # Each connection times out; the batch stops after a few, and once the retry window
        # has closed every delivery fails as expired, saying so
        wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=90)
        rows = deliveries(rt, send_id)
        assert {d.state for d in rows} == {DeliveryState.FAILED}
        assert all("expired" in (d.error or "") for d in rows)
        assert "relay unavailable" in worker.log_text()
    finally:
        silent.stop()


def test_a_worker_whose_clock_runs_ahead_never_sends_early(
    tmp_path: Path,
    fresh_database: str,
    relay: FaultySMTPServer,
    processes: Start,
    make_runtime: Callable[[Settings], Runtime],
) -> None:
    assert FAKETIME_LIBRARY.exists(), "install Debian's faketime package"
    settings = chaos_settings(tmp_path, fresh_database, relay.url)
    rt = make_runtime(settings)
    release_id, emails = audience(rt, 60)
    env = settings_env(settings) | {
        "LD_PRELOAD": str(FAKETIME_LIBRARY),
        "FAKETIME": "+4s",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    worker = start_command(
        "fast-clock-worker",
        [sys.executable, "-m", "distributor", "worker", "--concurrency=1"],
        env=env,
        log_dir=tmp_path / "logs",
    )
    try:
        worker.wait_for_log(" ready.", timeout=60)
        processes("scheduler", settings)
        send_id, embargo_ts = schedule(rt, release_id, 3)
        wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=60)
        assert_promise_kept(rt, relay, send_id, emails, embargo_ts)
        assert "CLOCK SKEW" in worker.log_text()
    finally:
        worker.stop()


def test_pause_and_resume_mid_send(
    tmp_path: Path,
    fresh_database: str,
    relay: FaultySMTPServer,
    processes: Start,
    make_runtime: Callable[[Settings], Runtime],
) -> None:
    settings = chaos_settings(tmp_path, fresh_database, relay.url)
    rt = make_runtime(settings)
    release_id, emails = audience(rt, 600)
    processes("worker", settings, concurrency=2)
    processes("scheduler", settings)
    send_id, embargo_ts = schedule(rt, release_id, 2)
    relay.wait_for(50, timeout=60)
    with rt.sessions.begin() as session:
        pause_send(session, send_id=send_id, now=now())
    # Claims stop within a chunk: the count settles, and well short of everyone
    settled: list[int] = []

    def settles() -> bool:
        settled.append(len(relay.received))
        return len(settled) > 10 and settled[-1] == settled[-10]

    wait_until(settles, timeout=30, what="sending to stop")
    assert settled[-1] < len(emails)
    wait_until(lambda: not lease_holders(rt, send_id), timeout=30, what="workers giving batches up")
    with rt.sessions.begin() as session:
        resume_send(
            session,
            send_id=send_id,
            now=now(),
            arm_lead=timedelta(seconds=settings.arm_lead_seconds),
        )
    wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=90)
    assert_promise_kept(rt, relay, send_id, emails, embargo_ts)
