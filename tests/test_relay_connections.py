"""Many connections per worker process: opened before the lift, capped per process, and a
relay that refuses the extra ones costs nobody a failed delivery."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from distributor.processes import ManagedProcess
from distributor.runtime import Runtime
from distributor.settings import Settings
from distributor.states import DeliveryState, SendState
from tests.support.faulty_smtp import FaultySMTPServer
from tests.test_chaos import assert_promise_kept, chaos_settings, deliveries, wait_until
from tests.test_end_to_end import audience, schedule, wait_for_send_state

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

Start = Callable[..., ManagedProcess]


def test_connections_are_open_before_the_lift_and_capped_per_process(
    tmp_path: Path,
    fresh_database: str,
    relay: FaultySMTPServer,
    processes: Start,
    make_runtime: Callable[[Settings], Runtime],
) -> None:
    # The default arming lead's worth of time to get ready, as in production
    settings = chaos_settings(
        tmp_path,
        fresh_database,
        relay.url,
        smtp_connections=5,
        arm_lead_seconds=10.0,
        redispatch_after_seconds=60.0,
    )
    rt = make_runtime(settings)
    release_id, emails = audience(rt, 300)
    processes("worker", settings, concurrency=1)
    processes("scheduler", settings)
    send_id, embargo_ts = schedule(rt, release_id, 6)
    # Just before the lift, every connection of the process is open and greeted
    wait_until(lambda: time.time() > embargo_ts - 0.3, timeout=10, what="the eve of the lift")
    assert relay.open_connections == settings.smtp_connections
    most_open = [relay.open_connections]

    def finished() -> bool:
        most_open.append(relay.open_connections)
        return bool(deliveries(rt, send_id)) and all(
            d.state is DeliveryState.SENT for d in deliveries(rt, send_id)
        )

    wait_until(finished, timeout=60, what="the send finishing")
    wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=30)
    assert_promise_kept(rt, relay, send_id, emails, embargo_ts)
    # never more connections than the process may keep, and none opened twice
    assert max(most_open) <= settings.smtp_connections
    assert relay.connections == settings.smtp_connections


def test_a_relay_that_refuses_extra_connections_costs_nobody_a_delivery(
    tmp_path: Path,
    fresh_database: str,
    processes: Start,
    make_runtime: Callable[[Settings], Runtime],
) -> None:
    limit = 3
    relay = FaultySMTPServer(max_connections=limit)
    relay.start()
    try:
        settings = chaos_settings(tmp_path, fresh_database, relay.url, smtp_connections=4)
        rt = make_runtime(settings)
        release_id, emails = audience(rt, 200)
        processes("worker", settings, concurrency=2)
        processes("scheduler", settings)
        send_id, embargo_ts = schedule(rt, release_id, 3)
        most_open: list[int] = []

        def completed() -> bool:
            most_open.append(relay.open_connections)
            return {d.state for d in deliveries(rt, send_id)} == {DeliveryState.SENT}

        wait_until(completed, timeout=120, what="every delivery sent")
        assert_promise_kept(rt, relay, send_id, emails, embargo_ts)
        assert max(most_open) <= limit
        # the refusals were the relay's doing: no delivery was charged an attempt for them
        assert {d.attempts for d in deliveries(rt, send_id)} == {1}
    finally:
        relay.stop()
