"""Heartbeats: each scheduler and worker process says, in the database, that it is alive.

The time is the database's, so one process's drifting clock cannot make another look dead;
the process's own clock offset is kept beside it for `status` to show.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from distributor.engine.dbclock import ClockOffset
from distributor.models import Heartbeat

HEARTBEATS = cast(Table, Heartbeat.__table__)
# Heartbeats older than this are of processes that are gone; status leaves them out.
FORGET_AFTER = timedelta(hours=1)


def process_name(kind: str) -> str:
    return f"{kind}:{socket.gethostname()}:{os.getpid()}"


def beat(
    session: Session,
    *,
    name: str,
    kind: str,
    now: datetime,
    offset: ClockOffset,
    detail: str | None = None,
) -> None:
    values = {
        "name": name,
        "kind": kind,
        "seen_at": now,
        "clock_offset_ms": offset.milliseconds,
        "detail": detail,
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(HEARTBEATS).values(values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[HEARTBEATS.c.name],
            set_={k: statement.excluded[k] for k in ("seen_at", "clock_offset_ms", "detail")},
        )
    )


@dataclass(frozen=True, slots=True)
class ProcessHealth:
    name: str
    kind: str
    seen_at: datetime
    clock_offset_ms: int
    detail: str | None


def recent_heartbeats(session: Session, *, now: datetime) -> list[ProcessHealth]:
    rows = session.execute(
        select(Heartbeat)
        .where(Heartbeat.seen_at >= now - FORGET_AFTER)
        .order_by(Heartbeat.kind, Heartbeat.name)
    ).scalars()
    return [ProcessHealth(h.name, h.kind, h.seen_at, h.clock_offset_ms, h.detail) for h in rows]
