"""`distributor status --watch`, and the alerts line of `distributor status`: what the
terminal shows of the sends in flight, the workers, the queues and the alerts, redrawn
every second until Ctrl-C."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from kombu import Connection
from rich.console import Console
from typer.testing import CliRunner

from distributor.cli import app
from distributor.cli.status_watch import read_frame, render_frame
from distributor.monitoring.queue_depths import queue_depths
from distributor.runtime import Runtime
from distributor.settings import Settings
from tests.support.engine import TEST_OWNER
from tests.support.services import fresh_redis_queue
from tests.test_web_admin import deliver, live_send, scheduler_beats

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def drawn(runtime: Runtime) -> str:
    console = Console(file=io.StringIO(), width=160, record=True, color_system=None)
    console.print(render_frame(read_frame(runtime)))
    return console.export_text()


def environment(settings: Settings) -> dict[str, str]:
    return {
        "DISTRIBUTOR_DATABASE_URL": settings.database_url,
        "DISTRIBUTOR_DATA_DIR": str(settings.data_dir),
    }


@SQLITE_ONLY
def test_the_view_shows_the_sends_workers_queues_and_alerts(runtime: Runtime) -> None:
    send_id = live_send(runtime, 10)
    deliver(runtime, send_id, 4)

    view = drawn(runtime)
    assert "SCHEDULER SILENT: no scheduler has ticked in the last hour" in view
    assert "scheduler: no heartbeat in the last hour" in view
    row = next(line for line in view.splitlines() if "Charity welcomes" in line)
    cells = [cell.strip() for cell in re.split(r"\s{3,}", row.strip())]
    assert cells[:3] == [str(send_id), "Charity welcomes report on police response", "armed"]
    assert cells[4:7] == ["4/10 (40 %)", "4", "0.4"]  # the bar is cell 3
    assert cells[7].startswith("lifted")
    assert TEST_OWNER in view and "1 alive" in view
    assert "distributor.notices" in view

    scheduler_beats(runtime)
    view = drawn(runtime)
    assert "alerts: none" in view
    assert "scheduler: ticking, last tick 0 s ago" in view

    # `status` without --watch says the same in one line.
    scheduler_beats(runtime, ago=timedelta(seconds=12))
    result = CliRunner().invoke(app, ["status"], env=environment(runtime.settings))
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.output.splitlines() if "ALERTS" in line]
    assert line.startswith("ALERTS (1): [critical] the scheduler has not ticked for 12 s")
    refused = CliRunner().invoke(
        app, ["status", "--watch", "--json"], env=environment(runtime.settings)
    )
    assert refused.exit_code == 1
    assert "leave out --json" in str(refused.exception)


@SQLITE_ONLY
def test_watch_redraws_every_second_until_ctrl_c(runtime: Runtime, tmp_path: Path) -> None:
    send_id = live_send(runtime, 10)
    scheduler_beats(runtime)
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTRIBUTOR_")}
    env |= environment(runtime.settings) | {"COLUMNS": "160", "LINES": "60", "TERM": "xterm"}
    watcher = subprocess.Popen(
        [sys.executable, "-m", "distributor", "status", "--watch"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
        cwd=tmp_path,
    )
    os.close(terminal)
    seen = b""

    def wait_for(text: str, timeout: float = 20.0) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while text.encode() not in seen:
            assert watcher.poll() is None, seen.decode(errors="replace")
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} not shown; the terminal shows:\n{seen.decode()}"
            ready, _, _ = select.select([controller], [], [], min(left, 0.2))
            if ready:
                try:
                    seen += os.read(controller, 65536)
                except OSError:  # the process ended and the terminal closed
                    break

    try:
        wait_for("0/10 (0 %)")
        assert b"Ctrl-C to stop" in seen
        # A worker delivers meanwhile: the next drawing shows it.
        deliver(runtime, send_id, 10)
        wait_for("10/10 (100 %)", timeout=5)
        watcher.send_signal(signal.SIGINT)
        assert watcher.wait(timeout=10) == 0
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
        os.close(controller)
    assert b"Traceback" not in seen


@pytest.mark.redis
def test_queue_depths_are_the_redis_lists_of_the_queues(tmp_path: Path) -> None:
    url, queue = fresh_redis_queue()
    settings = Settings(broker_url=url, queue_name=queue, data_dir=tmp_path / "var")
    notices = f"{queue}.notices"
    with Connection(url) as connection:
        bulk, urgent = connection.SimpleQueue(queue), connection.SimpleQueue(notices)
        try:
            for n in range(3):
                bulk.put({"batch": n})
            bulk.put({"batch": 3}, priority=6)  # kept in a list of its own by kombu
            urgent.put({"batch": 0})
            depths = {d.name: d.messages for d in queue_depths(settings)}
            assert (depths[queue], depths[notices]) == (4, 1)
            assert "taken by workers, not finished" in depths
        finally:
            bulk.clear()
            urgent.clear()
            bulk.close()
            urgent.close()
            # kombu's bindings of these two queues, which no other test uses.
            redis.Redis.from_url(url).delete(
                *(
                    f"_kombu.{kind}.{q}"
                    for kind in ("binding", "binding_permanent")
                    for q in (queue, notices)
                )
            )
    assert {d.name: d.messages for d in queue_depths(settings)}[queue] == 0

    down = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    (first, _) = queue_depths(down)
    assert first.messages is None and "Redis did not answer" in first.note
