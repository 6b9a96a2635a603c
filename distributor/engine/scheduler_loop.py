"""The scheduler process: tick for ever, surviving database and broker errors.

Each tick reads the database's time, leaves a heartbeat (with this machine's clock offset)
and runs the tick. An error is logged and the next tick waits longer, up to a minute; the
loop itself only ends when asked to.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from distributor.clock import Clock
from distributor.engine.dbclock import (
    ClockOffset,
    DatabaseClock,
    measure_offset,
    read_database_time,
    warn_if_skewed,
)
from distributor.engine.dispatch import BatchDispatcher
from distributor.engine.heartbeats import beat, process_name
from distributor.engine.tick import SchedulerPolicy, TickReport, tick

log = logging.getLogger(__name__)

LONGEST_PAUSE = 60.0
SKEW_WARNING_EVERY = 60.0  # seconds between repeated clock-skew warnings


@dataclass(frozen=True, slots=True)
class SchedulerParts:
    sessions: sessionmaker[Session]
    dispatcher: BatchDispatcher
    database_clock: DatabaseClock
    local_clock: Clock
    policy: SchedulerPolicy
    period: float


class SkewAlarm:
    """Warns of a skewed clock at the first tick, then once a minute, not every second."""

    def __init__(self) -> None:
        self._last = -SKEW_WARNING_EVERY

    def check(self, offset: ClockOffset, *, process: str) -> None:
        if offset.is_alarming and time.monotonic() - self._last >= SKEW_WARNING_EVERY:
            self._last = time.monotonic()
            warn_if_skewed(offset, process=process)


def tick_once(parts: SchedulerParts, *, name: str, alarm: SkewAlarm) -> TickReport:
    with parts.sessions.begin() as session:
        offset = measure_offset(session, parts.database_clock, parts.local_clock)
        now = read_database_time(session, parts.database_clock)
        beat(session, name=name, kind="scheduler", now=now, offset=offset)
    alarm.check(offset, process=name)
    return tick(parts.sessions, parts.dispatcher, now=now, policy=parts.policy)


def run_scheduler(parts: SchedulerParts, *, stop: threading.Event) -> None:
    name = process_name("scheduler")
    alarm = SkewAlarm()
    failures = 0
    log.info("scheduler ticking every %g s", parts.period)
    while not stop.is_set():
        try:
            report = tick_once(parts, name=name, alarm=alarm)
        except Exception as exc:
            failures += 1
            pause = min(parts.period * 2**failures, LONGEST_PAUSE)
            log.error(
                "scheduler tick failed (%s: %s); next try in %.1f s",
                type(exc).__name__,
                exc,
                pause,
                exc_info=failures == 1,
            )
            stop.wait(pause)
            continue
        if failures:
            log.info("scheduler ticks again after %d failed tick(s)", failures)
            failures = 0
        if report.dispatched:
            log.info("dispatched %d batch(es)", len(report.dispatched))
        stop.wait(parts.period)
