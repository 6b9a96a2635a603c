"""Reading, at one moment of the database's clock, every figure /metrics reports from it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from distributor.engine.dbclock import read_database_time
from distributor.engine.pacing_status import PacingStatus, pacing_status
from distributor.engine.relay_health import RelayState, relay_state
from distributor.monitoring.health_checks import (
    SCHEDULER,
    WORKER,
    Liveness,
    liveness,
    scheduler_window,
    worker_window,
)
from distributor.monitoring.metrics_queues import QueueFigures, waiting_batches
from distributor.monitoring.metrics_sends import (
    DeliveryTotals,
    SendFigures,
    delivery_totals,
    send_figures,
    sends_by_state,
    watched_send_ids,
)
from distributor.monitoring.send_counts import last_reply_classes
from distributor.runtime import Runtime
from distributor.states import SendState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DatabaseFigures:
    """Everything /metrics reads from the database, at one moment of its clock."""

    now: datetime
    totals: DeliveryTotals
    sends_by_state: dict[SendState, int]
    sends: list[SendFigures]
    replies: dict[str, int]
    schedulers: Liveness
    workers: Liveness
    relay: RelayState
    queues: list[QueueFigures]
    pacing: PacingStatus


def read_database_figures(runtime: Runtime, session: Session) -> DatabaseFigures:
    settings = runtime.settings
    now = read_database_time(session, runtime.database_clock)
    watched = watched_send_ids(session, now=now)
    store = None
    try:
        store = runtime.pacing_store()
    except Exception:
        log.warning("metrics: cannot open the pacing store", exc_info=True)
    try:
        pacing = pacing_status(session, limits=runtime.pacing_limits, store=store, now=now)
    finally:
        if store is not None:
            store.close()
    return DatabaseFigures(
        now=now,
        totals=delivery_totals(session),
        sends_by_state=sends_by_state(session),
        sends=send_figures(session, watched),
        replies=last_reply_classes(session, watched),
        schedulers=liveness(session, kind=SCHEDULER, now=now, within=scheduler_window(settings)),
        workers=liveness(session, kind=WORKER, now=now, within=worker_window(settings)),
        relay=relay_state(session),
        queues=waiting_batches(
            session,
            queue_name=settings.queue_name,
            now=now,
            prepare_ahead=runtime.scheduler_policy.prepare_ahead,
        ),
        pacing=pacing,
    )
