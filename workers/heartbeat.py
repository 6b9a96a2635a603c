"""A worker says it is alive while it waits for work too.

The processes that send leave a heartbeat when they take a batch and with each lease
renewal; a worker with nothing to send would leave none, and on the embedded broker, which
has no remote control to ask it through, `distributor health worker` could then not tell an
idle worker from a dead one. So the worker's main process (the one that takes messages from
the broker and hands them to its pool) leaves a heartbeat every third of a lease, like a
lease renewal, from a thread of its own: a slow or unreachable database holds up neither
the broker's messages nor the pool. Its heartbeat is named like the scheduler's
(worker:host:pid) and says which queues it consumes.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar

from celery import bootsteps
from sqlalchemy import Engine
from sqlalchemy.pool import NullPool

from distributor.clock import SystemClock
from distributor.database import make_engine, make_session_factory
from distributor.engine.dbclock import ServerClock, measure_offset, read_database_time
from distributor.engine.heartbeats import beat, process_name
from distributor.settings import Settings

log = logging.getLogger(__name__)

WORKER = "worker"


class IdleHeartbeat:
    """Beats every `interval` seconds in a daemon thread until stopped."""

    def __init__(self, settings: Settings, *, detail: str, interval: float | None = None) -> None:
        self.interval = interval if interval is not None else settings.lease_seconds / 3
        self.name = process_name(WORKER)
        self.detail = detail
        self._database_url = settings.effective_database_url
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="worker-heartbeat", daemon=True)
        self._thread.start()
        log.info("worker heartbeat every %g s as %s", self.interval, self.name)

    def stop(self, *, wait: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(wait)
            self._thread = None

    def _run(self) -> None:
        # No connection is kept between beats: the pool's processes are forked from this
        # one, and must not inherit a connection of the database.
        engine = make_engine(self._database_url, poolclass=NullPool)
        try:
            while not self._stop.is_set():
                self._beat_or_log(engine)
                self._stop.wait(self.interval)
        finally:
            engine.dispose()

    def _beat_or_log(self, engine: Engine) -> None:
        try:
            beat_once(engine, name=self.name, detail=self.detail)
        except Exception as exc:
            # The database may be restarting: tried again at the next beat, said once.
            if not self._failing:
                log.warning("worker heartbeat not written (%s: %s)", type(exc).__name__, exc)
            self._failing = True
            return
        if self._failing:
            log.info("worker heartbeat written again")
        self._failing = False


def beat_once(engine: Engine, *, name: str, detail: str) -> None:
    """One heartbeat, in the database's time, with this machine's clock offset."""
    database_clock = ServerClock(engine.dialect.name)
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        offset = measure_offset(session, database_clock, SystemClock())
        now = read_database_time(session, database_clock)
        beat(session, name=name, kind=WORKER, now=now, offset=offset, detail=detail)


class WorkerHeartbeat(bootsteps.StartStopStep):  # type: ignore[misc]
    """The bootstep that runs an IdleHeartbeat in the worker's main process. It starts after
    the pool, so that the pool's first processes are forked before its thread exists."""

    requires = {"celery.worker.components:Pool"}
    # Set by heartbeat_step: the settings the worker runs with.
    settings: ClassVar[Settings]

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.heartbeat: IdleHeartbeat | None = None

    def start(self, worker: Any) -> None:
        queues = ", ".join(sorted(q.name for q in worker.app.amqp.queues.consume_from.values()))
        self.heartbeat = IdleHeartbeat(self.settings, detail=f"main process, consuming {queues}")
        self.heartbeat.start()

    def stop(self, worker: Any) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()

    def terminate(self, worker: Any) -> None:
        self.stop(worker)


def heartbeat_step(settings: Settings) -> type[WorkerHeartbeat]:
    """The bootstep for a worker running with these settings."""

    class ConfiguredWorkerHeartbeat(WorkerHeartbeat):
        pass

    ConfiguredWorkerHeartbeat.settings = settings
    return ConfiguredWorkerHeartbeat
