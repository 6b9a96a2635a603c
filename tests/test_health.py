"""Health: /readyz on the web app, and `distributor health scheduler|worker`, which the
docker-compose health checks run, against real scheduler and worker processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import delete

from distributor.cli import main
from distributor.engine.dbclock import ClockOffset, read_database_time
from distributor.engine.heartbeats import beat
from distributor.migrate import MIGRATIONS_DIR, upgrade
from distributor.models import Heartbeat
from distributor.processes import ManagedProcess, settings_env
from distributor.runtime import Runtime
from distributor.settings import Settings
from distributor.web.app import create_app
from tests.support.services import fresh_redis_queue

Start = Callable[..., ManagedProcess]


def sqlite_settings(tmp_path: Path, **overrides: object) -> Settings:
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    upgrade(database)
    return Settings(database_url=database, data_dir=tmp_path / "var", **overrides)  # type: ignore[arg-type]


def leave_heartbeat(
    settings: Settings, *, name: str, kind: str, age: timedelta = timedelta(0)
) -> None:
    """A heartbeat as a process leaves it (engine.heartbeats.beat), `age` old by the
    database's clock."""
    rt = Runtime(settings)
    try:
        with rt.sessions.begin() as session:
            now = read_database_time(session, rt.database_clock)
            beat(session, name=name, kind=kind, now=now - age, offset=ClockOffset(timedelta(0)))
    finally:
        rt.close()


def forget_heartbeats(settings: Settings) -> None:
    rt = Runtime(settings)
    try:
        with rt.sessions.begin() as session:
            session.execute(delete(Heartbeat))
    finally:
        rt.close()


