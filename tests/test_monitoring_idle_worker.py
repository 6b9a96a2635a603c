"""An idle worker stays healthy on the embedded broker, where nothing can ask it through the
broker: its main process leaves a heartbeat every third of a lease, sending or not."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from distributor.engine.dbclock import read_database_time
from distributor.engine.heartbeats import recent_heartbeats
from distributor.processes import ManagedProcess
from distributor.runtime import Runtime
from distributor.settings import EMBEDDED_BROKER, Settings
from tests.test_health import HealthCommand, sqlite_settings

Start = Callable[..., ManagedProcess]
# The shortest lease there is: a heartbeat every second, stale after six.
LEASE_SECONDS = 3.0


def worker_heartbeats(settings: Settings) -> dict[str, str | None]:
    rt = Runtime(settings)
    try:
        with rt.sessions() as session:
            now = read_database_time(session, rt.database_clock)
            return {
                b.name: b.detail for b in recent_heartbeats(session, now=now) if b.kind == "worker"
            }
    finally:
        rt.close()


@pytest.fixture
def health_of(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[[Settings], HealthCommand]:
    return lambda settings: HealthCommand(settings, monkeypatch, capsys)


@pytest.mark.slow
def test_an_idle_worker_stays_healthy_past_the_staleness_window_and_not_once_stopped(
    tmp_path: Path,
    processes: Start,
    health_of: Callable[[Settings], HealthCommand],
) -> None:
    # Given an installation on the embedded broker, whose workers cannot be asked directly
    settings = sqlite_settings(tmp_path, lease_seconds=LEASE_SECONDS)
    assert settings.broker_url == EMBEDDED_BROKER
    window = timedelta(seconds=2 * LEASE_SECONDS).total_seconds()
    health = health_of(settings)
    status, line = health("worker")
    assert status == 1 and "no worker heartbeat in the database in the last hour" in line

    # When a worker starts and has nothing to send
    worker = processes("worker", settings)
    name = f"worker:{socket.gethostname()}:{worker.pid}"
    line = health.until(0, "worker", "--this-host", timeout=30)
    assert line.startswith(f"healthy: {name} left a heartbeat ")
    queue = settings.queue_name
    assert worker_heartbeats(settings) == {
        name: f"main process, consuming {queue}, {queue}.notices"
    }

    # Then it stays healthy for longer than a heartbeat stays fresh, asked all along
    watched_until = time.monotonic() + window + 2 * LEASE_SECONDS / 3
    while time.monotonic() < watched_until:
        status, line = health("worker", "--this-host")
        assert status == 0, line
        time.sleep(0.5)

    # And once it stopped, its heartbeat goes stale within the window
    worker.stop()
    line = health.until(1, "worker", timeout=window + 10)
    assert f"no worker heartbeat in the database within {window:g} s; the last, of {name}" in line
