"""Whether the scheduler and the workers are alive, and whether the database is ready.

Every process leaves a heartbeat in the database (engine.heartbeats), in the database's
time, so one machine's drifting clock cannot make another's process look dead. The same
judgement serves `distributor health`, the docker-compose health checks, the /readyz route
and the metrics: a process is alive when its last heartbeat is younger than a window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from distributor.engine.heartbeats import ProcessHealth, recent_heartbeats
from distributor.migrate import MIGRATIONS_DIR, database_heads
from distributor.settings import Settings

log = logging.getLogger(__name__)

SCHEDULER = "scheduler"
WORKER = "worker"
# The alert rule's threshold: a scheduler that has not ticked for this long is silent.
SCHEDULER_SILENT_AFTER = timedelta(seconds=10)


def scheduler_window(settings: Settings) -> timedelta:
    """How old the scheduler's last heartbeat may be: 10 s, or three ticks if they are slower."""
    return max(SCHEDULER_SILENT_AFTER, timedelta(seconds=3 * settings.scheduler_interval_seconds))


def worker_window(settings: Settings) -> timedelta:
    """How old a worker's last heartbeat may be. A worker's main process beats every third
    of a lease, idle or not (workers/heartbeat.py), and its pool's processes when they start
    a batch and with each lease renewal; two leases' time without one means it is gone."""
    return timedelta(seconds=2 * settings.lease_seconds)


def host_of(process_name: str) -> str:
    """The machine of a heartbeat's process name (kind:host:pid[:nonce])."""
    parts = process_name.split(":")
    return parts[1] if len(parts) > 1 else ""


@dataclass(frozen=True, slots=True)
class Liveness:
    """The heartbeats of one kind of process, judged against a window."""

    kind: str
    now: datetime
    within: timedelta
    beats: list[ProcessHealth]

    @property
    def alive(self) -> list[ProcessHealth]:
        return [b for b in self.beats if b.seen_at >= self.now - self.within]

    @property
    def latest(self) -> ProcessHealth | None:
        return max(self.beats, key=lambda b: b.seen_at, default=None)

    @property
    def age_seconds(self) -> float:
        """Seconds since the youngest heartbeat; infinite when there is none."""
        latest = self.latest
        if latest is None:
            return float("inf")
        return max((self.now - latest.seen_at).total_seconds(), 0.0)

    def largest_offset_seconds(self) -> float | None:
        """The largest clock offset (either way) among the live processes, in seconds."""
        offsets = [abs(b.clock_offset_ms) / 1000 for b in self.alive]
        return max(offsets, default=None)

    def describe_silence(self) -> str:
        """Why this kind counts as not alive, in words an admin can act on."""
        seconds = self.within.total_seconds()
        latest = self.latest
        if latest is None:
            return f"no {self.kind} heartbeat in the database in the last hour"
        return (
            f"no {self.kind} heartbeat in the database within {seconds:g} s; the last, of "
            f"{latest.name}, is {self.age_seconds:.1f} s old"
        )


def liveness(
    session: Session, *, kind: str, now: datetime, within: timedelta, host: str | None = None
) -> Liveness:
    """The heartbeats of `kind` (of the last hour), only those of `host` when given."""
    beats = [
        b
        for b in recent_heartbeats(session, now=now)
        if b.kind == kind and (host is None or host_of(b.name) == host)
    ]
    return Liveness(kind=kind, now=now, within=within, beats=beats)


@cache
def migration_heads() -> frozenset[str]:
    """The revisions this code expects the database to be at."""
    return frozenset(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())


def database_problem(engine: Engine) -> str | None:
    """What keeps the database from serving this code: unreachable, or not migrated to the
    code's revision. None when it is ready."""
    try:
        current = database_heads(engine)
    except SQLAlchemyError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        log.warning("readiness: the database is unreachable: %s", reason)
        return "unreachable; see the web app's log"
    expected = migration_heads()
    if current != expected:
        at = ", ".join(sorted(current)) or "no revision"
        return (
            f"at {at}, this code needs {', '.join(sorted(expected))}: run `distributor db upgrade`"
        )
    return None