class HealthCommand:
    """`distributor health ...` through the real entry point, in this process."""

    def __init__(
        self,
        settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        for name in list(os.environ):
            if name.startswith("DISTRIBUTOR_"):
                monkeypatch.delenv(name)
        for name, value in settings_env(settings).items():
            if name.startswith("DISTRIBUTOR_"):
                monkeypatch.setenv(name, value)
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str]:
        """The exit status and the line printed (stdout when healthy, stderr when not)."""
        sys.argv = ["distributor", "health", *args]
        try:
            main()
            status = 0
        except SystemExit as exit_:
            status = int(exit_.code or 0)
        out, err = self.capsys.readouterr()
        assert "Traceback" not in out + err
        return status, (out + err).strip()

    def until(self, status: int, *args: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            got, line = self(*args)
            if got == status:
                return line
            assert time.monotonic() < deadline, f"still {got} after {timeout:g} s: {line}"
            time.sleep(0.1)


@pytest.fixture
def health_of(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[[Settings], HealthCommand]:
    return lambda settings: HealthCommand(settings, monkeypatch, capsys)


# --- /readyz --------------------------------------------------------------------------------


def readyz(settings: Settings) -> tuple[int, dict[str, object]]:
    rt = Runtime(settings)
    try:
        with TestClient(create_app(rt)) as client:
            response = client.get("/readyz")
            assert client.head("/readyz").status_code == response.status_code
    finally:
        rt.close()
    return response.status_code, response.json()


def test_readyz_is_ready_on_a_migrated_database_and_a_broker_that_answers(
    database_url: str, tmp_path: Path
) -> None:
    status, body = readyz(Settings(database_url=database_url, data_dir=tmp_path / "var"))
    assert (status, body) == (
        200,
        {"status": "ready", "checks": {"database": "ok", "broker": "ok"}},
    )


def test_readyz_is_not_ready_on_a_schema_behind_the_code(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    (head,) = scripts.get_heads()
    previous = scripts.get_revision(head).down_revision
    assert isinstance(previous, str)
    upgrade(database, previous)
    status, body = readyz(Settings(database_url=database, data_dir=tmp_path / "var"))
    assert status == 503 and body["status"] == "not ready"
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert checks["database"] == (
        f"at {previous}, this code needs {head}: run `distributor db upgrade`"
    )


def test_readyz_names_an_unreachable_database_and_broker_without_their_urls(
    tmp_path: Path,
) -> None:
    settings = Settings(
        database_url="postgresql+psycopg://nobody:hunter2@127.0.0.1:1/none",
        broker_url="redis://:hunter2@127.0.0.1:1/0",
        data_dir=tmp_path / "var",
    )
    status, body = readyz(settings)
    assert status == 503
    assert body["checks"] == {
        "database": "unreachable; see the web app's log",
        "broker": "unreachable (OperationalError from the redis broker)",
    }


# --- distributor health scheduler -----------------------------------------------------------


@pytest.mark.slow
def test_scheduler_health_follows_a_real_scheduler(
    tmp_path: Path, processes: Start, health_of: Callable[[Settings], HealthCommand]
) -> None:
    settings = sqlite_settings(tmp_path, scheduler_interval_seconds=0.2)
    health = health_of(settings)

    # Before any scheduler ran: unhealthy, saying so
    status, line = health("scheduler")
    assert status == 1
    assert line == (
        "unhealthy: no scheduler heartbeat in the database in the last hour; is "
        "`distributor scheduler` running?"
    )

    # With a scheduler ticking: healthy, naming it
    scheduler = processes("scheduler", settings, interval=0.2)
    line = health.until(0, "scheduler", "--max-age", "1", "--this-host", timeout=5)
    assert line.startswith(f"healthy: scheduler:{socket.gethostname()}:{scheduler.pid} ticked")

    # Stopped: unhealthy once its last tick is older than the limit
    scheduler.stop()
    line = health.until(1, "scheduler", "--max-age", "1", timeout=5)
    assert line.startswith("unhealthy: no scheduler heartbeat in the database within 1 s; the last")

    # As docker-compose runs it: the installed command, exit status 1 and the reason
    ran = subprocess.run(
        [sys.executable, "-m", "distributor", "health", "scheduler", "--max-age", "1"],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert ran.stderr.startswith("unhealthy: no scheduler heartbeat in the database within 1 s")


def test_only_this_machines_schedulers_count_with_this_host(
    tmp_path: Path, health_of: Callable[[Settings], HealthCommand]
) -> None:
    settings = sqlite_settings(tmp_path)
    leave_heartbeat(settings, name="scheduler:another-machine:42", kind="scheduler")
    health = health_of(settings)
    status, line = health("scheduler")
    assert (status, line.split(" ticked")[0]) == (0, "healthy: scheduler:another-machine:42")
    status, line = health("scheduler", "--this-host")
    assert status == 1 and "no scheduler heartbeat in the database in the last hour" in line


# --- distributor health worker --------------------------------------------------------------


def test_a_worker_sending_now_is_healthy_by_its_heartbeat(
    tmp_path: Path, health_of: Callable[[Settings], HealthCommand]
) -> None:
    settings = sqlite_settings(tmp_path)
    health = health_of(settings)
    # The embedded broker cannot ask idle workers: only heartbeats count there.
    status, line = health("worker")
    assert status == 1
    assert line == (
        "unhealthy: no worker heartbeat in the database in the last hour, and the embedded "
        "broker cannot ask idle workers; is `distributor worker` running?"
    )
    leave_heartbeat(settings, name="worker:old:1:aa", kind="worker", age=timedelta(minutes=5))
    status, line = health("worker", "--no-ping")
    assert status == 1
    assert line.startswith(
        "unhealthy: no worker heartbeat in the database within 30 s; the last, of worker:old:1:aa"
    )
    leave_heartbeat(settings, name="worker:new:2:bb", kind="worker")
    status, line = health("worker", "--no-ping")
    assert (status, line.split(" left a heartbeat")[0]) == (0, "healthy: worker:new:2:bb")


@pytest.mark.slow
@pytest.mark.redis
def test_an_idle_worker_is_healthy_while_it_answers_through_the_broker(
    tmp_path: Path, processes: Start, health_of: Callable[[Settings], HealthCommand]
) -> None:
    # Given an installation on Redis (whose other tests' workers consume other queues), with
    # a lease so long that a worker's heartbeat comes only every 200 s
    broker_url, queue = fresh_redis_queue()
    settings = sqlite_settings(tmp_path, broker_url=broker_url, queue_name=queue, lease_seconds=600)
    health = health_of(settings)
    status, line = health("worker")
    assert status == 1
    assert line.endswith(
        f"and no worker consuming {queue}, {queue}.notices answered in 1 s; is "
        "`distributor worker` running?"
    )

    # When a worker runs, idle, and its heartbeat is not in the database (yet, or any more)
    worker = processes("worker", settings)
    forget_heartbeats(settings)
    # (on a busy machine a worker just up may miss a one-second ping: asked until it answers)
    line = health.until(0, "worker", "--this-host", timeout=30)
    assert line == f"healthy: celery@{socket.gethostname()} consume(s) {queue}, {queue}.notices"

    # Then once it stopped, nobody answers
    worker.stop()
    status, line = health("worker", "--ping-timeout", "0.5")
    assert status == 1 and "answered in 0.5 s" in line
