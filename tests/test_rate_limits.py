"""One rate limit and one connection cap for the whole installation: four real worker
processes (two workers of two processes each, as on two machines) on PostgreSQL and Redis,
and a relay on loopback that notes when each message arrived and how many connections were
open. The relay's clock decides: it must never count more than the limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from distributor.engine.dbclock import read_database_time
from distributor.engine.pacing_redis import RedisPacingStore
from distributor.engine.pacing_status import PacingStatus, pacing_lines, pacing_status
from distributor.processes import ManagedProcess
from distributor.runtime import Runtime
from distributor.settings import Settings
from distributor.states import DeliveryState, SendState
from tests.support.metered_smtp import MeteredSMTPServer
from tests.support.timed_smtp import TimedSMTPServer
from tests.test_chaos import assert_promise_kept, chaos_settings, deliveries, wait_until
from tests.test_end_to_end import audience, schedule, wait_for_send_state

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

Start = Callable[..., ManagedProcess]

RATE = 300
CAP = 6


@contextmanager
def metered_relay(*, max_connections: int | None = None) -> Iterator[MeteredSMTPServer]:
    relay = MeteredSMTPServer(max_connections=max_connections)
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()


@contextmanager
def sampling(relay: MeteredSMTPServer) -> Iterator[list[tuple[float, int]]]:
    """(time, connections open) every 10 ms while the block runs."""
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            samples.append((time.time(), relay.open_connections))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        done.set()
        thread.join()


def four_workers(settings: Settings, processes: Start) -> None:
    processes("worker", settings, concurrency=2)
    processes("worker", settings, concurrency=2)
    processes("scheduler", settings)


def forget_pacing(settings: Settings) -> None:
    store = RedisPacingStore(settings.broker_url, installation=settings.queue_name)
    store.clear()
    store.close()


def status_of_limits(rt: Runtime) -> PacingStatus:
    store = rt.pacing_store()
    try:
        with rt.sessions() as session:
            now = read_database_time(session, rt.database_clock)
            return pacing_status(session, limits=rt.pacing_limits, store=store, now=now)
    finally:
        if store is not None:
            store.close()


def most_in_one_second(times: list[float]) -> int:
    """The most arrivals in any window [t, t + 1 s)."""
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_four_workers_never_send_more_than_the_rate_and_send_at_it(
    tmp_path: Path,
    fresh_database: str,
    processes: Start,
    make_runtime: Callable[[Settings], Runtime],
) -> None:
    relay = TimedSMTPServer()
    relay.start()
    try:
        settings = chaos_settings(
            tmp_path, fresh_database, relay.url, rate_per_second=RATE, smtp_connections=8
        )
        rt = make_runtime(settings)
        try:
            release_id, emails = audience(rt, 2400)
            four_workers(settings, processes)
            send_id, embargo_ts = schedule(rt, release_id, 4)
            # halfway through, `status` shows the limit and the send running close to it
            wait_until(lambda: time.time() > embargo_ts + 5, timeout=30, what="mid-send")
            halfway = status_of_limits(rt)
            wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=120)
            assert_promise_kept(rt, relay, send_id, emails, embargo_ts)
            arrived = sorted(r.arrived for r in relay.received)
        finally:
            forget_pacing(settings)
    finally:
        relay.stop()
    assert halfway.rate_in_force == RATE
    assert RATE * 0.8 <= halfway.recent_rate <= RATE
    assert pacing_lines(halfway)[0].startswith(f"rate limit: {RATE} msg/s in force; sending ")
    after_the_first_second = [t for t in arrived if t >= arrived[0] + 1.0]
    assert most_in_one_second(after_the_first_second) <= RATE
    achieved = (len(arrived) - 1) / (arrived[-1] - arrived[0])
    assert RATE * 0.9 <= achieved <= RATE * 1.1, f"{achieved:.0f} msg/s against {RATE}"


def test_four_workers_never_open_more_than_the_cap_and_use_all_of_it(
    tmp_path: Path,
    fresh_database: str,
    processes: Start,
    make_runtime: Callable[[Settings], Runtime],
) -> None:
    with metered_relay() as relay:
        # four connections a process: sixteen wanted, six allowed
        settings = chaos_settings(tmp_path, fresh_database, relay.url, max_connections=CAP)
        rt = make_runtime(settings)
        try:
            release_id, emails = audience(rt, 2400)
            four_workers(settings, processes)
            send_id, embargo_ts = schedule(rt, release_id, 4)
            with sampling(relay) as samples:
                wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=120)
            assert_promise_kept(rt, relay, send_id, emails, embargo_ts)
        finally:
            forget_pacing(settings)
    assert relay.peak_connections <= CAP
    arrived = sorted(r.arrived for r in relay.received)
    during = [n for at, n in samples if arrived[0] <= at <= arrived[-1]]
    average = sum(during) / len(during)
    assert CAP * 0.9 <= average <= CAP, f"{average:.1f} connections open on average"


def test_a_relay_refusing_extra_connections_costs_no_delivery_and_is_learned(
    tmp_path: Path,
    fresh_database: str,
    processes: Start,
    make_runtime: Callable[[Settings], Runtime],
) -> None:
    limit = 5
    # no cap is set: the installation learns the relay's from its 421 replies
    with metered_relay(max_connections=limit) as relay:
        settings = chaos_settings(tmp_path, fresh_database, relay.url)
        rt = make_runtime(settings)
        try:
            release_id, emails = audience(rt, 3000)
            four_workers(settings, processes)
            send_id, embargo_ts = schedule(rt, release_id, 4)
            wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=120)
            assert_promise_kept(rt, relay, send_id, emails, embargo_ts)
        finally:
            forget_pacing(settings)
    rows = deliveries(rt, send_id)
    assert {d.state for d in rows} == {DeliveryState.SENT}
    assert {d.attempts for d in rows} == {1}, "a refusal was charged to a delivery"
    refusals = relay.refusals
    arrived = sorted(r.arrived for r in relay.received)
    assert refusals, "the relay never had to refuse: the test did not test anything"
    # Settled: after the first second of sending, the installation keeps under the limit
    later = [t for t in refusals if t > arrived[0] + 1.0]
    assert len(later) <= 1, f"{len(later)} refusals after the first second"
    assert relay.peak_connections <= limit
