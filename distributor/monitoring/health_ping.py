"""Asking the running Celery workers, through the broker, which queues they consume.

Every worker leaves a heartbeat in the database, idle or not; when none is recent (the
database was out of reach for a while, or the heartbeat is older than asked for), the worker
itself can be asked: a broadcast that every worker on the broker answers with the queues it
consumes. Only the workers of this installation's queues count, so the
workers of another installation sharing the broker do not make this one look healthy. The
embedded filesystem broker has no broadcast (remote control is off there): None.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from distributor.monitoring.health_broker import (
    BrokerUnreachableError,
    broker_problem,
    installation_queues,
)
from distributor.settings import EMBEDDED_BROKER, Settings

PING_TIMEOUT_SECONDS = 1.0


def answering_workers(
    settings: Settings, *, timeout: float = PING_TIMEOUT_SECONDS, host: str | None = None
) -> list[str] | None:
    """The Celery nodes (celery@host) consuming this installation's queues that answered
    within `timeout`, only those on `host` when given; None where the broker cannot ask.
    BrokerUnreachableError when the broker does not answer."""
    if settings.broker_url == EMBEDDED_BROKER:
        return None
    # Asked first with a short timeout: Celery's broadcast would retry for seconds.
    problem = broker_problem(settings)
    if problem is not None:
        raise BrokerUnreachableError(problem)
    app = Celery("distributor-health", broker=settings.broker_url, set_as_current=False)
    try:
        replies: dict[str, Any] = app.control.inspect(timeout=timeout).active_queues() or {}
    finally:
        app.close()
    ours = set(installation_queues(settings))
    return sorted(
        node
        for node, consumed in replies.items()
        if ours & {str(q.get("name")) for q in consumed or []}
        and (host is None or node.rpartition("@")[2] == host)
    )
